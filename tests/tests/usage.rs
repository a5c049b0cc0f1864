//! The usage poller against moto and the provider simulator: each threshold crossed gives
//! exactly one alert on the notifications queue (an SQS target of the bus), also with two
//! pollers at once and after a crash; a top-up re-arms the alerts; the usage route shows the
//! merged figure.

mod order_support;

use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use async_trait::async_trait;
use esim_shared::aws::{AwsClients, DynamoEsimStore, DynamoUsageStore, EventBridgePublisher};
use esim_shared::domain::esim::Esim;
use esim_shared::domain::events::DomainEvent;
use esim_shared::domain::ids::EsimId;
use esim_shared::domain::plan::{CountryCode, DataAllowance, ProviderPlan};
use esim_shared::ports::esims::EsimStore;
use esim_shared::ports::usage::{PollTarget, UsageStore};
use esim_shared::ports::{Clock, EventPublisher, PublishError};
use esim_shared::usage::{
    AlertSettings, INDEX_PARTITIONS, PollerSettings, UsagePollService, index_partition_key,
    slot_first_key, slot_last_key, wheel_partition,
};
use integration_tests::table;
use order_support::{World, post_order, world};
use serde_json::{Value, json};
use time::{Duration, OffsetDateTime};

const FAST: &[(&str, &str)] = &[
    ("PROVISIONING_LEASE_SECONDS", "5"),
    ("PROVISIONING_POLL_SECONDS", "1"),
    ("ORDER_SYNC_WAIT_MS", "8000"),
];

/// A clock the test moves, so each round finds the eSIM due without waiting hours.
#[derive(Debug)]
struct TestClock(Mutex<OffsetDateTime>);

impl TestClock {
    fn new() -> Arc<Self> {
        Arc::new(Self(Mutex::new(
            OffsetDateTime::now_utc() + Duration::minutes(1),
        )))
    }

    fn advance(&self, by: Duration) {
        *self.0.lock().expect("clock") += by;
    }

    fn set(&self, at: OffsetDateTime) {
        *self.0.lock().expect("clock") = at;
    }
}

impl Clock for TestClock {
    fn now(&self) -> OffsetDateTime {
        *self.0.lock().expect("clock")
    }
}

/// A bus that is down until told otherwise, as in a crash between claim and publication.
#[derive(Debug)]
struct FlakyBus {
    inner: EventBridgePublisher,
    down: Mutex<bool>,
}

#[async_trait]
impl EventPublisher for FlakyBus {
    async fn publish(&self, events: &[DomainEvent]) -> Result<(), PublishError> {
        if *self.down.lock().expect("flag") {
            return Err(PublishError::Rejected {
                failed: events.len(),
                total: events.len(),
                first_error: "bus unavailable".to_owned(),
            });
        }
        self.inner.publish(events).await
    }
}

struct Usage {
    w: World,
    esim: Esim,
    total_mb: u64,
    clock: Arc<TestClock>,
    bus: Arc<FlakyBus>,
    seen: Vec<Value>,
}

impl Usage {
    /// An activated Airalo eSIM with a top-up-able plan, no background consumption.
    async fn start() -> Self {
        let w = world(FAST, true).await;
        w.sim()
            .set_knobs(
                provider_sim::Provider::Airalo,
                &json!({"data_mb_per_minute": 0.0}),
            )
            .expect("knobs");
        let plan = top_up_plan(&w).await;
        let DataAllowance::Limited { mb: total_mb } = plan.data else {
            panic!("limited plan");
        };
        let body = json!({"customer_id": "cus_1", "plan_id": plan.plan_id,
            "payment_method_ref": "pm_visa_1"});
        let (status, order) =
            post_order(&w.http, &w.stack.base_url, &w.key, Some("u1"), &body).await;
        assert!(status < 300, "order accepted: {status} {order}");
        let order_id = order["order_id"].as_str().expect("order id").to_owned();
        let settled = w.settled(&order_id, StdDuration::from_secs(30)).await;
        assert_eq!(settled["status"], "provisioned", "{settled}");
        let esim_id = w.order(&order_id).await.esim_ids[0].clone();
        let esim = DynamoEsimStore::new(table(&w.aws, &w.stack))
            .get(&w.tenant, &esim_id)
            .await
            .expect("read")
            .expect("stored")
            .esim;
        // Download, install and activation happen within two simulated minutes.
        w.sim().advance(180.0);
        let clients = AwsClients::new(&w.aws);
        let bus = Arc::new(FlakyBus {
            inner: EventBridgePublisher::new(
                clients.eventbridge,
                w.stack.resources.bus_name.clone(),
                "esim-backend",
            ),
            down: Mutex::new(false),
        });
        Self {
            w,
            esim,
            total_mb,
            clock: TestClock::new(),
            bus,
            seen: Vec::new(),
        }
    }

