//! Tenants (the B2B platforms using a deployment) and their API keys.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::ids::{ApiKeyId, TenantId};

/// A B2B platform using this deployment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tenant {
    /// Its id.
    pub tenant_id: TenantId,
    /// A display name, for operators.
    pub name: String,
    /// When it was created.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// Whether a key still opens the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApiKeyStatus {
    /// The key authenticates.
    Active,
    /// The key was revoked and answers 401.
    Revoked,
}

/// What we keep about a key: its hash and who it belongs to, never the key itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKeyRecord {
    /// The public id of the key.
    pub key_id: ApiKeyId,
    /// The one tenant this key authenticates as.
    pub tenant_id: TenantId,
    /// Lower-case hex SHA-256 of the whole key.
    pub key_hash: String,
    /// Active or revoked.
    pub status: ApiKeyStatus,
    /// When it was issued.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When it was revoked.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<OffsetDateTime>,
}
