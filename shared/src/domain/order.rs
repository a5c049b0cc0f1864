//! Orders: what a customer bought, what they were charged, where provisioning stands, and the
//! idempotency record that makes a retried `POST /v1/orders` charge nobody twice.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use super::error::ErrorCode;
use super::events::DomainEvent;
use super::ids::{CustomerId, EsimId, OrderId, PlanId, ProviderId, TenantId};
use super::money::Money;
use super::plan::ProviderPlan;

/// The most eSIMs one order may buy.
pub const MAX_QUANTITY: u32 = 10;

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

impl CreateOrderRequest {
    /// Checks what the types cannot: the quantity range and the payment reference.
    pub fn validate(&self) -> Result<(), super::DomainError> {
        if self.quantity == 0 || self.quantity > MAX_QUANTITY {
            return Err(super::DomainError::invalid(format!(
                "field quantity: must be 1 to {MAX_QUANTITY}, got {}",
                self.quantity
            )));
        }
        let reference = self.payment_method_ref.trim();
        if reference.is_empty() || reference.len() > 200 {
            return Err(super::DomainError::invalid(
                "field payment_method_ref: must be 1 to 200 characters",
            ));
        }
        Ok(())
    }

    /// A stable hash of the request, to tell a retry from a different request under the
    /// same idempotency key. Field order and defaults do not change it.
    pub fn fingerprint(&self) -> String {
        let canonical = format!(
            "customer_id={}\nplan_id={}\nquantity={}\npayment_method_ref={}",
            self.customer_id, self.plan_id, self.quantity, self.payment_method_ref
        );
        hex::encode(Sha256::digest(canonical.as_bytes()))
    }
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

impl OrderStatus {
    /// True when nothing more will happen to the order.
    pub fn is_final(self) -> bool {
        matches!(self, OrderStatus::Provisioned | OrderStatus::Failed)
    }
}

/// How one attempt at one provider went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttemptState {
    /// About to call, or calling, the provider. Found after a crash, it means the provider
    /// may have committed: look the order up before ordering again.
    Started,
    /// The provider accepted the order and will deliver later.
    Pending,
    /// The answer was lost; the provider may have committed.
    OutcomeUnknown,
    /// The provider delivered the profiles.
    Succeeded,
    /// The provider refused; safe to try elsewhere.
    Refused,
}

/// One attempt at one provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderAttempt {
    /// The provider.
    pub provider: ProviderId,
    /// The provider's plan code ordered.
    pub plan_code: String,
    /// Our reference at the provider, to find the order again.
    pub our_reference: String,
    /// How it went.
    pub state: AttemptState,
    /// The provider's order reference, once known.
    #[serde(default)]
    pub provider_order_ref: Option<String>,
    /// The domain code of a refusal.
    #[serde(default)]
    pub error_code: Option<ErrorCode>,
    /// When the attempt started.
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
}

/// Why an order failed, as the user sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderFailure {
    /// The stable code.
    pub code: ErrorCode,
    /// What the user can do: retry, choose another plan, or contact support quoting the
    /// support reference. Never a provider's error code.
    pub message: String,
    /// What support searches the logs for.
    pub support_reference: String,
}

/// An order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    /// Its id.
    pub order_id: OrderId,
    /// Its tenant.
    pub tenant_id: TenantId,
    /// The platform's customer.
    pub customer_id: CustomerId,
    /// The plan bought.
    pub plan_id: PlanId,
    /// The plan as the catalogue had it when the order was accepted: which provider and
    /// code to order, and what an equivalent plan for failover must match. Never shown.
    pub plan: ProviderPlan,
    /// How many eSIMs.
    pub quantity: u32,
    /// The retail price of one eSIM.
    pub unit_price: Money,
    /// What the customer is charged: unit price times quantity. Failover never changes it.
    pub total: Money,
    /// The platform's payment method reference.
    pub payment_method_ref: String,
    /// Where it stands.
    pub status: OrderStatus,
    /// Attempts at providers, oldest first.
    #[serde(default)]
    pub attempts: Vec<ProviderAttempt>,
    /// The eSIMs it produced.
    #[serde(default)]
    pub esim_ids: Vec<EsimId>,
    /// Why it failed, when it did.
    #[serde(default)]
    pub failure: Option<OrderFailure>,
    /// Events committed with the order's last change and not yet published: a
    /// transactional outbox, emptied by the worker once the bus has them.
    #[serde(default)]
    pub outbox: Vec<DomainEvent>,
    /// When it was accepted.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When it last changed.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// What a ledger entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LedgerKind {
    /// The customer is charged the order total.
    Charge,
    /// The charge is returned; at most one per order.
    Refund,
}

