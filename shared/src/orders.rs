//! Taking orders: idempotent, charged once, queued for provisioning.
//!
//! `POST /v1/orders` costs one `TransactWriteItems` (order, idempotency record and charge
//! together) and one SQS send. When the send fails after the commit, the order is still
//! accepted: a retry with the same key sends it again, and [`OrderService::sweep`] sends every
//! order left `accepted` for longer than a given age. No schedule calls the sweep yet, and no
//! route serves this service yet: until both are wired, an order whose send failed waits for
//! its client's retry.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::domain::esim::Esim;
use crate::domain::events::{DomainEvent, EventKind};
use crate::domain::ids::{EsimId, OrderId, TenantId};
use crate::domain::lifecycle::ProfileState;
use crate::domain::order::{
    CreateOrderRequest, IdempotencyRecord, LedgerEntry, LedgerKind, Order, OrderFailure,
    OrderStatus, validate_idempotency_key,
};
use crate::domain::{DomainError, ErrorCode, Money};
use crate::ports::orders::OrderStore;
use crate::ports::plans::PlanCatalogue;
use crate::ports::{Clock, IdGenerator, MessageQueue, StoreError};

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
#[derive(Debug, Clone)]
pub struct OrderService {
    store: Arc<dyn OrderStore>,
    plans: Arc<dyn PlanCatalogue>,
    queue: Arc<dyn MessageQueue>,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdGenerator>,
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
        }
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
        let Some(priced) = self.plans.priced_plan(tenant_id, &request.plan_id).await? else {
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
        };
        let charge = LedgerEntry {
            order_id: order.order_id.clone(),
            tenant_id: tenant_id.clone(),
            kind: LedgerKind::Charge,
            amount: total,
            at: now,
        };
        let key_free_before = now - IDEMPOTENCY_RETENTION;

        match self
            .store
            .accept(&order, &record, &charge, key_free_before)
            .await
        {
            Ok(()) => {
                tracing::info!(tenant_id = %tenant_id, order_id = %order.order_id, total = %total, "order accepted");
                self.enqueue(tenant_id, &order.order_id).await;
                Ok(OrderAnswer {
                    status: 202,
                    body,
                    order_id: order.order_id,
                    replayed: false,
                })
            }
            Err(StoreError::Conflict { .. }) => self.replay(tenant_id, &key, &fingerprint).await,
            Err(other) => Err(other.into()),
        }
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
        let message = ProvisioningMessage {
            tenant_id: tenant_id.clone(),
            order_id: order_id.clone(),
        };
        let body = match serde_json::to_string(&message) {
            Ok(body) => body,
            Err(error) => {
                tracing::error!(%error, order_id = %order_id, "failed to serialise a queue message");
                return;
            }
        };
        if let Err(error) = self.queue.send(&body).await {
            tracing::warn!(error = %error, order_id = %order_id, "queue send failed; the sweep will resend");
        }
    }

    /// Sends every order left `accepted` for longer than `older_than` to the queue again.
    /// Returns how many it sent.
    pub async fn sweep(&self, older_than: Duration) -> Result<usize, DomainError> {
        let before = self.clock.now() - older_than;
        let due = self.store.accepted_before(before).await?;
        for (tenant_id, order_id) in &due {
            self.enqueue(tenant_id, order_id).await;
        }
        Ok(due.len())
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
