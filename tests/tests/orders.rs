//! `POST /v1/orders` and `GET /v1/orders/{order_id}` on the local stack with the provider
//! simulator: idempotency under concurrency, key scoping, synchronous and asynchronous
//! providers, and the AWS calls one order costs.

mod order_support;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;
use esim_shared::aws::{DynamoOrderStore, SqsQueue, Table};
use esim_shared::catalogue::{CatalogueConfig, CatalogueService};
use esim_shared::domain::order::CreateOrderRequest;
use esim_shared::orders::OrderService;
use esim_shared::ports::OrderStore;
use esim_shared::ports::{SystemClock, UlidGenerator};
use order_support::{EventTap, World, order_body, post_order, world};
use provider_sim::Provider;
use serde_json::{Value, json};

const FAST: &[(&str, &str)] = &[
    ("PROVISIONING_LEASE_SECONDS", "5"),
    ("PROVISIONING_POLL_SECONDS", "1"),
    ("ORDER_SYNC_WAIT_MS", "8000"),
];

#[tokio::test]
async fn fifty_concurrent_identical_requests_make_one_provider_order_and_one_charge() {
    let w = world(FAST, true).await;
    let mut tap = EventTap::new(&w).await;
    let plan = w.plan_of(0).await;
    let body = order_body(&plan);

    let mut tasks = Vec::new();
    for _ in 0..50 {
        let (http, base, api_key, body) = (
            w.http.clone(),
            w.stack.base_url.clone(),
            w.key.clone(),
            body.clone(),
        );
        tasks.push(tokio::spawn(async move {
            post_order(&http, &base, &api_key, Some("same-key"), &body).await
        }));
    }
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.expect("task"));
    }

    let statuses: Vec<u16> = answers.iter().map(|(s, _)| *s).collect();
    assert!(statuses.iter().all(|s| *s < 500), "no 5xx: {statuses:?}");
    let served: Vec<&Value> = answers
        .iter()
        .filter(|(s, _)| *s != 409)
        .map(|(_, b)| b)
        .collect();
    assert!(!served.is_empty(), "someone got the order: {statuses:?}");
    assert!(
        statuses.iter().all(|s| [201, 202, 409].contains(s)),
        "{statuses:?}"
    );
    let distinct: HashSet<String> = served.iter().map(|b| b.to_string()).collect();
    assert_eq!(
        distinct.len(),
        1,
        "every answer is the replayed one: {distinct:?}"
    );
    let order_id = served[0]["order_id"].as_str().expect("order id").to_owned();
    w.settled(&order_id, Duration::from_secs(30)).await;
    assert_eq!(w.provider_orders(Provider::Airalo), 1);
    assert_eq!(w.provider_orders(Provider::EsimAccess), 0);
    assert_eq!(tap.count("OrderCharged", &order_id).await.0, 1);
    let ledger = w.store().ledger(&w.tenant).await.expect("ledger");
    assert_eq!(ledger.len(), 1, "{ledger:?}");
    assert_eq!(
        w.ledger_sum().await,
        w.order(&order_id).await.total.amount_minor
    );
}

