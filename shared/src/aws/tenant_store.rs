//! Tenants and API keys in the table.
//!
//! Items:
//! - `T#<tenant>` / `TENANT`: the tenant; `gsi1pk = TENANTS` lists every tenant.
//! - `T#<tenant>` / `KEY#<key id>`: the tenant's view of a key (hash, status, dates).
//! - `APIKEY#<sha256 of key>` / `APIKEY`: the lookup item authentication reads.
//!
//! The two key items are always written in one transaction, so they never disagree.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem, Update};

use super::dynamo::{Table, from_item, to_item};
use crate::domain::ids::{ApiKeyId, TenantId};
use crate::domain::tenant::{ApiKeyRecord, ApiKeyStatus, Tenant};
use crate::ports::{StoreError, TenantStore};

const TENANT_SK: &str = "TENANT";
const TENANT_INDEX_PK: &str = "TENANTS";

fn tenant_pk(tenant: &TenantId) -> String {
    format!("T#{tenant}")
}

fn key_sk(key_id: &ApiKeyId) -> String {
    format!("KEY#{key_id}")
}

fn lookup_pk(key_hash: &str) -> String {
    format!("APIKEY#{key_hash}")
}

/// The DynamoDB [`TenantStore`].
#[derive(Debug, Clone)]
pub struct DynamoTenantStore {
    table: Table,
}

impl DynamoTenantStore {
    /// A store over `table`.
    pub fn new(table: Table) -> Self {
        Self { table }
    }

    fn key_entries(&self, key: &ApiKeyRecord) -> Result<Vec<TransactWriteItem>, StoreError> {
        let listing = to_item(key, &tenant_pk(&key.tenant_id), &key_sk(&key.key_id))?;
        let lookup = to_item(key, &lookup_pk(&key.key_hash), "APIKEY")?;
        Ok(vec![
            self.table.put_new_entry(listing)?,
            self.table.put_new_entry(lookup)?,
        ])
    }

    fn revoke_entry(
        &self,
        pk: String,
        sk: &str,
        at: &str,
    ) -> Result<TransactWriteItem, StoreError> {
        let update = Update::builder()
            .table_name(self.table.name())
            .set_key(Some(super::dynamo::key(pk, sk)))
            .update_expression("SET #s = :revoked, revoked_at = :at ADD version :one")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_names("#s", "status")
            .expression_attribute_values(":revoked", AttributeValue::S("revoked".to_owned()))
            .expression_attribute_values(":at", AttributeValue::S(at.to_owned()))
            .expression_attribute_values(":one", AttributeValue::N("1".to_owned()))
            .build()
            .map_err(|e| StoreError::Malformed {
                what: "revoke".to_owned(),
                source: Box::new(e),
            })?;
        Ok(TransactWriteItem::builder().update(update).build())
    }
}

#[async_trait]
impl TenantStore for DynamoTenantStore {
    async fn create_tenant(
        &self,
        tenant: &Tenant,
        first_key: &ApiKeyRecord,
    ) -> Result<(), StoreError> {
        let mut tenant_item = to_item(tenant, &tenant_pk(&tenant.tenant_id), TENANT_SK)?;
        tenant_item.insert(
            "gsi1pk".to_owned(),
            AttributeValue::S(TENANT_INDEX_PK.to_owned()),
        );
        tenant_item.insert(
            "gsi1sk".to_owned(),
            AttributeValue::S(tenant.tenant_id.to_string()),
        );
        let mut entries = vec![self.table.put_new_entry(tenant_item)?];
        entries.extend(self.key_entries(first_key)?);
        self.table
            .transact(&format!("tenant {}", tenant.tenant_id), entries)
            .await
    }

    async fn add_key(&self, key: &ApiKeyRecord) -> Result<(), StoreError> {
        let mut entries = vec![
            self.table
                .exists_entry(&tenant_pk(&key.tenant_id), TENANT_SK)?,
        ];
        entries.extend(self.key_entries(key)?);
        self.table
            .transact(&format!("key {}", key.key_id), entries)
            .await
    }

    async fn find_key_by_hash(&self, key_hash: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
        match self.table.get(&lookup_pk(key_hash), "APIKEY").await? {
            Some(item) => from_item(item).map(Some),
            None => Ok(None),
        }
    }

    async fn get_tenant(&self, tenant_id: &TenantId) -> Result<Option<Tenant>, StoreError> {
        match self.table.get(&tenant_pk(tenant_id), TENANT_SK).await? {
            Some(item) => from_item(item).map(Some),
            None => Ok(None),
        }
    }

    async fn list_tenants(&self) -> Result<Vec<Tenant>, StoreError> {
        let items = self
            .table
            .query_index("gsi1", "gsi1pk", TENANT_INDEX_PK)
            .await?;
        items.into_iter().map(from_item).collect()
    }

    async fn list_keys(&self, tenant_id: &TenantId) -> Result<Vec<ApiKeyRecord>, StoreError> {
        let items = self
            .table
            .query_prefix(&tenant_pk(tenant_id), "KEY#")
            .await?;
        let mut keys: Vec<ApiKeyRecord> =
            items.into_iter().map(from_item).collect::<Result<_, _>>()?;
        keys.sort_by_key(|k| std::cmp::Reverse(k.created_at));
        Ok(keys)
    }

    async fn revoke_key(
        &self,
        tenant_id: &TenantId,
        key_id: &ApiKeyId,
        at: time::OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let Some(item) = self
            .table
            .get(&tenant_pk(tenant_id), &key_sk(key_id))
            .await?
        else {
            return Ok(false);
        };
        let key: ApiKeyRecord = from_item(item)?;
        if key.status == ApiKeyStatus::Revoked {
            return Ok(true);
        }
        let at = at
            .format(&time::format_description::well_known::Rfc3339)
            .map_err(|e| StoreError::Malformed {
                what: "revoked_at".to_owned(),
                source: Box::new(e),
            })?;
        let entries = vec![
            self.revoke_entry(tenant_pk(tenant_id), &key_sk(key_id), &at)?,
            self.revoke_entry(lookup_pk(&key.key_hash), "APIKEY", &at)?,
        ];
        self.table
            .transact(&format!("revoke {key_id}"), entries)
            .await?;
        Ok(true)
    }
}
