//! The webhook intake's items in the table. None is under a tenant's prefix: a webhook is
//! matched to its tenant only through the order or eSIM it names.
//!
//! - `WEBHOOK#<provider>#<dedupe key>` / `WEBHOOK`: the dedupe record, `processing` with a
//!   lease while a delivery is handled, then `done` until its `ttl` (past every provider's
//!   retry horizon).
//! - `PARKED#<provider>#<reference>` / `FACT#<entry>`: a fact naming an order or ICCID not
//!   stored yet, with a `ttl`.
//! - orders a provider is working on are found through `gsi1` `PROVORDER#<provider>#<ref>`,
//!   written by the order store.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use time::OffsetDateTime;

use super::dynamo::{Item, TTL, Table, key, map_sdk_error, number};
use crate::domain::ids::{OrderId, ProviderId, TenantId};
use crate::ports::StoreError;
use crate::ports::webhooks::{Claim, ParkedEntry, ParkedFact, WebhookStore};

const PROCESSING: &str = "processing";
const DONE: &str = "done";
const FACT_PREFIX: &str = "FACT#";

fn dedupe_pk(provider: &ProviderId, dedupe_key: &str) -> String {
    format!("WEBHOOK#{provider}#{dedupe_key}")
}

fn parked_pk(provider: &ProviderId, reference: &str) -> String {
    format!("PARKED#{provider}#{reference}")
}

fn text<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    match item.get(name) {
        Some(AttributeValue::S(value)) => Some(value),
        _ => None,
    }
}

fn malformed(what: &str, source: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::Malformed {
        what: what.to_owned(),
        source: Box::new(source),
    }
}

/// The DynamoDB [`WebhookStore`].
#[derive(Debug, Clone)]
pub struct DynamoWebhookStore {
    table: Table,
}

impl DynamoWebhookStore {
    /// A store over `table`.
    pub fn new(table: Table) -> Self {
        Self { table }
    }
}

#[async_trait]
impl WebhookStore for DynamoWebhookStore {
    async fn claim(
        &self,
        provider: &ProviderId,
        dedupe_key: &str,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
    ) -> Result<Claim, StoreError> {
        let pk = dedupe_pk(provider, dedupe_key);
        let mut item = key(pk.clone(), "WEBHOOK");
        item.insert(
            "status".to_owned(),
            AttributeValue::S(PROCESSING.to_owned()),
        );
        item.insert(
            "lease_until".to_owned(),
            number(lease_until.unix_timestamp()),
        );
        item.insert(
            TTL.to_owned(),
            number(lease_until.unix_timestamp() + 86_400),
        );
        let outcome = self
            .table
            .client()
            .put_item()
            .table_name(self.table.name())
            .set_item(Some(item))
            .condition_expression(
                "attribute_not_exists(pk) OR (#s = :processing AND lease_until < :now)",
            )
            .expression_attribute_names("#s", "status")
            .expression_attribute_values(":processing", AttributeValue::S(PROCESSING.to_owned()))
            .expression_attribute_values(":now", number(now.unix_timestamp()))
            .send()
            .await;
        match outcome {
            Ok(_) => Ok(Claim::Claimed),
            Err(error) => match map_sdk_error(&pk, error) {
                StoreError::Conflict { .. } => {
                    let existing = self.table.get(&pk, "WEBHOOK").await?;
                    Ok(match existing.as_ref().and_then(|i| text(i, "status")) {
                        Some(DONE) => Claim::Done,
                        _ => Claim::InFlight,
                    })
                }
                other => Err(other),
            },
        }
    }