/// One movement of money for an order. Charges are positive, refunds negative, so the sum of
/// a tenant's entries is what its customers paid for fulfilled orders.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerEntry {
    /// The order.
    pub order_id: OrderId,
    /// The tenant.
    pub tenant_id: TenantId,
    /// Charge or refund.
    pub kind: LedgerKind,
    /// Signed amount: positive for a charge, negative for a refund.
    pub amount: Money,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

/// The first answer to a request, kept so that a retry with the same key gets it again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdempotencyRecord {
    /// The tenant the key belongs to: keys are scoped per tenant.
    pub tenant_id: TenantId,
    /// The key as the client sent it.
    pub key: String,
    /// [`CreateOrderRequest::fingerprint`] of the first request.
    pub request_hash: String,
    /// The order the first request created.
    pub order_id: OrderId,
    /// The first response's status code.
    pub response_status: u16,
    /// The first response's body.
    pub response_body: String,
    /// When the key was first used; it is honoured for the retention period from then.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// While the first request may still replace its answer (it waits a bounded time for a
    /// synchronous provider), a retry is told the request is in flight (409) instead of
    /// getting an answer that is about to change. `None` once the answer is final.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub answer_pending_until: Option<OffsetDateTime>,
}

/// Checks an `Idempotency-Key` header value.
pub fn validate_idempotency_key(key: Option<&str>) -> Result<String, super::DomainError> {
    let key = key.map(str::trim).unwrap_or_default();
    if key.is_empty() {
        return Err(super::DomainError::invalid(
            "header Idempotency-Key is required: send a unique value (a UUID, say) per purchase \
             and the same value when you retry it",
        ));
    }
    if key.len() > 255 || !key.chars().all(|c| c.is_ascii_graphic()) {
        return Err(super::DomainError::invalid(
            "header Idempotency-Key must be 1 to 255 visible ASCII characters",
        ));
    }
    Ok(key.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(quantity: u32) -> CreateOrderRequest {
        CreateOrderRequest {
            customer_id: CustomerId::parse("cus_1").expect("id"),
            plan_id: PlanId::parse("airalo:jp-1gb").expect("id"),
            quantity,
            payment_method_ref: "pm_1".to_owned(),
        }
    }

    #[test]
    fn the_fingerprint_changes_with_any_field_and_only_then() {
        let base = request(1);
        let mut other_pm = base.clone();
        other_pm.payment_method_ref = "pm_2".to_owned();

        assert_eq!(base.fingerprint(), request(1).fingerprint());
        assert_ne!(base.fingerprint(), request(2).fingerprint());
        assert_ne!(base.fingerprint(), other_pm.fingerprint());
    }

    #[test]
    fn quantity_outside_one_to_ten_is_refused_naming_the_field() {
        assert!(request(1).validate().is_ok());
        assert!(request(10).validate().is_ok());
        let error = request(11).validate().expect_err("too many");
        assert!(error.message.contains("quantity"));
        assert!(request(0).validate().is_err());
    }

    #[test]
    fn the_idempotency_key_is_required_and_bounded() {
        assert!(validate_idempotency_key(None).is_err());
        assert!(validate_idempotency_key(Some("  ")).is_err());
        assert!(validate_idempotency_key(Some(&"k".repeat(256))).is_err());
        assert_eq!(
            validate_idempotency_key(Some(" abc-1 ")).expect("valid"),
            "abc-1"
        );
    }
}
