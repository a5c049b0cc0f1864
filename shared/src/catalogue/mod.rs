//! The catalogue: plans normalised across providers, priced per tenant, cached in DynamoDB per
//! (provider, country) with lazy first fetch, stale-while-revalidate under a conditional
//! lease, invalidation, and a short in-memory cache on warm containers.
//!
//! Layout:
//! - [`pricing`]: per-tenant retail price rules (integer arithmetic only).
//! - [`store`]: the storage port of the cache, the plan-id index and the tenant rules; its
//!   DynamoDB adapter is [`crate::aws::catalogue_store`].
//! - [`CatalogueService`]: the reads the catalogue API serves and the [`PlanCatalogue`] port
//!   the order flow uses.
//!
//! [`PlanCatalogue`]: crate::ports::PlanCatalogue

#[cfg(any(test, feature = "test-support"))]
#[cfg(test)]
pub mod memory;
pub mod pricing;
mod service;
pub mod store;
mod view;

use std::time::Duration;

use crate::config::{ConfigError, EnvSource, seconds};
use crate::domain::ids::ProviderId;

pub use pricing::{PricePoint, PriceRule, PricingRules};
pub use service::CatalogueService;
pub use store::{CacheEntry, CatalogueStore, Invalidation, Scope};
pub use view::{CountryListing, CountrySummary, Freshness, PlanFilter, PlanListing, RetailPlan};

/// Names of the environment variables the catalogue reads. Every one is optional.
pub mod env {
    /// How long a provider's answer counts as fresh, in seconds (default 3600).
    pub const CACHE_TTL: &str = "CATALOGUE_CACHE_TTL_SECONDS";
    /// How long a warm container answers from memory without asking DynamoDB (default 30).
    pub const MEMORY_TTL: &str = "CATALOGUE_MEMORY_TTL_SECONDS";
    /// How long a refresher holds its lease before another caller may take over, and how long
    /// a cold request waits for it (default 20, below the catalogue API's 30 second timeout).
    pub const LEASE: &str = "CATALOGUE_LEASE_SECONDS";
    /// After a failed refresh, how long before the provider is asked again (default 30).
    pub const FAILURE_BACKOFF: &str = "CATALOGUE_FAILURE_BACKOFF_SECONDS";
    /// How long an entry is kept for serving stale before DynamoDB TTL deletes it (default
    /// 7 days).
    pub const RETENTION: &str = "CATALOGUE_RETENTION_SECONDS";
    /// Providers whose whole catalogue the scheduled refresh fetches, comma-separated
    /// (default none).
    pub const FULL_REFRESH_PROVIDERS: &str = "CATALOGUE_FULL_REFRESH_PROVIDERS";
}

/// How the catalogue caches, read once from the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogueConfig {
    /// How long a provider's answer counts as fresh.
    pub cache_ttl: Duration,
    /// How long a warm container answers from memory; 0 reads DynamoDB on every request.
    pub memory_ttl: Duration,
    /// How long a refresh lease lasts; also how long a cold request waits for another
    /// caller's refresh.
    pub lease: Duration,
    /// After a failed refresh, how long before the provider is asked again.
    pub failure_backoff: Duration,
    /// How long entries are kept for serving stale when providers are down.
    pub retention: Duration,
    /// Providers the scheduled full refresh covers.
    pub full_refresh_providers: Vec<ProviderId>,
}

impl Default for CatalogueConfig {
    fn default() -> Self {
        Self {
            cache_ttl: Duration::from_secs(3600),
            memory_ttl: Duration::from_secs(30),
            lease: Duration::from_secs(20),
            failure_backoff: Duration::from_secs(30),
            retention: Duration::from_secs(7 * 24 * 3600),
            full_refresh_providers: Vec::new(),
        }
    }
}

impl CatalogueConfig {
    /// Reads the `CATALOGUE_*` variables of [`env`], defaulting each one.
    pub fn load(source: &dyn EnvSource) -> Result<Self, ConfigError> {
        let defaults = Self::default();
        let lease = seconds(source, env::LEASE, defaults.lease)?;
        if lease.is_zero() {
            return Err(ConfigError::Invalid {
                name: env::LEASE,
                reason: "a lease must last at least one second".to_owned(),
            });
        }
        let full_refresh_providers = source
            .var(env::FULL_REFRESH_PROVIDERS)
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|name| !name.is_empty())
            .map(|name| {
                ProviderId::parse(name).map_err(|e| ConfigError::Invalid {
                    name: env::FULL_REFRESH_PROVIDERS,
                    reason: format!("{name:?}: {e}"),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            cache_ttl: seconds(source, env::CACHE_TTL, defaults.cache_ttl)?,
            memory_ttl: seconds(source, env::MEMORY_TTL, defaults.memory_ttl)?,
            lease,
            failure_backoff: seconds(source, env::FAILURE_BACKOFF, defaults.failure_backoff)?,
            retention: seconds(source, env::RETENTION, defaults.retention)?,
            full_refresh_providers,
        })
    }
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
    fn every_setting_has_a_default() {
        let config = CatalogueConfig::load(&vars(&[])).expect("defaults");

        assert_eq!(config, CatalogueConfig::default());
    }

    #[test]
    fn reads_ttls_and_the_full_refresh_providers() {
        let env = vars(&[
            (env::CACHE_TTL, "60"),
            (env::MEMORY_TTL, "0"),
            (env::FULL_REFRESH_PROVIDERS, "airalo, esim-access"),
        ]);

        let config = CatalogueConfig::load(&env).expect("valid");

        assert_eq!(config.cache_ttl, Duration::from_secs(60));
        assert_eq!(config.memory_ttl, Duration::ZERO);
        let names: Vec<_> = config
            .full_refresh_providers
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(names, ["airalo", "esim-access"]);
    }

    #[test]
    fn a_bad_setting_names_its_variable() {
        let zero_lease = CatalogueConfig::load(&vars(&[(env::LEASE, "0")])).expect_err("zero");
        let bad_ttl = CatalogueConfig::load(&vars(&[(env::CACHE_TTL, "soon")])).expect_err("nan");

        assert!(zero_lease.to_string().contains(env::LEASE));
        assert!(bad_ttl.to_string().contains(env::CACHE_TTL));
    }
}
