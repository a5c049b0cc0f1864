//! Taking orders: idempotent, charged once, queued for provisioning.
//!
//! `POST /v1/orders` costs one `TransactWriteItems` (order, idempotency record and charge
//! together) and one SQS send. When the send fails after the commit, the order is still
//! accepted: a retry with the same key sends it again, and [`AcceptedOrderSweep`] (run by the
//! usage poller's schedule) sends every order left `accepted` for longer than a given age.
//!
//! Synchronous providers: after the commit and the send, [`OrderService::create`] polls the
//! order item for a bounded time ([`SyncWait`]) while the provisioning worker provisions it,
//! and answers 201 with the profile when it lands in time, 202 otherwise. The worker stays the
//! only caller of providers, under its lease, so the API path never risks a second provider
//! order; the price is a few extra reads on the synchronous path only. While the first
//! request waits, its idempotency record says so (`answer_pending_until`) and a retry gets
//! 409; once the 201 is decided it replaces the stored answer, so replays repeat it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::domain::esim::Esim;
use crate::domain::events::{DomainEvent, EventKind};
use crate::domain::ids::{EsimId, OrderId, ProviderId, TenantId};
use crate::domain::lifecycle::ProfileState;
use crate::domain::order::{
    CreateOrderRequest, IdempotencyRecord, LedgerEntry, LedgerKind, Order, OrderFailure,
    OrderStatus, validate_idempotency_key,
};
use crate::domain::{DomainError, ErrorCode, Money};
use crate::ports::orders::OrderStore;
use crate::ports::plans::PlanCatalogue;
use crate::ports::{Clock, IdGenerator, MessageQueue, StoreError};
use crate::provisioning::{FaultHook, FaultPoint, no_faults};

/// How long an idempotency key is honoured; the design asks for at least 24 hours.
pub const IDEMPOTENCY_RETENTION: Duration = Duration::from_secs(24 * 3600);

/// The body of a provisioning queue message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProvisioningMessage {
    /// The tenant the order belongs to.
    pub tenant_id: TenantId,
    /// The order to provision.
    pub order_id: OrderId,
    /// How many times the worker already polled the provider for this pending order; the
    /// worker re-queues a pending order with this count raised, and gives up past its bound.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub poll: u32,
}

fn is_zero(value: &u32) -> bool {
    *value == 0
}

impl ProvisioningMessage {
    /// A first message for an order.
    pub fn new(tenant_id: TenantId, order_id: OrderId) -> Self {
        Self {
            tenant_id,
            order_id,
            poll: 0,
        }
    }
}

/// How long `POST /v1/orders` waits for an order at a synchronous provider to be provisioned
/// before answering 202.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncWait {
    /// Providers that answer orders synchronously.
    pub providers: Vec<ProviderId>,
    /// The longest wait; zero never waits.
    pub wait: Duration,
    /// How often the order is read while waiting.
    pub every: Duration,
}

impl SyncWait {
    /// No waiting: every order is answered 202 at once.
    pub fn never() -> Self {
        Self {
            providers: Vec::new(),
            wait: Duration::ZERO,
            every: Duration::from_millis(200),
        }
    }

    fn applies_to(&self, provider: &ProviderId) -> bool {
        !self.wait.is_zero() && self.providers.contains(provider)
    }
}

/// An answer to `POST /v1/orders`: the first one, or its replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderAnswer {
    /// The HTTP status.
    pub status: u16,
    /// The JSON body.
    pub body: String,
    /// The order, for the Location header.
    pub order_id: OrderId,
    /// True when this is a replay of the first answer.
    pub replayed: bool,
}

/// An eSIM as an order shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EsimSummary {
    /// Its id.
    pub esim_id: EsimId,
    /// Its lifecycle state.
    pub state: ProfileState,
    /// What the user should do next.
    pub next_step: String,
    /// The ICCID.
    pub iccid: String,
    /// The LPA activation string for the QR code.
    pub lpa: String,
}

