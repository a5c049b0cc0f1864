//! The queue port: hand a message to a consumer function, at least once.

use async_trait::async_trait;

/// Sending failed; the message may not have been queued.
#[derive(Debug, thiserror::Error)]
#[error("failed to send a message to queue {queue}")]
pub struct QueueError {
    /// Which queue.
    pub queue: String,
    /// The transport's error.
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync + 'static>,
}

/// A queue that delivers each message at least once. Consumers must be idempotent: the same
/// message can arrive twice, and messages can arrive out of order.
#[async_trait]
pub trait MessageQueue: Send + Sync + std::fmt::Debug {
    /// Queues one message body (JSON text). Returns the queue's message id.
    async fn send(&self, body: &str) -> Result<String, QueueError>;

    /// Queues one message that becomes visible after `delay` (at most 15 minutes).
    async fn send_delayed(
        &self,
        body: &str,
        delay: std::time::Duration,
    ) -> Result<String, QueueError>;
}
