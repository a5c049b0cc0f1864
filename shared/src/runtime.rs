//! Entry points for the non-HTTP functions: SQS consumers and scheduled jobs, runnable under
//! the Lambda runtime and in-process by the local stack.

use std::sync::Arc;

use async_trait::async_trait;
use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use lambda_runtime::{LambdaEvent, service_fn};

/// What became of one message.
#[derive(Debug)]
pub enum MessageOutcome {
    /// Done; the message may be deleted.
    Done,
    /// Not done; the message goes back to the queue and, after the queue's maxReceiveCount,
    /// to its dead-letter queue. Never used to drop a message silently.
    Retry(String),
}

/// A function fed by an SQS queue with partial batch responses.
#[async_trait]
pub trait SqsConsumer: Send + Sync {
    /// Handles one message. Messages of a batch are independent: one failing never fails
    /// its batch-mates.
    async fn handle_message(&self, message: &SqsMessage) -> MessageOutcome;

    /// Handles a batch, reporting the ids of the messages to retry.
    async fn handle_batch(&self, event: SqsEvent) -> SqsBatchResponse {
        let mut failures = Vec::new();
        for message in &event.records {
            let id = message.message_id.clone().unwrap_or_default();
            let span = tracing::info_span!("message", message_id = %id);
            let outcome = tracing::Instrument::instrument(self.handle_message(message), span).await;
            if let MessageOutcome::Retry(reason) = outcome {
                tracing::warn!(message_id = %id, reason, "message left for redelivery");
                let mut failure = BatchItemFailure::default();
                failure.item_identifier = id;
                failures.push(failure);
            }
        }
        let mut response = SqsBatchResponse::default();
        response.batch_item_failures = failures;
        response
    }
}

/// A function fired by an EventBridge schedule.
#[async_trait]
pub trait ScheduledJob: Send + Sync {
    /// Runs once. The returned summary is the invocation's result, for logs and tests.
    async fn run_once(
        &self,
        event: EventBridgeEvent<serde_json::Value>,
    ) -> Result<serde_json::Value, lambda_runtime::Error>;
}

/// Runs an SQS consumer under the Lambda runtime.
pub async fn run_sqs(consumer: Arc<dyn SqsConsumer>) -> Result<(), lambda_runtime::Error> {
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let consumer = consumer.clone();
        async move { Ok::<_, lambda_runtime::Error>(consumer.handle_batch(event.payload).await) }
    }))
    .await
}

/// Runs a scheduled job under the Lambda runtime.
pub async fn run_scheduled(job: Arc<dyn ScheduledJob>) -> Result<(), lambda_runtime::Error> {
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<EventBridgeEvent<serde_json::Value>>| {
            let job = job.clone();
            async move { job.run_once(event.payload).await }
        },
    ))
    .await
}
