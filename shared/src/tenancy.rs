//! Tenant administration and API key authentication.
//!
//! An API key looks like `esk_<26-character key id>_<43-character secret>`. We store only
//! its SHA-256: keys are 256 bits of randomness, so a fast hash is as safe as a slow one and
//! keeps authentication to one read. The tenant a request acts for comes from its key and
//! from nowhere else.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::domain::ids::{ApiKeyId, TenantId};
use crate::domain::tenant::{ApiKeyRecord, ApiKeyStatus, Tenant};
use crate::domain::{DomainError, ErrorCode};
use crate::ports::{Clock, IdGenerator, StoreError, TenantStore};

const KEY_PREFIX: &str = "esk_";
const KEY_ID_LEN: usize = 26;
const SECRET_LEN: usize = 43;

/// A key as issued: shown once, never stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedKey {
    /// The key's public id.
    pub key_id: ApiKeyId,
    /// The whole key, to hand to the tenant.
    pub plaintext: String,
}

/// Lower-case hex SHA-256 of a key.
pub fn hash_key(plaintext: &str) -> String {
    hex::encode(Sha256::digest(plaintext.as_bytes()))
}

/// True when `text` has the shape of a key we issue; anything else is refused without a read.
pub fn is_well_formed_key(text: &str) -> bool {
    let Some(rest) = text.strip_prefix(KEY_PREFIX) else {
        return false;
    };
    let Some((id, secret)) = rest.split_once('_') else {
        return false;
    };
    id.len() == KEY_ID_LEN
        && id.chars().all(|c| c.is_ascii_alphanumeric())
        && secret.len() == SECRET_LEN
        && secret
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

fn new_key(ids: &dyn IdGenerator) -> IssuedKey {
    let ulid = ids.next_ulid();
    let mut secret = [0u8; 32];
    rand::rng().fill_bytes(&mut secret);
    let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret);
    let id_text = ulid.to_string().to_ascii_lowercase();
    IssuedKey {
        key_id: ApiKeyId::from_ulid(ulid),
        plaintext: format!("{KEY_PREFIX}{id_text}_{secret}"),
    }
}

/// Creates tenants and manages their keys.
#[derive(Debug, Clone)]
pub struct TenantAdmin {
    store: Arc<dyn TenantStore>,
    clock: Arc<dyn crate::ports::Clock>,
    ids: Arc<dyn IdGenerator>,
}

impl TenantAdmin {
    /// An admin over a store, a clock and an id generator.
    pub fn new(
        store: Arc<dyn TenantStore>,
        clock: Arc<dyn Clock>,
        ids: Arc<dyn IdGenerator>,
    ) -> Self {
        Self { store, clock, ids }
    }

    /// Creates a tenant with its first key, atomically. Returns the tenant and the key,
    /// which is shown this once.
    pub async fn create_tenant(&self, name: &str) -> Result<(Tenant, IssuedKey), DomainError> {
        let name = name.trim();
        if name.is_empty() || name.len() > 200 {
            return Err(DomainError::invalid(
                "tenant name must be 1 to 200 characters",
            ));
        }
        let now = self.clock.now();
        let tenant = Tenant {
            tenant_id: TenantId::from_ulid(self.ids.next_ulid()),
            name: name.to_owned(),
            created_at: now,
        };
        let issued = new_key(self.ids.as_ref());
        let record = self.record(&tenant.tenant_id, &issued);
        self.store.create_tenant(&tenant, &record).await?;
        Ok((tenant, issued))
    }

    /// Issues another key for an existing tenant.
    pub async fn create_key(&self, tenant_id: &TenantId) -> Result<IssuedKey, DomainError> {
        let issued = new_key(self.ids.as_ref());
        let record = self.record(tenant_id, &issued);
        match self.store.add_key(&record).await {
            Ok(()) => Ok(issued),
            Err(StoreError::Conflict { .. }) => Err(DomainError::with_message(
                ErrorCode::NotFound,
                format!("no tenant {tenant_id}; list tenants with 'esimctl tenant list'"),
            )),
            Err(other) => Err(other.into()),
        }
    }

    /// Every tenant.
    pub async fn list_tenants(&self) -> Result<Vec<Tenant>, DomainError> {
        Ok(self.store.list_tenants().await?)
    }

    /// A tenant's keys (hashes and status only).
    pub async fn list_keys(&self, tenant_id: &TenantId) -> Result<Vec<ApiKeyRecord>, DomainError> {
        Ok(self.store.list_keys(tenant_id).await?)
    }

    /// Revokes a key; from then on it answers 401.
    pub async fn revoke_key(
        &self,
        tenant_id: &TenantId,
        key_id: &ApiKeyId,
    ) -> Result<(), DomainError> {
        if self
            .store
            .revoke_key(tenant_id, key_id, self.clock.now())
            .await?
        {
            Ok(())
        } else {
            Err(DomainError::with_message(
                ErrorCode::NotFound,
                format!("tenant {tenant_id} has no key {key_id}"),
            ))
        }
    }