    fn poller(&self, holder: &str) -> UsagePollService {
        UsagePollService::new(
            Arc::new(DynamoUsageStore::new(table(&self.w.aws, &self.w.stack))),
            Arc::new(self.w.store()),
            self.w.providers(),
            self.bus.clone(),
            self.clock.clone(),
            PollerSettings {
                holder: holder.to_owned(),
                ..PollerSettings::default()
            },
        )
    }

    /// Moves past the eSIM's next poll and runs one round.
    async fn round(&self) -> esim_shared::usage::RoundSummary {
        self.clock.advance(Duration::hours(2));
        self.poller("p1").run_round(None).await.expect("round")
    }

    /// Consumes until `percent_left` of `total_mb` remains.
    async fn consume_to(&self, percent_left: u64, total_mb: u64, used_so_far: u64) -> u64 {
        let target_used = total_mb - total_mb * percent_left / 100;
        let mb = target_used.saturating_sub(used_so_far);
        let url = format!(
            "{}/_sim/airalo/sims/{}/consume",
            self.w.sim().base_url(),
            self.esim.iccid
        );
        let answer = self
            .w
            .http
            .post(url)
            .json(&json!({ "mb": mb as f64 }))
            .send()
            .await
            .expect("consume");
        assert!(
            answer.status().is_success(),
            "consumed: {:?}",
            answer.text().await
        );
        target_used
    }

    /// Drains the notifications queue; every alert delivered so far.
    async fn alerts(&mut self) -> Vec<Value> {
        let sqs = AwsClients::new(&self.w.aws).sqs;
        let url = self.w.stack.resources.queues["NotificationsQueue"]
            .url
            .clone();
        loop {
            let output = sqs
                .receive_message()
                .queue_url(&url)
                .max_number_of_messages(10)
                .wait_time_seconds(1)
                .send()
                .await
                .expect("receive");
            let messages = output.messages.unwrap_or_default();
            if messages.is_empty() {
                break;
            }
            for message in messages {
                let body: Value =
                    serde_json::from_str(message.body.as_deref().unwrap_or("null")).expect("json");
                self.seen.push(body);
                sqs.delete_message()
                    .queue_url(&url)
                    .receipt_handle(message.receipt_handle.unwrap_or_default())
                    .send()
                    .await
                    .expect("delete");
            }
        }
        self.seen
            .iter()
            .filter(|e| e["detail"]["esim_id"] == self.esim.esim_id.as_str())
            .cloned()
            .collect()
    }

    /// Low-balance thresholds alerted so far, in delivery order (duplicates included).
    async fn low_balance(&mut self) -> Vec<u64> {
        self.alerts()
            .await
            .iter()
            .filter(|e| e["detail-type"] == "LowBalance")
            .map(|e| {
                e["detail"]["threshold_percent"]
                    .as_u64()
                    .expect("threshold")
            })
            .collect()
    }

    /// The figure stored on the eSIM.
    async fn target_usage(&self) -> esim_shared::ports::provider::UsageReport {
        DynamoEsimStore::new(table(&self.w.aws, &self.w.stack))
            .get(&self.w.tenant, &self.esim.esim_id)
            .await
            .expect("read")
            .expect("stored")
            .usage
            .expect("figure stored")
    }

    /// Usage queries the simulated Airalo received.
    fn usage_queries(&self) -> usize {
        self.w
            .sim()
            .provider_snapshot(provider_sim::Provider::Airalo)
            .usage_queries
            .len()
    }

    async fn target(&self) -> PollTarget {
        let store = DynamoUsageStore::new(table(&self.w.aws, &self.w.stack));
        for partition in 0..INDEX_PARTITIONS {
            let (tier, part) = wheel_partition(partition);
            let page = store
                .due(
                    &index_partition_key(tier, part),
                    &slot_first_key(0),
                    &slot_last_key(tier.minutes() - 1),
                    100,
                )
                .await
                .expect("due");
            if let Some(target) = page
                .targets
                .into_iter()
                .find(|t| t.esim.esim_id == self.esim.esim_id)
            {
                return target;
            }
        }
        panic!("the eSIM is in the poll wheel")
    }
}

