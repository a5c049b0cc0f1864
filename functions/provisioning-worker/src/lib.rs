//! The provisioning worker: consumes the provisioning queue and turns accepted orders into
//! eSIM profiles at a provider.
//!
//! This build validates every message and reports partial batch failures. Calling providers
//! is not built yet, so a well-formed message is left on the queue for redelivery (and,
//! after the queue's maxReceiveCount, its dead-letter queue) rather than dropped.

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_lambda_events::event::sqs::SqsMessage;
use esim_shared::aws::{AwsClients, Table};
use esim_shared::config::{ConfigError, CoreConfig, EnvSource, required};
use esim_shared::domain::ids::{OrderId, TenantId};
use esim_shared::runtime::{MessageOutcome, SqsConsumer};
use serde::{Deserialize, Serialize};

/// The body of a provisioning message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProvisioningMessage {
    /// The tenant the order belongs to.
    pub tenant_id: TenantId,
    /// The order to provision.
    pub order_id: OrderId,
}

/// The provisioning worker.
#[derive(Debug)]
pub struct ProvisioningWorker {
    /// The table orders live in.
    pub table: Table,
    /// The queue this worker consumes, for re-queueing.
    pub queue_url: String,
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
        let clients = AwsClients::new(aws);
        Ok(Self {
            table: Table::new(clients.dynamodb, core.table_name),
            queue_url,
        })
    }
}

/// Parses a message body, saying what is wrong with it.
pub fn parse_message(body: Option<&str>) -> Result<ProvisioningMessage, String> {
    let body = body.ok_or_else(|| "message has no body".to_owned())?;
    serde_json::from_str(body)
        .map_err(|e| format!("message body is not a provisioning message: {e}"))
}

#[async_trait]
impl SqsConsumer for ProvisioningWorker {
    async fn handle_message(&self, message: &SqsMessage) -> MessageOutcome {
        let parsed = parse_message(message.body.as_deref());

        match parsed {
            Err(reason) => MessageOutcome::Retry(reason),
            Ok(order) => {
                tracing::warn!(
                    tenant_id = %order.tenant_id,
                    order_id = %order.order_id,
                    "provisioning is not available in this build"
                );
                MessageOutcome::Retry("provisioning is not available in this build".to_owned())
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
        let bad = parse_message(Some("{}"));
        let empty = parse_message(None);

        assert_eq!(good.expect("valid").order_id.as_str(), "ord_b");
        assert!(bad.expect_err("invalid").contains("missing field"));
        assert!(empty.expect_err("no body").contains("no body"));
    }
}
