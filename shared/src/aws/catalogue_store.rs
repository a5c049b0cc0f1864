//! The catalogue cache, plan-id index and tenant pricing and routing rules in the table.
//!
//! Items:
//! - `CATALOGUE#C#<country>` or `CATALOGUE#COUNTRIES` / `P#<provider>`: one provider's
//!   answer for a scope (plans or countries as JSON, `fetched_at`, `stale`, the refresh lease
//!   `lease_until` / `lease_owner`, `failed_at`), with `gsi1pk = CATALOGUE#P#<provider>` so
//!   that a provider's entries can be invalidated together. All providers' entries for one
//!   scope share a partition: a cold read is one Query.
//! - `CATALOGUE#PLAN#<plan id>` / `PLAN`: which country's entry lists the plan.
//! - `T#<tenant>` / `PRICING` and `T#<tenant>` / `ROUTING`: the tenant's rules as JSON.
//!
//! The catalogue is the same for every tenant, so its items carry no tenant prefix; the
//! tenant's rules do. Times are epoch milliseconds; `ttl` is epoch seconds for DynamoDB TTL.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use time::OffsetDateTime;

use super::dynamo::{Item, TTL, Table, key, map_sdk_error, number};
use crate::catalogue::pricing::PricingRules;
use crate::catalogue::store::{CacheEntry, CatalogueStore, Invalidation, Scope};
use crate::domain::ids::{PlanId, ProviderId, TenantId};
use crate::domain::plan::CountryCode;
use crate::domain::routing::RoutingRules;
use crate::ports::StoreError;

const PROVIDER_INDEX: &str = "gsi1";
/// DynamoDB takes at most 25 puts per BatchWriteItem.
const BATCH: usize = 25;
/// How often unprocessed batch items are sent again before giving up.
const BATCH_RETRIES: u32 = 5;

fn scope_pk(scope: &Scope) -> String {
    match scope {
        Scope::Country(country) => format!("CATALOGUE#C#{}", country.as_str()),
        Scope::Countries => "CATALOGUE#COUNTRIES".to_owned(),
    }
}

fn provider_sk(provider: &ProviderId) -> String {
    format!("P#{provider}")
}

fn provider_index_pk(provider: &ProviderId) -> String {
    format!("CATALOGUE#P#{provider}")
}

fn plan_pk(plan_id: &PlanId) -> String {
    format!("CATALOGUE#PLAN#{plan_id}")
}

fn tenant_pk(tenant_id: &TenantId) -> String {
    format!("T#{tenant_id}")
}

fn millis(at: OffsetDateTime) -> AttributeValue {
    let ms = at.unix_timestamp_nanos() / 1_000_000;
    AttributeValue::N(ms.to_string())
}

fn epoch_seconds(at: OffsetDateTime) -> AttributeValue {
    number(at.unix_timestamp())
}

fn malformed(what: &str, source: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::Malformed {
        what: what.to_owned(),
        source: Box::new(source),
    }
}

fn string<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    match item.get(name) {
        Some(AttributeValue::S(s)) => Some(s),
        _ => None,
    }
}

fn time_of(item: &Item, name: &str) -> Option<OffsetDateTime> {
    match item.get(name) {
        Some(AttributeValue::N(n)) => {
            let ms: i128 = n.parse().ok()?;
            OffsetDateTime::from_unix_timestamp_nanos(ms * 1_000_000).ok()
        }
        _ => None,
    }
}

fn json<T: serde::de::DeserializeOwned + Default>(
    item: &Item,
    name: &str,
    what: &str,
) -> Result<T, StoreError> {
    match string(item, name) {
        Some(text) => serde_json::from_str(text).map_err(|e| malformed(what, e)),
        None => Ok(T::default()),
    }
}

fn to_json(value: &impl serde::Serialize, what: &str) -> Result<AttributeValue, StoreError> {
    serde_json::to_string(value)
        .map(AttributeValue::S)
        .map_err(|e| malformed(what, e))
}

