//! Orders, idempotency records, ledger entries, processing leases and eSIMs in the table.
//!
//! Items, all under the tenant's prefix:
//! - `T#<tenant>#ORDER#<order>` / `ORDER`: the order. While `accepted` it is in the sparse
//!   index `gsi3` (`ORDERS#ACCEPTED`) the sweep reads; while a provider works on it
//!   asynchronously it is in `gsi1` under `PROVORDER#<provider>#<reference>` for webhooks.
//! - same partition / `LEDGER#CHARGE` and `LEDGER#REFUND`: at most one of each, listed per
//!   tenant through `gsi1` (`T#<tenant>#LEDGER`).
//! - same partition / `LEASE`: who is processing the order, until when.
//! - `T#<tenant>#IDEM#<sha256 of key>` / `IDEM`: the idempotency record, with
//!   `created_epoch` deciding when the key may be used again and `ttl` cleaning it up later.
//! - `T#<tenant>#ESIM#<esim>` / `ESIM`: an eSIM; in `gsi1` under `ICCID#<provider>#<iccid>`
//!   and in `gsi2` under `T#<tenant>#CUSTOMER#<customer>`; in `gsi3` under `POLL#<tier>#<part>`
//!   for the usage poller (see `usage_store`).

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::dynamo::{Item, Table, from_item, key, number, set_string, to_item, version_of};
use crate::domain::esim::Esim;
use crate::domain::ids::{EsimId, OrderId, TenantId};
use crate::domain::order::{
    AttemptState, IdempotencyRecord, LedgerEntry, LedgerKind, Order, OrderStatus,
};
use crate::ports::StoreError;
use crate::ports::orders::{OrderStore, VersionedOrder};

/// How long after its retention period an idempotency record is deleted by TTL.
const IDEMPOTENCY_TTL_SLACK_SECONDS: i64 = 24 * 3600;
const ACCEPTED_INDEX: &str = "ORDERS#ACCEPTED";

fn order_pk(tenant: &TenantId, order: &OrderId) -> String {
    format!("T#{tenant}#ORDER#{order}")
}

fn idempotency_pk(tenant: &TenantId, key: &str) -> String {
    format!(
        "T#{tenant}#IDEM#{}",
        hex::encode(Sha256::digest(key.as_bytes()))
    )
}

fn esim_pk(tenant: &TenantId, esim: &EsimId) -> String {
    format!("T#{tenant}#ESIM#{esim}")
}

fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&Rfc3339).unwrap_or_default()
}

fn ledger_sk(kind: LedgerKind) -> &'static str {
    match kind {
        LedgerKind::Charge => "LEDGER#CHARGE",
        LedgerKind::Refund => "LEDGER#REFUND",
    }
}

/// The DynamoDB [`OrderStore`].
#[derive(Debug, Clone)]
pub struct DynamoOrderStore {
    table: Table,
}

impl DynamoOrderStore {
    /// A store over `table`.
    pub fn new(table: Table) -> Self {
        Self { table }
    }

    fn order_item(order: &Order) -> Result<Item, StoreError> {
        let mut item = to_item(order, &order_pk(&order.tenant_id, &order.order_id), "ORDER")?;
        let accepted = order.status == OrderStatus::Accepted;
        set_string(
            &mut item,
            "gsi3pk",
            accepted.then(|| ACCEPTED_INDEX.to_owned()),
        );
        set_string(
            &mut item,
            "gsi3sk",
            accepted.then(|| {
                format!(
                    "{}#{}#{}",
                    rfc3339(order.created_at),
                    order.tenant_id,
                    order.order_id
                )
            }),
        );
        let pending = order
            .attempts
            .last()
            .filter(|a| {
                order.status == OrderStatus::Provisioning && a.state == AttemptState::Pending
            })
            .and_then(|a| {
                a.provider_order_ref
                    .as_ref()
                    .map(|r| (a.provider.clone(), r.clone()))
            });
        set_string(
            &mut item,
            "gsi1pk",
            pending.as_ref().map(|(p, r)| format!("PROVORDER#{p}#{r}")),
        );
        set_string(
            &mut item,
            "gsi1sk",
            pending.map(|_| order.order_id.to_string()),
        );
        Ok(item)
    }

    fn ledger_item(entry: &LedgerEntry) -> Result<Item, StoreError> {
        let mut item = to_item(
            entry,
            &order_pk(&entry.tenant_id, &entry.order_id),
            ledger_sk(entry.kind),
        )?;
        item.insert(
            "gsi1pk".to_owned(),
            AttributeValue::S(format!("T#{}#LEDGER", entry.tenant_id)),
        );
        item.insert(
            "gsi1sk".to_owned(),
            AttributeValue::S(format!(
                "{}#{}#{:?}",
                rfc3339(entry.at),
                entry.order_id,
                entry.kind
            )),
        );
        Ok(item)
    }

