//! Adapters for wholesale provider APIs, one module per API, over the shared HTTP plumbing in
//! [`http`], and [`env`]: the environment variables that switch each provider on.

pub mod airalo;
pub mod esim_access;
pub mod http;

/// Names of the environment variables that configure providers. A provider is enabled when its
/// base URL is set; its credentials are then required. Secrets lists are comma-separated, so
/// that a new secret can be added before the old one is removed.
pub mod env {
    /// Airalo Partner API base URL (the part before `/v2/...`).
    pub const AIRALO_BASE_URL: &str = "AIRALO_BASE_URL";
    /// Airalo OAuth2 client id.
    pub const AIRALO_CLIENT_ID: &str = "AIRALO_CLIENT_ID";
    /// Airalo OAuth2 client secret.
    pub const AIRALO_CLIENT_SECRET: &str = "AIRALO_CLIENT_SECRET";
    /// Keys of the `airalo-signature` webhook HMAC, comma-separated.
    pub const AIRALO_WEBHOOK_SECRETS: &str = "AIRALO_WEBHOOK_SECRETS";
    /// eSIM Access API base URL (the part before `/api/v1/open/...`).
    pub const ESIM_ACCESS_BASE_URL: &str = "ESIM_ACCESS_BASE_URL";
    /// eSIM Access `RT-AccessCode`.
    pub const ESIM_ACCESS_ACCESS_CODE: &str = "ESIM_ACCESS_ACCESS_CODE";
    /// eSIM Access request-signing secret key.
    pub const ESIM_ACCESS_SECRET_KEY: &str = "ESIM_ACCESS_SECRET_KEY";
    /// Secret path segments of eSIM Access webhook URLs, comma-separated.
    pub const ESIM_ACCESS_WEBHOOK_SECRETS: &str = "ESIM_ACCESS_WEBHOOK_SECRETS";
    /// Source addresses eSIM Access webhooks may come from, comma-separated; empty allows any.
    pub const ESIM_ACCESS_WEBHOOK_ALLOWED_IPS: &str = "ESIM_ACCESS_WEBHOOK_ALLOWED_IPS";
}

use std::net::IpAddr;
use std::sync::Arc;

use crate::config::{ConfigError, EnvSource, required};
use crate::domain::ids::ProviderId;
use crate::ports::ProviderApi;

use self::airalo::{AiraloConfig, AiraloProvider};
use self::esim_access::{EsimAccessConfig, EsimAccessProvider};
use self::http::HttpSettings;

/// The provider id of the Airalo adapter, as it appears in plan ids and webhook paths.
pub const AIRALO: &str = "airalo";
/// The provider id of the eSIM Access adapter.
pub const ESIM_ACCESS: &str = "esim-access";

/// Builds every provider the environment switches on, in a fixed order (Airalo, then eSIM
/// Access). Called once per container: each adapter keeps its token cache and rate limiter.
/// An empty list is not an error here; a function that needs a provider says so itself.
pub fn from_env(env: &dyn EnvSource) -> Result<Vec<Arc<dyn ProviderApi>>, ConfigError> {
    let mut providers: Vec<Arc<dyn ProviderApi>> = Vec::new();
    if let Some(base_url) = non_empty(env, env::AIRALO_BASE_URL) {
        let config = AiraloConfig {
            base_url,
            client_id: required(env, env::AIRALO_CLIENT_ID, "the Airalo OAuth2 client id")?,
            client_secret: required(
                env,
                env::AIRALO_CLIENT_SECRET,
                "the Airalo OAuth2 client secret",
            )?,
            webhook_secrets: required_list(
                env,
                env::AIRALO_WEBHOOK_SECRETS,
                "the airalo-signature HMAC keys, comma-separated",
            )?,
            // Async order results go to the webhook URL registered with Airalo.
            async_order_webhook_url: None,
            http: HttpSettings::default(),
        };
        let provider = AiraloProvider::new(provider_id(AIRALO, env::AIRALO_BASE_URL)?, config)
            .map_err(|e| ConfigError::Invalid {
                name: env::AIRALO_BASE_URL,
                reason: e.to_string(),
            })?;
        providers.push(Arc::new(provider));
    }
    if let Some(base_url) = non_empty(env, env::ESIM_ACCESS_BASE_URL) {
        let mut config = EsimAccessConfig::new(
            base_url,
            required(
                env,
                env::ESIM_ACCESS_ACCESS_CODE,
                "the eSIM Access RT-AccessCode",
            )?,
            required(
                env,
                env::ESIM_ACCESS_SECRET_KEY,
                "the eSIM Access secret key",
            )?,
        );
        config.webhook_path_secrets = list(env, env::ESIM_ACCESS_WEBHOOK_SECRETS);
        config.webhook_source_ips = ip_list(env, env::ESIM_ACCESS_WEBHOOK_ALLOWED_IPS)?;
        let provider =
            EsimAccessProvider::new(provider_id(ESIM_ACCESS, env::ESIM_ACCESS_BASE_URL)?, config)
                .map_err(|e| ConfigError::Invalid {
                name: env::ESIM_ACCESS_BASE_URL,
                reason: e.to_string(),
            })?;
        providers.push(Arc::new(provider));
    }
    Ok(providers)
}

