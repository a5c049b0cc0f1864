//! Orders: what a customer bought, what they were charged, and where provisioning stands.

use serde::{Deserialize, Serialize};

use super::ids::{CustomerId, PlanId};

/// The body of `POST /v1/orders`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateOrderRequest {
    /// The platform's customer the eSIM is for.
    pub customer_id: CustomerId,
    /// The catalogue plan to buy.
    pub plan_id: PlanId,
    /// How many eSIMs, 1 to 10.
    #[serde(default = "one")]
    pub quantity: u32,
    /// The platform's reference of the payment method to charge.
    pub payment_method_ref: String,
}

fn one() -> u32 {
    1
}

/// Where an order stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    /// Charged and queued for provisioning.
    Accepted,
    /// A provider is working on it.
    Provisioning,
    /// Every eSIM of the order exists.
    Provisioned,
    /// Provisioning failed; the charge was refunded.
    Failed,
}
