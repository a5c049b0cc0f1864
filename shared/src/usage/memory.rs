//! An in-memory [`UsageStore`] that counts requests the way DynamoDB bills them (one read per
//! index page, one write per update), for unit tests and the poller's cost benchmark.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use time::OffsetDateTime;

use super::{AlertKey, AlertSettings, WheelPlace};
use crate::domain::esim::Esim;
use crate::domain::ids::{EsimId, TenantId};
use crate::ports::StoreError;
use crate::ports::provider::UsageReport;
use crate::ports::usage::{
    AlertClaim, CurrentUsage, DuePage, Placement, PollTarget, PollWrite, StoreCalls, UsageStore,
    WheelCursors,
};

#[derive(Debug, Clone)]
struct Entry {
    esim: Esim,
    usage: Option<UsageReport>,
    place: Option<WheelPlace>,
    checked_at: Option<OffsetDateTime>,
}

#[derive(Debug, Default)]
struct State {
    esims: HashMap<EsimId, Entry>,
    /// Per index partition key: sort key -> eSIM.
    index: HashMap<String, BTreeMap<String, EsimId>>,
    settings: HashMap<TenantId, AlertSettings>,
    alerts: HashMap<String, (bool, OffsetDateTime)>,
    leases: HashMap<u32, (String, OffsetDateTime)>,
    cursors: HashMap<u32, WheelCursors>,
}

/// The in-memory usage store.
#[derive(Debug, Default)]
pub struct InMemoryUsageStore {
    state: Mutex<State>,
    reads: AtomicU64,
    writes: AtomicU64,
}

impl InMemoryUsageStore {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Stores an eSIM where the order store puts it when it is issued. Not counted.
    pub fn insert(&self, esim: Esim) {
        let place = WheelPlace::new_esim(&esim.esim_id);
        let mut state = self.lock();
        state
            .index
            .entry(place.partition_key.clone())
            .or_default()
            .insert(place.sort_key.clone(), esim.esim_id.clone());
        state.esims.insert(
            esim.esim_id.clone(),
            Entry {
                esim,
                usage: None,
                place: Some(place),
                checked_at: None,
            },
        );
    }

    /// Where an eSIM sits in the wheel.
    pub fn place(&self, esim_id: &EsimId) -> Option<WheelPlace> {
        self.lock().esims.get(esim_id).and_then(|e| e.place.clone())
    }

    /// The stored usage figure of an eSIM.
    pub fn usage(&self, esim_id: &EsimId) -> Option<UsageReport> {
        self.lock().esims.get(esim_id).and_then(|e| e.usage.clone())
    }

    /// How many alert records exist.
    pub fn alert_records(&self) -> usize {
        self.lock().alerts.len()
    }
}

#[async_trait]
impl UsageStore for InMemoryUsageStore {
    async fn take_shard(
        &self,
        shard: u32,
        holder: &str,
        now: OffsetDateTime,
        until: OffsetDateTime,
    ) -> Result<Option<WheelCursors>, StoreError> {
        self.writes.fetch_add(1, Ordering::Relaxed);
        let mut state = self.lock();
        match state.leases.get(&shard) {
            Some((other, lease_until)) if other != holder && *lease_until >= now => Ok(None),
            _ => {
                state.leases.insert(shard, (holder.to_owned(), until));
                Ok(Some(state.cursors.get(&shard).cloned().unwrap_or_default()))
            }
        }
    }

    async fn release_shard(
        &self,
        shard: u32,
        holder: &str,
        cursors: &WheelCursors,
    ) -> Result<(), StoreError> {
        self.writes.fetch_add(1, Ordering::Relaxed);
        let mut state = self.lock();
        if state.leases.get(&shard).is_some_and(|(h, _)| h == holder) {
            state.leases.remove(&shard);
            state.cursors.insert(shard, cursors.clone());
        }
        Ok(())
    }

    async fn due(
        &self,
        partition_key: &str,
        from: &str,
        to: &str,
        limit: usize,
    ) -> Result<DuePage, StoreError> {
        self.reads.fetch_add(1, Ordering::Relaxed);
        let state = self.lock();
        let Some(index) = state.index.get(partition_key) else {
            return Ok(DuePage::default());
        };
        if from > to {
            return Ok(DuePage::default());
        }
        let mut targets = Vec::new();
        let mut next = None;
        for (key, esim_id) in index.range::<str, _>((
            std::ops::Bound::Included(from),
            std::ops::Bound::Included(to),
        )) {
            if targets.len() == limit {
                break;
            }
            if let Some(entry) = state.esims.get(esim_id) {
                targets.push(PollTarget {
                    esim: entry.esim.clone(),
                    usage: entry.usage.clone(),
                    place: WheelPlace {
                        partition_key: partition_key.to_owned(),
                        sort_key: key.clone(),
                    },
                });
            }
        }
        // Like DynamoDB, a full page says where to go on even when nothing follows.
        if targets.len() == limit {
            next = targets.last().map(|t| t.place.sort_key.clone());
        }
        Ok(DuePage { targets, next })
    }