    fn record(&self, tenant_id: &TenantId, issued: &IssuedKey) -> ApiKeyRecord {
        ApiKeyRecord {
            key_id: issued.key_id.clone(),
            tenant_id: tenant_id.clone(),
            key_hash: hash_key(&issued.plaintext),
            status: ApiKeyStatus::Active,
            created_at: self.clock.now(),
            revoked_at: None,
        }
    }
}

/// Resolves the `Authorization` header of a request to the one tenant its key belongs to.
///
/// Verified keys are remembered in memory for `cache_ttl`, so a warm container does not read
/// the table on every request; a revoked key can therefore keep working on a warm container
/// for up to `cache_ttl`. Unknown and revoked keys are never cached.
#[derive(Debug)]
pub struct Authenticator {
    store: Arc<dyn TenantStore>,
    cache_ttl: Duration,
    cache: Mutex<HashMap<String, (TenantId, Instant)>>,
}

impl Authenticator {
    /// An authenticator over the tenant store.
    pub fn new(store: Arc<dyn TenantStore>, cache_ttl: Duration) -> Self {
        Self {
            store,
            cache_ttl,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The tenant of a request, from its `Authorization: Bearer <key>` header value.
    pub async fn authenticate(&self, authorization: Option<&str>) -> Result<TenantId, DomainError> {
        let unauthorized = || DomainError::new(ErrorCode::Unauthorized);
        let header = authorization.ok_or_else(unauthorized)?;
        let (scheme, key) = header.trim().split_once(' ').ok_or_else(unauthorized)?;
        let key = key.trim();
        if !scheme.eq_ignore_ascii_case("bearer") || !is_well_formed_key(key) {
            return Err(unauthorized());
        }
        let hash = hash_key(key);
        if let Some(tenant) = self.cached(&hash) {
            return Ok(tenant);
        }
        match self.store.find_key_by_hash(&hash).await? {
            Some(record) if record.status == ApiKeyStatus::Active => {
                self.remember(hash, record.tenant_id.clone());
                Ok(record.tenant_id)
            }
            _ => Err(unauthorized()),
        }
    }

    fn cached(&self, hash: &str) -> Option<TenantId> {
        if self.cache_ttl.is_zero() {
            return None;
        }
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache
            .get(hash)
            .filter(|(_, at)| at.elapsed() < self.cache_ttl)
            .map(|(t, _)| t.clone())
    }

    fn remember(&self, hash: String, tenant: TenantId) {
        if self.cache_ttl.is_zero() {
            return;
        }
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        // Bound the cache: a container serves few tenants, but a flood of distinct valid keys
        // must not grow it without limit.
        if cache.len() >= 1024 {
            cache.clear();
        }
        cache.insert(hash, (tenant, Instant::now()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{FixedClock, InMemoryTenantStore, SequentialIds};

    fn admin(store: Arc<InMemoryTenantStore>) -> TenantAdmin {
        TenantAdmin::new(
            store,
            Arc::new(FixedClock::default()),
            Arc::new(SequentialIds::default()),
        )
    }

    #[tokio::test]
    async fn an_issued_key_authenticates_as_its_tenant() {
        let store = Arc::new(InMemoryTenantStore::default());
        let (tenant, key) = admin(store.clone())
            .create_tenant("Acme Travel")
            .await
            .expect("ok");
        let auth = Authenticator::new(store, Duration::ZERO);

        let header = format!("Bearer {}", key.plaintext);
        let resolved = auth
            .authenticate(Some(&header))
            .await
            .expect("authenticates");

        assert_eq!(resolved, tenant.tenant_id);
        assert!(is_well_formed_key(&key.plaintext));
    }

    #[tokio::test]
    async fn missing_malformed_unknown_and_revoked_keys_are_unauthorized() {
        let store = Arc::new(InMemoryTenantStore::default());
        let admin = admin(store.clone());
        let (tenant, key) = admin.create_tenant("Acme").await.expect("ok");
        let auth = Authenticator::new(store, Duration::ZERO);
        let unknown = format!("Bearer esk_{}_{}", "0".repeat(26), "a".repeat(43));
        admin
            .revoke_key(&tenant.tenant_id, &key.key_id)
            .await
            .expect("revoked");
        let revoked = format!("Bearer {}", key.plaintext);

        for header in [
            None,
            Some("Bearer"),
            Some("Basic abc"),
            Some("Bearer nope"),
            Some(&unknown[..]),
            Some(&revoked[..]),
        ] {
            let error = auth.authenticate(header).await.expect_err("refused");
            assert_eq!(error.code, ErrorCode::Unauthorized, "{header:?}");
        }
    }

    #[test]
    fn the_hash_is_not_the_key() {
        let ids = SequentialIds::default();
        let key = new_key(&ids);

        let hash = hash_key(&key.plaintext);

        assert_eq!(hash.len(), 64);
        assert!(!hash.contains(&key.plaintext[4..20]));
    }
}