fn provider_id(name: &'static str, variable: &'static str) -> Result<ProviderId, ConfigError> {
    ProviderId::parse(name).map_err(|e| ConfigError::Invalid {
        name: variable,
        reason: e.to_string(),
    })
}

fn non_empty(env: &dyn EnvSource, name: &str) -> Option<String> {
    env.var(name)
        .map(|value| value.trim().to_owned())
        .filter(|value| !value.is_empty())
}

fn list(env: &dyn EnvSource, name: &str) -> Vec<String> {
    non_empty(env, name)
        .map(|text| {
            text.split(',')
                .map(str::trim)
                .filter(|item| !item.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

fn required_list(
    env: &dyn EnvSource,
    name: &'static str,
    hint: &'static str,
) -> Result<Vec<String>, ConfigError> {
    let items = list(env, name);
    if items.is_empty() {
        return Err(ConfigError::Missing { name, hint });
    }
    Ok(items)
}

fn ip_list(env: &dyn EnvSource, name: &'static str) -> Result<Option<Vec<IpAddr>>, ConfigError> {
    let items = list(env, name);
    if items.is_empty() {
        return Ok(None);
    }
    items
        .iter()
        .map(|item| {
            item.parse::<IpAddr>().map_err(|_| ConfigError::Invalid {
                name,
                reason: format!("{item:?} is not an IP address"),
            })
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn no_base_url_means_no_provider() {
        let providers = from_env(&vars(&[(env::AIRALO_CLIENT_ID, "id")])).expect("valid");

        assert!(providers.is_empty());
    }

    #[test]
    fn both_providers_are_built_in_order_when_configured() {
        let env = vars(&[
            (env::AIRALO_BASE_URL, "http://127.0.0.1:1/airalo"),
            (env::AIRALO_CLIENT_ID, "id"),
            (env::AIRALO_CLIENT_SECRET, "secret"),
            (env::AIRALO_WEBHOOK_SECRETS, "old, new"),
            (env::ESIM_ACCESS_BASE_URL, "http://127.0.0.1:1/esimaccess"),
            (env::ESIM_ACCESS_ACCESS_CODE, "code"),
            (env::ESIM_ACCESS_SECRET_KEY, "key"),
            (env::ESIM_ACCESS_WEBHOOK_SECRETS, "path-secret"),
            (env::ESIM_ACCESS_WEBHOOK_ALLOWED_IPS, "203.0.113.7"),
        ]);

        let providers = from_env(&env).expect("valid");

        let ids: Vec<_> = providers.iter().map(|p| p.id().to_string()).collect();
        assert_eq!(ids, ["airalo", "esim-access"]);
    }

    #[test]
    fn a_missing_credential_names_its_variable() {
        let no_id = vars(&[(env::AIRALO_BASE_URL, "http://127.0.0.1:1/airalo")]);
        let no_secrets = vars(&[
            (env::AIRALO_BASE_URL, "http://127.0.0.1:1/airalo"),
            (env::AIRALO_CLIENT_ID, "id"),
            (env::AIRALO_CLIENT_SECRET, "secret"),
            (env::AIRALO_WEBHOOK_SECRETS, " , "),
        ]);

        let missing_id = from_env(&no_id).expect_err("client id missing");
        let missing_secrets = from_env(&no_secrets).expect_err("webhook secrets missing");

        assert!(missing_id.to_string().contains(env::AIRALO_CLIENT_ID));
        assert!(
            missing_secrets
                .to_string()
                .contains(env::AIRALO_WEBHOOK_SECRETS)
        );
    }

    #[test]
    fn a_malformed_allowlist_entry_names_its_variable() {
        let env = vars(&[
            (env::ESIM_ACCESS_BASE_URL, "http://127.0.0.1:1/esimaccess"),
            (env::ESIM_ACCESS_ACCESS_CODE, "code"),
            (env::ESIM_ACCESS_SECRET_KEY, "key"),
            (env::ESIM_ACCESS_WEBHOOK_ALLOWED_IPS, "203.0.113.7, nope"),
        ]);

        let error = from_env(&env).expect_err("bad address");

        assert!(
            error
                .to_string()
                .contains(env::ESIM_ACCESS_WEBHOOK_ALLOWED_IPS)
        );
        assert!(error.to_string().contains("nope"));
    }
}
