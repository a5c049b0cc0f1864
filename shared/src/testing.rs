//! In-memory fakes of the ports, for unit tests only. Everything a user runs talks to the
//! real adapters in [`crate::aws`] and [`crate::providers`].

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use time::OffsetDateTime;
use time::macros::datetime;
use ulid::Ulid;

use crate::domain::DomainError;
use crate::domain::esim::Esim;
use crate::domain::events::DomainEvent;
use crate::domain::ids::{ApiKeyId, EsimId, OrderId, PlanId, TenantId};
use crate::domain::order::{IdempotencyRecord, LedgerEntry, Order, OrderStatus};
use crate::domain::plan::ProviderPlan;
use crate::domain::routing::RoutingRules;
use crate::domain::tenant::{ApiKeyRecord, ApiKeyStatus, Tenant};
use crate::ports::{
    Clock, EventPublisher, IdGenerator, MessageQueue, OrderStore, PlanCatalogue, PricedPlan,
    PublishError, QueueError, StoreError, TenantStore, VersionedOrder,
};

/// A clock stuck at one instant, which tests can move.
#[derive(Debug)]
pub struct FixedClock(Mutex<OffsetDateTime>);

impl Default for FixedClock {
    fn default() -> Self {
        Self(Mutex::new(datetime!(2026-06-01 12:00 UTC)))
    }
}

impl FixedClock {
    /// Moves the clock forward.
    pub fn advance(&self, by: time::Duration) {
        let mut now = self.0.lock().unwrap_or_else(|p| p.into_inner());
        *now += by;
    }
}