fn entry_from_item(scope: &Scope, item: &Item) -> Result<CacheEntry, StoreError> {
    let what = format!("{}/{}", scope_pk(scope), string(item, "sk").unwrap_or("?"));
    let provider = string(item, "sk")
        .and_then(|sk| sk.strip_prefix("P#"))
        .and_then(|name| ProviderId::parse(name).ok())
        .ok_or_else(|| StoreError::Malformed {
            what: what.clone(),
            source: "sort key names no provider".into(),
        })?;
    Ok(CacheEntry {
        scope: scope.clone(),
        provider,
        plans: json(item, "plans", &what)?,
        countries: json(item, "countries", &what)?,
        fetched_at: time_of(item, "fetched_at"),
        stale: matches!(item.get("stale"), Some(AttributeValue::Bool(true))),
        lease_until: time_of(item, "lease_until"),
        failed_at: time_of(item, "failed_at"),
    })
}

/// The DynamoDB [`CatalogueStore`].
#[derive(Debug, Clone)]
pub struct DynamoCatalogueStore {
    table: Table,
}

impl DynamoCatalogueStore {
    /// A store over `table`.
    pub fn new(table: Table) -> Self {
        Self { table }
    }

    async fn put(&self, item: Item, what: &str) -> Result<(), StoreError> {
        self.table
            .client()
            .put_item()
            .table_name(self.table.name())
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| map_sdk_error(what, e))?;
        Ok(())
    }

    async fn mark_item_stale(&self, pk: String, sk: String) -> Result<bool, StoreError> {
        let what = format!("{pk}/{sk}");
        let outcome = self
            .table
            .client()
            .update_item()
            .table_name(self.table.name())
            .set_key(Some(key(pk, sk)))
            .update_expression("SET stale = :true")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":true", AttributeValue::Bool(true))
            .send()
            .await
            .map_err(|e| map_sdk_error(&what, e));
        match outcome {
            Ok(_) => Ok(true),
            Err(StoreError::Conflict { .. }) => Ok(false),
            Err(error) => Err(error),
        }
    }

    async fn rules<T: serde::de::DeserializeOwned + Default>(
        &self,
        tenant_id: &TenantId,
        sk: &str,
    ) -> Result<Option<T>, StoreError> {
        let pk = tenant_pk(tenant_id);
        let Some(item) = self.table.get(&pk, sk).await? else {
            return Ok(None);
        };
        json(&item, "rules", &format!("{pk}/{sk}")).map(Some)
    }

    async fn save_rules(
        &self,
        tenant_id: &TenantId,
        sk: &str,
        rules: &impl serde::Serialize,
    ) -> Result<(), StoreError> {
        let pk = tenant_pk(tenant_id);
        let what = format!("{pk}/{sk}");
        let mut item = key(pk, sk);
        item.insert("rules".to_owned(), to_json(rules, &what)?);
        self.put(item, &what).await
    }
}

#[async_trait]
impl CatalogueStore for DynamoCatalogueStore {
    async fn entries(&self, scope: &Scope) -> Result<Vec<CacheEntry>, StoreError> {
        let items = self.table.query_prefix(&scope_pk(scope), "P#").await?;
        items
            .iter()
            .map(|item| entry_from_item(scope, item))
            .collect()
    }

    async fn entry(
        &self,
        scope: &Scope,
        provider: &ProviderId,
    ) -> Result<Option<CacheEntry>, StoreError> {
        let item = self
            .table
            .get(&scope_pk(scope), &provider_sk(provider))
            .await?;
        item.map(|item| entry_from_item(scope, &item)).transpose()
    }

