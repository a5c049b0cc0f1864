//! The usage poller's items in the table:
//! - eSIM items (`T#<tenant>#ESIM#<esim>` / `ESIM`) sit in the sparse index `gsi3`, the poll
//!   wheel: `POLL#<tier>#<part>` with sort key `<slot, 3 digits>#<esim>`. A poll updates the
//!   item only when something changed: a changed figure, a move to another tier or slot, or
//!   the end of the plan (both index attributes removed). The sweep's `ORDERS#ACCEPTED`
//!   partition never mixes with these.
//! - alert records in the eSIM's partition, sort key `ALERT#<esim>#<period>#<threshold>`,
//!   `status` publishing or published.
//! - `T#<tenant>#SETTINGS` / `USAGE_ALERTS`: a tenant's alert thresholds.
//! - `POLL#LEASE#<shard>` / `LEASE`: which poller works a shard, until when, and the wheel
//!   cursors of its partitions (`cursors`, JSON) saved when the lease is given back. Like the
//!   API key lookup it belongs to no tenant.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};
use time::OffsetDateTime;

use super::dynamo::{Item, Table, from_item, key, map_sdk_error, number, to_item};
use crate::domain::ids::{EsimId, TenantId};
use crate::ports::StoreError;
use crate::ports::usage::{
    AlertClaim, CurrentUsage, DuePage, Placement, PollTarget, PollWrite, StoreCalls, UsageStore,
    WheelCursors,
};
use crate::usage::{AlertKey, AlertSettings, WheelPlace};

const USAGE: &str = "usage";
const USAGE_MEASURED: &str = "usage_measured_epoch";
const USAGE_CHECKED: &str = "usage_checked_epoch";
const PUBLISHING: &str = "publishing";
const PUBLISHED: &str = "published";
const SETTINGS_SK: &str = "USAGE_ALERTS";
const CURSORS: &str = "cursors";
/// BatchGetItem takes at most 100 keys.
const BATCH_GET_LIMIT: usize = 100;
/// Alert records outlive any plan period.
const ALERT_RECORD_DAYS: i64 = 400;

fn esim_pk(tenant: &impl std::fmt::Display, esim: &impl std::fmt::Display) -> String {
    format!("T#{tenant}#ESIM#{esim}")
}

fn lease_pk(shard: u32) -> String {
    format!("POLL#LEASE#{shard:02}")
}

fn settings_pk(tenant: &TenantId) -> String {
    format!("T#{tenant}#SETTINGS")
}

fn string(item: &Item, name: &str) -> Option<String> {
    match item.get(name) {
        Some(AttributeValue::S(s)) => Some(s.clone()),
        _ => None,
    }
}

fn malformed(what: &str, error: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::Malformed {
        what: what.to_owned(),
        source: Box::new(error),
    }
}

/// The DynamoDB [`UsageStore`], counting its requests.
#[derive(Debug)]
pub struct DynamoUsageStore {
    table: Table,
    reads: AtomicU64,
    writes: AtomicU64,
}

impl DynamoUsageStore {
    /// A store over `table`.
    pub fn new(table: Table) -> Self {
        Self {
            table,
            reads: AtomicU64::new(0),
            writes: AtomicU64::new(0),
        }
    }

    fn read(&self) {
        self.reads.fetch_add(1, Ordering::Relaxed);
    }

    fn wrote(&self) {
        self.writes.fetch_add(1, Ordering::Relaxed);
    }

    fn target(item: Item) -> Result<PollTarget, StoreError> {
        let place = WheelPlace {
            partition_key: string(&item, "gsi3pk").unwrap_or_default(),
            sort_key: string(&item, "gsi3sk").unwrap_or_default(),
        };
        let mut item = item;
        let usage = match item.remove(USAGE) {
            Some(value) => Some(
                serde_dynamo::from_attribute_value(value)
                    .map_err(|e| malformed("esim usage", e))?,
            ),
            None => None,
        };
        Ok(PollTarget {
            esim: from_item(item)?,
            usage,
            place,
        })
    }
}

