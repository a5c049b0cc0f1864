//! The provisioning worker on the local stack with the provider simulator: crashes at every
//! step, lost provider answers, failover, refunds and poison messages.

mod order_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use esim_shared::aws::{AwsClients, DynamoOrderStore, EventBridgePublisher, SqsQueue, Table};
use esim_shared::catalogue::{CatalogueConfig, CatalogueService};
use esim_shared::domain::order::{CreateOrderRequest, OrderStatus};
use esim_shared::orders::{AcceptedOrderSweep, OrderService};
use esim_shared::ports::{OrderStore, SystemClock, UlidGenerator};
use esim_shared::provisioning::{
    FaultHook, FaultPoint, InjectedFault, Provisioner, ProvisioningConfig, ProvisioningPorts,
};
use local_stack::pump::QueuePump;
use order_support::{EventTap, World, order_body, world};
use provider_sim::Provider;
use provisioning_worker::ProvisioningWorker;
use serde_json::json;

const FAST: &[(&str, &str)] = &[
    ("PROVISIONING_LEASE_SECONDS", "2"),
    ("PROVISIONING_POLL_SECONDS", "1"),
    ("ORDER_SYNC_WAIT_MS", "0"),
];

/// A hook that fails the first time `point` is reached and never again: one crash.
fn crash_once_at(point: FaultPoint) -> FaultHook {
    let armed = Arc::new(AtomicBool::new(true));
    Arc::new(move |reached| {
        if reached == point && armed.swap(false, Ordering::SeqCst) {
            return Err(InjectedFault(reached));
        }
        Ok(())
    })
}

fn catalogue(w: &World, table: &Table) -> Arc<CatalogueService> {
    Arc::new(CatalogueService::new(
        table.clone(),
        w.providers(),
        Arc::new(SystemClock),
        CatalogueConfig::load(&std::collections::HashMap::<String, String>::new())
            .expect("defaults"),
    ))
}

fn queue_url(w: &World) -> String {
    w.stack.resources.queues["ProvisioningQueue"].url.clone()
}

fn order_service(w: &World, faults: FaultHook) -> OrderService {
    let clients = AwsClients::new(&w.aws);
    let table = Table::new(clients.dynamodb, w.stack.resources.table_name.clone());
    OrderService::new(
        Arc::new(DynamoOrderStore::new(table.clone())),
        catalogue(w, &table),
        Arc::new(SqsQueue::new(clients.sqs, queue_url(w))),
        Arc::new(SystemClock),
        Arc::new(UlidGenerator::default()),
    )
    .with_faults(faults)
}

fn pump(w: &World, faults: FaultHook) -> QueuePump {
    let clients = AwsClients::new(&w.aws);
    let table = Table::new(clients.dynamodb, w.stack.resources.table_name.clone());
    let ports = ProvisioningPorts {
        store: Arc::new(DynamoOrderStore::new(table.clone())),
        catalogue: catalogue(w, &table),
        providers: w.providers(),
        queue: Arc::new(SqsQueue::new(clients.sqs.clone(), queue_url(w))),
        events: Arc::new(EventBridgePublisher::new(
            clients.eventbridge,
            w.stack.resources.bus_name.clone(),
            "esim-backend",
        )),
        clock: Arc::new(SystemClock),
        ids: Arc::new(UlidGenerator::default()),
    };
    let config = ProvisioningConfig {
        lease: Duration::from_secs(1),
        max_rounds: 3,
        poll_every: Duration::from_secs(1),
        max_polls: 20,
    };
    let provisioner = Provisioner::new(ports, config).with_faults(faults);
    let queue = &w.stack.resources.queues["ProvisioningQueue"];
    QueuePump {
        sqs: clients.sqs,
        queue_url: queue.url.clone(),
        queue_arn: queue.arn.clone(),
        batch_size: 10,
        consumer: Arc::new(ProvisioningWorker::new(provisioner)),
        retry_after: Some(Duration::from_secs(1)),
    }
}