    async fn acquire_lease(
        &self,
        scope: &Scope,
        provider: &ProviderId,
        owner: &str,
        seen_fetched_at: Option<OffsetDateTime>,
        now: OffsetDateTime,
        until: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let (pk, sk) = (scope_pk(scope), provider_sk(provider));
        let what = format!("{pk}/{sk}");
        let (unchanged, seen) = match seen_fetched_at {
            Some(at) => ("fetched_at = :seen", Some(millis(at))),
            None => ("attribute_not_exists(fetched_at)", None),
        };
        let condition =
            format!("(attribute_not_exists(lease_until) OR lease_until < :now) AND {unchanged}");
        let outcome = self
            .table
            .client()
            .update_item()
            .table_name(self.table.name())
            .set_key(Some(key(pk.clone(), sk)))
            .update_expression(
                "SET lease_until = :until, lease_owner = :owner, gsi1pk = :gpk, gsi1sk = :gsk \
                 REMOVE failed_at",
            )
            .condition_expression(condition)
            .set_expression_attribute_values(
                seen.map(|at| std::collections::HashMap::from([(":seen".to_owned(), at)])),
            )
            .expression_attribute_values(":until", millis(until))
            .expression_attribute_values(":now", millis(now))
            .expression_attribute_values(":owner", AttributeValue::S(owner.to_owned()))
            .expression_attribute_values(":gpk", AttributeValue::S(provider_index_pk(provider)))
            .expression_attribute_values(":gsk", AttributeValue::S(pk))
            .send()
            .await
            .map_err(|e| map_sdk_error(&what, e));
        match outcome {
            Ok(_) => Ok(true),
            Err(StoreError::Conflict { .. }) => Ok(false),
            Err(error) => Err(error),
        }
    }

    async fn record_failure(
        &self,
        scope: &Scope,
        provider: &ProviderId,
        owner: &str,
        at: OffsetDateTime,
        retry_at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let (pk, sk) = (scope_pk(scope), provider_sk(provider));
        let what = format!("{pk}/{sk}");
        let outcome = self
            .table
            .client()
            .update_item()
            .table_name(self.table.name())
            .set_key(Some(key(pk, sk)))
            .update_expression("SET failed_at = :at, lease_until = :retry")
            .condition_expression("lease_owner = :owner")
            .expression_attribute_values(":at", millis(at))
            .expression_attribute_values(":retry", millis(retry_at))
            .expression_attribute_values(":owner", AttributeValue::S(owner.to_owned()))
            .send()
            .await
            .map_err(|e| map_sdk_error(&what, e));
        match outcome {
            // Another caller took the lease over after ours ran out: its outcome stands.
            Ok(_) | Err(StoreError::Conflict { .. }) => Ok(()),
            Err(error) => Err(error),
        }
    }

    // One item holds a provider's whole answer for a country: a provider listing more than
    // roughly 700 plans for one country would pass DynamoDB's 400 KB item limit and fail
    // to save (the plans are still served from that request, but not cached). The put is
    // unconditional, so an invalidation landing while a refresh is in flight is overwritten
    // by that refresh's answer, which may predate it.
    async fn save_entry(
        &self,
        entry: &CacheEntry,
        delete_at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let pk = scope_pk(&entry.scope);
        let sk = provider_sk(&entry.provider);
        let what = format!("{pk}/{sk}");
        let mut item = key(pk.clone(), sk);
        item.insert("plans".to_owned(), to_json(&entry.plans, &what)?);
        item.insert("countries".to_owned(), to_json(&entry.countries, &what)?);
        if let Some(at) = entry.fetched_at {
            item.insert("fetched_at".to_owned(), millis(at));
        }
        item.insert("stale".to_owned(), AttributeValue::Bool(entry.stale));
        item.insert(
            "gsi1pk".to_owned(),
            AttributeValue::S(provider_index_pk(&entry.provider)),
        );
        item.insert("gsi1sk".to_owned(), AttributeValue::S(pk));
        item.insert(TTL.to_owned(), epoch_seconds(delete_at));
        self.put(item, &what).await
    }