/// An order as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderView {
    /// Its id.
    pub order_id: OrderId,
    /// Where it stands.
    pub status: OrderStatus,
    /// The platform's customer.
    pub customer_id: String,
    /// The plan bought.
    pub plan_id: String,
    /// How many eSIMs.
    pub quantity: u32,
    /// Retail price of one.
    pub unit_price: Money,
    /// What the customer was charged.
    pub total: Money,
    /// Its eSIMs, once provisioned.
    pub esims: Vec<EsimSummary>,
    /// Why it failed, in words the user can act on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<OrderFailure>,
    /// When it was accepted.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl OrderView {
    /// The view of an order and its eSIMs.
    pub fn new(order: &Order, esims: &[Esim]) -> Self {
        Self {
            order_id: order.order_id.clone(),
            status: order.status,
            customer_id: order.customer_id.to_string(),
            plan_id: order.plan_id.to_string(),
            quantity: order.quantity,
            unit_price: order.unit_price,
            total: order.total,
            esims: esims
                .iter()
                .map(|e| EsimSummary {
                    esim_id: e.esim_id.clone(),
                    state: e.lifecycle.state,
                    next_step: e.lifecycle.state.next_step().to_owned(),
                    iccid: e.iccid.to_string(),
                    lpa: e.activation.to_lpa_string(),
                })
                .collect(),
            failure: order.failure.clone(),
            created_at: order.created_at,
        }
    }
}

/// Takes and shows orders.
#[derive(Clone)]
pub struct OrderService {
    store: Arc<dyn OrderStore>,
    plans: Arc<dyn PlanCatalogue>,
    queue: Arc<dyn MessageQueue>,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdGenerator>,
    sync_wait: SyncWait,
    faults: FaultHook,
    running: Arc<std::sync::Mutex<HashMap<(TenantId, String), String>>>,
}

/// Marks a key as running in this container until dropped, even when the request is
/// cancelled half-way.
struct RunningKey {
    running: Arc<std::sync::Mutex<HashMap<(TenantId, String), String>>>,
    key: (TenantId, String),
}

impl Drop for RunningKey {
    fn drop(&mut self) {
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        running.remove(&self.key);
    }
}

impl std::fmt::Debug for OrderService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OrderService")
            .field("store", &self.store)
            .field("plans", &self.plans)
            .field("queue", &self.queue)
            .field("sync_wait", &self.sync_wait)
            .finish_non_exhaustive()
    }
}

impl OrderService {
    /// A service over its ports.
    pub fn new(
        store: Arc<dyn OrderStore>,
        plans: Arc<dyn PlanCatalogue>,
        queue: Arc<dyn MessageQueue>,
        clock: Arc<dyn Clock>,
        ids: Arc<dyn IdGenerator>,
    ) -> Self {
        Self {
            store,
            plans,
            queue,
            clock,
            ids,
            sync_wait: SyncWait::never(),
            faults: no_faults(),
            running: Arc::default(),
        }
    }

    /// Waits for synchronous providers as `sync_wait` says.
    pub fn with_sync_wait(mut self, sync_wait: SyncWait) -> Self {
        self.sync_wait = sync_wait;
        self
    }

    /// Checks `faults` at each step, so tests can stop the flow where a crash would.
    pub fn with_faults(mut self, faults: FaultHook) -> Self {
        self.faults = faults;
        self
    }