    async fn current(
        &self,
        tenant_id: &TenantId,
        esim_id: &EsimId,
    ) -> Result<Option<CurrentUsage>, StoreError> {
        self.reads.fetch_add(1, Ordering::Relaxed);
        let state = self.lock();
        Ok(state
            .esims
            .get(esim_id)
            .filter(|e| &e.esim.tenant_id == tenant_id)
            .map(|e| CurrentUsage {
                esim: e.esim.clone(),
                usage: e.usage.clone(),
                checked_at: e.checked_at,
            }))
    }

    async fn record_poll(&self, target: &PollTarget, write: &PollWrite) -> Result<(), StoreError> {
        self.writes.fetch_add(1, Ordering::Relaxed);
        let mut state = self.lock();
        let id = target.esim.esim_id.clone();
        let Some(entry) = state.esims.get(&id).cloned() else {
            return Ok(());
        };
        if entry.place.as_ref() != Some(&target.place) {
            // Another poller recorded this eSIM first.
            return Ok(());
        }
        if let Some(new) = &write.usage
            && !super::replaces(entry.usage.as_ref(), new)
        {
            // A newer figure is stored already; the whole write is refused, as its condition
            // is in DynamoDB.
            return Ok(());
        }
        let place = match &write.placement {
            Placement::Keep => entry.place.clone(),
            Placement::Move(place) => Some(place.clone()),
            Placement::Remove => None,
        };
        if place != entry.place {
            if let Some(index) = state.index.get_mut(&target.place.partition_key) {
                index.remove(&target.place.sort_key);
            }
            if let Some(new) = &place {
                state
                    .index
                    .entry(new.partition_key.clone())
                    .or_default()
                    .insert(new.sort_key.clone(), id.clone());
            }
        }
        let usage = write.usage.clone().or(entry.usage);
        state.esims.insert(
            id,
            Entry {
                esim: entry.esim,
                usage,
                place,
                checked_at: Some(write.checked_at),
            },
        );
        Ok(())
    }

    async fn alert_settings(
        &self,
        tenants: &[TenantId],
    ) -> Result<HashMap<TenantId, AlertSettings>, StoreError> {
        let batches = tenants.len().div_ceil(100) as u64;
        self.reads.fetch_add(batches, Ordering::Relaxed);
        let state = self.lock();
        Ok(tenants
            .iter()
            .map(|t| {
                (
                    t.clone(),
                    state.settings.get(t).cloned().unwrap_or_default(),
                )
            })
            .collect())
    }

    async fn save_alert_settings(
        &self,
        tenant_id: &TenantId,
        settings: &AlertSettings,
    ) -> Result<(), StoreError> {
        self.writes.fetch_add(1, Ordering::Relaxed);
        self.lock()
            .settings
            .insert(tenant_id.clone(), settings.clone());
        Ok(())
    }

    async fn claim_alert(
        &self,
        key: &AlertKey,
        now: OffsetDateTime,
        stale_before: OffsetDateTime,
    ) -> Result<AlertClaim, StoreError> {
        self.writes.fetch_add(1, Ordering::Relaxed);
        let mut state = self.lock();
        let record = format!("{}#{}", key.tenant_id, key.record_sort_key());
        match state.alerts.get(&record) {
            Some((true, _)) => Ok(AlertClaim::Taken),
            Some((false, claimed)) if *claimed > stale_before => Ok(AlertClaim::Taken),
            _ => {
                state.alerts.insert(record, (false, now));
                Ok(AlertClaim::Claimed)
            }
        }
    }

    async fn mark_alert_published(&self, key: &AlertKey) -> Result<(), StoreError> {
        self.writes.fetch_add(1, Ordering::Relaxed);
        let record = format!("{}#{}", key.tenant_id, key.record_sort_key());
        if let Some(entry) = self.lock().alerts.get_mut(&record) {
            entry.0 = true;
        }
        Ok(())
    }

    fn calls(&self) -> StoreCalls {
        StoreCalls {
            reads: self.reads.load(Ordering::Relaxed),
            writes: self.writes.load(Ordering::Relaxed),
        }
    }
}

/// A provider that answers usage queries from a script the test sets per ICCID, counts its
/// calls, and throttles after a set number of calls, for poller tests and the benchmark.
#[derive(Debug)]
pub struct ScriptedUsageProvider {
    id: crate::domain::ids::ProviderId,
    refresh_seconds: u32,
    figures: Mutex<HashMap<String, UsageReport>>,
    calls: AtomicU64,
    throttle_after: Mutex<Option<u64>>,
}

impl ScriptedUsageProvider {
    /// A provider named `id` that says it refreshes its figures every `refresh_seconds`.
    pub fn new(id: crate::domain::ids::ProviderId, refresh_seconds: u32) -> Self {
        Self {
            id,
            refresh_seconds,
            figures: Mutex::new(HashMap::new()),
            calls: AtomicU64::new(0),
            throttle_after: Mutex::new(None),
        }
    }