async fn top_up_plan(w: &World) -> ProviderPlan {
    let code = CountryCode::parse("JP").expect("code");
    let plans = w.providers()[0]
        .list_plans(Some(&code))
        .await
        .expect("plans");
    plans
        .into_iter()
        .find(|p| {
            p.supports_top_up
                && p.validity_days >= 7
                && matches!(p.data, DataAllowance::Limited { mb } if (1000..=10_240).contains(&mb))
        })
        .expect("a top-up-able JP plan of a week or more")
}

#[tokio::test]
async fn each_threshold_crossed_alerts_once_and_a_top_up_rearms_them() {
    let mut u = Usage::start().await;
    let total = u.total_mb;

    let first = u.round().await;
    let used = u.consume_to(15, total, 0).await;
    u.round().await;
    u.round().await;
    let after_twenty = u.low_balance().await;
    u.consume_to(5, total, used).await;
    u.round().await;
    u.round().await;
    let after_ten = u.low_balance().await;
    u.w.providers()[0]
        .top_up(
            &u.esim.iccid,
            &format!("{}-topup", top_up_plan(&u.w).await.provider_plan_code),
            "topup-test-1",
        )
        .await
        .expect("top-up");
    u.round().await;
    let refreshed = u.target_usage().await;
    let new_total = refreshed.total_mb.expect("limited");
    let remaining = refreshed.remaining_mb.expect("limited");
    let used_now = new_total - remaining;
    u.consume_to(15, new_total, used_now).await;
    u.round().await;
    let after_top_up = u.low_balance().await;

    assert_eq!(first.polled, 1, "the new eSIM was due at once: {first:?}");
    assert_eq!(after_twenty, vec![20]);
    assert_eq!(after_ten, vec![20, 10]);
    assert!(
        new_total > total,
        "the top-up grew the plan: {new_total} > {total}"
    );
    assert_eq!(after_top_up, vec![20, 10, 20]);
    let alerts = u.alerts().await;
    let offer = &alerts[0]["detail"]["renewal"];
    assert!(offer["plan_id"].is_string() && offer["price"]["amount_minor"].is_number());
    assert!(alerts[0]["detail"]["remaining_percent"].as_u64() <= Some(15));
}

#[tokio::test]
async fn a_tenants_own_thresholds_replace_the_defaults() {
    let mut u = Usage::start().await;
    let total = u.total_mb;
    let settings = AlertSettings {
        low_balance_percent: vec![50],
        expiry_days: vec![1],
    };
    DynamoUsageStore::new(table(&u.w.aws, &u.w.stack))
        .save_alert_settings(&u.w.tenant, &settings)
        .await
        .expect("settings saved");

    u.round().await;
    let used = u.consume_to(45, total, 0).await;
    u.round().await;
    u.round().await;
    let at_forty_five = u.low_balance().await;
    u.consume_to(15, total, used).await;
    u.round().await;
    u.round().await;
    let at_fifteen = u.low_balance().await;

    assert_eq!(at_forty_five, vec![50]);
    assert_eq!(at_fifteen, vec![50], "20% is not this tenant's threshold");
}

#[tokio::test]
async fn two_pollers_at_once_still_alert_once() {
    let mut u = Usage::start().await;
    u.round().await;
    u.consume_to(15, u.total_mb, 0).await;
    u.clock.advance(Duration::hours(2));

    let target = u.target().await;
    let (a, b) = (u.poller("a"), u.poller("b"));
    let (one, two) = tokio::join!(a.poll_one(&target), b.poll_one(&target));
    let (c, d) = (u.poller("c"), u.poller("d"));
    u.clock.advance(Duration::hours(2));
    let (three, four) = tokio::join!(c.run_round(None), d.run_round(None));

    let published = one.expect("poll").alerts + two.expect("poll").alerts;
    assert_eq!(published, 1);
    let (three, four) = (three.expect("round"), four.expect("round"));
    assert_eq!(three.alerts + four.alerts, 0);
    assert_eq!(u.low_balance().await, vec![20]);
}

