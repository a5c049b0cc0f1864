//! In-memory fakes for unit tests of the catalogue: a [`CatalogueStore`] in a mutex that
//! counts its calls, and a provider that sells a fixed list of plans and can be switched off.
//! Everything a user runs talks to DynamoDB and the real provider adapters.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use async_trait::async_trait;
use time::OffsetDateTime;

use super::pricing::PricingRules;
use super::store::{CacheEntry, CatalogueStore, Invalidation, Scope};
use crate::domain::ids::{Iccid, PlanId, ProviderId, TenantId};
use crate::domain::plan::{CountryCode, ProviderPlan};
use crate::domain::routing::RoutingRules;
use crate::ports::provider::{
    OrderOutcome, ProfileDetails, ProviderCapabilities, ProviderOrderRequest, ProvisioningMode,
    TopUpOutcome, TransferPolicy, UsageReport, WebhookError, WebhookEvent, WebhookRequest,
};
use crate::ports::{ProviderApi, ProviderError, StoreError};

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Entries by scope and provider, each with the owner of its lease.
type Entries = HashMap<(Scope, ProviderId), (CacheEntry, Option<String>)>;

/// A catalogue store in a mutex, counting reads and writes.
#[derive(Debug, Default)]
pub struct InMemoryCatalogueStore {
    entries: Mutex<Entries>,
    index: Mutex<HashMap<PlanId, CountryCode>>,
    pricing: Mutex<HashMap<TenantId, PricingRules>>,
    routing: Mutex<HashMap<TenantId, RoutingRules>>,
    /// Calls made, of any kind.
    pub calls: AtomicU32,
}

impl InMemoryCatalogueStore {
    /// Calls made so far.
    pub fn call_count(&self) -> u32 {
        self.calls.load(Ordering::SeqCst)
    }

    fn count(&self) {
        self.calls.fetch_add(1, Ordering::SeqCst);
    }

    /// Stores an entry as if a provider had answered (for arranging tests).
    pub fn seed(&self, entry: CacheEntry) {
        let key = (entry.scope.clone(), entry.provider.clone());
        lock(&self.entries).insert(key, (entry, None));
    }
}

#[async_trait]
impl CatalogueStore for InMemoryCatalogueStore {
    async fn entries(&self, scope: &Scope) -> Result<Vec<CacheEntry>, StoreError> {
        self.count();
        Ok(lock(&self.entries)
            .iter()
            .filter(|((s, _), _)| s == scope)
            .map(|(_, (entry, _))| entry.clone())
            .collect())
    }

    async fn entry(
        &self,
        scope: &Scope,
        provider: &ProviderId,
    ) -> Result<Option<CacheEntry>, StoreError> {
        self.count();
        let key = (scope.clone(), provider.clone());
        Ok(lock(&self.entries).get(&key).map(|(e, _)| e.clone()))
    }

    async fn acquire_lease(
        &self,
        scope: &Scope,
        provider: &ProviderId,
        owner: &str,
        seen_fetched_at: Option<OffsetDateTime>,
        now: OffsetDateTime,
        until: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        self.count();
        let mut entries = lock(&self.entries);
        let key = (scope.clone(), provider.clone());
        let (entry, holder) = entries.entry(key).or_insert_with(|| {
            let mut empty = CacheEntry::fetched(scope.clone(), provider.clone(), now);
            empty.fetched_at = None;
            (empty, None)
        });
        if entry.lease_until.is_some_and(|held| held >= now) || entry.fetched_at != seen_fetched_at
        {
            return Ok(false);
        }
        entry.lease_until = Some(until);
        entry.failed_at = None;
        *holder = Some(owner.to_owned());
        Ok(true)
    }

    async fn record_failure(
        &self,
        scope: &Scope,
        provider: &ProviderId,
        owner: &str,
        at: OffsetDateTime,
        retry_at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        self.count();
        let key = (scope.clone(), provider.clone());
        if let Some((entry, Some(holder))) = lock(&self.entries).get_mut(&key)
            && holder == owner
        {
            entry.failed_at = Some(at);
            entry.lease_until = Some(retry_at);
        }
        Ok(())
    }

    async fn save_entry(
        &self,
        entry: &CacheEntry,
        _delete_at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        self.count();
        let mut saved = entry.clone();
        saved.lease_until = None;
        saved.failed_at = None;
        self.seed(saved);
        Ok(())
    }

    async fn plan_country(&self, plan_id: &PlanId) -> Result<Option<CountryCode>, StoreError> {
        self.count();
        Ok(lock(&self.index).get(plan_id).cloned())
    }

    async fn index_plans(
        &self,
        plans: &[(PlanId, CountryCode)],
        _delete_at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        self.count();
        lock(&self.index).extend(plans.iter().cloned());
        Ok(())
    }