#[tokio::test]
async fn the_same_key_with_another_body_is_refused_and_another_tenant_gets_its_own_order() {
    let w = world(&[("ORDER_SYNC_WAIT_MS", "0")], false).await;
    let plan = w.plan_of(0).await;
    let body = order_body(&plan);
    let mut other_body = body.clone();
    other_body["quantity"] = json!(2);
    let (_, other_key) = integration_tests::admin(&w.aws, &w.stack)
        .create_tenant("Other Travel")
        .await
        .expect("tenant");

    let (first_status, first) = w.post_order(Some("k-1"), &body).await;
    let (reused_status, reused) = w.post_order(Some("k-1"), &other_body).await;
    let (replay_status, replay) = w.post_order(Some("k-1"), &body).await;
    let (other_status, other) = post_order(
        &w.http,
        &w.stack.base_url,
        &other_key.plaintext,
        Some("k-1"),
        &body,
    )
    .await;

    assert_eq!(first_status, 202);
    assert_eq!(first["status"], "accepted");
    assert_eq!(reused_status, 422);
    assert_eq!(reused["error"]["code"], "idempotency_key_reused");
    assert_eq!((replay_status, &replay), (first_status, &first));
    assert_eq!(other_status, 202);
    assert_ne!(other["order_id"], first["order_id"]);
    let foreign = w
        .http
        .get(format!(
            "{}/v1/orders/{}",
            w.stack.base_url,
            first["order_id"].as_str().unwrap_or_default()
        ))
        .bearer_auth(&other_key.plaintext)
        .send()
        .await
        .expect("sent");
    assert_eq!(
        foreign.status().as_u16(),
        404,
        "another tenant's order is not found"
    );
    let ledger = w.store().ledger(&w.tenant).await.expect("ledger");
    assert_eq!(ledger.len(), 1, "one charge for the first tenant");
    assert_eq!(
        ledger[0].amount.amount_minor,
        first["total"]["amount_minor"].as_i64().unwrap_or(0)
    );
}

#[tokio::test]
async fn bad_order_requests_get_clear_answers_and_write_nothing() {
    let w = world(&[("ORDER_SYNC_WAIT_MS", "0")], false).await;
    let plan = w.plan_of(0).await;
    let body = order_body(&plan);
    let mut unknown_plan = body.clone();
    unknown_plan["plan_id"] = json!("airalo:no-such-plan");
    let mut bad_quantity = body.clone();
    bad_quantity["quantity"] = json!(11);

    let (no_key, no_key_body) = w.post_order(None, &body).await;
    let (no_plan, _) = w.post_order(Some("k-2"), &unknown_plan).await;
    let (too_many, too_many_body) = w.post_order(Some("k-3"), &bad_quantity).await;
    let (missing, _) = w.get_order("ord_01j00000000000000000000000").await;
    let (garbage, _) = w.get_order("not-an-order").await;

    assert_eq!(no_key, 400);
    assert!(
        no_key_body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("Idempotency-Key")
    );
    assert_eq!(no_plan, 404);
    assert_eq!(too_many, 400);
    assert!(
        too_many_body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("quantity")
    );
    assert_eq!((missing, garbage), (404, 404));
    assert!(
        w.store()
            .ledger(&w.tenant)
            .await
            .expect("ledger")
            .is_empty()
    );
}

#[tokio::test]
async fn a_synchronous_provider_answers_201_with_the_profile_and_replays_it() {
    let w = world(FAST, true).await;
    let plan = w.plan_of(0).await;
    let body = order_body(&plan);

    let (status, order) = w.post_order(Some("sync-1"), &body).await;
    let (replay_status, replay) = w.post_order(Some("sync-1"), &body).await;

    assert_eq!(status, 201, "{order}");
    assert_eq!(order["status"], "provisioned");
    let esim = &order["esims"][0];
    assert!(
        esim["lpa"]
            .as_str()
            .unwrap_or_default()
            .starts_with("LPA:1$")
    );
    assert_eq!(esim["state"], "provisioned");
    assert_eq!((replay_status, &replay), (201, &order));
    let (get_status, fetched) = w
        .get_order(order["order_id"].as_str().unwrap_or_default())
        .await;
    assert_eq!(get_status, 200);
    assert_eq!(fetched["esims"], order["esims"]);
}

#[tokio::test]
async fn an_asynchronous_provider_answers_202_and_the_order_completes_by_polling() {
    let w = world(FAST, true).await;
    let plan = w.plan_of(1).await;

    let (status, order) = w.post_order(Some("async-1"), &order_body(&plan)).await;
    let order_id = order["order_id"].as_str().expect("id").to_owned();
    let settled = w.settled(&order_id, Duration::from_secs(40)).await;

    assert_eq!(status, 202, "{order}");
    assert_eq!(order["status"], "accepted");
    assert_eq!(settled["status"], "provisioned", "{settled}");
    assert_eq!(settled["esims"].as_array().map(Vec::len), Some(1));
    assert_eq!(w.provider_orders(Provider::EsimAccess), 1);
}