    fn esim_item(esim: &Esim) -> Result<Item, StoreError> {
        let mut item = to_item(esim, &esim_pk(&esim.tenant_id, &esim.esim_id), "ESIM")?;
        let pairs = [
            ("gsi1pk", format!("ICCID#{}#{}", esim.provider, esim.iccid)),
            ("gsi1sk", esim.esim_id.to_string()),
            (
                "gsi2pk",
                format!("T#{}#CUSTOMER#{}", esim.tenant_id, esim.customer_id),
            ),
            (
                "gsi2sk",
                format!("{}#{}", rfc3339(esim.created_at), esim.esim_id),
            ),
        ];
        for (name, value) in pairs {
            item.insert(name.to_owned(), AttributeValue::S(value));
        }
        // In the poll wheel's fast tier, so the first usage poll comes within 15 minutes; the
        // poller moves it to the tier it needs from then on.
        let place = crate::usage::WheelPlace::new_esim(&esim.esim_id);
        item.insert("gsi3pk".to_owned(), AttributeValue::S(place.partition_key));
        item.insert("gsi3sk".to_owned(), AttributeValue::S(place.sort_key));
        Ok(item)
    }
}

#[async_trait]
impl OrderStore for DynamoOrderStore {
    async fn accept(
        &self,
        order: &Order,
        record: &IdempotencyRecord,
        charge: &LedgerEntry,
        key_free_before: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let mut record_item = to_item(
            record,
            &idempotency_pk(&record.tenant_id, &record.key),
            "IDEM",
        )?;
        let created = record.created_at.unix_timestamp();
        record_item.insert("created_epoch".to_owned(), number(created));
        let retention = created - key_free_before.unix_timestamp();
        record_item.insert(
            super::dynamo::TTL.to_owned(),
            number(created + retention.max(0) + IDEMPOTENCY_TTL_SLACK_SECONDS),
        );
        let free_before = HashMap::from([(
            ":free_before".to_owned(),
            number(key_free_before.unix_timestamp()),
        )]);
        let entries = vec![
            self.table.conditional_put_entry(
                record_item,
                "attribute_not_exists(pk) OR created_epoch < :free_before",
                free_before,
            )?,
            self.table.put_new_entry(Self::order_item(order)?)?,
            self.table.put_new_entry(Self::ledger_item(charge)?)?,
        ];
        self.table
            .transact(&format!("order {}", order.order_id), entries)
            .await
    }

    async fn idempotency_record(
        &self,
        tenant_id: &TenantId,
        key: &str,
    ) -> Result<Option<IdempotencyRecord>, StoreError> {
        match self
            .table
            .get(&idempotency_pk(tenant_id, key), "IDEM")
            .await?
        {
            Some(item) => from_item(item).map(Some),
            None => Ok(None),
        }
    }

    async fn record_answer(
        &self,
        tenant_id: &TenantId,
        key: &str,
        order_id: &OrderId,
        status: u16,
        body: &str,
    ) -> Result<(), StoreError> {
        let outcome = self
            .table
            .client()
            .update_item()
            .table_name(self.table.name())
            .set_key(Some(super::dynamo::key(
                idempotency_pk(tenant_id, key),
                "IDEM",
            )))
            .update_expression(
                "SET response_status = :status, response_body = :body \
                 REMOVE answer_pending_until",
            )
            .condition_expression("order_id = :order")
            .expression_attribute_values(":status", number(i64::from(status)))
            .expression_attribute_values(":body", AttributeValue::S(body.to_owned()))
            .expression_attribute_values(":order", AttributeValue::S(order_id.to_string()))
            .send()
            .await;
        match outcome {
            Ok(_) => Ok(()),
            Err(error) => match super::dynamo::map_sdk_error(order_id.as_str(), error) {
                // The key was reused after its retention period: the new record is not ours.
                StoreError::Conflict { .. } => Ok(()),
                other => Err(other),
            },
        }
    }

    async fn get(
        &self,
        tenant_id: &TenantId,
        order_id: &OrderId,
    ) -> Result<Option<VersionedOrder>, StoreError> {
        match self
            .table
            .get(&order_pk(tenant_id, order_id), "ORDER")
            .await?
        {
            Some(item) => {
                let version = version_of(&item);
                Ok(Some(VersionedOrder {
                    order: from_item(item)?,
                    version,
                }))
            }
            None => Ok(None),
        }
    }

