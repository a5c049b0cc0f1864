//! Storage of orders, their idempotency records, ledger entries and eSIMs.

use async_trait::async_trait;
use time::OffsetDateTime;

use super::store::StoreError;
use crate::domain::esim::Esim;
use crate::domain::ids::{EsimId, OrderId, TenantId};
use crate::domain::order::{IdempotencyRecord, LedgerEntry, Order};

/// An order with the version it was read at, for optimistic locking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionedOrder {
    /// The order.
    pub order: Order,
    /// Its stored version.
    pub version: u64,
}

/// Orders and everything that must change with them.
///
/// Invariants: an order, its idempotency record and its charge land together or not at all;
/// an order has at most one charge and at most one refund; every change to an order is
/// conditional on the version it was read at.
#[async_trait]
pub trait OrderStore: Send + Sync + std::fmt::Debug {
    /// Stores a new order, its idempotency record and its charge in one transaction.
    /// `Conflict` when the idempotency key is already held (used after `key_free_before`).
    async fn accept(
        &self,
        order: &Order,
        record: &IdempotencyRecord,
        charge: &LedgerEntry,
        key_free_before: OffsetDateTime,
    ) -> Result<(), StoreError>;

    /// The idempotency record of a tenant's key.
    async fn idempotency_record(
        &self,
        tenant_id: &TenantId,
        key: &str,
    ) -> Result<Option<IdempotencyRecord>, StoreError>;

    /// Replaces the answer a key replays with the request's final answer (a synchronous order
    /// answered 201 after its bounded wait) and marks it final. Only the record of `order_id`
    /// is changed; a record the key got since is left alone.
    async fn record_answer(
        &self,
        tenant_id: &TenantId,
        key: &str,
        order_id: &OrderId,
        status: u16,
        body: &str,
    ) -> Result<(), StoreError>;

    /// An order of a tenant.
    async fn get(
        &self,
        tenant_id: &TenantId,
        order_id: &OrderId,
    ) -> Result<Option<VersionedOrder>, StoreError>;

    /// Saves a changed order if nobody changed it since `expected_version`.
    async fn save(&self, order: &Order, expected_version: u64) -> Result<(), StoreError>;

    /// Saves a provisioned order together with its new eSIMs.
    async fn complete(
        &self,
        order: &Order,
        expected_version: u64,
        esims: &[Esim],
    ) -> Result<(), StoreError>;

    /// Saves a failed order together with its refund; `Conflict` when it was refunded before.
    async fn fail(
        &self,
        order: &Order,
        expected_version: u64,
        refund: &LedgerEntry,
    ) -> Result<(), StoreError>;

    /// Takes the order's processing lease until `until`, unless another holder's lease is
    /// still running at `now`. Returns whether this caller holds it.
    async fn take_lease(
        &self,
        tenant_id: &TenantId,
        order_id: &OrderId,
        holder: &str,
        now: OffsetDateTime,
        until: OffsetDateTime,
    ) -> Result<bool, StoreError>;

    /// Gives the lease back, if `holder` still has it.
    async fn release_lease(
        &self,
        tenant_id: &TenantId,
        order_id: &OrderId,
        holder: &str,
    ) -> Result<(), StoreError>;

    /// A tenant's ledger.
    async fn ledger(&self, tenant_id: &TenantId) -> Result<Vec<LedgerEntry>, StoreError>;

    /// Orders still `accepted` that were created before `before`: queued messages that may
    /// have been lost, for the sweep to send again.
    async fn accepted_before(
        &self,
        before: OffsetDateTime,
    ) -> Result<Vec<(TenantId, OrderId)>, StoreError>;

    /// An eSIM of a tenant.
    async fn esim(
        &self,
        tenant_id: &TenantId,
        esim_id: &EsimId,
    ) -> Result<Option<Esim>, StoreError>;
}