    /// Sets what the provider reports for an ICCID.
    pub fn set(&self, report: UsageReport) {
        self.figures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(report.iccid.to_string(), report);
    }

    /// Answers `RateLimited` once this many calls were made in all.
    pub fn throttle_after(&self, calls: Option<u64>) {
        *self
            .throttle_after
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = calls;
    }

    /// Usage calls received.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }
}

#[async_trait]
impl crate::ports::ProviderApi for ScriptedUsageProvider {
    fn id(&self) -> &crate::domain::ids::ProviderId {
        &self.id
    }

    fn capabilities(&self) -> crate::ports::provider::ProviderCapabilities {
        use crate::ports::provider::{ProviderCapabilities, ProvisioningMode, TransferPolicy};
        ProviderCapabilities {
            provisioning: ProvisioningMode::Synchronous,
            synchronous_available: true,
            top_up: true,
            cancel_refunds_unused: false,
            transfer: TransferPolicy::NotSupported,
            qr_validity_days: None,
            usage_refresh_seconds: self.refresh_seconds,
        }
    }

    async fn list_plans(
        &self,
        _: Option<&crate::domain::plan::CountryCode>,
    ) -> Result<Vec<crate::domain::plan::ProviderPlan>, crate::ports::ProviderError> {
        Err(crate::ports::ProviderError::Unsupported("plans"))
    }

    async fn place_order(
        &self,
        _: &crate::ports::provider::ProviderOrderRequest,
    ) -> Result<crate::ports::provider::OrderOutcome, crate::ports::ProviderError> {
        Err(crate::ports::ProviderError::Unsupported("orders"))
    }

    async fn find_order(
        &self,
        _: &str,
    ) -> Result<Option<crate::ports::provider::OrderOutcome>, crate::ports::ProviderError> {
        Err(crate::ports::ProviderError::Unsupported("orders"))
    }

    async fn profile(
        &self,
        _: &crate::domain::ids::Iccid,
    ) -> Result<crate::ports::provider::ProfileDetails, crate::ports::ProviderError> {
        Err(crate::ports::ProviderError::Unsupported("profiles"))
    }

    async fn usage(
        &self,
        iccid: &crate::domain::ids::Iccid,
    ) -> Result<UsageReport, crate::ports::ProviderError> {
        let made = self.calls.fetch_add(1, Ordering::Relaxed);
        let limit = *self
            .throttle_after
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if limit.is_some_and(|limit| made >= limit) {
            return Err(crate::ports::ProviderError::RateLimited { retry_after: None });
        }
        self.figures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(iccid.as_str())
            .cloned()
            .ok_or(crate::ports::ProviderError::Unsupported("unknown ICCID"))
    }

    async fn top_up(
        &self,
        _: &crate::domain::ids::Iccid,
        _: &str,
        _: &str,
    ) -> Result<crate::ports::provider::TopUpOutcome, crate::ports::ProviderError> {
        Err(crate::ports::ProviderError::Unsupported("top-ups"))
    }

    async fn cancel(
        &self,
        _: &crate::domain::ids::Iccid,
    ) -> Result<(), crate::ports::ProviderError> {
        Err(crate::ports::ProviderError::Unsupported("cancel"))
    }

    fn verify_webhook(
        &self,
        _: crate::ports::provider::WebhookRequest<'_>,
    ) -> Result<crate::ports::provider::WebhookEvent, crate::ports::provider::WebhookError> {
        Err(crate::ports::provider::WebhookError::Unauthenticated(
            "no webhooks",
        ))
    }
}

/// The `n`th sample eSIM of a tenant at provider `provider`, issued at `at`: ids and ICCID
/// derived from `n`, so a benchmark can make as many as it likes.
pub fn sample_esim(
    tenant: &TenantId,
    provider: &crate::domain::ids::ProviderId,
    n: u64,
    at: OffsetDateTime,
) -> Result<Esim, crate::domain::ids::InvalidId> {
    use crate::domain::esim::ActivationCode;
    use crate::domain::ids::{CustomerId, Iccid, OrderId, PlanId};
    use crate::domain::lifecycle::{Lifecycle, ProfileState};
    let ulid = ulid::Ulid::from_parts(at.unix_timestamp().max(0) as u64 * 1000, u128::from(n));
    Ok(Esim {
        esim_id: EsimId::from_ulid(ulid),
        tenant_id: tenant.clone(),
        order_id: OrderId::from_ulid(ulid),
        customer_id: CustomerId::parse("sample-customer")?,
        plan_id: PlanId::parse("sample-plan")?,
        provider: provider.clone(),
        iccid: Iccid::parse(format!("8900{n:015}"))?,
        provider_profile_ref: None,
        activation: ActivationCode {
            smdp_address: "smdp.example.com".to_owned(),
            matching_id: format!("M{n}"),
        },
        qr_code_url: None,
        direct_install_url: None,
        apn: None,
        lifecycle: Lifecycle::new(ProfileState::Activated, at),
        qr_valid_until: None,
        created_at: at,
    })
}