impl Clock for FixedClock {
    fn now(&self) -> OffsetDateTime {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// ULIDs 1, 2, 3, ... so tests can predict every id.
#[derive(Debug, Default)]
pub struct SequentialIds(AtomicU64);

impl IdGenerator for SequentialIds {
    fn next_ulid(&self) -> Ulid {
        let n = self.0.fetch_add(1, Ordering::SeqCst) + 1;
        Ulid::from_parts(1_700_000_000_000, u128::from(n))
    }
}

/// A tenant store in a mutex.
#[derive(Debug, Default)]
pub struct InMemoryTenantStore {
    tenants: Mutex<HashMap<TenantId, Tenant>>,
    keys: Mutex<HashMap<String, ApiKeyRecord>>,
}

#[async_trait]
impl TenantStore for InMemoryTenantStore {
    async fn create_tenant(&self, tenant: &Tenant, key: &ApiKeyRecord) -> Result<(), StoreError> {
        let mut tenants = self.tenants.lock().unwrap_or_else(|p| p.into_inner());
        let mut keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        if tenants.contains_key(&tenant.tenant_id) || keys.contains_key(&key.key_hash) {
            return Err(StoreError::Conflict {
                what: tenant.tenant_id.to_string(),
            });
        }
        tenants.insert(tenant.tenant_id.clone(), tenant.clone());
        keys.insert(key.key_hash.clone(), key.clone());
        Ok(())
    }

    async fn add_key(&self, key: &ApiKeyRecord) -> Result<(), StoreError> {
        let tenants = self.tenants.lock().unwrap_or_else(|p| p.into_inner());
        let mut keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        if !tenants.contains_key(&key.tenant_id) || keys.contains_key(&key.key_hash) {
            return Err(StoreError::Conflict {
                what: key.key_id.to_string(),
            });
        }
        keys.insert(key.key_hash.clone(), key.clone());
        Ok(())
    }

    async fn find_key_by_hash(&self, key_hash: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
        Ok(self
            .keys
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(key_hash)
            .cloned())
    }

    async fn get_tenant(&self, tenant_id: &TenantId) -> Result<Option<Tenant>, StoreError> {
        Ok(self
            .tenants
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(tenant_id)
            .cloned())
    }

    async fn list_tenants(&self) -> Result<Vec<Tenant>, StoreError> {
        Ok(self
            .tenants
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect())
    }

    async fn list_keys(&self, tenant_id: &TenantId) -> Result<Vec<ApiKeyRecord>, StoreError> {
        let keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        Ok(keys
            .values()
            .filter(|k| &k.tenant_id == tenant_id)
            .cloned()
            .collect())
    }

    async fn revoke_key(
        &self,
        tenant_id: &TenantId,
        key_id: &ApiKeyId,
        at: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let mut keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        let found = keys
            .values_mut()
            .find(|k| &k.tenant_id == tenant_id && &k.key_id == key_id);
        Ok(found
            .map(|k| {
                k.status = ApiKeyStatus::Revoked;
                k.revoked_at.get_or_insert(at);
            })
            .is_some())
    }
}

/// A queue that keeps what was sent.
#[derive(Debug, Default)]
pub struct InMemoryQueue {
    /// Bodies sent, in order.
    pub sent: Mutex<Vec<String>>,
}

#[async_trait]
impl MessageQueue for InMemoryQueue {
    async fn send(&self, body: &str) -> Result<String, QueueError> {
        let mut sent = self.sent.lock().unwrap_or_else(|p| p.into_inner());
        sent.push(body.to_owned());
        Ok(format!("msg-{}", sent.len()))
    }

    async fn send_delayed(
        &self,
        body: &str,
        _delay: std::time::Duration,
    ) -> Result<String, QueueError> {
        self.send(body).await
    }
}

/// A bus that keeps what was published.
#[derive(Debug, Default)]
pub struct InMemoryPublisher {
    /// Events published, in order.
    pub published: Mutex<Vec<DomainEvent>>,
}

#[async_trait]
impl EventPublisher for InMemoryPublisher {
    async fn publish(&self, events: &[DomainEvent]) -> Result<(), PublishError> {
        self.published
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(events);
        Ok(())
    }
}

/// An order store in a mutex, keeping the same invariants as the table: one record per key
/// (reusable after `key_free_before`), versioned orders, at most one charge and one refund.
#[derive(Debug, Default)]
pub struct InMemoryOrderStore {
    state: Mutex<OrderTables>,
}

#[derive(Debug, Default)]
struct OrderTables {
    orders: HashMap<(TenantId, OrderId), VersionedOrder>,
    records: HashMap<(TenantId, String), IdempotencyRecord>,
    ledger: Vec<LedgerEntry>,
    leases: HashMap<(TenantId, OrderId), (String, OffsetDateTime)>,
    esims: HashMap<(TenantId, EsimId), Esim>,
}

impl InMemoryOrderStore {
    fn tables(&self) -> std::sync::MutexGuard<'_, OrderTables> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn check_version(
        tables: &OrderTables,
        order: &Order,
        expected_version: u64,
    ) -> Result<(), StoreError> {
        let key = (order.tenant_id.clone(), order.order_id.clone());
        match tables.orders.get(&key) {
            Some(stored) if stored.version == expected_version => Ok(()),
            _ => Err(StoreError::Conflict {
                what: order.order_id.to_string(),
            }),
        }
    }

    fn put(tables: &mut OrderTables, order: &Order, version: u64) {
        let key = (order.tenant_id.clone(), order.order_id.clone());
        tables.orders.insert(
            key,
            VersionedOrder {
                order: order.clone(),
                version,
            },
        );
    }
}

#[async_trait]
impl OrderStore for InMemoryOrderStore {
    async fn accept(
        &self,
        order: &Order,
        record: &IdempotencyRecord,
        charge: &LedgerEntry,
        key_free_before: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let mut tables = self.tables();
        let key = (record.tenant_id.clone(), record.key.clone());
        if let Some(held) = tables.records.get(&key)
            && held.created_at >= key_free_before
        {
            return Err(StoreError::Conflict {
                what: record.key.clone(),
            });
        }
        tables.records.insert(key, record.clone());
        Self::put(&mut tables, order, 1);
        tables.ledger.push(charge.clone());
        Ok(())
    }

    async fn record_answer(
        &self,
        tenant_id: &TenantId,
        key: &str,
        order_id: &OrderId,
        status: u16,
        body: &str,
    ) -> Result<(), StoreError> {
        let mut tables = self.tables();
        if let Some(record) = tables.records.get_mut(&(tenant_id.clone(), key.to_owned()))
            && &record.order_id == order_id
        {
            record.response_status = status;
            record.response_body = body.to_owned();
            record.answer_pending_until = None;
        }
        Ok(())
    }

    async fn idempotency_record(
        &self,
        tenant_id: &TenantId,
        key: &str,
    ) -> Result<Option<IdempotencyRecord>, StoreError> {
        Ok(self
            .tables()
            .records
            .get(&(tenant_id.clone(), key.to_owned()))
            .cloned())
    }

    async fn get(
        &self,
        tenant_id: &TenantId,
        order_id: &OrderId,
    ) -> Result<Option<VersionedOrder>, StoreError> {
        Ok(self
            .tables()
            .orders
            .get(&(tenant_id.clone(), order_id.clone()))
            .cloned())
    }

