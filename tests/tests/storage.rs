//! The AWS adapters against moto: conditional writes, transactions, SQS and EventBridge.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use esim_shared::aws::dynamo::{key, version_of};
use esim_shared::aws::{AwsClients, EventBridgePublisher, SqsQueue};
use esim_shared::domain::events::{DomainEvent, EventKind, RenewalOffer};
use esim_shared::domain::ids::{EsimId, PlanId, TenantId};
use esim_shared::domain::{Currency, DomainError, ErrorCode, Money};
use esim_shared::ports::{EventPublisher, MessageQueue, StoreError};
use integration_tests::{stack, table};

fn item(pk: &str, sk: &str, note: &str) -> HashMap<String, AttributeValue> {
    let mut item = key(pk, sk);
    item.insert("note".to_owned(), AttributeValue::S(note.to_owned()));
    item
}

#[tokio::test]
async fn a_conditional_write_that_loses_a_race_returns_the_conflict_error() {
    let (stack, aws) = stack(|o| o.background = false).await;
    let table = table(&aws, &stack);
    table
        .put_new(item("T#t1#ORDER#1", "ORDER", "v1"))
        .await
        .expect("first write");

    let (left, right) = tokio::join!(
        table.put_versioned(item("T#t1#ORDER#1", "ORDER", "left"), 1),
        table.put_versioned(item("T#t1#ORDER#1", "ORDER", "right"), 1),
    );
    let again = table.put_new(item("T#t1#ORDER#1", "ORDER", "dup")).await;

    let outcomes = [left, right];
    let wins = outcomes.iter().filter(|o| o.is_ok()).count();
    let conflicts = outcomes
        .iter()
        .filter(|o| matches!(o, Err(StoreError::Conflict { .. })))
        .count();
    assert_eq!((wins, conflicts), (1, 1), "{outcomes:?}");
    let error = DomainError::from(again.expect_err("item exists"));
    assert_eq!(error.code, ErrorCode::Conflict);
    let stored = table
        .get("T#t1#ORDER#1", "ORDER")
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(version_of(&stored), 2);
}

#[tokio::test]
async fn a_transaction_lands_whole_or_not_at_all() {
    let (stack, aws) = stack(|o| o.background = false).await;
    let table = table(&aws, &stack);
    table
        .put_new(item("T#t1#B", "B", "exists"))
        .await
        .expect("seed");

    let doomed = vec![
        table
            .put_new_entry(item("T#t1#A", "A", "new"))
            .expect("entry"),
        table
            .put_new_entry(item("T#t1#B", "B", "clash"))
            .expect("entry"),
    ];
    let failed = table.transact("doomed", doomed).await;
    let whole = vec![
        table
            .put_new_entry(item("T#t1#A", "A", "new"))
            .expect("entry"),
        table
            .put_new_entry(item("T#t1#C", "C", "new"))
            .expect("entry"),
    ];
    let landed = table.transact("whole", whole).await;

    assert!(
        matches!(failed, Err(StoreError::Conflict { .. })),
        "{failed:?}"
    );
    assert!(landed.is_ok(), "{landed:?}");
    let b = table
        .get("T#t1#B", "B")
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(b.get("note"), Some(&AttributeValue::S("exists".to_owned())));
    assert!(table.get("T#t1#A", "A").await.expect("read").is_some());
    assert!(table.get("T#t1#C", "C").await.expect("read").is_some());
}

#[tokio::test]
async fn an_sqs_message_round_trips() {
    let (stack, aws) = stack(|o| o.background = false).await;
    let clients = AwsClients::new(&aws);
    let url = stack.resources.queues["ProvisioningQueue"].url.clone();
    let queue = SqsQueue::new(clients.sqs.clone(), &url);

    let id = queue
        .send(r#"{"tenant_id":"ten_a","order_id":"ord_b"}"#)
        .await
        .expect("sent");
    let received = clients
        .sqs
        .receive_message()
        .queue_url(&url)
        .wait_time_seconds(2)
        .send()
        .await
        .expect("received");

    let messages = received.messages.unwrap_or_default();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].message_id.as_deref(), Some(id.as_str()));
    assert_eq!(
        messages[0].body.as_deref(),
        Some(r#"{"tenant_id":"ten_a","order_id":"ord_b"}"#)
    );
}

#[tokio::test]
async fn an_event_reaches_the_notifications_queue_through_the_template_rule() {
    let (stack, aws) = stack(|o| o.background = false).await;
    let clients = AwsClients::new(&aws);
    let publisher = EventBridgePublisher::new(
        clients.eventbridge.clone(),
        &stack.resources.bus_name,
        "esim-backend",
    );
    let usd = Currency::USD;
    let event = DomainEvent {
        event_id: "evt-1".to_owned(),
        tenant_id: TenantId::parse("ten_a").expect("id"),
        occurred_at: time::OffsetDateTime::now_utc(),
        kind: EventKind::LowBalance {
            esim_id: EsimId::parse("esm_1").expect("id"),
            remaining_mb: 200,
            total_mb: 1024,
            remaining_percent: 19,
            threshold_percent: 20,
            renewal: RenewalOffer {
                plan_id: PlanId::parse("jp-1gb").expect("id"),
                price: Money::new(450, usd),
            },
        },
    };
    let unrouted = DomainEvent {
        event_id: "evt-2".to_owned(),
        kind: EventKind::OrderProvisioned {
            order_id: esim_shared::domain::OrderId::parse("ord_1").expect("id"),
        },
        ..event.clone()
    };

    publisher
        .publish(&[event, unrouted])
        .await
        .expect("published");

    let url = &stack.resources.queues["NotificationsQueue"].url;
    let received = clients
        .sqs
        .receive_message()
        .queue_url(url)
        .max_number_of_messages(10)
        .wait_time_seconds(2)
        .send()
        .await
        .expect("received");
    let messages = received.messages.unwrap_or_default();
    assert_eq!(messages.len(), 1, "only LowBalance matches the rule");
    let envelope: serde_json::Value =
        serde_json::from_str(messages[0].body.as_deref().unwrap_or("{}")).expect("json");
    assert_eq!(envelope["detail-type"], "LowBalance");
    assert_eq!(envelope["source"], "esim-backend");
    assert_eq!(envelope["detail"]["event_id"], "evt-1");
    assert_eq!(envelope["detail"]["renewal"]["price"]["amount_minor"], 450);
}