#[tokio::test]
async fn a_rerun_after_a_crash_before_publishing_alerts_once() {
    let mut u = Usage::start().await;
    u.round().await;
    u.consume_to(15, u.total_mb, 0).await;
    *u.bus.down.lock().expect("flag") = true;

    u.clock.advance(Duration::hours(2));
    let crashed = u.poller("p1").run_round(None).await.expect("round");
    let during = u.low_balance().await;
    *u.bus.down.lock().expect("flag") = false;
    // The unpublished claim blocks nobody for long: the next poll after it goes stale
    // publishes; the eSIM was rescheduled to come back that soon.
    u.clock.advance(Duration::minutes(6));
    let rerun = u.poller("p2").run_round(None).await.expect("round");
    u.round().await;
    u.round().await;

    assert_eq!(crashed.alerts, 0);
    assert!(during.is_empty());
    assert_eq!(rerun.alerts, 1, "{rerun:?}");
    assert_eq!(u.low_balance().await, vec![20]);
}

#[tokio::test]
async fn expiry_thresholds_alert_once_each_and_polling_stops_at_the_end_of_the_plan() {
    let mut u = Usage::start().await;
    u.round().await;
    let end = u
        .target_usage()
        .await
        .expires_at
        .expect("activated plans end");
    let expiring = |alerts: &[Value]| -> Vec<u64> {
        alerts
            .iter()
            .filter(|e| e["detail-type"] == "PlanExpiring")
            .map(|e| e["detail"]["threshold_days"].as_u64().expect("days"))
            .collect()
    };

    u.clock.set(end - Duration::hours(60));
    u.poller("p1").run_round(None).await.expect("round");
    u.round().await;
    let three_days = expiring(&u.alerts().await);
    u.clock.set(end - Duration::hours(12));
    u.poller("p1").run_round(None).await.expect("round");
    u.round().await;
    let one_day = expiring(&u.alerts().await);
    let queries = u.usage_queries();
    u.clock.set(end + Duration::hours(1));
    let at_end = u.poller("p1").run_round(None).await.expect("round");
    u.clock.advance(Duration::days(2));
    let after_end = u.poller("p1").run_round(None).await.expect("round");

    assert_eq!(three_days, vec![3]);
    assert_eq!(one_day, vec![3, 1]);
    assert_eq!(at_end.retired, 1, "{at_end:?}");
    assert_eq!(after_end.polled + after_end.retired, 0, "{after_end:?}");
    assert_eq!(
        u.usage_queries(),
        queries,
        "no provider call after the plan ended"
    );
    let alerts = u.alerts().await;
    let last = alerts.last().expect("an alert");
    assert!(last["detail"]["renewal"]["plan_id"].is_string(), "{last}");
    assert_eq!(last["detail"]["remaining_percent"], 100);
}

#[tokio::test]
async fn the_usage_route_shows_remaining_total_percent_freshness_and_expiry() {
    let u = Usage::start().await;
    u.round().await;
    u.consume_to(40, u.total_mb, 0).await;
    u.round().await;
    let get = |id: String| {
        let request =
            u.w.http
                .get(format!("{}/v1/esims/{id}/usage", u.w.stack.base_url))
                .bearer_auth(&u.w.key);
        async move { request.send().await.expect("answered") }
    };

    let found = get(u.esim.esim_id.to_string()).await;
    let missing = get(EsimId::from_ulid(ulid::Ulid::new()).to_string()).await;

    assert_eq!(found.status(), 200);
    let body: Value = found.json().await.expect("json");
    assert_eq!(body["total_mb"], u.total_mb);
    assert_eq!(body["remaining_mb"], u.total_mb * 40 / 100);
    let percent = body["remaining_percent"].as_u64().expect("percent");
    assert!((39..=40).contains(&percent), "{body}");
    assert!(body["as_of"].is_string(), "{body}");
    assert_eq!(body["used_mb"], u.total_mb - u.total_mb * 40 / 100);
    assert!(body["expires_at"].is_string(), "{body}");
    assert_eq!(missing.status(), 404);
}