/// Pumps the queue until the order is final.
async fn pump_until_final(w: &World, pump: &QueuePump, order_id: &str) -> OrderStatus {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(45);
    loop {
        let status = w.order(order_id).await.status;
        if status.is_final() {
            return status;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "order {order_id} stuck in {status:?}"
        );
        pump.pump_once(Duration::from_secs(1))
            .await
            .expect("pumped");
    }
}

/// Orders the simulator received for one of our orders (our reference starts with its id).
fn provider_orders_for(w: &World, provider: Provider, order_id: &str) -> usize {
    w.sim()
        .provider_snapshot(provider)
        .orders
        .iter()
        .filter(|o| {
            o.reference
                .as_deref()
                .is_some_and(|r| r.starts_with(order_id))
        })
        .count()
}

#[tokio::test]
async fn a_crash_at_any_step_ends_in_one_provider_order_and_a_ledger_of_fulfilled_orders() {
    let w = world(FAST, false).await;
    let plan = w.plan_of(0).await;
    let request: CreateOrderRequest = serde_json::from_value(order_body(&plan)).expect("body");
    let points = [
        FaultPoint::BeforeTransaction,
        FaultPoint::AfterTransaction,
        FaultPoint::BeforeProviderCall,
        FaultPoint::AfterProviderCall,
        FaultPoint::BeforeCompletionWrite,
    ];
    let mut fulfilled = 0;

    for (n, point) in points.into_iter().enumerate() {
        let key = format!("crash-{n}");
        let api = order_service(&w, crash_once_at(point));
        let worker = pump(&w, crash_once_at(point));
        let first = api.create(&w.tenant, Some(&key), &request).await;
        // The client saw an error (or nothing) and retries with the same key.
        let answer = match first {
            Ok(answer) => answer,
            Err(_) => api
                .create(&w.tenant, Some(&key), &request)
                .await
                .expect("the retry is answered"),
        };
        let order_id = answer.order_id.to_string();

        let status = pump_until_final(&w, &worker, &order_id).await;

        assert_eq!(status, OrderStatus::Provisioned, "crash at {point:?}");
        assert_eq!(
            provider_orders_for(&w, Provider::Airalo, &order_id),
            1,
            "one provider order after a crash at {point:?}"
        );
        fulfilled += w.order(&order_id).await.total.amount_minor;
        assert_eq!(
            w.ledger_sum().await,
            fulfilled,
            "ledger after a crash at {point:?}"
        );
    }
}

#[tokio::test]
async fn an_order_whose_queue_send_was_lost_is_sent_again_by_the_sweep() {
    let w = world(FAST, false).await;
    let plan = w.plan_of(0).await;
    let request: CreateOrderRequest = serde_json::from_value(order_body(&plan)).expect("body");
    let api = order_service(&w, crash_once_at(FaultPoint::AfterTransaction));
    let worker = pump(&w, esim_shared::provisioning::no_faults());
    let lost = api.create(&w.tenant, Some("lost-send"), &request).await;
    assert!(lost.is_err(), "the crash after the commit skipped the send");
    let order_id = w
        .store()
        .accepted_before(time::OffsetDateTime::now_utc() + time::Duration::minutes(1))
        .await
        .expect("accepted orders")
        .into_iter()
        .find(|(tenant, _)| *tenant == w.tenant)
        .expect("the order was committed")
        .1;
    let clients = AwsClients::new(&w.aws);
    let sweep = AcceptedOrderSweep::new(
        Arc::new(w.store()),
        Arc::new(SqsQueue::new(clients.sqs, queue_url(&w))),
        Arc::new(SystemClock),
    );

    let resent = sweep.run(Duration::ZERO).await.expect("sweep");
    let status = pump_until_final(&w, &worker, order_id.as_str()).await;

    assert_eq!(resent, 1);
    assert_eq!(status, OrderStatus::Provisioned);
    assert_eq!(
        provider_orders_for(&w, Provider::Airalo, order_id.as_str()),
        1
    );
}

