//! The catalogue's storage port: cache entries per (scope, provider) with a refresh lease, the
//! plan-id index, and each tenant's pricing and routing rules.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::pricing::PricingRules;
use super::view::CountrySummary;
use crate::domain::ids::{PlanId, ProviderId, TenantId};
use crate::domain::plan::{CountryCode, ProviderPlan};
use crate::domain::routing::RoutingRules;
use crate::ports::StoreError;

/// What one cache entry holds: one country's plans, or the list of countries a provider sells.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", content = "country", rename_all = "snake_case")]
pub enum Scope {
    /// The plans covering one country.
    Country(CountryCode),
    /// The countries a provider sells, from its full catalogue.
    Countries,
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Scope::Country(country) => write!(f, "country {}", country.as_str()),
            Scope::Countries => f.write_str("countries"),
        }
    }
}

/// One provider's cached answer for one scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheEntry {
    /// Which scope.
    pub scope: Scope,
    /// Which provider answered.
    pub provider: ProviderId,
    /// The plans (country scope); empty when the provider sells nothing there.
    pub plans: Vec<ProviderPlan>,
    /// The countries and their plan counts (countries scope).
    pub countries: Vec<CountrySummary>,
    /// When the provider answered; `None` while the first fetch has not landed.
    pub fetched_at: Option<OffsetDateTime>,
    /// Marked stale by an invalidation: refreshed on the next read whatever its age.
    pub stale: bool,
    /// Until when a refresher holds the lease, if one does.
    pub lease_until: Option<OffsetDateTime>,
    /// When the last refresh attempt failed, if the latest one did.
    pub failed_at: Option<OffsetDateTime>,
}

impl CacheEntry {
    /// A fresh answer from a provider.
    pub fn fetched(scope: Scope, provider: ProviderId, at: OffsetDateTime) -> Self {
        Self {
            scope,
            provider,
            plans: Vec::new(),
            countries: Vec::new(),
            fetched_at: Some(at),
            stale: false,
            lease_until: None,
            failed_at: None,
        }
    }
}

/// What an invalidation marks stale.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "target", content = "value", rename_all = "snake_case")]
pub enum Invalidation {
    /// Every entry of one provider.
    Provider(ProviderId),
    /// Every provider's entry for one country.
    Country(CountryCode),
}

impl std::fmt::Display for Invalidation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Invalidation::Provider(provider) => write!(f, "provider {provider}"),
            Invalidation::Country(country) => write!(f, "country {}", country.as_str()),
        }
    }
}

/// Storage of the catalogue cache and the tenant rules it prices with.
///
/// Invariants: at most one caller holds the lease of an entry at a time (a conditional
/// write); saving an entry releases its lease; a stale mark survives until the next save.
#[async_trait]
pub trait CatalogueStore: Send + Sync + std::fmt::Debug {
    /// Every provider's entry for a scope, in one read.
    async fn entries(&self, scope: &Scope) -> Result<Vec<CacheEntry>, StoreError>;

    /// One provider's entry for a scope.
    async fn entry(
        &self,
        scope: &Scope,
        provider: &ProviderId,
    ) -> Result<Option<CacheEntry>, StoreError>;

    /// Takes the refresh lease of an entry until `until` when nobody holds it at `now` and
    /// the entry is still the one the caller saw: fetched at `seen_fetched_at`, or never
    /// fetched when that is `None` (the entry is created if needed). False otherwise: another
    /// caller holds the lease or has refreshed the entry already.
    async fn acquire_lease(
        &self,
        scope: &Scope,
        provider: &ProviderId,
        owner: &str,
        seen_fetched_at: Option<OffsetDateTime>,
        now: OffsetDateTime,
        until: OffsetDateTime,
    ) -> Result<bool, StoreError>;

    /// Records a failed refresh by `owner`, keeping the lease until `retry_at` so that other
    /// callers do not hammer a provider that is down.
    async fn record_failure(
        &self,
        scope: &Scope,
        provider: &ProviderId,
        owner: &str,
        at: OffsetDateTime,
        retry_at: OffsetDateTime,
    ) -> Result<(), StoreError>;

    /// Stores a provider's answer, clearing the stale mark, the failure and the lease; the
    /// item is deleted by DynamoDB TTL at `delete_at`.
    async fn save_entry(
        &self,
        entry: &CacheEntry,
        delete_at: OffsetDateTime,
    ) -> Result<(), StoreError>;

    /// Which country's entry lists a plan, from the plan-id index.
    async fn plan_country(&self, plan_id: &PlanId) -> Result<Option<CountryCode>, StoreError>;

    /// Records in the plan-id index which country's entry lists each plan.
    async fn index_plans(
        &self,
        plans: &[(PlanId, CountryCode)],
        delete_at: OffsetDateTime,
    ) -> Result<(), StoreError>;

    /// Marks entries stale; returns how many.
    async fn mark_stale(&self, target: &Invalidation) -> Result<u32, StoreError>;

    /// A tenant's pricing rules, if any were set.
    async fn pricing(&self, tenant_id: &TenantId) -> Result<Option<PricingRules>, StoreError>;

    /// Replaces a tenant's pricing rules.
    async fn save_pricing(
        &self,
        tenant_id: &TenantId,
        rules: &PricingRules,
    ) -> Result<(), StoreError>;

    /// A tenant's routing rules, if any were set.
    async fn routing(&self, tenant_id: &TenantId) -> Result<Option<RoutingRules>, StoreError>;

    /// Replaces a tenant's routing rules.
    async fn save_routing(
        &self,
        tenant_id: &TenantId,
        rules: &RoutingRules,
    ) -> Result<(), StoreError>;
}