/// Counts AWS calls by operation name (the `X-Amz-Target` header of JSON protocols).
#[derive(Debug, Default)]
struct CallCounter {
    transactions: AtomicUsize,
    sends: AtomicUsize,
    other: AtomicUsize,
}

#[derive(Debug, Clone)]
struct Counting(Arc<CallCounter>);

impl Intercept for Counting {
    fn name(&self) -> &'static str {
        "CallCounter"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let target = context
            .request()
            .headers()
            .get("x-amz-target")
            .unwrap_or_default();
        let counter = if target.ends_with(".TransactWriteItems") {
            &self.0.transactions
        } else if target.ends_with(".SendMessage") {
            &self.0.sends
        } else {
            &self.0.other
        };
        counter.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

async fn counted_service(w: &World, counter: Arc<CallCounter>) -> OrderService {
    let dynamodb = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&w.aws)
            .interceptor(Counting(counter.clone()))
            .build(),
    );
    let sqs = aws_sdk_sqs::Client::from_conf(
        aws_sdk_sqs::config::Builder::from(&w.aws)
            .interceptor(Counting(counter))
            .build(),
    );
    let table = Table::new(dynamodb, w.stack.resources.table_name.clone());
    let queue_url = w.stack.resources.queues["ProvisioningQueue"].url.clone();
    let catalogue = CatalogueService::new(
        table.clone(),
        w.providers(),
        Arc::new(SystemClock),
        CatalogueConfig::load(&std::collections::HashMap::<String, String>::new())
            .expect("defaults"),
    );
    OrderService::new(
        Arc::new(DynamoOrderStore::new(table)),
        Arc::new(catalogue),
        Arc::new(SqsQueue::new(sqs, queue_url)),
        Arc::new(SystemClock),
        Arc::new(UlidGenerator::default()),
    )
}

/// Benchmark: AWS calls per order on the API path, with the catalogue warm as it is on a warm
/// container. Run with `-- --nocapture` to see the figures.
#[tokio::test]
async fn benchmark_aws_calls_per_order_on_the_api_path() {
    let w = world(&[], false).await;
    let plan = w.plan_of(1).await;
    let counter = Arc::new(CallCounter::default());
    let service = counted_service(&w, counter.clone()).await;
    let request: CreateOrderRequest = serde_json::from_value(order_body(&plan)).expect("request");
    service
        .create(&w.tenant, Some("warm-up"), &request)
        .await
        .expect("warm-up order");
    let cold = (
        counter.transactions.swap(0, Ordering::SeqCst),
        counter.sends.swap(0, Ordering::SeqCst),
        counter.other.swap(0, Ordering::SeqCst),
    );

    let orders = 20;
    let started = std::time::Instant::now();
    for n in 0..orders {
        service
            .create(&w.tenant, Some(&format!("bench-{n}")), &request)
            .await
            .expect("order");
    }
    let elapsed = started.elapsed();

    let per_order = |c: &AtomicUsize| c.load(Ordering::SeqCst) as f64 / f64::from(orders);
    println!(
        "first order (cold catalogue): {} TransactWriteItems, {} SendMessage, {} other calls",
        cold.0, cold.1, cold.2
    );
    println!(
        "per order over {orders} warm orders: {:.2} TransactWriteItems, {:.2} SendMessage, \
         {:.2} other calls; {:.1} ms each against moto",
        per_order(&counter.transactions),
        per_order(&counter.sends),
        per_order(&counter.other),
        elapsed.as_secs_f64() * 1000.0 / f64::from(orders)
    );
    assert_eq!(counter.transactions.load(Ordering::SeqCst), orders as usize);
    assert_eq!(counter.sends.load(Ordering::SeqCst), orders as usize);
}