#[tokio::test]
async fn a_lost_provider_answer_ends_in_one_profile_after_reconciliation() {
    let w = world(FAST, true).await;
    w.sim()
        .set_knobs(
            Provider::Airalo,
            &json!({"lose_response_after_commit": true, "lose_response_limit": 1}),
        )
        .expect("knobs");
    let plan = w.plan_of(0).await;

    let (_, order) = w.post_order(Some("lost-1"), &order_body(&plan)).await;
    let order_id = order["order_id"].as_str().expect("id").to_owned();
    let settled = w.settled(&order_id, Duration::from_secs(40)).await;

    assert_eq!(settled["status"], "provisioned", "{settled}");
    assert_eq!(settled["esims"].as_array().map(Vec::len), Some(1));
    assert_eq!(provider_orders_for(&w, Provider::Airalo, &order_id), 1);
    assert_eq!(w.sim().provider_snapshot(Provider::Airalo).sims.len(), 1);
}

#[tokio::test]
async fn out_of_stock_at_one_provider_is_provisioned_at_the_other_with_one_charge() {
    let w = world(FAST, true).await;
    let mut tap = EventTap::new(&w).await;
    let (plan, _equivalent) = w.plan_with_equivalent().await;
    w.sim()
        .set_knobs(
            Provider::Airalo,
            &json!({
                "error_rate": 1.0,
                "error_kind": "out_of_stock",
                "error_operations": ["orders", "orders_async"],
            }),
        )
        .expect("knobs");

    let (_, order) = w.post_order(Some("oos-1"), &order_body(&plan)).await;
    let order_id = order["order_id"].as_str().expect("id").to_owned();
    let settled = w.settled(&order_id, Duration::from_secs(40)).await;

    assert_eq!(settled["status"], "provisioned", "{settled}");
    assert_eq!(
        settled["total"], order["total"],
        "the charge did not change"
    );
    assert_eq!(provider_orders_for(&w, Provider::EsimAccess, &order_id), 1);
    let stored = w.order(&order_id).await;
    assert_eq!(stored.attempts.len(), 2);
    assert_eq!(stored.attempts[1].provider.as_str(), "esim-access");
    assert_eq!(w.ledger_sum().await, stored.total.amount_minor);
    assert_eq!(tap.count("OrderCharged", &order_id).await.0, 1);
    assert_eq!(tap.count("OrderRefunded", &order_id).await.0, 0);
}

#[tokio::test]
async fn an_order_no_provider_can_fill_is_refunded_once_with_a_sentence_to_act_on() {
    let w = world(FAST, true).await;
    let mut tap = EventTap::new(&w).await;
    let (plan, _equivalent) = w.plan_with_equivalent().await;
    let sold_out = json!({
        "error_rate": 1.0,
        "error_kind": "out_of_stock",
        "error_operations": ["orders", "orders_async", "order"],
    });
    w.sim()
        .set_knobs(Provider::Airalo, &sold_out)
        .expect("knobs");
    w.sim()
        .set_knobs(Provider::EsimAccess, &sold_out)
        .expect("knobs");

    let (_, order) = w.post_order(Some("oos-all"), &order_body(&plan)).await;
    let order_id = order["order_id"].as_str().expect("id").to_owned();
    let settled = w.settled(&order_id, Duration::from_secs(40)).await;

    assert_eq!(settled["status"], "failed", "{settled}");
    let failure = &settled["failure"];
    assert_eq!(failure["code"], "out_of_stock");
    let message = failure["message"].as_str().unwrap_or_default();
    assert!(message.contains("choose another plan"), "{message}");
    assert!(message.contains(failure["support_reference"].as_str().unwrap_or("?")));
    assert!(
        !message.contains("33") && !message.contains("200011"),
        "{message}"
    );
    assert_eq!(w.ledger_sum().await, 0);
    assert_eq!(tap.count("OrderRefunded", &order_id).await.0, 1);
    assert_eq!(tap.count("OrderFailed", &order_id).await.0, 1);
}

