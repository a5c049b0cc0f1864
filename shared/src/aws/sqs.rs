//! The SQS adapter of the queue port.

use async_trait::async_trait;

use crate::ports::{MessageQueue, QueueError};

/// One SQS queue, by URL.
#[derive(Debug, Clone)]
pub struct SqsQueue {
    client: aws_sdk_sqs::Client,
    url: String,
}

impl SqsQueue {
    /// A queue at `url`.
    pub fn new(client: aws_sdk_sqs::Client, url: impl Into<String>) -> Self {
        Self {
            client,
            url: url.into(),
        }
    }
}

#[async_trait]
impl MessageQueue for SqsQueue {
    async fn send(&self, body: &str) -> Result<String, QueueError> {
        self.send_delayed(body, std::time::Duration::ZERO).await
    }

    async fn send_delayed(
        &self,
        body: &str,
        delay: std::time::Duration,
    ) -> Result<String, QueueError> {
        // SQS caps a message's delay at 15 minutes.
        let delay = delay.as_secs().min(900) as i32;
        let output = self
            .client
            .send_message()
            .queue_url(&self.url)
            .message_body(body)
            .delay_seconds(delay)
            .send()
            .await
            .map_err(|e| QueueError {
                queue: self.url.clone(),
                source: Box::new(e),
            })?;
        Ok(output.message_id.unwrap_or_default())
    }
}
