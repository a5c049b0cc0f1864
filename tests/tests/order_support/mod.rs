//! Helpers the order and provisioning tests share: a stack with the provider simulator, a
//! tenant, plans the simulator sells, order calls over HTTP, and a tap on the event bus.

#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use aws_config::SdkConfig;
use esim_shared::aws::{AwsClients, DynamoOrderStore};
use esim_shared::domain::ids::{OrderId, TenantId};
use esim_shared::domain::plan::{CountryCode, DataAllowance, ProviderPlan};
use esim_shared::domain::routing::RoutingRules;
use esim_shared::ports::{OrderStore, ProviderApi};
use integration_tests::{admin, stack, table, unique_name};
use local_stack::LocalStack;
use serde_json::{Value, json};

/// A stack with the simulator, one tenant and its key.
pub struct World {
    pub stack: LocalStack,
    pub aws: SdkConfig,
    pub tenant: TenantId,
    pub key: String,
    pub http: reqwest::Client,
}

/// Starts a stack with the simulator; `env` adds function settings.
pub async fn world(env: &[(&str, &str)], background: bool) -> World {
    let (stack, aws) = stack(|o| {
        o.simulator = Some(provider_sim::SimConfig::default());
        o.retry_after = Some(Duration::from_secs(1));
        o.background = background;
        for (name, value) in env {
            o.extra_environment
                .insert((*name).to_owned(), (*value).to_owned());
        }
    })
    .await;
    let (tenant, key) = admin(&aws, &stack)
        .create_tenant("Acme Travel")
        .await
        .expect("tenant created");
    World {
        stack,
        aws,
        tenant: tenant.tenant_id,
        key: key.plaintext,
        http: reqwest::Client::new(),
    }
}

impl World {
    pub fn sim(&self) -> &provider_sim::SimHandle {
        self.stack.simulator.as_ref().expect("simulator")
    }

    pub fn providers(&self) -> Vec<Arc<dyn ProviderApi>> {
        esim_shared::providers::from_env(&local_stack::simulator_environment(self.sim()))
            .expect("provider settings")
    }

    pub fn store(&self) -> DynamoOrderStore {
        DynamoOrderStore::new(table(&self.aws, &self.stack))
    }

    /// A 1 GB / 7 day Airalo plan in a country where eSIM Access sells one the default
    /// routing rules accept as equivalent, with that plan.
    pub async fn plan_with_equivalent(&self) -> (ProviderPlan, ProviderPlan) {
        let providers = self.providers();
        let rules = RoutingRules::default();
        for country in ["JP", "KR", "TH", "SG", "FR", "DE", "ES", "IT", "GB", "US"] {
            let code = CountryCode::parse(country).expect("code");
            let airalo = providers[0].list_plans(Some(&code)).await.expect("plans");
            let access = providers[1].list_plans(Some(&code)).await.expect("plans");
            for plan in airalo.iter().filter(|p| is_small(p, &code)) {
                if let Some(other) = access.iter().find(|c| rules.is_equivalent(plan, c)) {
                    return (plan.clone(), other.clone());
                }
            }
        }
        panic!("the simulator sells no equivalent plans at both providers");
    }

    /// A single-country limited plan of `provider` (0 Airalo, 1 eSIM Access).
    pub async fn plan_of(&self, provider: usize) -> ProviderPlan {
        let code = CountryCode::parse("JP").expect("code");
        let plans = self.providers()[provider]
            .list_plans(Some(&code))
            .await
            .expect("plans");
        plans
            .into_iter()
            .find(|p| is_small(p, &code))
            .expect("a small JP plan")
    }

    pub async fn post_order(&self, key: Option<&str>, body: &Value) -> (u16, Value) {
        post_order(&self.http, &self.stack.base_url, &self.key, key, body).await
    }

