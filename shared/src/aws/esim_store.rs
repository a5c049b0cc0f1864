//! eSIM reads and lifecycle updates in the table, over the items `DynamoOrderStore` writes:
//! `T#<tenant>#ESIM#<esim>` / `ESIM`, in `gsi1` under `ICCID#<provider>#<iccid>` and in
//! `gsi2` under `T#<tenant>#CUSTOMER#<customer>`.
//!
//! The latest usage figure lives beside the eSIM's own attributes: `usage` (the report) and
//! `usage_measured_epoch` (what "newer" is decided by).

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;

use super::dynamo::{Item, Table, VERSION, from_item, key, map_sdk_error, number, version_of};
use crate::domain::esim::Esim;
use crate::domain::ids::{CustomerId, EsimId, Iccid, ProviderId, TenantId};
use crate::domain::lifecycle::Lifecycle;
use crate::ports::StoreError;
use crate::ports::esims::{EsimStore, StoredEsim};
use crate::ports::provider::UsageReport;

const USAGE: &str = "usage";
const USAGE_MEASURED: &str = "usage_measured_epoch";

fn esim_pk(tenant: &TenantId, esim: &EsimId) -> String {
    format!("T#{tenant}#ESIM#{esim}")
}

fn attribute(value: &impl serde::Serialize, what: &str) -> Result<AttributeValue, StoreError> {
    serde_dynamo::to_attribute_value(value).map_err(|e| StoreError::Malformed {
        what: what.to_owned(),
        source: Box::new(e),
    })
}

fn stored(mut item: Item) -> Result<StoredEsim, StoreError> {
    let version = version_of(&item);
    let usage =
        match item.remove(USAGE) {
            Some(value) => Some(serde_dynamo::from_attribute_value(value).map_err(|e| {
                StoreError::Malformed {
                    what: "esim usage".to_owned(),
                    source: Box::new(e),
                }
            })?),
            None => None,
        };
    Ok(StoredEsim {
        esim: from_item(item)?,
        version,
        usage,
    })
}

/// The DynamoDB [`EsimStore`].
#[derive(Debug, Clone)]
pub struct DynamoEsimStore {
    table: Table,
}

impl DynamoEsimStore {
    /// A store over `table`.
    pub fn new(table: Table) -> Self {
        Self { table }
    }
}

#[async_trait]
impl EsimStore for DynamoEsimStore {
    async fn find_by_iccid(
        &self,
        provider: &ProviderId,
        iccid: &Iccid,
    ) -> Result<Option<StoredEsim>, StoreError> {
        let items = self
            .table
            .query_index("gsi1", "gsi1pk", &format!("ICCID#{provider}#{iccid}"))
            .await?;
        let Some(found) = items.into_iter().next() else {
            return Ok(None);
        };
        // The index is eventually consistent; the version to update against comes from the
        // item itself.
        let esim: Esim = from_item(found)?;
        self.get(&esim.tenant_id, &esim.esim_id).await
    }

    async fn get(
        &self,
        tenant_id: &TenantId,
        esim_id: &EsimId,
    ) -> Result<Option<StoredEsim>, StoreError> {
        match self.table.get(&esim_pk(tenant_id, esim_id), "ESIM").await? {
            Some(item) => stored(item).map(Some),
            None => Ok(None),
        }
    }

    async fn list_for_customer(
        &self,
        tenant_id: &TenantId,
        customer_id: &CustomerId,
    ) -> Result<Vec<StoredEsim>, StoreError> {
        let items = self
            .table
            .query_index(
                "gsi2",
                "gsi2pk",
                &format!("T#{tenant_id}#CUSTOMER#{customer_id}"),
            )
            .await?;
        items.into_iter().map(stored).collect()
    }

    async fn save_lifecycle(
        &self,
        tenant_id: &TenantId,
        esim_id: &EsimId,
        lifecycle: &Lifecycle,
        expected_version: u64,
    ) -> Result<(), StoreError> {
        let what = format!("esim {esim_id}");
        self.table
            .client()
            .update_item()
            .table_name(self.table.name())
            .set_key(Some(key(esim_pk(tenant_id, esim_id), "ESIM")))
            .update_expression("SET lifecycle = :lifecycle, #v = :next")
            .condition_expression("#v = :expected")
            .expression_attribute_names("#v", VERSION)
            .expression_attribute_values(":lifecycle", attribute(lifecycle, &what)?)
            .expression_attribute_values(":next", number(expected_version as i64 + 1))
            .expression_attribute_values(":expected", number(expected_version as i64))
            .send()
            .await
            .map_err(|e| map_sdk_error(&what, e))?;
        Ok(())
    }

    async fn save_usage(
        &self,
        tenant_id: &TenantId,
        esim_id: &EsimId,
        usage: &UsageReport,
    ) -> Result<bool, StoreError> {
        let what = format!("esim {esim_id} usage");
        let measured = usage.measured_at.map_or(0, |at| at.unix_timestamp());
        let outcome = self
            .table
            .client()
            .update_item()
            .table_name(self.table.name())
            .set_key(Some(key(esim_pk(tenant_id, esim_id), "ESIM")))
            .update_expression("SET #u = :usage, #m = :measured")
            .condition_expression(
                "attribute_exists(pk) AND (attribute_not_exists(#m) OR #m < :measured)",
            )
            .expression_attribute_names("#u", USAGE)
            .expression_attribute_names("#m", USAGE_MEASURED)
            .expression_attribute_values(":usage", attribute(usage, &what)?)
            .expression_attribute_values(":measured", number(measured))
            .send()
            .await;
        match outcome {
            Ok(_) => Ok(true),
            Err(error) => match map_sdk_error(&what, error) {
                StoreError::Conflict { .. } => Ok(false),
                other => Err(other),
            },
        }
    }
}