    async fn save(&self, order: &Order, expected_version: u64) -> Result<(), StoreError> {
        self.table
            .put_versioned(Self::order_item(order)?, expected_version)
            .await
    }

    async fn complete(
        &self,
        order: &Order,
        expected_version: u64,
        esims: &[Esim],
    ) -> Result<(), StoreError> {
        let mut entries = vec![
            self.table
                .put_versioned_entry(Self::order_item(order)?, expected_version)?,
        ];
        for esim in esims {
            entries.push(self.table.put_new_entry(Self::esim_item(esim)?)?);
        }
        self.table
            .transact(&format!("complete {}", order.order_id), entries)
            .await
    }

    async fn fail(
        &self,
        order: &Order,
        expected_version: u64,
        refund: &LedgerEntry,
    ) -> Result<(), StoreError> {
        let entries = vec![
            self.table
                .put_versioned_entry(Self::order_item(order)?, expected_version)?,
            self.table.put_new_entry(Self::ledger_item(refund)?)?,
        ];
        self.table
            .transact(&format!("refund {}", order.order_id), entries)
            .await
    }

    async fn take_lease(
        &self,
        tenant_id: &TenantId,
        order_id: &OrderId,
        holder: &str,
        now: OffsetDateTime,
        until: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let mut item = key(order_pk(tenant_id, order_id), "LEASE");
        item.insert("holder".to_owned(), AttributeValue::S(holder.to_owned()));
        item.insert("lease_until".to_owned(), number(until.unix_timestamp()));
        item.insert(
            super::dynamo::TTL.to_owned(),
            number(until.unix_timestamp() + 86_400),
        );
        let outcome = self
            .table
            .client()
            .put_item()
            .table_name(self.table.name())
            .set_item(Some(item))
            .condition_expression(
                "attribute_not_exists(pk) OR lease_until < :now OR holder = :holder",
            )
            .expression_attribute_values(":now", number(now.unix_timestamp()))
            .expression_attribute_values(":holder", AttributeValue::S(holder.to_owned()))
            .send()
            .await;
        match outcome {
            Ok(_) => Ok(true),
            Err(error) => match super::dynamo::map_sdk_error(order_id.as_str(), error) {
                StoreError::Conflict { .. } => Ok(false),
                other => Err(other),
            },
        }
    }

    async fn release_lease(
        &self,
        tenant_id: &TenantId,
        order_id: &OrderId,
        holder: &str,
    ) -> Result<(), StoreError> {
        let outcome = self
            .table
            .client()
            .delete_item()
            .table_name(self.table.name())
            .set_key(Some(key(order_pk(tenant_id, order_id), "LEASE")))
            .condition_expression("holder = :holder")
            .expression_attribute_values(":holder", AttributeValue::S(holder.to_owned()))
            .send()
            .await;
        match outcome {
            Ok(_) => Ok(()),
            Err(error) => match super::dynamo::map_sdk_error(order_id.as_str(), error) {
                // Someone else holds it now: theirs to release.
                StoreError::Conflict { .. } => Ok(()),
                other => Err(other),
            },
        }
    }

    async fn ledger(&self, tenant_id: &TenantId) -> Result<Vec<LedgerEntry>, StoreError> {
        let items = self
            .table
            .query_index("gsi1", "gsi1pk", &format!("T#{tenant_id}#LEDGER"))
            .await?;
        items.into_iter().map(from_item).collect()
    }

    async fn accepted_before(
        &self,
        before: OffsetDateTime,
    ) -> Result<Vec<(TenantId, OrderId)>, StoreError> {
        let cutoff = rfc3339(before);
        let items = self
            .table
            .query_index("gsi3", "gsi3pk", ACCEPTED_INDEX)
            .await?;
        let mut due = Vec::new();
        for item in items {
            let Some(AttributeValue::S(sort)) = item.get("gsi3sk") else {
                continue;
            };
            if sort.as_str() >= cutoff.as_str() {
                continue;
            }
            let order: Order = from_item(item)?;
            due.push((order.tenant_id, order.order_id));
        }
        Ok(due)
    }

    async fn esim(
        &self,
        tenant_id: &TenantId,
        esim_id: &EsimId,
    ) -> Result<Option<Esim>, StoreError> {
        match self.table.get(&esim_pk(tenant_id, esim_id), "ESIM").await? {
            Some(item) => from_item(item).map(Some),
            None => Ok(None),
        }
    }
}