    pub async fn get_order(&self, order_id: &str) -> (u16, Value) {
        let response = self
            .http
            .get(format!("{}/v1/orders/{order_id}", self.stack.base_url))
            .bearer_auth(&self.key)
            .send()
            .await
            .expect("request sent");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Polls the order until it is provisioned or failed.
    pub async fn settled(&self, order_id: &str, within: Duration) -> Value {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let (_, order) = self.get_order(order_id).await;
            let status = order["status"].as_str().unwrap_or_default().to_owned();
            if status == "provisioned" || status == "failed" {
                return order;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "order {order_id} did not settle: {order}"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// The sum of the tenant's ledger, in minor units.
    pub async fn ledger_sum(&self) -> i64 {
        let ledger = self.store().ledger(&self.tenant).await.expect("ledger");
        ledger.iter().map(|e| e.amount.amount_minor).sum()
    }

    /// Orders the simulator's `provider` received (`airalo` or `esimaccess`).
    pub fn provider_orders(&self, provider: provider_sim::Provider) -> usize {
        self.sim().provider_snapshot(provider).orders.len()
    }

    pub async fn order(&self, order_id: &str) -> esim_shared::domain::order::Order {
        let id = OrderId::parse(order_id).expect("id");
        self.store()
            .get(&self.tenant, &id)
            .await
            .expect("read")
            .expect("exists")
            .order
    }
}

fn is_small(plan: &ProviderPlan, country: &CountryCode) -> bool {
    plan.coverage.countries == [country.clone()]
        && matches!(plan.data, DataAllowance::Limited { mb } if mb <= 1024)
}

pub async fn post_order(
    http: &reqwest::Client,
    base_url: &str,
    api_key: &str,
    key: Option<&str>,
    body: &Value,
) -> (u16, Value) {
    let mut request = http
        .post(format!("{base_url}/v1/orders"))
        .bearer_auth(api_key)
        .json(body);
    if let Some(key) = key {
        request = request.header("Idempotency-Key", key);
    }
    let response = request.send().await.expect("request sent");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

pub fn order_body(plan: &ProviderPlan) -> Value {
    json!({
        "customer_id": "cus_1",
        "plan_id": plan.plan_id,
        "payment_method_ref": "pm_visa_1",
    })
}

/// A queue receiving every order event of the stack's bus, through a rule, as a consumer
/// of the platform would.
pub struct EventTap {
    sqs: aws_sdk_sqs::Client,
    url: String,
    seen: Vec<Value>,
}

impl EventTap {
    pub async fn new(world: &World) -> Self {
        let clients = AwsClients::new(&world.aws);
        let name = unique_name("tap");
        let created = clients
            .sqs
            .create_queue()
            .queue_name(&name)
            .send()
            .await
            .expect("queue");
        let url = created.queue_url.expect("url");
        let attributes = clients
            .sqs
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
            .send()
            .await
            .expect("attributes");
        let arn = attributes
            .attributes
            .and_then(|a| {
                a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn)
                    .cloned()
            })
            .expect("arn");
        let pattern = json!({
            "detail-type": ["OrderCharged", "OrderRefunded", "OrderProvisioned", "OrderFailed"]
        });
        clients
            .eventbridge
            .put_rule()
            .name(&name)
            .event_bus_name(&world.stack.resources.bus_name)
            .event_pattern(pattern.to_string())
            .send()
            .await
            .expect("rule");
        clients
            .eventbridge
            .put_targets()
            .rule(&name)
            .event_bus_name(&world.stack.resources.bus_name)
            .targets(
                aws_sdk_eventbridge::types::Target::builder()
                    .id("tap")
                    .arn(arn)
                    .build()
                    .expect("target"),
            )
            .send()
            .await
            .expect("targets");
        Self {
            sqs: clients.sqs,
            url,
            seen: Vec::new(),
        }
    }

    /// Drains the queue; returns every event seen so far.
    pub async fn events(&mut self) -> &[Value] {
        loop {
            let output = self
                .sqs
                .receive_message()
                .queue_url(&self.url)
                .max_number_of_messages(10)
                .wait_time_seconds(1)
                .send()
                .await
                .expect("receive");
            let messages = output.messages.unwrap_or_default();
            if messages.is_empty() {
                return &self.seen;
            }
            for message in messages {
                if let Some(body) = message.body.as_deref()
                    && let Ok(event) = serde_json::from_str::<Value>(body)
                {
                    self.seen.push(event);
                }
                if let Some(handle) = message.receipt_handle {
                    let _ = self
                        .sqs
                        .delete_message()
                        .queue_url(&self.url)
                        .receipt_handle(handle)
                        .send()
                        .await;
                }
            }
        }
    }

    /// How many distinct events of `detail_type` the bus carried for the order, and how many
    /// deliveries in all (an event may come twice; consumers dedupe on `event_id`).
    pub async fn count(&mut self, detail_type: &str, order_id: &str) -> (usize, usize) {
        let events = self.events().await;
        let matching: Vec<&Value> = events
            .iter()
            .filter(|e| e["detail-type"] == detail_type && e["detail"]["order_id"] == order_id)
            .collect();
        let mut distinct: HashMap<String, ()> = HashMap::new();
        for event in &matching {
            distinct.insert(event["detail"]["event_id"].to_string(), ());
        }
        (distinct.len(), matching.len())
    }
}
