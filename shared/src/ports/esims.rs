//! Storage of eSIMs for the webhook intake and the eSIM reads: lookups by ICCID and by
//! customer, and the conditional updates that move a profile through its lifecycle.

use async_trait::async_trait;

use super::provider::UsageReport;
use super::store::StoreError;
use crate::domain::esim::Esim;
use crate::domain::ids::{CustomerId, EsimId, Iccid, ProviderId, TenantId};
use crate::domain::lifecycle::Lifecycle;

/// An eSIM with the version it was read at and the latest usage figure stored on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEsim {
    /// The eSIM.
    pub esim: Esim,
    /// Its stored version, for optimistic locking.
    pub version: u64,
    /// The newest usage figure a provider reported, where one did.
    pub usage: Option<UsageReport>,
}

/// eSIMs as the intake and the read routes see them.
///
/// Invariants: every lifecycle change is conditional on the version it was read at, so two
/// writers never both advance a profile from the same state; a usage figure replaces the
/// stored one only when it was measured later.
#[async_trait]
pub trait EsimStore: Send + Sync + std::fmt::Debug {
    /// The eSIM a provider knows by this ICCID, whatever its tenant.
    async fn find_by_iccid(
        &self,
        provider: &ProviderId,
        iccid: &Iccid,
    ) -> Result<Option<StoredEsim>, StoreError>;

    /// An eSIM of a tenant, read consistently.
    async fn get(
        &self,
        tenant_id: &TenantId,
        esim_id: &EsimId,
    ) -> Result<Option<StoredEsim>, StoreError>;

    /// A customer's eSIMs, oldest first.
    async fn list_for_customer(
        &self,
        tenant_id: &TenantId,
        customer_id: &CustomerId,
    ) -> Result<Vec<StoredEsim>, StoreError>;

    /// Saves a changed lifecycle if nobody changed the eSIM since `expected_version`;
    /// `Conflict` otherwise.
    async fn save_lifecycle(
        &self,
        tenant_id: &TenantId,
        esim_id: &EsimId,
        lifecycle: &Lifecycle,
        expected_version: u64,
    ) -> Result<(), StoreError>;

    /// Stores a usage figure unless a figure measured at the same time or later is stored.
    /// Returns whether it was stored.
    async fn save_usage(
        &self,
        tenant_id: &TenantId,
        esim_id: &EsimId,
        usage: &UsageReport,
    ) -> Result<bool, StoreError>;
}