    async fn mark_stale(&self, target: &Invalidation) -> Result<u32, StoreError> {
        self.count();
        let mut marked = 0;
        for ((scope, provider), (entry, _)) in lock(&self.entries).iter_mut() {
            let hit = match target {
                Invalidation::Provider(p) => p == provider,
                Invalidation::Country(c) => *scope == Scope::Country(c.clone()),
            };
            if hit {
                entry.stale = true;
                marked += 1;
            }
        }
        Ok(marked)
    }

    async fn pricing(&self, tenant_id: &TenantId) -> Result<Option<PricingRules>, StoreError> {
        self.count();
        Ok(lock(&self.pricing).get(tenant_id).cloned())
    }

    async fn save_pricing(
        &self,
        tenant_id: &TenantId,
        rules: &PricingRules,
    ) -> Result<(), StoreError> {
        self.count();
        lock(&self.pricing).insert(tenant_id.clone(), rules.clone());
        Ok(())
    }

    async fn routing(&self, tenant_id: &TenantId) -> Result<Option<RoutingRules>, StoreError> {
        self.count();
        Ok(lock(&self.routing).get(tenant_id).cloned())
    }

    async fn save_routing(
        &self,
        tenant_id: &TenantId,
        rules: &RoutingRules,
    ) -> Result<(), StoreError> {
        self.count();
        lock(&self.routing).insert(tenant_id.clone(), rules.clone());
        Ok(())
    }
}

/// A provider that sells `plans`, counts catalogue calls, and fails them while switched off.
#[derive(Debug)]
pub struct FixedPlansProvider {
    id: ProviderId,
    /// The plans on sale.
    pub plans: Mutex<Vec<ProviderPlan>>,
    /// While true, every catalogue call fails as unavailable.
    pub down: AtomicBool,
    /// Catalogue calls made.
    pub list_calls: AtomicU32,
    delay: std::time::Duration,
}

impl FixedPlansProvider {
    /// A provider `id` selling `plans`.
    pub fn new(id: &ProviderId, plans: Vec<ProviderPlan>) -> Self {
        Self {
            id: id.clone(),
            plans: Mutex::new(plans),
            down: AtomicBool::new(false),
            list_calls: AtomicU32::new(0),
            delay: std::time::Duration::ZERO,
        }
    }

    /// The same provider, taking `delay` of real time for every catalogue call.
    pub fn with_delay(mut self, delay: std::time::Duration) -> Self {
        self.delay = delay;
        self
    }

    /// Catalogue calls so far.
    pub fn list_count(&self) -> u32 {
        self.list_calls.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl ProviderApi for FixedPlansProvider {
    fn id(&self) -> &ProviderId {
        &self.id
    }

    fn capabilities(&self) -> ProviderCapabilities {
        ProviderCapabilities {
            provisioning: ProvisioningMode::Synchronous,
            synchronous_available: true,
            top_up: true,
            cancel_refunds_unused: false,
            transfer: TransferPolicy::NotSupported,
            qr_validity_days: None,
            usage_refresh_seconds: 900,
        }
    }

    async fn list_plans(
        &self,
        country: Option<&CountryCode>,
    ) -> Result<Vec<ProviderPlan>, ProviderError> {
        self.list_calls.fetch_add(1, Ordering::SeqCst);
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        if self.down.load(Ordering::SeqCst) {
            return Err(ProviderError::Unavailable("switched off".into()));
        }
        Ok(lock(&self.plans)
            .iter()
            .filter(|p| country.is_none_or(|c| p.coverage.countries.contains(c)))
            .cloned()
            .collect())
    }

    async fn place_order(
        &self,
        _request: &ProviderOrderRequest,
    ) -> Result<OrderOutcome, ProviderError> {
        Err(ProviderError::Unsupported("orders"))
    }

    async fn find_order(&self, _reference: &str) -> Result<Option<OrderOutcome>, ProviderError> {
        Err(ProviderError::Unsupported("orders"))
    }

    async fn profile(&self, _iccid: &Iccid) -> Result<ProfileDetails, ProviderError> {
        Err(ProviderError::Unsupported("profiles"))
    }

    async fn usage(&self, _iccid: &Iccid) -> Result<UsageReport, ProviderError> {
        Err(ProviderError::Unsupported("usage"))
    }

    async fn top_up(
        &self,
        _iccid: &Iccid,
        _plan_code: &str,
        _our_reference: &str,
    ) -> Result<TopUpOutcome, ProviderError> {
        Err(ProviderError::Unsupported("top-ups"))
    }

    async fn cancel(&self, _iccid: &Iccid) -> Result<(), ProviderError> {
        Err(ProviderError::Unsupported("cancel"))
    }

    fn verify_webhook(&self, _request: WebhookRequest<'_>) -> Result<WebhookEvent, WebhookError> {
        Err(WebhookError::Unauthenticated("not a webhook provider"))
    }
}
