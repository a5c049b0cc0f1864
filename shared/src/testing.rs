//! In-memory fakes of the ports, for unit tests only. Everything a user runs talks to the
//! real adapters in [`crate::aws`] and [`crate::providers`].

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use time::OffsetDateTime;
use time::macros::datetime;
use ulid::Ulid;

use crate::domain::events::DomainEvent;
use crate::domain::ids::{ApiKeyId, TenantId};
use crate::domain::tenant::{ApiKeyRecord, ApiKeyStatus, Tenant};
use crate::ports::{
    Clock, EventPublisher, IdGenerator, MessageQueue, PublishError, QueueError, StoreError,
    TenantStore,
};

/// A clock stuck at one instant, which tests can move.
#[derive(Debug)]
pub struct FixedClock(Mutex<OffsetDateTime>);

impl Default for FixedClock {
    fn default() -> Self {
        Self(Mutex::new(datetime!(2026-06-01 12:00 UTC)))
    }
}

impl FixedClock {
    /// Moves the clock forward.
    pub fn advance(&self, by: time::Duration) {
        let mut now = self.0.lock().unwrap_or_else(|p| p.into_inner());
        *now += by;
    }
}

impl Clock for FixedClock {
    fn now(&self) -> OffsetDateTime {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// ULIDs 1, 2, 3, ... so tests can predict every id.
#[derive(Debug, Default)]
pub struct SequentialIds(AtomicU64);

impl IdGenerator for SequentialIds {
    fn next_ulid(&self) -> Ulid {
        let n = self.0.fetch_add(1, Ordering::SeqCst) + 1;
        Ulid::from_parts(1_700_000_000_000, u128::from(n))
    }
}

/// A tenant store in a mutex.
#[derive(Debug, Default)]
pub struct InMemoryTenantStore {
    tenants: Mutex<HashMap<TenantId, Tenant>>,
    keys: Mutex<HashMap<String, ApiKeyRecord>>,
}

#[async_trait]
impl TenantStore for InMemoryTenantStore {
    async fn create_tenant(&self, tenant: &Tenant, key: &ApiKeyRecord) -> Result<(), StoreError> {
        let mut tenants = self.tenants.lock().unwrap_or_else(|p| p.into_inner());
        let mut keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        if tenants.contains_key(&tenant.tenant_id) || keys.contains_key(&key.key_hash) {
            return Err(StoreError::Conflict {
                what: tenant.tenant_id.to_string(),
            });
        }
        tenants.insert(tenant.tenant_id.clone(), tenant.clone());
        keys.insert(key.key_hash.clone(), key.clone());
        Ok(())
    }

    async fn add_key(&self, key: &ApiKeyRecord) -> Result<(), StoreError> {
        let tenants = self.tenants.lock().unwrap_or_else(|p| p.into_inner());
        let mut keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        if !tenants.contains_key(&key.tenant_id) || keys.contains_key(&key.key_hash) {
            return Err(StoreError::Conflict {
                what: key.key_id.to_string(),
            });
        }
        keys.insert(key.key_hash.clone(), key.clone());
        Ok(())
    }

    async fn find_key_by_hash(&self, key_hash: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
        Ok(self
            .keys
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(key_hash)
            .cloned())
    }

    async fn get_tenant(&self, tenant_id: &TenantId) -> Result<Option<Tenant>, StoreError> {
        Ok(self
            .tenants
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(tenant_id)
            .cloned())
    }

    async fn list_tenants(&self) -> Result<Vec<Tenant>, StoreError> {
        Ok(self
            .tenants
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect())
    }

    async fn list_keys(&self, tenant_id: &TenantId) -> Result<Vec<ApiKeyRecord>, StoreError> {
        let keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        Ok(keys
            .values()
            .filter(|k| &k.tenant_id == tenant_id)
            .cloned()
            .collect())
    }

    async fn revoke_key(
        &self,
        tenant_id: &TenantId,
        key_id: &ApiKeyId,
        at: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let mut keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        let found = keys
            .values_mut()
            .find(|k| &k.tenant_id == tenant_id && &k.key_id == key_id);
        Ok(found
            .map(|k| {
                k.status = ApiKeyStatus::Revoked;
                k.revoked_at.get_or_insert(at);
            })
            .is_some())
    }
}

/// A queue that keeps what was sent.
#[derive(Debug, Default)]
pub struct InMemoryQueue {
    /// Bodies sent, in order.
    pub sent: Mutex<Vec<String>>,
}

#[async_trait]
impl MessageQueue for InMemoryQueue {
    async fn send(&self, body: &str) -> Result<String, QueueError> {
        let mut sent = self.sent.lock().unwrap_or_else(|p| p.into_inner());
        sent.push(body.to_owned());
        Ok(format!("msg-{}", sent.len()))
    }

    async fn send_delayed(
        &self,
        body: &str,
        _delay: std::time::Duration,
    ) -> Result<String, QueueError> {
        self.send(body).await
    }
}

/// A bus that keeps what was published.
#[derive(Debug, Default)]
pub struct InMemoryPublisher {
    /// Events published, in order.
    pub published: Mutex<Vec<DomainEvent>>,
}

#[async_trait]
impl EventPublisher for InMemoryPublisher {
    async fn publish(&self, events: &[DomainEvent]) -> Result<(), PublishError> {
        self.published
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(events);
        Ok(())
    }
}
