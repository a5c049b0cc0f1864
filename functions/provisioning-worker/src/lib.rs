//! The provisioning worker: consumes the provisioning queue and turns accepted orders into
//! eSIM profiles at a provider, with failover, reconciliation and refunds
//! ([`esim_shared::provisioning`] holds the logic).
//!
//! Each message is handled on its own (one span each, from the runtime) and reported in the
//! partial batch response when it must be delivered again. Messages that cannot be handled at
//! all (malformed, naming no order, or hitting a store outage every time) are retried until
//! the queue's maxReceiveCount moves them to the dead-letter queue; nothing is dropped.

use std::sync::Arc;

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_lambda_events::event::sqs::SqsMessage;
use esim_shared::aws::{AwsClients, DynamoOrderStore, EventBridgePublisher, SqsQueue, Table};
use esim_shared::catalogue::{CatalogueConfig, CatalogueService};
use esim_shared::config::{ConfigError, CoreConfig, EnvSource, required};
use esim_shared::orders::ProvisioningMessage;
use esim_shared::ports::{SystemClock, UlidGenerator};
use esim_shared::provisioning::{
    Delivery, Provisioner, ProvisioningConfig, ProvisioningError, ProvisioningPorts,
};
use esim_shared::runtime::{MessageOutcome, SqsConsumer};

/// The provisioning worker.
#[derive(Debug)]
pub struct ProvisioningWorker {
    provisioner: Provisioner,
    ids: UlidGenerator,
}

impl ProvisioningWorker {
    /// Builds the worker from its configuration and one AWS configuration.
    pub fn from_env(aws: &SdkConfig, env: &dyn EnvSource) -> Result<Self, ConfigError> {
        let core = CoreConfig::load(env)?;
        let queue_url = required(
            env,
            "PROVISIONING_QUEUE_URL",
            "the provisioning queue's URL",
        )?;
        let config = ProvisioningConfig::load(env)?;
        let providers = esim_shared::providers::from_env(env)?;
        if providers.is_empty() {
            tracing::warn!("no provider is configured: every order will fail and be refunded");
        }
        let clients = AwsClients::new(aws);
        let table = Table::new(clients.dynamodb, core.table_name);
        let clock = Arc::new(SystemClock);
        let catalogue = CatalogueService::new(
            table.clone(),
            providers.clone(),
            clock.clone(),
            CatalogueConfig::load(env)?,
        );
        let ports = ProvisioningPorts {
            store: Arc::new(DynamoOrderStore::new(table)),
            catalogue: Arc::new(catalogue),
            providers,
            queue: Arc::new(SqsQueue::new(clients.sqs, queue_url)),
            events: Arc::new(EventBridgePublisher::new(
                clients.eventbridge,
                core.event_bus_name,
                core.event_source,
            )),
            clock,
            ids: Arc::new(UlidGenerator::default()),
        };
        Ok(Self::new(Provisioner::new(ports, config)))
    }

    /// A worker around a provisioner (tests build one with injected faults).
    pub fn new(provisioner: Provisioner) -> Self {
        Self {
            provisioner,
            ids: UlidGenerator::default(),
        }
    }
}

/// Parses a message body, saying what is wrong with it.
pub fn parse_message(body: Option<&str>) -> Result<ProvisioningMessage, String> {
    let body = body.ok_or_else(|| "message has no body".to_owned())?;
    serde_json::from_str(body)
        .map_err(|e| format!("message body is not a provisioning message: {e}"))
}

/// How many times SQS delivered the message, from its `ApproximateReceiveCount`.
pub fn receive_count(message: &SqsMessage) -> u32 {
    message
        .attributes
        .get("ApproximateReceiveCount")
        .and_then(|count| count.parse().ok())
        .unwrap_or(1)
}

#[async_trait]
impl SqsConsumer for ProvisioningWorker {
    async fn handle_message(&self, message: &SqsMessage) -> MessageOutcome {
        let parsed = parse_message(message.body.as_deref());
        let Ok(parsed) = parsed.map_err(|reason| tracing::error!(%reason, "poison message")) else {
            return MessageOutcome::Retry("the message is not a provisioning message".to_owned());
        };
        let id = message.message_id.clone().unwrap_or_default();
        let delivery = Delivery {
            message: parsed,
            receive_count: receive_count(message),
            holder: format!(
                "{id}/{}",
                esim_shared::ports::IdGenerator::next_ulid(&self.ids)
            ),
        };

        let outcome = self.provisioner.process(&delivery).await;

        let order_id = &delivery.message.order_id;
        match outcome {
            Ok(progress) => {
                tracing::info!(order_id = %order_id, ?progress, "message handled");
                MessageOutcome::Done
            }
            Err(error @ ProvisioningError::LeaseHeld(_)) => {
                tracing::info!(order_id = %order_id, %error, "another delivery is on it");
                MessageOutcome::Retry(error.to_string())
            }
            Err(error) => {
                tracing::warn!(
                    order_id = %order_id,
                    receive_count = delivery.receive_count,
                    error = %error,
                    source = ?std::error::Error::source(&error).map(ToString::to_string),
                    "provisioning stopped; the message will be delivered again"
                );
                MessageOutcome::Retry(error.to_string())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_well_formed_messages_and_explains_malformed_ones() {
        let good = parse_message(Some(r#"{"tenant_id":"ten_a","order_id":"ord_b"}"#));
        let polled = parse_message(Some(r#"{"tenant_id":"ten_a","order_id":"ord_b","poll":3}"#));
        let bad = parse_message(Some("{}"));
        let empty = parse_message(None);

        assert_eq!(good.expect("valid").order_id.as_str(), "ord_b");
        assert_eq!(polled.expect("valid").poll, 3);
        assert!(bad.expect_err("invalid").contains("missing field"));
        assert!(empty.expect_err("no body").contains("no body"));
    }

    #[test]
    fn the_receive_count_comes_from_the_message_attributes() {
        let mut message = SqsMessage::default();
        message
            .attributes
            .insert("ApproximateReceiveCount".to_owned(), "4".to_owned());

        assert_eq!(receive_count(&message), 4);
        assert_eq!(receive_count(&SqsMessage::default()), 1);
    }
}