    /// Accepts an order once per idempotency key: the first call charges and queues it;
    /// a retry with the same body gets the first answer again; another body under the same
    /// key is refused with 422; a retry while the first is still being written gets 409.
    pub async fn create(
        &self,
        tenant_id: &TenantId,
        idempotency_key: Option<&str>,
        request: &CreateOrderRequest,
    ) -> Result<OrderAnswer, DomainError> {
        let key = validate_idempotency_key(idempotency_key)?;
        request.validate()?;
        let fingerprint = request.fingerprint();
        let _running = self.claim(tenant_id, &key, &fingerprint)?;
        let Some(priced) = self.plans.priced_plan(tenant_id, &request.plan_id).await? else {
            // A retry of an order whose plan has left the catalogue since still replays.
            if self
                .store
                .idempotency_record(tenant_id, &key)
                .await?
                .is_some()
            {
                return self.replay(tenant_id, &key, &fingerprint).await;
            }
            return Err(DomainError::with_message(
                ErrorCode::NotFound,
                format!(
                    "There is no plan {}. List plans with GET /v1/plans?country=XX.",
                    request.plan_id
                ),
            ));
        };
        let now = self.clock.now();
        let total = priced
            .retail
            .checked_mul(request.quantity)
            .map_err(|e| DomainError::invalid(format!("field quantity: {e}")))?;
        let order = Order {
            order_id: OrderId::from_ulid(self.ids.next_ulid()),
            tenant_id: tenant_id.clone(),
            customer_id: request.customer_id.clone(),
            plan_id: request.plan_id.clone(),
            plan: priced.plan.clone(),
            quantity: request.quantity,
            unit_price: priced.retail,
            total,
            payment_method_ref: request.payment_method_ref.clone(),
            status: OrderStatus::Accepted,
            attempts: Vec::new(),
            esim_ids: Vec::new(),
            failure: None,
            outbox: Vec::new(),
            created_at: now,
            updated_at: now,
        };
        let mut order = order;
        order.outbox.push(DomainEvent {
            event_id: format!("{}:charged", order.order_id),
            tenant_id: tenant_id.clone(),
            occurred_at: now,
            kind: EventKind::OrderCharged {
                order_id: order.order_id.clone(),
                amount: total,
                payment_method_ref: request.payment_method_ref.clone(),
            },
        });
        let body =
            serde_json::to_string(&OrderView::new(&order, &[])).map_err(DomainError::internal)?;
        let record = IdempotencyRecord {
            tenant_id: tenant_id.clone(),
            key: key.clone(),
            request_hash: fingerprint.clone(),
            order_id: order.order_id.clone(),
            response_status: 202,
            response_body: body.clone(),
            created_at: now,
            answer_pending_until: None,
        };
        let charge = LedgerEntry {
            order_id: order.order_id.clone(),
            tenant_id: tenant_id.clone(),
            kind: LedgerKind::Charge,
            amount: total,
            at: now,
        };
        let key_free_before = now - IDEMPOTENCY_RETENTION;
        let waits = self.sync_wait.applies_to(&order.plan.provider);
        let mut record = record;
        if waits {
            // A little beyond the wait, so a retry never sees the 202 the first request is
            // about to replace with its 201.
            record.answer_pending_until = Some(now + self.sync_wait.wait + Duration::from_secs(2));
        }

        self.fault(FaultPoint::BeforeTransaction)?;
        match self
            .store
            .accept(&order, &record, &charge, key_free_before)
            .await
        {
            Ok(()) => {
                tracing::info!(
                    tenant_id = %tenant_id,
                    order_id = %order.order_id,
                    total = %total,
                    "order accepted"
                );
                self.fault(FaultPoint::AfterTransaction)?;
                self.enqueue(tenant_id, &order.order_id).await;
                let first = OrderAnswer {
                    status: 202,
                    body,
                    order_id: order.order_id,
                    replayed: false,
                };
                if waits {
                    return self.wait_for_profile(tenant_id, &key, first).await;
                }
                Ok(first)
            }
            Err(StoreError::Conflict { .. }) => self.replay(tenant_id, &key, &fingerprint).await,
            Err(other) => {
                // A transaction that failed without a verdict may have lost to a concurrent
                // request with the same key (or committed itself): if the key is held now, the
                // caller gets what a conflict gets. Otherwise the store really is in trouble.
                match self.store.idempotency_record(tenant_id, &key).await {
                    Ok(Some(_)) => self.replay(tenant_id, &key, &fingerprint).await,
                    _ => Err(other.into()),
                }
            }
        }
    }

    /// Within one container, a request whose key is still running here is answered at once
    /// (409, or 422 for another body) without touching the table. Across containers the
    /// conditional transaction decides; this only spares the table a burst of losing
    /// transactions when a client retries before its first request finished.
    fn claim(
        &self,
        tenant_id: &TenantId,
        key: &str,
        fingerprint: &str,
    ) -> Result<RunningKey, DomainError> {
        let entry = (tenant_id.clone(), key.to_owned());
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(first) = running.get(&entry) {
            let code = if first == fingerprint {
                ErrorCode::IdempotencyKeyInFlight
            } else {
                ErrorCode::IdempotencyKeyReused
            };
            return Err(DomainError::new(code));
        }
        running.insert(entry.clone(), fingerprint.to_owned());
        Ok(RunningKey {
            running: self.running.clone(),
            key: entry,
        })
    }

    fn fault(&self, point: FaultPoint) -> Result<(), DomainError> {
        (self.faults)(point).map_err(DomainError::internal)
    }

