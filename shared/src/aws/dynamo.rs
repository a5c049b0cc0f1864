//! The one DynamoDB table: key layout, conditional writes, optimistic locking and
//! transactions, with SDK errors mapped onto [`StoreError`].
//!
//! Keys are prefixed by tenant (`T#<tenant>#...` in `pk`), so that an IAM
//! `dynamodb:LeadingKeys` condition could isolate tenants. The one exception is the API key
//! lookup item (`APIKEY#<sha256>`), which must be found before the tenant is known; it holds
//! only the hash, the tenant id and the key's status.

use std::collections::HashMap;

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::ports::StoreError;

/// A stored item.
pub type Item = HashMap<String, AttributeValue>;

/// The attribute holding an item's version for optimistic locking.
pub const VERSION: &str = "version";
/// The attribute DynamoDB's TTL deletes expired items by (epoch seconds).
pub const TTL: &str = "ttl";

/// A handle on the table: a client and a name. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Table {
    client: aws_sdk_dynamodb::Client,
    name: String,
}

/// Builds a key attribute pair.
pub fn key(pk: impl Into<String>, sk: impl Into<String>) -> Item {
    HashMap::from([
        ("pk".to_owned(), AttributeValue::S(pk.into())),
        ("sk".to_owned(), AttributeValue::S(sk.into())),
    ])
}

/// Serialises a record and adds its key.
pub fn to_item(record: &impl Serialize, pk: &str, sk: &str) -> Result<Item, StoreError> {
    let mut item: Item = serde_dynamo::to_item(record).map_err(|e| StoreError::Malformed {
        what: format!("{pk}/{sk}"),
        source: Box::new(e),
    })?;
    item.extend(key(pk, sk));
    Ok(item)
}

/// Deserialises a stored item into a record, ignoring key and bookkeeping attributes.
pub fn from_item<T: DeserializeOwned>(item: Item) -> Result<T, StoreError> {
    let what = describe(&item);
    serde_dynamo::from_item(item).map_err(|e| StoreError::Malformed {
        what,
        source: Box::new(e),
    })
}

fn describe(item: &Item) -> String {
    let part = |name: &str| match item.get(name) {
        Some(AttributeValue::S(s)) => s.clone(),
        _ => "?".to_owned(),
    };
    format!("{}/{}", part("pk"), part("sk"))
}

/// Maps an SDK error onto the store's taxonomy. Conditional check failures, alone or inside a
/// cancelled transaction, are conflicts; throttling is retryable; the rest is unavailability.
pub fn map_sdk_error<E, R>(what: &str, error: SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    let code = error.code().unwrap_or_default().to_owned();
    let message = error.message().unwrap_or_default().to_owned();
    match code.as_str() {
        "ConditionalCheckFailedException" => StoreError::Conflict {
            what: what.to_owned(),
        },
        "TransactionCanceledException" if message.contains("ConditionalCheckFailed") => {
            StoreError::Conflict {
                what: what.to_owned(),
            }
        }
        "TransactionConflictException" => StoreError::Conflict {
            what: what.to_owned(),
        },
        "ProvisionedThroughputExceededException"
        | "ThrottlingException"
        | "RequestLimitExceeded" => StoreError::Throttled(Box::new(error)),
        _ => StoreError::Unavailable(Box::new(error)),
    }
}

impl Table {
    /// A handle on table `name`.
    pub fn new(client: aws_sdk_dynamodb::Client, name: impl Into<String>) -> Self {
        Self {
            client,
            name: name.into(),
        }
    }

    /// The table's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The client, for operations this helper does not wrap.
    pub fn client(&self) -> &aws_sdk_dynamodb::Client {
        &self.client
    }

