//! Events published on the bus. Every detail carries the tenant, an event id consumers
//! dedupe on, and the ids involved.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::ids::{EsimId, OrderId, PlanId, TenantId};
use super::lifecycle::ProfileState;
use super::money::Money;

/// One event for the bus.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DomainEvent {
    /// Unique per event; consumers dedupe on it.
    pub event_id: String,
    /// The tenant the event belongs to.
    pub tenant_id: TenantId,
    /// When it happened.
    #[serde(with = "time::serde::rfc3339")]
    pub occurred_at: OffsetDateTime,
    /// What happened.
    #[serde(flatten)]
    pub kind: EventKind,
}

/// What happened, with the ids and figures a consumer needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all_fields = "snake_case")]
pub enum EventKind {
    /// An order was charged; the platform's payment system takes the money.
    OrderCharged {
        /// The order.
        order_id: OrderId,
        /// The amount.
        amount: Money,
        /// The platform's payment method reference.
        payment_method_ref: String,
    },
    /// A failed order's charge is to be returned.
    OrderRefunded {
        /// The order.
        order_id: OrderId,
        /// The amount.
        amount: Money,
    },
    /// Every eSIM of the order exists.
    OrderProvisioned {
        /// The order.
        order_id: OrderId,
    },
    /// The order failed for good.
    OrderFailed {
        /// The order.
        order_id: OrderId,
        /// The stable error code.
        reason_code: String,
    },
    /// An eSIM's remaining data fell to or below a threshold.
    LowBalance {
        /// The eSIM.
        esim_id: EsimId,
        /// Megabytes left.
        remaining_mb: u64,
        /// Megabytes in the plan period.
        total_mb: u64,
        /// Percent left, 0 to 100.
        remaining_percent: u8,
        /// The threshold crossed, in percent left.
        threshold_percent: u8,
        /// What a one-tap renewal would buy.
        renewal: RenewalOffer,
    },
    /// An eSIM's plan ends within a threshold of days.
    PlanExpiring {
        /// The eSIM.
        esim_id: EsimId,
        /// When the plan ends.
        #[serde(with = "time::serde::rfc3339")]
        expires_at: OffsetDateTime,
        /// The threshold crossed, in days before the end.
        threshold_days: u32,
        /// Megabytes left; `None` for unlimited plans.
        remaining_mb: Option<u64>,
        /// Percent left, 0 to 100; `None` for unlimited plans.
        remaining_percent: Option<u8>,
        /// What a one-tap renewal would buy.
        renewal: RenewalOffer,
    },
    /// A profile moved in its lifecycle.
    EsimStateChanged {
        /// The eSIM.
        esim_id: EsimId,
        /// The state before.
        from: ProfileState,
        /// The state after.
        to: ProfileState,
        /// When the state before was reached, where known: time to activation is measured
        /// from these stamps.
        #[serde(default, with = "time::serde::rfc3339::option")]
        from_reached_at: Option<OffsetDateTime>,
        /// When the state after was reached, by the provider's clock where it says.
        #[serde(with = "time::serde::rfc3339")]
        to_reached_at: OffsetDateTime,
    },
}

impl EventKind {
    /// The EventBridge `detail-type`.
    pub fn detail_type(&self) -> &'static str {
        match self {
            EventKind::OrderCharged { .. } => "OrderCharged",
            EventKind::OrderRefunded { .. } => "OrderRefunded",
            EventKind::OrderProvisioned { .. } => "OrderProvisioned",
            EventKind::OrderFailed { .. } => "OrderFailed",
            EventKind::LowBalance { .. } => "LowBalance",
            EventKind::PlanExpiring { .. } => "PlanExpiring",
            EventKind::EsimStateChanged { .. } => "EsimStateChanged",
        }
    }
}

/// The plan a renewal prompt offers and what it costs the customer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RenewalOffer {
    /// The plan to repeat.
    pub plan_id: PlanId,
    /// Its retail price.
    pub price: Money,
}