    async fn save(&self, order: &Order, expected_version: u64) -> Result<(), StoreError> {
        let mut tables = self.tables();
        Self::check_version(&tables, order, expected_version)?;
        Self::put(&mut tables, order, expected_version + 1);
        Ok(())
    }

    async fn complete(
        &self,
        order: &Order,
        expected_version: u64,
        esims: &[Esim],
    ) -> Result<(), StoreError> {
        let mut tables = self.tables();
        Self::check_version(&tables, order, expected_version)?;
        for esim in esims {
            tables
                .esims
                .insert((esim.tenant_id.clone(), esim.esim_id.clone()), esim.clone());
        }
        Self::put(&mut tables, order, expected_version + 1);
        Ok(())
    }

    async fn fail(
        &self,
        order: &Order,
        expected_version: u64,
        refund: &LedgerEntry,
    ) -> Result<(), StoreError> {
        let mut tables = self.tables();
        Self::check_version(&tables, order, expected_version)?;
        let refunded = tables.ledger.iter().any(|e| {
            e.order_id == refund.order_id && e.kind == crate::domain::order::LedgerKind::Refund
        });
        if refunded {
            return Err(StoreError::Conflict {
                what: refund.order_id.to_string(),
            });
        }
        tables.ledger.push(refund.clone());
        Self::put(&mut tables, order, expected_version + 1);
        Ok(())
    }

    async fn take_lease(
        &self,
        tenant_id: &TenantId,
        order_id: &OrderId,
        holder: &str,
        now: OffsetDateTime,
        until: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let mut tables = self.tables();
        let key = (tenant_id.clone(), order_id.clone());
        if let Some((current, expires)) = tables.leases.get(&key)
            && current != holder
            && *expires >= now
        {
            return Ok(false);
        }
        tables.leases.insert(key, (holder.to_owned(), until));
        Ok(true)
    }

    async fn release_lease(
        &self,
        tenant_id: &TenantId,
        order_id: &OrderId,
        holder: &str,
    ) -> Result<(), StoreError> {
        let mut tables = self.tables();
        let key = (tenant_id.clone(), order_id.clone());
        if tables.leases.get(&key).is_some_and(|(h, _)| h == holder) {
            tables.leases.remove(&key);
        }
        Ok(())
    }

    async fn ledger(&self, tenant_id: &TenantId) -> Result<Vec<LedgerEntry>, StoreError> {
        Ok(self
            .tables()
            .ledger
            .iter()
            .filter(|e| &e.tenant_id == tenant_id)
            .cloned()
            .collect())
    }

    async fn accepted_before(
        &self,
        before: OffsetDateTime,
    ) -> Result<Vec<(TenantId, OrderId)>, StoreError> {
        Ok(self
            .tables()
            .orders
            .values()
            .filter(|v| v.order.status == OrderStatus::Accepted && v.order.created_at < before)
            .map(|v| (v.order.tenant_id.clone(), v.order.order_id.clone()))
            .collect())
    }

    async fn esim(
        &self,
        tenant_id: &TenantId,
        esim_id: &EsimId,
    ) -> Result<Option<Esim>, StoreError> {
        Ok(self
            .tables()
            .esims
            .get(&(tenant_id.clone(), esim_id.clone()))
            .cloned())
    }
}

/// A catalogue of fixed plans, each at one retail price for every tenant.
#[derive(Debug, Default)]
pub struct InMemoryPlanCatalogue {
    /// Plans on sale with their retail price.
    pub plans: Mutex<Vec<PricedPlan>>,
    /// The routing rules every tenant gets.
    pub rules: Mutex<RoutingRules>,
}

#[async_trait]
impl PlanCatalogue for InMemoryPlanCatalogue {
    async fn priced_plan(
        &self,
        _tenant_id: &TenantId,
        plan_id: &PlanId,
    ) -> Result<Option<PricedPlan>, DomainError> {
        let plans = self.plans.lock().unwrap_or_else(|p| p.into_inner());
        Ok(plans.iter().find(|p| &p.plan.plan_id == plan_id).cloned())
    }

    async fn candidates(&self, plan: &ProviderPlan) -> Result<Vec<ProviderPlan>, DomainError> {
        let plans = self.plans.lock().unwrap_or_else(|p| p.into_inner());
        Ok(plans
            .iter()
            .map(|p| p.plan.clone())
            .filter(|p| p.provider != plan.provider)
            .collect())
    }

    async fn routing(&self, _tenant_id: &TenantId) -> Result<RoutingRules, DomainError> {
        Ok(self.rules.lock().unwrap_or_else(|p| p.into_inner()).clone())
    }
}