    /// Polls the order until it is provisioned or the wait is over. A 201 replaces the stored
    /// answer; anything else leaves the 202 in place and marks it final by its time bound.
    async fn wait_for_profile(
        &self,
        tenant_id: &TenantId,
        key: &str,
        first: OrderAnswer,
    ) -> Result<OrderAnswer, DomainError> {
        let started = tokio::time::Instant::now();
        while started.elapsed() < self.sync_wait.wait {
            tokio::time::sleep(self.sync_wait.every).await;
            let view = match self.get(tenant_id, &first.order_id).await {
                Ok(view) => view,
                Err(error) => {
                    tracing::warn!(
                        order_id = %first.order_id,
                        error = %error,
                        "reading the order while waiting failed; answering 202"
                    );
                    return Ok(first);
                }
            };
            if view.status == OrderStatus::Provisioned {
                let body = serde_json::to_string(&view).map_err(DomainError::internal)?;
                // Unless the stored answer says 201 too, a retry would replay the 202: keep
                // the 202 for this caller as well when the record cannot be updated.
                if let Err(error) = self
                    .store
                    .record_answer(tenant_id, key, &first.order_id, 201, &body)
                    .await
                {
                    tracing::warn!(
                        order_id = %first.order_id,
                        error = %error,
                        "failed to store the 201 answer; answering 202"
                    );
                    return Ok(first);
                }
                return Ok(OrderAnswer {
                    status: 201,
                    body,
                    ..first
                });
            }
            if view.status == OrderStatus::Failed {
                break;
            }
        }
        Ok(first)
    }

    async fn replay(
        &self,
        tenant_id: &TenantId,
        key: &str,
        fingerprint: &str,
    ) -> Result<OrderAnswer, DomainError> {
        let Some(record) = self.store.idempotency_record(tenant_id, key).await? else {
            // The key's first request is still being written.
            return Err(DomainError::new(ErrorCode::IdempotencyKeyInFlight));
        };
        if record.request_hash != fingerprint {
            return Err(DomainError::new(ErrorCode::IdempotencyKeyReused));
        }
        if record
            .answer_pending_until
            .is_some_and(|until| self.clock.now() < until)
        {
            return Err(DomainError::new(ErrorCode::IdempotencyKeyInFlight));
        }
        // A lost queue send is repaired here: an order still waiting for the worker is sent
        // again, and the worker ignores the duplicate if the first send did arrive.
        if let Some(stored) = self.store.get(tenant_id, &record.order_id).await?
            && stored.order.status == OrderStatus::Accepted
        {
            self.enqueue(tenant_id, &record.order_id).await;
        }
        Ok(OrderAnswer {
            status: record.response_status,
            body: record.response_body,
            order_id: record.order_id,
            replayed: true,
        })
    }

    /// Sends an order to the provisioning queue. A failure is logged, not returned: the
    /// order is committed and charged, and a replay or the sweep sends it again.
    pub async fn enqueue(&self, tenant_id: &TenantId, order_id: &OrderId) {
        enqueue(self.queue.as_ref(), tenant_id, order_id).await;
    }

    /// Sends every order left `accepted` for longer than `older_than` to the queue again.
    /// Returns how many it sent.
    pub async fn sweep(&self, older_than: Duration) -> Result<usize, DomainError> {
        AcceptedOrderSweep::new(self.store.clone(), self.queue.clone(), self.clock.clone())
            .run(older_than)
            .await
    }

    /// An order of the tenant, with its eSIMs. Another tenant's order is "not found".
    pub async fn get(
        &self,
        tenant_id: &TenantId,
        order_id: &OrderId,
    ) -> Result<OrderView, DomainError> {
        let stored = self
            .store
            .get(tenant_id, order_id)
            .await?
            .ok_or_else(DomainError::not_found)?;
        let mut esims = Vec::with_capacity(stored.order.esim_ids.len());
        for esim_id in &stored.order.esim_ids {
            if let Some(esim) = self.store.esim(tenant_id, esim_id).await? {
                esims.push(esim);
            }
        }
        Ok(OrderView::new(&stored.order, &esims))
    }
}

/// Sends an order to the provisioning queue. A failure is logged, not returned: the order is
/// committed and charged, and a replay or the sweep sends it again.
async fn enqueue(queue: &dyn MessageQueue, tenant_id: &TenantId, order_id: &OrderId) {
    let message = ProvisioningMessage::new(tenant_id.clone(), order_id.clone());
    let body = match serde_json::to_string(&message) {
        Ok(body) => body,
        Err(error) => {
            tracing::error!(%error, order_id = %order_id, "failed to serialise a queue message");
            return;
        }
    };
    if let Err(error) = queue.send(&body).await {
        tracing::warn!(
            error = %error,
            order_id = %order_id,
            "queue send failed; a replay or the sweep will resend"
        );
    }
}

/// Finds accepted orders whose queue message may have been lost and sends them again. Runs on
/// a schedule; a duplicate message is harmless, since the worker skips orders that moved on.
#[derive(Debug, Clone)]
pub struct AcceptedOrderSweep {
    store: Arc<dyn OrderStore>,
    queue: Arc<dyn MessageQueue>,
    clock: Arc<dyn Clock>,
}