/// Benchmark over the real protocol: the request counts `poll_cost` prints, confirmed at 1k
/// eSIMs on moto. eSIM items are written as the order store writes them (with their poll
/// index attributes); the provider is an in-memory script, as only table requests are
/// measured. Run with `-- --nocapture` to see the figures.
#[tokio::test]
async fn benchmark_table_requests_per_round_at_1k_esims_on_moto() {
    use esim_shared::aws::dynamo::to_item;
    use esim_shared::domain::ids::{ProviderId, TenantId};
    use esim_shared::domain::lifecycle::ProfileState;
    use esim_shared::ports::provider::UsageReport;
    use esim_shared::testing::InMemoryPublisher;
    use esim_shared::usage::WheelPlace;
    use esim_shared::usage::memory::{ScriptedUsageProvider, sample_esim};

    let (stack, aws) = integration_tests::stack(|o| o.background = false).await;
    let table = table(&aws, &stack);
    let provider_id = ProviderId::parse("airalo").expect("id");
    let provider = Arc::new(ScriptedUsageProvider::new(provider_id.clone(), 300));
    let start = OffsetDateTime::now_utc() - Duration::minutes(5);
    let figure = |esim: &Esim, remaining: u64| UsageReport {
        iccid: esim.iccid.clone(),
        remaining_mb: Some(remaining),
        total_mb: Some(10_000),
        expires_at: Some(start + Duration::days(30)),
        measured_at: None,
        state: Some(ProfileState::Activated),
    };
    let count = 1_000u64;
    let mut esims = Vec::new();
    let mut writes = Vec::new();
    for n in 0..count {
        let tenant = TenantId::parse(format!("tenant-{}", n % 10)).expect("tenant");
        let esim = sample_esim(&tenant, &provider_id, n, start).expect("esim");
        provider.set(figure(&esim, 9_000));
        let mut item = to_item(
            &esim,
            &format!("T#{}#ESIM#{}", esim.tenant_id, esim.esim_id),
            "ESIM",
        )
        .expect("item");
        let place = WheelPlace::new_esim(&esim.esim_id);
        item.insert(
            "gsi3pk".to_owned(),
            aws_sdk_dynamodb::types::AttributeValue::S(place.partition_key),
        );
        item.insert(
            "gsi3sk".to_owned(),
            aws_sdk_dynamodb::types::AttributeValue::S(place.sort_key),
        );
        writes.push(
            aws_sdk_dynamodb::types::WriteRequest::builder()
                .put_request(
                    aws_sdk_dynamodb::types::PutRequest::builder()
                        .set_item(Some(item))
                        .build()
                        .expect("put"),
                )
                .build(),
        );
        esims.push(esim);
    }
    for chunk in writes.chunks(25) {
        table
            .client()
            .batch_write_item()
            .request_items(table.name(), chunk.to_vec())
            .send()
            .await
            .expect("seeded");
    }
    let clock = TestClock::new();
    let store = Arc::new(DynamoUsageStore::new(table.clone()));
    let poller = UsagePollService::new(
        store.clone(),
        Arc::new(esim_shared::aws::DynamoOrderStore::new(table.clone())),
        vec![provider.clone()],
        Arc::new(InMemoryPublisher::default()),
        clock.clone(),
        PollerSettings {
            budget: std::time::Duration::from_secs(3600),
            ..PollerSettings::default()
        },
    );
    poller.run_round(None).await.expect("first round");
    for esim in esims.iter().step_by(3) {
        provider.set(figure(esim, 8_500));
    }
    clock.advance(Duration::hours(2));
    let before = store.calls();

    let round = poller.run_round(None).await.expect("measured round");

    let after = store.calls();
    let (reads, writes) = (after.reads - before.reads, after.writes - before.writes);
    println!(
        "moto, {count} eSIMs: reads/round {reads} = {:.2} per 100 eSIMs; writes/round {writes}: \
         {} eSIM writes for {} changed = {:.3} per changed eSIM, none for {} unchanged, {} lease",
        reads as f64 * 100.0 / count as f64,
        round.esim_writes,
        round.changed,
        round.esim_writes as f64 / round.changed.max(1) as f64,
        round.polled - round.changed,
        2 * round.shards_polled
    );
    assert_eq!(round.polled, count);
    assert_eq!(round.changed, count.div_ceil(3));
    assert!(
        reads * 100 <= count,
        "at most one read per 100 eSIMs: {reads}"
    );
    assert_eq!(
        round.esim_writes, round.changed,
        "one write per changed eSIM"
    );
    assert_eq!(
        writes,
        round.changed + 2,
        "no write for unchanged eSIMs; two for the shard lease"
    );
}