    async fn finish(
        &self,
        provider: &ProviderId,
        dedupe_key: &str,
        keep_until: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let pk = dedupe_pk(provider, dedupe_key);
        self.table
            .client()
            .update_item()
            .table_name(self.table.name())
            .set_key(Some(key(pk.clone(), "WEBHOOK")))
            .update_expression("SET #s = :done, #t = :ttl REMOVE lease_until")
            .expression_attribute_names("#s", "status")
            .expression_attribute_names("#t", TTL)
            .expression_attribute_values(":done", AttributeValue::S(DONE.to_owned()))
            .expression_attribute_values(":ttl", number(keep_until.unix_timestamp()))
            .send()
            .await
            .map_err(|e| map_sdk_error(&pk, e))?;
        Ok(())
    }

    async fn release(&self, provider: &ProviderId, dedupe_key: &str) -> Result<(), StoreError> {
        let pk = dedupe_pk(provider, dedupe_key);
        let outcome = self
            .table
            .client()
            .delete_item()
            .table_name(self.table.name())
            .set_key(Some(key(pk.clone(), "WEBHOOK")))
            .condition_expression("#s = :processing")
            .expression_attribute_names("#s", "status")
            .expression_attribute_values(":processing", AttributeValue::S(PROCESSING.to_owned()))
            .send()
            .await;
        match outcome {
            Ok(_) => Ok(()),
            Err(error) => match map_sdk_error(&pk, error) {
                StoreError::Conflict { .. } => Ok(()),
                other => Err(other),
            },
        }
    }

    async fn park(
        &self,
        provider: &ProviderId,
        reference: &str,
        entries: &[ParkedEntry],
        keep_until: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let pk = parked_pk(provider, reference);
        for entry in entries {
            let fact = serde_json::to_string(&entry.fact).map_err(|e| malformed(&pk, e))?;
            let mut item = key(pk.clone(), format!("{FACT_PREFIX}{}", entry.entry_id));
            item.insert("fact".to_owned(), AttributeValue::S(fact));
            item.insert(TTL.to_owned(), number(keep_until.unix_timestamp()));
            self.table
                .client()
                .put_item()
                .table_name(self.table.name())
                .set_item(Some(item))
                .send()
                .await
                .map_err(|e| map_sdk_error(&pk, e))?;
        }
        Ok(())
    }

    async fn parked(
        &self,
        provider: &ProviderId,
        reference: &str,
    ) -> Result<Vec<ParkedEntry>, StoreError> {
        let pk = parked_pk(provider, reference);
        let items = self.table.query_prefix(&pk, FACT_PREFIX).await?;
        items
            .iter()
            .map(|item| {
                let entry_id = text(item, "sk")
                    .and_then(|sk| sk.strip_prefix(FACT_PREFIX))
                    .unwrap_or_default()
                    .to_owned();
                let fact: ParkedFact = serde_json::from_str(text(item, "fact").unwrap_or_default())
                    .map_err(|e| malformed(&pk, e))?;
                Ok(ParkedEntry { entry_id, fact })
            })
            .collect()
    }

    async fn unpark(
        &self,
        provider: &ProviderId,
        reference: &str,
        entry_id: &str,
    ) -> Result<(), StoreError> {
        let pk = parked_pk(provider, reference);
        self.table
            .client()
            .delete_item()
            .table_name(self.table.name())
            .set_key(Some(key(pk.clone(), format!("{FACT_PREFIX}{entry_id}"))))
            .send()
            .await
            .map_err(|e| map_sdk_error(&pk, e))?;
        Ok(())
    }

    async fn pending_order(
        &self,
        provider: &ProviderId,
        provider_order_ref: &str,
    ) -> Result<Option<(TenantId, OrderId)>, StoreError> {
        let partition = format!("PROVORDER#{provider}#{provider_order_ref}");
        let items = self.table.query_index("gsi1", "gsi1pk", &partition).await?;
        let Some(item) = items.first() else {
            return Ok(None);
        };
        let tenant = TenantId::parse(text(item, "tenant_id").unwrap_or_default())
            .map_err(|e| malformed(&partition, e))?;
        let order = OrderId::parse(text(item, "order_id").unwrap_or_default())
            .map_err(|e| malformed(&partition, e))?;
        Ok(Some((tenant, order)))
    }
}
