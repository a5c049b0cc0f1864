//! Storage of the webhook intake: dedupe records, parked facts, and the lookup of orders a
//! provider is still working on.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::store::StoreError;
use crate::domain::ids::{OrderId, ProviderId, TenantId};
use crate::domain::lifecycle::ProfileState;
use crate::ports::provider::UsageReport;

/// What a claim on a webhook's dedupe key found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// This caller processes the webhook; it must `finish` or `release` the claim.
    Claimed,
    /// The webhook was processed before: a duplicate.
    Done,
    /// Another delivery of the same webhook is being processed right now.
    InFlight,
}

/// A fact that named something not stored yet, kept until it can be applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ParkedFact {
    /// A profile reached a state.
    ProfileState {
        /// The state.
        state: ProfileState,
        /// When, by the provider's clock.
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
    },
    /// A usage figure.
    Usage {
        /// The figure.
        report: UsageReport,
    },
    /// An asynchronous order completed or failed; the worker asks the provider which.
    OrderOutcome {
        /// The ICCIDs the result names, where it names them: when one of them is stored, the
        /// order was completed already (by the worker's own polling) and nothing waits.
        #[serde(default)]
        iccids: Vec<crate::domain::ids::Iccid>,
    },
}

/// A parked fact as stored, with the id it is deleted by once applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParkedEntry {
    /// Unique within its reference.
    pub entry_id: String,
    /// The fact.
    pub fact: ParkedFact,
}

/// Dedupe records, parked facts and pending orders.
///
/// Invariants: at most one caller holds a dedupe key's claim at a time; a claim whose holder
/// vanished lapses after its lease, so a crash never turns the provider's retry into a no-op;
/// a finished dedupe record outlives every provider's retry horizon.
#[async_trait]
pub trait WebhookStore: Send + Sync + std::fmt::Debug {
    /// Claims `dedupe_key` of `provider` until `lease_until`, unless it is done or held.
    async fn claim(
        &self,
        provider: &ProviderId,
        dedupe_key: &str,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
    ) -> Result<Claim, StoreError>;

    /// Marks a claimed webhook processed; the record is kept until `keep_until`.
    async fn finish(
        &self,
        provider: &ProviderId,
        dedupe_key: &str,
        keep_until: OffsetDateTime,
    ) -> Result<(), StoreError>;

    /// Gives a claim back after a failure, so that the provider's retry processes it again.
    async fn release(&self, provider: &ProviderId, dedupe_key: &str) -> Result<(), StoreError>;

    /// Parks facts under a reference (`ICCID#...` or `ORDER#...`) until `keep_until`.
    async fn park(
        &self,
        provider: &ProviderId,
        reference: &str,
        entries: &[ParkedEntry],
        keep_until: OffsetDateTime,
    ) -> Result<(), StoreError>;

    /// The facts parked under a reference.
    async fn parked(
        &self,
        provider: &ProviderId,
        reference: &str,
    ) -> Result<Vec<ParkedEntry>, StoreError>;

    /// Removes an applied parked fact.
    async fn unpark(
        &self,
        provider: &ProviderId,
        reference: &str,
        entry_id: &str,
    ) -> Result<(), StoreError>;

    /// The order a provider is still working on under its order reference.
    async fn pending_order(
        &self,
        provider: &ProviderId,
        provider_order_ref: &str,
    ) -> Result<Option<(TenantId, OrderId)>, StoreError>;
}
