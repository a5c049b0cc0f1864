//! Typed configuration, read once at start-up from the environment that `template.yaml` (or
//! the local stack) sets. A missing or malformed variable stops `main` with a message naming it.

use std::collections::HashMap;
use std::time::Duration;

/// Where configuration values come from: the process environment in a Lambda, a map in the
/// local stack and in tests (so nothing ever calls `set_var`).
pub trait EnvSource {
    /// The value of a variable, if set.
    fn var(&self, name: &str) -> Option<String>;
}

/// The process environment.
#[derive(Debug, Default, Clone, Copy)]
pub struct ProcessEnv;

impl EnvSource for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

impl EnvSource for HashMap<String, String> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }
}

/// A configuration problem, naming the variable to fix.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A required variable is not set.
    #[error("environment variable {name} is not set: {hint}")]
    Missing {
        /// The variable.
        name: &'static str,
        /// What it should hold.
        hint: &'static str,
    },
    /// A variable is set but unusable.
    #[error("environment variable {name} is invalid: {reason}")]
    Invalid {
        /// The variable.
        name: &'static str,
        /// Why.
        reason: String,
    },
}

/// Reads a required, non-empty variable.
pub fn required(
    env: &dyn EnvSource,
    name: &'static str,
    hint: &'static str,
) -> Result<String, ConfigError> {
    match env.var(name) {
        Some(value) if !value.trim().is_empty() => Ok(value),
        _ => Err(ConfigError::Missing { name, hint }),
    }
}

/// Reads an optional variable holding a whole number of seconds.
pub fn seconds(
    env: &dyn EnvSource,
    name: &'static str,
    default: Duration,
) -> Result<Duration, ConfigError> {
    match env.var(name) {
        None => Ok(default),
        Some(text) => text
            .trim()
            .parse::<u64>()
            .map(Duration::from_secs)
            .map_err(|_| ConfigError::Invalid {
                name,
                reason: format!("expected whole seconds, got {text:?}"),
            }),
    }
}

/// What every function needs: the table, the bus, and how events are labelled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoreConfig {
    /// The DynamoDB table.
    pub table_name: String,
    /// The EventBridge bus name.
    pub event_bus_name: String,
    /// The `source` of every event published.
    pub event_source: String,
}

impl CoreConfig {
    /// Reads `TABLE_NAME`, `EVENT_BUS_NAME` and optionally `EVENT_SOURCE`.
    pub fn load(env: &dyn EnvSource) -> Result<Self, ConfigError> {
        Ok(Self {
            table_name: required(env, "TABLE_NAME", "the DynamoDB table name")?,
            event_bus_name: required(env, "EVENT_BUS_NAME", "the EventBridge bus name")?,
            event_source: env
                .var("EVENT_SOURCE")
                .unwrap_or_else(|| "esim-backend".to_owned()),
        })
    }
}

/// Configuration of an HTTP function: the core plus how long a verified API key is trusted
/// from memory before the table is asked again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpConfig {
    /// The core settings.
    pub core: CoreConfig,
    /// `AUTH_CACHE_SECONDS`, default 30. A revoked key keeps working on a warm container for
    /// at most this long; 0 asks the table on every request.
    pub auth_cache: Duration,
}

impl HttpConfig {
    /// Reads the core settings and `AUTH_CACHE_SECONDS`.
    pub fn load(env: &dyn EnvSource) -> Result<Self, ConfigError> {
        Ok(Self {
            core: CoreConfig::load(env)?,
            auth_cache: seconds(env, "AUTH_CACHE_SECONDS", Duration::from_secs(30))?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn names_the_missing_variable() {
        let error = CoreConfig::load(&env(&[("TABLE_NAME", "t")])).expect_err("bus is missing");

        assert!(error.to_string().contains("EVENT_BUS_NAME"));
    }

    #[test]
    fn rejects_non_numeric_seconds() {
        let vars = env(&[
            ("TABLE_NAME", "t"),
            ("EVENT_BUS_NAME", "b"),
            ("AUTH_CACHE_SECONDS", "x"),
        ]);

        let error = HttpConfig::load(&vars).expect_err("not a number");

        assert!(error.to_string().contains("AUTH_CACHE_SECONDS"));
    }

    #[test]
    fn defaults_the_event_source_and_cache() {
        let config = HttpConfig::load(&env(&[("TABLE_NAME", "t"), ("EVENT_BUS_NAME", "b")]))
            .expect("complete");

        assert_eq!(config.core.event_source, "esim-backend");
        assert_eq!(config.auth_cache, Duration::from_secs(30));
    }
}
