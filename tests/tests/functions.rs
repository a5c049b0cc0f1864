//! The non-HTTP function skeletons answer their events through the local stack's pumps and
//! schedules.

use std::time::Duration;

use aws_sdk_sqs::types::QueueAttributeName;
use esim_shared::aws::AwsClients;
use integration_tests::stack;
use local_stack::functions::LocalFunction;
use local_stack::scheduled_event;

#[tokio::test]
async fn the_worker_reports_failures_per_message_and_drops_none() {
    let (stack, aws) = stack(|o| {
        o.background = false;
        o.retry_after = Some(Duration::ZERO);
    })
    .await;
    let clients = AwsClients::new(&aws);
    let url = stack.resources.queues["ProvisioningQueue"].url.clone();
    for body in ["not json", r#"{"tenant_id":"ten_a","order_id":"ord_b"}"#] {
        clients
            .sqs
            .send_message()
            .queue_url(&url)
            .message_body(body)
            .send()
            .await
            .expect("sent");
    }
    let pump = stack.pumps["ProvisioningQueue"].clone();

    let seen = pump
        .pump_once(Duration::from_secs(1))
        .await
        .expect("pumped");

    assert_eq!(seen, 2);
    let attributes = clients
        .sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .expect("attributes")
        .attributes
        .unwrap_or_default();
    let visible: u32 = attributes[&QueueAttributeName::ApproximateNumberOfMessages]
        .parse()
        .expect("n");
    let hidden: u32 = attributes[&QueueAttributeName::ApproximateNumberOfMessagesNotVisible]
        .parse()
        .expect("n");
    assert_eq!(
        visible + hidden,
        2,
        "both messages are still on the queue for redelivery"
    );
}

#[tokio::test]
async fn the_usage_poller_answers_its_schedule() {
    let (stack, _aws) = stack(|o| o.background = false).await;
    let Some(LocalFunction::Scheduled(poller)) = stack.functions.get("UsagePollerFunction") else {
        panic!("the usage poller is a scheduled function");
    };

    let summary = poller.run_once(scheduled_event()).await.expect("runs");

    assert_eq!(summary["polled"], 0);
}