    /// Reads one item with a strongly consistent read.
    pub async fn get(&self, pk: &str, sk: &str) -> Result<Option<Item>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.name)
            .set_key(Some(key(pk, sk)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| map_sdk_error(&format!("{pk}/{sk}"), e))?;
        Ok(output.item)
    }

    /// Writes an item that must not exist yet; `Conflict` when it does. Sets version 1.
    pub async fn put_new(&self, mut item: Item) -> Result<(), StoreError> {
        let what = describe(&item);
        item.insert(VERSION.to_owned(), AttributeValue::N("1".to_owned()));
        self.client
            .put_item()
            .table_name(&self.name)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await
            .map_err(|e| map_sdk_error(&what, e))?;
        Ok(())
    }

    /// Replaces an item only if its stored version is `expected_version`, storing
    /// `expected_version + 1`. `Conflict` when another writer got there first.
    pub async fn put_versioned(
        &self,
        mut item: Item,
        expected_version: u64,
    ) -> Result<(), StoreError> {
        let what = describe(&item);
        let next = expected_version + 1;
        item.insert(VERSION.to_owned(), AttributeValue::N(next.to_string()));
        self.client
            .put_item()
            .table_name(&self.name)
            .set_item(Some(item))
            .condition_expression("#v = :expected")
            .expression_attribute_names("#v", VERSION)
            .expression_attribute_values(
                ":expected",
                AttributeValue::N(expected_version.to_string()),
            )
            .send()
            .await
            .map_err(|e| map_sdk_error(&what, e))?;
        Ok(())
    }

    /// All items of a partition whose sort key starts with `sk_prefix`, following pages.
    pub async fn query_prefix(&self, pk: &str, sk_prefix: &str) -> Result<Vec<Item>, StoreError> {
        let mut items = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let output = self
                .client
                .query()
                .table_name(&self.name)
                .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                .expression_attribute_values(":pk", AttributeValue::S(pk.to_owned()))
                .expression_attribute_values(":prefix", AttributeValue::S(sk_prefix.to_owned()))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| map_sdk_error(pk, e))?;
            items.extend(output.items.unwrap_or_default());
            match output.last_evaluated_key {
                Some(next) if !next.is_empty() => start = Some(next),
                _ => return Ok(items),
            }
        }
    }

    /// All items of a GSI partition, following pages.
    pub async fn query_index(
        &self,
        index: &str,
        partition_attribute: &str,
        partition: &str,
    ) -> Result<Vec<Item>, StoreError> {
        let mut items = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let output = self
                .client
                .query()
                .table_name(&self.name)
                .index_name(index)
                .key_condition_expression("#p = :p")
                .expression_attribute_names("#p", partition_attribute)
                .expression_attribute_values(":p", AttributeValue::S(partition.to_owned()))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| map_sdk_error(partition, e))?;
            items.extend(output.items.unwrap_or_default());
            match output.last_evaluated_key {
                Some(next) if !next.is_empty() => start = Some(next),
                _ => return Ok(items),
            }
        }
    }

    /// Writes several items atomically: all land or none does. A failed condition on any of
    /// them is a `Conflict`. DynamoDB takes at most 100 items per transaction.
    pub async fn transact(
        &self,
        what: &str,
        items: Vec<TransactWriteItem>,
    ) -> Result<(), StoreError> {
        self.client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
            .map_err(|e| map_sdk_error(what, e))?;
        Ok(())
    }

    /// A transaction entry writing an item that must not exist yet, at version 1.
    pub fn put_new_entry(&self, mut item: Item) -> Result<TransactWriteItem, StoreError> {
        item.insert(VERSION.to_owned(), AttributeValue::N("1".to_owned()));
        let put = Put::builder()
            .table_name(&self.name)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(|e| StoreError::Malformed {
                what: "put entry".to_owned(),
                source: Box::new(e),
            })?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// A transaction entry replacing an item only at `expected_version`.
    pub fn put_versioned_entry(
        &self,
        mut item: Item,
        expected_version: u64,
    ) -> Result<TransactWriteItem, StoreError> {
        item.insert(
            VERSION.to_owned(),
            AttributeValue::N((expected_version + 1).to_string()),
        );
        let put = Put::builder()
            .table_name(&self.name)
            .set_item(Some(item))
            .condition_expression("#v = :expected")
            .expression_attribute_names("#v", VERSION)
            .expression_attribute_values(
                ":expected",
                AttributeValue::N(expected_version.to_string()),
            )
            .build()
            .map_err(|e| StoreError::Malformed {
                what: "put entry".to_owned(),
                source: Box::new(e),
            })?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// A transaction entry writing an item under an arbitrary condition; `values` binds the
    /// condition's `:placeholders`.
    pub fn conditional_put_entry(
        &self,
        item: Item,
        condition: &str,
        values: Item,
    ) -> Result<TransactWriteItem, StoreError> {
        let put = Put::builder()
            .table_name(&self.name)
            .set_item(Some(item))
            .condition_expression(condition)
            .set_expression_attribute_values((!values.is_empty()).then_some(values))
            .build()
            .map_err(|e| StoreError::Malformed {
                what: "put entry".to_owned(),
                source: Box::new(e),
            })?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// A transaction entry that only checks an item exists.
    pub fn exists_entry(&self, pk: &str, sk: &str) -> Result<TransactWriteItem, StoreError> {
        let check = aws_sdk_dynamodb::types::ConditionCheck::builder()
            .table_name(&self.name)
            .set_key(Some(key(pk, sk)))
            .condition_expression("attribute_exists(pk)")
            .build()
            .map_err(|e| StoreError::Malformed {
                what: "check entry".to_owned(),
                source: Box::new(e),
            })?;
        Ok(TransactWriteItem::builder().condition_check(check).build())
    }
}

/// Sets a string attribute, or removes it when `value` is `None`.
pub fn set_string(item: &mut Item, name: &str, value: Option<String>) {
    match value {
        Some(value) => item.insert(name.to_owned(), AttributeValue::S(value)),
        None => item.remove(name),
    };
}

/// A number attribute value.
pub fn number(value: i64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

/// The version stored on an item, 0 when it has none.
pub fn version_of(item: &Item) -> u64 {
    match item.get(VERSION) {
        Some(AttributeValue::N(n)) => n.parse().unwrap_or(0),
        _ => 0,
    }
}