/// Ignores a failed condition: someone else got there first.
fn conflict_is_fine(result: Result<(), StoreError>) -> Result<bool, StoreError> {
    match result {
        Ok(()) => Ok(true),
        Err(StoreError::Conflict { .. }) => Ok(false),
        Err(other) => Err(other),
    }
}

#[async_trait]
impl UsageStore for DynamoUsageStore {
    async fn take_shard(
        &self,
        shard: u32,
        holder: &str,
        now: OffsetDateTime,
        until: OffsetDateTime,
    ) -> Result<Option<WheelCursors>, StoreError> {
        self.wrote();
        let what = format!("shard {shard} lease");
        let outcome = self
            .table
            .client()
            .update_item()
            .table_name(self.table.name())
            .set_key(Some(key(lease_pk(shard), "LEASE")))
            .update_expression("SET holder = :holder, lease_until = :until, #ttl = :ttl")
            .condition_expression(
                "attribute_not_exists(pk) OR lease_until < :now OR holder = :holder",
            )
            .expression_attribute_names("#ttl", super::dynamo::TTL)
            .expression_attribute_values(":now", number(now.unix_timestamp()))
            .expression_attribute_values(":until", number(until.unix_timestamp()))
            .expression_attribute_values(":ttl", number(until.unix_timestamp() + 86_400))
            .expression_attribute_values(":holder", AttributeValue::S(holder.to_owned()))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew)
            .send()
            .await
            .map_err(|e| map_sdk_error(&what, e));
        let output = match outcome {
            Ok(output) => output,
            Err(StoreError::Conflict { .. }) => return Ok(None),
            Err(other) => return Err(other),
        };
        let cursors = output
            .attributes
            .as_ref()
            .and_then(|item| string(item, CURSORS));
        match cursors {
            Some(text) => serde_json::from_str(&text)
                .map(Some)
                .map_err(|e| malformed("wheel cursors", e)),
            None => Ok(Some(WheelCursors::new())),
        }
    }

    async fn release_shard(
        &self,
        shard: u32,
        holder: &str,
        cursors: &WheelCursors,
    ) -> Result<(), StoreError> {
        self.wrote();
        let what = format!("shard {shard} lease");
        let text = serde_json::to_string(cursors).map_err(|e| malformed("wheel cursors", e))?;
        let outcome = self
            .table
            .client()
            .update_item()
            .table_name(self.table.name())
            .set_key(Some(key(lease_pk(shard), "LEASE")))
            .update_expression("SET lease_until = :zero, #c = :cursors")
            .condition_expression("holder = :holder")
            .expression_attribute_names("#c", CURSORS)
            .expression_attribute_values(":zero", number(0))
            .expression_attribute_values(":cursors", AttributeValue::S(text))
            .expression_attribute_values(":holder", AttributeValue::S(holder.to_owned()))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| map_sdk_error(&what, e));
        if !conflict_is_fine(outcome)? {
            // The lease ran out and another poller took it; its cursors win.
            tracing::info!(shard, "shard lease lost before release; cursors not saved");
        }
        Ok(())
    }

    async fn due(
        &self,
        partition_key: &str,
        from: &str,
        to: &str,
        limit: usize,
    ) -> Result<DuePage, StoreError> {
        self.read();
        let output = self
            .table
            .client()
            .query()
            .table_name(self.table.name())
            .index_name("gsi3")
            .key_condition_expression("gsi3pk = :p AND gsi3sk BETWEEN :from AND :to")
            .expression_attribute_values(":p", AttributeValue::S(partition_key.to_owned()))
            .expression_attribute_values(":from", AttributeValue::S(from.to_owned()))
            .expression_attribute_values(":to", AttributeValue::S(to.to_owned()))
            .limit(i32::try_from(limit).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(|e| map_sdk_error(partition_key, e))?;
        let more = output
            .last_evaluated_key
            .as_ref()
            .is_some_and(|last| !last.is_empty());
        let targets = output
            .items
            .unwrap_or_default()
            .into_iter()
            .map(Self::target)
            .collect::<Result<Vec<_>, _>>()?;
        let next = more
            .then(|| targets.last().map(|t| t.place.sort_key.clone()))
            .flatten();
        Ok(DuePage { targets, next })
    }

    async fn current(
        &self,
        tenant_id: &TenantId,
        esim_id: &EsimId,
    ) -> Result<Option<CurrentUsage>, StoreError> {
        self.read();
        let Some(item) = self.table.get(&esim_pk(tenant_id, esim_id), "ESIM").await? else {
            return Ok(None);
        };
        let checked_at = match item.get(USAGE_CHECKED) {
            Some(AttributeValue::N(n)) => n
                .parse::<i64>()
                .ok()
                .and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok()),
            _ => None,
        };
        let target = Self::target(item)?;
        Ok(Some(CurrentUsage {
            esim: target.esim,
            usage: target.usage,
            checked_at,
        }))
    }

    async fn record_poll(&self, target: &PollTarget, write: &PollWrite) -> Result<(), StoreError> {
        self.wrote();
        let esim = &target.esim;
        let what = format!("esim {} poll", esim.esim_id);
        let mut sets = vec!["#checked = :checked"];
        let mut condition =
            "attribute_exists(pk) AND gsi3pk = :due_pk AND gsi3sk = :due_key".to_owned();
        let mut request = self
            .table
            .client()
            .update_item()
            .table_name(self.table.name())
            .set_key(Some(key(esim_pk(&esim.tenant_id, &esim.esim_id), "ESIM")))
            .expression_attribute_names("#checked", USAGE_CHECKED)
            .expression_attribute_values(":checked", number(write.checked_at.unix_timestamp()))
            .expression_attribute_values(
                ":due_pk",
                AttributeValue::S(target.place.partition_key.clone()),
            )
            .expression_attribute_values(
                ":due_key",
                AttributeValue::S(target.place.sort_key.clone()),
            );
        if let Some(usage) = &write.usage {
            let measured = usage.measured_at.map_or(0, |at| at.unix_timestamp());
            let value = serde_dynamo::to_attribute_value(usage).map_err(|e| malformed(&what, e))?;
            sets.push("#u = :usage");
            sets.push("#m = :measured");
            condition.push_str(" AND (attribute_not_exists(#m) OR #m < :measured)");
            request = request
                .expression_attribute_names("#u", USAGE)
                .expression_attribute_names("#m", USAGE_MEASURED)
                .expression_attribute_values(":usage", value)
                .expression_attribute_values(":measured", number(measured));
        }
        let expression = match &write.placement {
            Placement::Keep => format!("SET {}", sets.join(", ")),
            Placement::Move(place) => {
                sets.push("gsi3pk = :next_pk");
                sets.push("gsi3sk = :next_key");
                request = request
                    .expression_attribute_values(
                        ":next_pk",
                        AttributeValue::S(place.partition_key.clone()),
                    )
                    .expression_attribute_values(
                        ":next_key",
                        AttributeValue::S(place.sort_key.clone()),
                    );
                format!("SET {}", sets.join(", "))
            }
            Placement::Remove => format!("SET {} REMOVE gsi3pk, gsi3sk", sets.join(", ")),
        };
        let outcome = request
            .update_expression(expression)
            .condition_expression(condition)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| map_sdk_error(&what, e));
        if !conflict_is_fine(outcome)? {
            // Another poller recorded this eSIM since it was read, or a webhook stored a later
            // figure; the eSIM stays where the other writer left it.
            tracing::debug!(esim_id = %esim.esim_id, "poll write lost to a newer write");
        }
        Ok(())
    }

    async fn alert_settings(
        &self,
        tenants: &[TenantId],
    ) -> Result<HashMap<TenantId, AlertSettings>, StoreError> {
        let mut found: HashMap<TenantId, AlertSettings> = tenants
            .iter()
            .map(|t| (t.clone(), AlertSettings::default()))
            .collect();
        for chunk in tenants.chunks(BATCH_GET_LIMIT) {
            let keys: Vec<Item> = chunk
                .iter()
                .map(|t| key(settings_pk(t), SETTINGS_SK))
                .collect();
            let mut pending = Some(
                KeysAndAttributes::builder()
                    .set_keys(Some(keys))
                    .build()
                    .map_err(|e| malformed("alert settings keys", e))?,
            );
            while let Some(request) = pending.take() {
                self.read();
                let output = self
                    .table
                    .client()
                    .batch_get_item()
                    .request_items(self.table.name(), request)
                    .send()
                    .await
                    .map_err(|e| map_sdk_error("alert settings", e))?;
                let items = output
                    .responses
                    .and_then(|mut r| r.remove(self.table.name()))
                    .unwrap_or_default();
                for item in items {
                    let tenant = string(&item, "pk")
                        .and_then(|pk| {
                            pk.strip_prefix("T#")?
                                .strip_suffix("#SETTINGS")
                                .map(str::to_owned)
                        })
                        .and_then(|t| TenantId::parse(t).ok());
                    if let Some(tenant) = tenant {
                        found.insert(tenant, from_item(item)?);
                    }
                }
                // DynamoDB may leave keys unprocessed under load; ask again for those.
                pending = output
                    .unprocessed_keys
                    .and_then(|mut u| u.remove(self.table.name()))
                    .filter(|k| !k.keys.is_empty());
            }
        }
        Ok(found)
    }

    async fn save_alert_settings(
        &self,
        tenant_id: &TenantId,
        settings: &AlertSettings,
    ) -> Result<(), StoreError> {
        self.wrote();
        let item = to_item(settings, &settings_pk(tenant_id), SETTINGS_SK)?;
        self.table
            .client()
            .put_item()
            .table_name(self.table.name())
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| map_sdk_error("alert settings", e))?;
        Ok(())
    }

    async fn claim_alert(
        &self,
        alert: &AlertKey,
        now: OffsetDateTime,
        stale_before: OffsetDateTime,
    ) -> Result<AlertClaim, StoreError> {
        self.wrote();
        let mut item = key(
            esim_pk(&alert.tenant_id, &alert.esim_id),
            alert.record_sort_key(),
        );
        let fields = [
            ("status", AttributeValue::S(PUBLISHING.to_owned())),
            ("event_id", AttributeValue::S(alert.event_id())),
            ("claimed_epoch", number(now.unix_timestamp())),
            (
                super::dynamo::TTL,
                number(now.unix_timestamp() + ALERT_RECORD_DAYS * 86_400),
            ),
        ];
        for (name, value) in fields {
            item.insert(name.to_owned(), value);
        }
        let outcome = self
            .table
            .client()
            .put_item()
            .table_name(self.table.name())
            .set_item(Some(item))
            .condition_expression(
                "attribute_not_exists(pk) OR (#s = :publishing AND claimed_epoch <= :stale)",
            )
            .expression_attribute_names("#s", "status")
            .expression_attribute_values(":publishing", AttributeValue::S(PUBLISHING.to_owned()))
            .expression_attribute_values(":stale", number(stale_before.unix_timestamp()))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| map_sdk_error("alert record", e));
        Ok(match conflict_is_fine(outcome)? {
            true => AlertClaim::Claimed,
            false => AlertClaim::Taken,
        })
    }

    async fn mark_alert_published(&self, alert: &AlertKey) -> Result<(), StoreError> {
        self.wrote();
        self.table
            .client()
            .update_item()
            .table_name(self.table.name())
            .set_key(Some(key(
                esim_pk(&alert.tenant_id, &alert.esim_id),
                alert.record_sort_key(),
            )))
            .update_expression("SET #s = :published")
            .expression_attribute_names("#s", "status")
            .expression_attribute_values(":published", AttributeValue::S(PUBLISHED.to_owned()))
            .send()
            .await
            .map_err(|e| map_sdk_error("alert record", e))?;
        Ok(())
    }

    fn calls(&self) -> StoreCalls {
        StoreCalls {
            reads: self.reads.load(Ordering::Relaxed),
            writes: self.writes.load(Ordering::Relaxed),
        }
    }
}