/// How long an order may stay `accepted` before the sweep sends it again: well past a normal
/// send and pickup, so the sweep rarely duplicates a message still on its way.
pub const SWEEP_AFTER: Duration = Duration::from_secs(120);

impl AcceptedOrderSweep {
    /// A sweep over its ports.
    pub fn new(
        store: Arc<dyn OrderStore>,
        queue: Arc<dyn MessageQueue>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            store,
            queue,
            clock,
        }
    }

    /// Sends every order left `accepted` for longer than `older_than`; returns how many.
    pub async fn run(&self, older_than: Duration) -> Result<usize, DomainError> {
        let before = self.clock.now() - older_than;
        let due = self.store.accepted_before(before).await?;
        for (tenant_id, order_id) in &due {
            tracing::info!(
                tenant_id = %tenant_id,
                order_id = %order_id,
                "resending an accepted order"
            );
            enqueue(self.queue.as_ref(), tenant_id, order_id).await;
        }
        Ok(due.len())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use async_trait::async_trait;

    use super::*;
    use crate::domain::ids::{CustomerId, PlanId};
    use crate::domain::money::Currency;
    use crate::domain::plan::{CountryCode, Coverage, DataAllowance, ProviderPlan};
    use crate::ports::{PricedPlan, QueueError};
    use crate::testing::{FixedClock, InMemoryOrderStore, InMemoryPlanCatalogue, SequentialIds};

    /// A queue whose sends can be made to fail.
    #[derive(Debug, Default)]
    struct FlakyQueue {
        failing: AtomicBool,
        sent: std::sync::Mutex<Vec<String>>,
    }

    #[async_trait]
    impl MessageQueue for FlakyQueue {
        async fn send(&self, body: &str) -> Result<String, QueueError> {
            if self.failing.load(Ordering::SeqCst) {
                return Err(QueueError {
                    queue: "provisioning".to_owned(),
                    source: "connection refused".into(),
                });
            }
            self.sent.lock().expect("lock").push(body.to_owned());
            Ok("m".to_owned())
        }

        async fn send_delayed(&self, body: &str, _delay: Duration) -> Result<String, QueueError> {
            self.send(body).await
        }
    }

    struct Fixture {
        store: Arc<InMemoryOrderStore>,
        queue: Arc<FlakyQueue>,
        clock: Arc<FixedClock>,
        service: OrderService,
    }

    fn fixture() -> Fixture {
        let store = Arc::new(InMemoryOrderStore::default());
        let queue = Arc::new(FlakyQueue::default());
        let clock = Arc::new(FixedClock::default());
        let catalogue = Arc::new(InMemoryPlanCatalogue::default());
        *catalogue.plans.lock().expect("lock") = vec![PricedPlan {
            plan: ProviderPlan {
                plan_id: PlanId::parse("airalo:jp-1gb-7d").expect("id"),
                provider: ProviderId::parse("airalo").expect("id"),
                provider_plan_code: "jp-1gb-7d".to_owned(),
                name: "Japan 1 GB".to_owned(),
                coverage: Coverage {
                    countries: vec![CountryCode::parse("JP").expect("cc")],
                    region: None,
                },
                data: DataAllowance::Limited { mb: 1024 },
                validity_days: 7,
                wholesale_price: Money::new(450, Currency::USD),
                supports_top_up: false,
                network_speed: None,
            },
            retail: Money::new(900, Currency::USD),
        }];
        let service = OrderService::new(
            store.clone(),
            catalogue,
            queue.clone(),
            clock.clone(),
            Arc::new(SequentialIds::default()),
        );
        Fixture {
            store,
            queue,
            clock,
            service,
        }
    }

    fn tenant(name: &str) -> TenantId {
        TenantId::parse(name).expect("id")
    }

    fn request(quantity: u32) -> CreateOrderRequest {
        CreateOrderRequest {
            customer_id: CustomerId::parse("cus_1").expect("id"),
            plan_id: PlanId::parse("airalo:jp-1gb-7d").expect("id"),
            quantity,
            payment_method_ref: "pm_1".to_owned(),
        }
    }

    async fn charges(store: &InMemoryOrderStore, tenant_id: &TenantId) -> usize {
        store.ledger(tenant_id).await.expect("ledger").len()
    }

    #[tokio::test]
    async fn replays_first_response_for_same_key_and_charges_once() {
        let f = fixture();
        let t = tenant("ten_a");

        let first = f.service.create(&t, Some("k1"), &request(2)).await;
        let retry = f.service.create(&t, Some("k1"), &request(2)).await;

        let first = first.expect("accepted");
        let retry = retry.expect("replayed");
        assert_eq!(first.status, 202);
        assert!(first.body.contains(r#""amount_minor":1800"#));
        assert_eq!((retry.status, &retry.body), (first.status, &first.body));
        assert!(retry.replayed && !first.replayed);
        assert_eq!(charges(&f.store, &t).await, 1);
    }

    #[tokio::test]
    async fn another_body_under_the_same_key_is_refused_and_changes_nothing() {
        let f = fixture();
        let t = tenant("ten_a");
        f.service
            .create(&t, Some("k1"), &request(1))
            .await
            .expect("accepted");

        let error = f.service.create(&t, Some("k1"), &request(2)).await;

        assert_eq!(
            error.expect_err("reused").code,
            ErrorCode::IdempotencyKeyReused
        );
        assert_eq!(charges(&f.store, &t).await, 1);
    }

    #[tokio::test]
    async fn the_same_key_from_another_tenant_is_another_order() {
        let f = fixture();

        let a = f
            .service
            .create(&tenant("ten_a"), Some("k1"), &request(1))
            .await;
        let b = f
            .service
            .create(&tenant("ten_b"), Some("k1"), &request(1))
            .await;

        assert_ne!(a.expect("a").order_id, b.expect("b").order_id);
        assert_eq!(charges(&f.store, &tenant("ten_b")).await, 1);
    }

    #[tokio::test]
    async fn a_missing_key_or_unknown_plan_is_refused_before_anything_is_written() {
        let f = fixture();
        let t = tenant("ten_a");
        let mut unknown = request(1);
        unknown.plan_id = PlanId::parse("airalo:nope").expect("id");

        let no_key = f.service.create(&t, None, &request(1)).await;
        let no_plan = f.service.create(&t, Some("k1"), &unknown).await;

        assert_eq!(no_key.expect_err("key").code, ErrorCode::InvalidRequest);
        assert_eq!(no_plan.expect_err("plan").code, ErrorCode::NotFound);
        assert_eq!(charges(&f.store, &t).await, 0);
    }

    #[tokio::test]
    async fn a_lost_send_is_repaired_by_a_replay_and_by_the_sweep() {
        let f = fixture();
        let t = tenant("ten_a");
        f.queue.failing.store(true, Ordering::SeqCst);
        f.service
            .create(&t, Some("k1"), &request(1))
            .await
            .expect("accepted despite the failed send");
        f.queue.failing.store(false, Ordering::SeqCst);

        f.service
            .create(&t, Some("k1"), &request(1))
            .await
            .expect("replayed");
        f.clock.advance(time::Duration::minutes(5));
        let swept = f.service.sweep(SWEEP_AFTER).await.expect("sweep");

        assert_eq!(swept, 1);
        assert_eq!(f.queue.sent.lock().expect("lock").len(), 2);
        assert_eq!(charges(&f.store, &t).await, 1);
    }

    #[tokio::test]
    async fn a_retry_while_the_first_request_waits_for_its_profile_is_in_flight() {
        let f = fixture();
        let t = tenant("ten_a");
        let service = f.service.clone().with_sync_wait(SyncWait {
            providers: vec![ProviderId::parse("airalo").expect("id")],
            wait: Duration::from_millis(50),
            every: Duration::from_millis(10),
        });
        let first = service
            .create(&t, Some("k1"), &request(1))
            .await
            .expect("answered 202 after the wait");

        let during = service.create(&t, Some("k1"), &request(1)).await;
        f.clock.advance(time::Duration::seconds(10));
        let after = service.create(&t, Some("k1"), &request(1)).await;

        assert_eq!(first.status, 202);
        assert_eq!(
            during.expect_err("in flight").code,
            ErrorCode::IdempotencyKeyInFlight
        );
        assert_eq!(after.expect("replayed").body, first.body);
    }

    #[tokio::test]
    async fn a_key_is_free_again_after_its_retention_period() {
        let f = fixture();
        let t = tenant("ten_a");
        let first = f.service.create(&t, Some("k1"), &request(1)).await;
        f.clock.advance(time::Duration::hours(25));

        let later = f.service.create(&t, Some("k1"), &request(2)).await;

        assert_ne!(first.expect("first").order_id, later.expect("new").order_id);
        assert_eq!(charges(&f.store, &t).await, 2);
    }
}
