//! Storage the usage poller works through: the sharded poll wheel, the write a poll makes only
//! when something changed, per-tenant alert settings, shard leases (carrying the wheel
//! cursors) and the alert records that make each alert happen exactly once.

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use time::OffsetDateTime;

use super::provider::UsageReport;
use super::store::StoreError;
use crate::domain::esim::Esim;
use crate::domain::ids::{EsimId, TenantId};
use crate::usage::{AlertKey, AlertSettings, WheelCursor, WheelPlace};

/// The wheel cursors of a shard's partitions, by index partition key.
pub type WheelCursors = BTreeMap<String, WheelCursor>;

/// An eSIM whose wheel slot came round, as read from the index page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PollTarget {
    /// The eSIM.
    pub esim: Esim,
    /// The usage figure stored on it, where one is.
    pub usage: Option<UsageReport>,
    /// Where in the wheel it was found; a poll write is conditional on it still being there.
    pub place: WheelPlace,
}

/// One page of due eSIMs, in sort key order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DuePage {
    /// The eSIMs.
    pub targets: Vec<PollTarget>,
    /// The last sort key read; `None` when the range has no more eSIMs.
    pub next: Option<String>,
}

/// An eSIM's stored figure and when a provider last confirmed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrentUsage {
    /// The eSIM.
    pub esim: Esim,
    /// The stored figure, where one is.
    pub usage: Option<UsageReport>,
    /// When a poll last got an answer, changed or not.
    pub checked_at: Option<OffsetDateTime>,
}

/// Where a poll leaves an eSIM in the wheel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    /// Where it is: the wheel comes round to it again without a write.
    Keep,
    /// Another tier or slot.
    Move(WheelPlace),
    /// Out of the wheel: its plan is over.
    Remove,
}

/// What one poll changes on an eSIM, written at once; made only when something changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PollWrite {
    /// The new usage figure, only when it differs from the stored one.
    pub usage: Option<UsageReport>,
    /// When the provider was asked.
    pub checked_at: OffsetDateTime,
    /// Where the eSIM goes in the wheel.
    pub placement: Placement,
}

/// What claiming an alert found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertClaim {
    /// This caller owns the alert and must publish it, then mark it published.
    Claimed,
    /// The alert was published, or another poller is publishing it right now.
    Taken,
}

/// Read and write counts of a store, for cost accounting.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreCalls {
    /// Read requests (Query pages, GetItem, BatchGetItem).
    pub reads: u64,
    /// Write requests (PutItem, UpdateItem, DeleteItem).
    pub writes: u64,
}

/// The usage poller's storage.
///
/// Invariants: a due page lists each eSIM at most once, only between the given sort keys; a
/// poll write applies only while the eSIM is still where it was read and never replaces a
/// usage figure measured at the same time or later; at most one caller claims an alert key
/// until its claim goes stale unpublished.
#[async_trait]
pub trait UsageStore: Send + Sync + std::fmt::Debug {
    /// Takes or renews the lease on shard `shard` until `until`, in one write, answering the
    /// wheel cursors the last holder left; `None` when another holder has it.
    async fn take_shard(
        &self,
        shard: u32,
        holder: &str,
        now: OffsetDateTime,
        until: OffsetDateTime,
    ) -> Result<Option<WheelCursors>, StoreError>;

    /// Gives a shard lease back, if still held by `holder`, saving its wheel cursors in the
    /// same write.
    async fn release_shard(
        &self,
        shard: u32,
        holder: &str,
        cursors: &WheelCursors,
    ) -> Result<(), StoreError>;

    /// Up to `limit` eSIMs of index partition `partition_key` with sort keys from `from` to
    /// `to`, both included, in one read.
    async fn due(
        &self,
        partition_key: &str,
        from: &str,
        to: &str,
        limit: usize,
    ) -> Result<DuePage, StoreError>;

    /// One eSIM's stored figure, read consistently; `None` when the tenant has no such eSIM.
    async fn current(
        &self,
        tenant_id: &TenantId,
        esim_id: &EsimId,
    ) -> Result<Option<CurrentUsage>, StoreError>;

    /// Saves what one poll found, in one write.
    async fn record_poll(&self, target: &PollTarget, write: &PollWrite) -> Result<(), StoreError>;

    /// The alert thresholds of several tenants (the defaults where one set none), in batches
    /// of up to 100 per read.
    async fn alert_settings(
        &self,
        tenants: &[TenantId],
    ) -> Result<HashMap<TenantId, AlertSettings>, StoreError>;

    /// Sets a tenant's alert thresholds.
    async fn save_alert_settings(
        &self,
        tenant_id: &TenantId,
        settings: &AlertSettings,
    ) -> Result<(), StoreError>;

    /// Claims an alert: succeeds when nobody did, or when an earlier claim stayed unpublished
    /// since before `stale_before` (its poller crashed or could not publish).
    async fn claim_alert(
        &self,
        key: &AlertKey,
        now: OffsetDateTime,
        stale_before: OffsetDateTime,
    ) -> Result<AlertClaim, StoreError>;

    /// Marks a claimed alert as published, so that it is never claimed again.
    async fn mark_alert_published(&self, key: &AlertKey) -> Result<(), StoreError>;

    /// The read and write requests made so far.
    fn calls(&self) -> StoreCalls;
}