    async fn plan_country(&self, plan_id: &PlanId) -> Result<Option<CountryCode>, StoreError> {
        let pk = plan_pk(plan_id);
        let Some(item) = self.table.get(&pk, "PLAN").await? else {
            return Ok(None);
        };
        Ok(string(&item, "country").and_then(|c| CountryCode::parse(c).ok()))
    }

    async fn index_plans(
        &self,
        plans: &[(PlanId, CountryCode)],
        delete_at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        // The same plan may be listed twice in one answer; a batch must not repeat a key.
        let unique: std::collections::BTreeMap<&PlanId, &CountryCode> =
            plans.iter().map(|(p, c)| (p, c)).collect();
        let requests: Vec<WriteRequest> = unique
            .into_iter()
            .map(|(plan_id, country)| {
                let mut item = key(plan_pk(plan_id), "PLAN");
                item.insert(
                    "country".to_owned(),
                    AttributeValue::S(country.as_str().to_owned()),
                );
                item.insert(TTL.to_owned(), epoch_seconds(delete_at));
                let put = PutRequest::builder()
                    .set_item(Some(item))
                    .build()
                    .map_err(|e| malformed("plan index entry", e))?;
                Ok(WriteRequest::builder().put_request(put).build())
            })
            .collect::<Result<_, StoreError>>()?;
        for chunk in requests.chunks(BATCH) {
            let mut pending = chunk.to_vec();
            for attempt in 0..=BATCH_RETRIES {
                if pending.is_empty() {
                    break;
                }
                if attempt > 0 {
                    tokio::time::sleep(std::time::Duration::from_millis(50 << attempt)).await;
                }
                let output = self
                    .table
                    .client()
                    .batch_write_item()
                    .request_items(self.table.name(), pending)
                    .send()
                    .await
                    .map_err(|e| map_sdk_error("plan index", e))?;
                pending = output
                    .unprocessed_items
                    .and_then(|mut left| left.remove(self.table.name()))
                    .unwrap_or_default();
            }
            if !pending.is_empty() {
                return Err(StoreError::Throttled(
                    "plan index writes stayed unprocessed".into(),
                ));
            }
        }
        Ok(())
    }

    async fn mark_stale(&self, target: &Invalidation) -> Result<u32, StoreError> {
        let items = match target {
            Invalidation::Country(country) => {
                self.table
                    .query_prefix(&scope_pk(&Scope::Country(country.clone())), "P#")
                    .await?
            }
            Invalidation::Provider(provider) => {
                self.table
                    .query_index(PROVIDER_INDEX, "gsi1pk", &provider_index_pk(provider))
                    .await?
            }
        };
        let mut marked = 0;
        for item in &items {
            let (Some(pk), Some(sk)) = (string(item, "pk"), string(item, "sk")) else {
                continue;
            };
            if self.mark_item_stale(pk.to_owned(), sk.to_owned()).await? {
                marked += 1;
            }
        }
        Ok(marked)
    }

    async fn pricing(&self, tenant_id: &TenantId) -> Result<Option<PricingRules>, StoreError> {
        self.rules(tenant_id, "PRICING").await
    }

    async fn save_pricing(
        &self,
        tenant_id: &TenantId,
        rules: &PricingRules,
    ) -> Result<(), StoreError> {
        self.save_rules(tenant_id, "PRICING", rules).await
    }

    async fn routing(&self, tenant_id: &TenantId) -> Result<Option<RoutingRules>, StoreError> {
        let pk = tenant_pk(tenant_id);
        let Some(item) = self.table.get(&pk, "ROUTING").await? else {
            return Ok(None);
        };
        let what = format!("{pk}/ROUTING");
        match string(&item, "rules") {
            Some(text) => serde_json::from_str(text)
                .map(Some)
                .map_err(|e| malformed(&what, e)),
            None => Ok(None),
        }
    }

    async fn save_routing(
        &self,
        tenant_id: &TenantId,
        rules: &RoutingRules,
    ) -> Result<(), StoreError> {
        self.save_rules(tenant_id, "ROUTING", rules).await
    }
}
