//! The EventBridge adapter of the event bus port.

use async_trait::async_trait;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;

use crate::domain::events::DomainEvent;
use crate::ports::{EventPublisher, PublishError};

/// PutEvents takes at most ten entries per call.
const MAX_ENTRIES_PER_CALL: usize = 10;

/// Publishes to one custom bus with one `source`.
#[derive(Debug, Clone)]
pub struct EventBridgePublisher {
    client: aws_sdk_eventbridge::Client,
    bus_name: String,
    source: String,
}

impl EventBridgePublisher {
    /// A publisher to `bus_name`, labelling events with `source`.
    pub fn new(
        client: aws_sdk_eventbridge::Client,
        bus_name: impl Into<String>,
        source: impl Into<String>,
    ) -> Self {
        Self {
            client,
            bus_name: bus_name.into(),
            source: source.into(),
        }
    }

    fn entry(&self, event: &DomainEvent) -> Result<PutEventsRequestEntry, PublishError> {
        let detail = serde_json::to_string(event).map_err(PublishError::Serialise)?;
        Ok(PutEventsRequestEntry::builder()
            .event_bus_name(&self.bus_name)
            .source(&self.source)
            .detail_type(event.kind.detail_type())
            .detail(detail)
            .build())
    }
}

#[async_trait]
impl EventPublisher for EventBridgePublisher {
    async fn publish(&self, events: &[DomainEvent]) -> Result<(), PublishError> {
        for chunk in events.chunks(MAX_ENTRIES_PER_CALL) {
            let entries = chunk
                .iter()
                .map(|e| self.entry(e))
                .collect::<Result<Vec<_>, _>>()?;
            let output = self
                .client
                .put_events()
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| PublishError::Transport(Box::new(e)))?;
            let failed = output.failed_entry_count.max(0) as usize;
            if failed > 0 {
                let first_error = output
                    .entries
                    .unwrap_or_default()
                    .into_iter()
                    .find_map(|e| {
                        e.error_code
                            .map(|c| format!("{c}: {}", e.error_message.unwrap_or_default()))
                    })
                    .unwrap_or_default();
                return Err(PublishError::Rejected {
                    failed,
                    total: chunk.len(),
                    first_error,
                });
            }
        }
        Ok(())
    }
}
