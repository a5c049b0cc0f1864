//! Feeds SQS queues to their consumer functions as Lambda's event source mapping does:
//! batches of up to the mapping's size, partial batch responses, successful messages deleted,
//! failed ones left to become visible again and, past maxReceiveCount, to move to their
//! dead-letter queue.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::event::sqs::SqsEvent;
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, MessageSystemAttributeName};
use esim_shared::runtime::SqsConsumer;
use serde_json::json;

/// One queue-to-function mapping.
#[derive(Clone)]
pub struct QueuePump {
    /// The SQS client.
    pub sqs: aws_sdk_sqs::Client,
    /// The queue URL.
    pub queue_url: String,
    /// The queue ARN, put in each record as Lambda does.
    pub queue_arn: String,
    /// Messages per batch.
    pub batch_size: u32,
    /// The consumer.
    pub consumer: Arc<dyn SqsConsumer>,
    /// When set, failed messages become visible again after this long instead of the queue's
    /// visibility timeout, so local retries do not take minutes.
    pub retry_after: Option<Duration>,
}

impl std::fmt::Debug for QueuePump {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueuePump")
            .field("queue_url", &self.queue_url)
            .finish()
    }
}

impl QueuePump {
    /// Receives one batch and hands it to the consumer. Returns how many messages it saw.
    pub async fn pump_once(&self, wait: Duration) -> Result<usize, aws_sdk_sqs::Error> {
        let output = self
            .sqs
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(self.batch_size.clamp(1, 10) as i32)
            .wait_time_seconds(wait.as_secs() as i32)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await?;
        let messages = output.messages.unwrap_or_default();
        if messages.is_empty() {
            return Ok(0);
        }
        let mut handles = HashMap::new();
        let records: Vec<serde_json::Value> = messages
            .iter()
            .map(|m| {
                let id = m.message_id.clone().unwrap_or_default();
                handles.insert(id.clone(), m.receipt_handle.clone().unwrap_or_default());
                let attributes: HashMap<String, String> = m
                    .attributes
                    .clone()
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(k, v)| (k.as_str().to_owned(), v))
                    .collect();
                json!({
                    "messageId": id,
                    "receiptHandle": m.receipt_handle,
                    "body": m.body,
                    "md5OfBody": m.md5_of_body,
                    "attributes": attributes,
                    "messageAttributes": {},
                    "eventSource": "aws:sqs",
                    "eventSourceARN": self.queue_arn,
                    "awsRegion": "us-east-1",
                })
            })
            .collect();
        let event: SqsEvent = match serde_json::from_value(json!({ "Records": records })) {
            Ok(event) => event,
            Err(error) => {
                tracing::error!(
                    %error,
                    "failed to build the SQS event; messages stay on the queue"
                );
                return Ok(messages.len());
            }
        };
        let response = self.consumer.handle_batch(event).await;
        let failed: Vec<String> = response
            .batch_item_failures
            .into_iter()
            .map(|f| f.item_identifier)
            .collect();
        let mut deletes = Vec::new();
        for (id, handle) in &handles {
            if failed.contains(id) {
                if let Some(delay) = self.retry_after {
                    self.sqs
                        .change_message_visibility()
                        .queue_url(&self.queue_url)
                        .receipt_handle(handle)
                        .visibility_timeout(delay.as_secs() as i32)
                        .send()
                        .await?;
                }
                continue;
            }
            if let Ok(entry) = DeleteMessageBatchRequestEntry::builder()
                .id(id)
                .receipt_handle(handle)
                .build()
            {
                deletes.push(entry);
            }
        }
        if !deletes.is_empty() {
            self.sqs
                .delete_message_batch()
                .queue_url(&self.queue_url)
                .set_entries(Some(deletes))
                .send()
                .await?;
        }
        Ok(messages.len())
    }

    /// Pumps until the task is dropped.
    pub async fn run(self) {
        loop {
            match self.pump_once(Duration::from_secs(1)).await {
                Ok(0) => tokio::time::sleep(Duration::from_millis(200)).await,
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(queue = %self.queue_url, %error, "queue pump failed; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }
}