#[tokio::test]
async fn a_poison_message_reaches_the_dead_letter_queue_while_its_batch_mates_succeed() {
    let w = world(FAST, true).await;
    let plan = w.plan_of(0).await;
    let clients = AwsClients::new(&w.aws);
    clients
        .sqs
        .send_message()
        .queue_url(queue_url(&w))
        .message_body("{\"not\": \"an order\"}")
        .send()
        .await
        .expect("poison sent");

    let (_, order) = w.post_order(Some("mate-1"), &order_body(&plan)).await;
    let order_id = order["order_id"].as_str().expect("id").to_owned();
    let settled = w.settled(&order_id, Duration::from_secs(40)).await;
    let dlq = &w.stack.resources.queues["ProvisioningDeadLetterQueue"].url;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let poison = loop {
        let received = clients
            .sqs
            .receive_message()
            .queue_url(dlq)
            .wait_time_seconds(1)
            .send()
            .await
            .expect("receive");
        if let Some(message) = received.messages.unwrap_or_default().into_iter().next() {
            break message;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "nothing reached the DLQ"
        );
    };

    assert_eq!(settled["status"], "provisioned");
    assert_eq!(poison.body.as_deref(), Some("{\"not\": \"an order\"}"));
}

#[tokio::test]
async fn a_tenant_that_excludes_the_other_provider_is_refunded_instead_of_failed_over() {
    use esim_shared::catalogue::CatalogueStore;

    let w = world(FAST, true).await;
    let (plan, _equivalent) = w.plan_with_equivalent().await;
    let rules = esim_shared::domain::routing::RoutingRules {
        excluded: vec![esim_shared::domain::ids::ProviderId::parse("esim-access").expect("id")],
        ..Default::default()
    };
    esim_shared::aws::DynamoCatalogueStore::new(integration_tests::table(&w.aws, &w.stack))
        .save_routing(&w.tenant, &rules)
        .await
        .expect("routing rules saved");
    w.sim()
        .set_knobs(
            Provider::Airalo,
            &json!({
                "error_rate": 1.0,
                "error_kind": "out_of_stock",
                "error_operations": ["orders", "orders_async"],
            }),
        )
        .expect("knobs");

    let (_, order) = w.post_order(Some("excluded-1"), &order_body(&plan)).await;
    let order_id = order["order_id"].as_str().expect("id").to_owned();
    let settled = w.settled(&order_id, Duration::from_secs(40)).await;

    assert_eq!(settled["status"], "failed", "{settled}");
    assert_eq!(provider_orders_for(&w, Provider::EsimAccess, &order_id), 0);
    assert_eq!(w.ledger_sum().await, 0);
}

#[tokio::test]
async fn concurrent_deliveries_of_one_order_call_the_provider_once() {
    let w = world(FAST, false).await;
    w.sim()
        .set_knobs(Provider::Airalo, &json!({"latency_ms": 500}))
        .expect("knobs");
    let plan = w.plan_of(0).await;
    let request: CreateOrderRequest = serde_json::from_value(order_body(&plan)).expect("body");
    let api = order_service(&w, esim_shared::provisioning::no_faults());
    let answer = api
        .create(&w.tenant, Some("dup-1"), &request)
        .await
        .expect("accepted");
    for _ in 0..3 {
        api.enqueue(&w.tenant, &answer.order_id).await;
    }
    let order_id = answer.order_id.to_string();
    // One message per receive, so the two pumps really hold deliveries of one order at once.
    let mut first = pump(&w, esim_shared::provisioning::no_faults());
    first.batch_size = 1;
    let mut second = pump(&w, esim_shared::provisioning::no_faults());
    second.batch_size = 1;

    let (a, b) = tokio::join!(
        pump_until_final(&w, &first, &order_id),
        pump_until_final(&w, &second, &order_id)
    );

    assert_eq!((a, b), (OrderStatus::Provisioned, OrderStatus::Provisioned));
    assert_eq!(provider_orders_for(&w, Provider::Airalo, &order_id), 1);
    assert_eq!(w.order(&order_id).await.esim_ids.len(), 1);
}
