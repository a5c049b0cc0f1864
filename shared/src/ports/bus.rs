//! The event bus port: tell whoever listens what happened.

use async_trait::async_trait;

use crate::domain::events::DomainEvent;

/// Publishing failed for some or all events.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The bus could not be reached or refused the call.
    #[error("failed to publish events to the bus")]
    Transport(#[source] Box<dyn std::error::Error + Send + Sync + 'static>),
    /// The bus took the call but refused some entries.
    #[error("the bus refused {failed} of {total} events: {first_error}")]
    Rejected {
        /// How many entries failed.
        failed: usize,
        /// How many were sent.
        total: usize,
        /// The first entry's error code and message.
        first_error: String,
    },
    /// An event could not be serialised.
    #[error("failed to serialise an event")]
    Serialise(#[source] serde_json::Error),
}

/// Publishes domain events. Delivery is at least once; every event carries an `event_id`
/// so consumers can drop duplicates.
#[async_trait]
pub trait EventPublisher: Send + Sync + std::fmt::Debug {
    /// Publishes the events, all or reporting which failed.
    async fn publish(&self, events: &[DomainEvent]) -> Result<(), PublishError>;
}
