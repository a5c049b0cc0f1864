//! Storage ports. Every method is scoped to one tenant where the data belongs to one, so a
//! caller cannot read or write another tenant's data by passing the wrong id in a body.

use async_trait::async_trait;

use crate::domain::ids::{ApiKeyId, TenantId};
use crate::domain::tenant::{ApiKeyRecord, Tenant};

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A conditional write lost: the item exists already, or another writer changed it first.
    #[error("conflicting write to {what}")]
    Conflict {
        /// What was being written, for logs.
        what: String,
    },
    /// The store answered but the item could not be understood.
    #[error("stored item {what} is malformed")]
    Malformed {
        /// Which item.
        what: String,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
    /// The store throttled the request; retry with backoff.
    #[error("the store throttled the request")]
    Throttled(#[source] Box<dyn std::error::Error + Send + Sync + 'static>),
    /// The store could not be reached or refused the call.
    #[error("the store failed")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync + 'static>),
}

impl From<StoreError> for crate::domain::DomainError {
    fn from(error: StoreError) -> Self {
        use crate::domain::{DomainError, ErrorCode};
        match error {
            StoreError::Conflict { .. } => DomainError::new(ErrorCode::Conflict).caused_by(error),
            StoreError::Throttled(_) => DomainError::new(ErrorCode::Throttled).caused_by(error),
            StoreError::Malformed { .. } | StoreError::Unavailable(_) => {
                DomainError::internal(error)
            }
        }
    }
}

/// Tenants and their API keys.
///
/// Invariants: a key hash maps to exactly one tenant; creating a tenant and its first key
/// lands whole or not at all; a revoked key never authenticates again.
#[async_trait]
pub trait TenantStore: Send + Sync + std::fmt::Debug {
    /// Stores a new tenant together with its first key, atomically.
    async fn create_tenant(
        &self,
        tenant: &Tenant,
        first_key: &ApiKeyRecord,
    ) -> Result<(), StoreError>;

    /// Adds a key to an existing tenant. Fails with `Conflict` when the tenant does not exist.
    async fn add_key(&self, key: &ApiKeyRecord) -> Result<(), StoreError>;

    /// Finds the key with this SHA-256 hash, active or revoked.
    async fn find_key_by_hash(&self, key_hash: &str) -> Result<Option<ApiKeyRecord>, StoreError>;

    /// A tenant by id.
    async fn get_tenant(&self, tenant_id: &TenantId) -> Result<Option<Tenant>, StoreError>;

    /// Every tenant, for operators.
    async fn list_tenants(&self) -> Result<Vec<Tenant>, StoreError>;

    /// A tenant's keys, newest first.
    async fn list_keys(&self, tenant_id: &TenantId) -> Result<Vec<ApiKeyRecord>, StoreError>;

    /// Revokes a key. Returns false when the tenant has no such key; revoking twice is fine.
    async fn revoke_key(
        &self,
        tenant_id: &TenantId,
        key_id: &ApiKeyId,
        at: time::OffsetDateTime,
    ) -> Result<bool, StoreError>;
}
