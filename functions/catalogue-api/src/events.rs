//! The catalogue events consumer: reads EventBridge events that rules put on the catalogue
//! events queue. `CatalogueInvalidated` marks a provider's or a country's entries stale;
//! `CatalogueRefreshDue` (or the scheduled rule's `Scheduled Event`) runs the full refresh of
//! the providers listed in `CATALOGUE_FULL_REFRESH_PROVIDERS`.

use std::sync::Arc;

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_lambda_events::event::sqs::SqsMessage;
use esim_shared::aws::{AwsClients, Table};
use esim_shared::catalogue::{CatalogueConfig, CatalogueService, Invalidation};
use esim_shared::config::{ConfigError, CoreConfig, EnvSource};
use esim_shared::domain::DomainError;
use esim_shared::domain::ids::ProviderId;
use esim_shared::domain::plan::CountryCode;
use esim_shared::ports::SystemClock;
use esim_shared::runtime::{MessageOutcome, SqsConsumer};
use serde::Deserialize;

/// The `detail-type` of an invalidation event.
pub const INVALIDATED: &str = "CatalogueInvalidated";
/// The `detail-type` of a full refresh request.
pub const REFRESH_DUE: &str = "CatalogueRefreshDue";
/// The `detail-type` EventBridge gives events of a scheduled rule.
pub const SCHEDULED: &str = "Scheduled Event";

/// What an invalidation event names: a provider, a country, or both.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InvalidationDetail {
    /// Every entry of this provider.
    #[serde(default)]
    pub provider: Option<ProviderId>,
    /// Every provider's entry for this country.
    #[serde(default)]
    pub country: Option<CountryCode>,
}

#[derive(Debug, Deserialize)]
struct Envelope {
    #[serde(rename = "detail-type")]
    detail_type: String,
    #[serde(default)]
    detail: serde_json::Value,
}

/// What one message asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CatalogueCommand {
    /// Mark these entries stale.
    Invalidate(Vec<Invalidation>),
    /// Run the scheduled full refresh.
    RefreshFull,
}

/// Why a message could not be understood.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The body is not an EventBridge event with a detail this consumer reads.
    #[error("catalogue event is malformed")]
    Malformed(#[source] serde_json::Error),
    /// An invalidation named neither a provider nor a country.
    #[error("catalogue invalidation names neither a provider nor a country")]
    Empty,
    /// An event of another type reached the queue.
    #[error("unexpected detail-type {0:?} on the catalogue events queue")]
    UnknownType(String),
}

/// Parses an SQS message body holding an EventBridge event.
pub fn parse_command(body: &str) -> Result<CatalogueCommand, CommandError> {
    let envelope: Envelope = serde_json::from_str(body).map_err(CommandError::Malformed)?;
    match envelope.detail_type.as_str() {
        INVALIDATED => {
            let detail: InvalidationDetail =
                serde_json::from_value(envelope.detail).map_err(CommandError::Malformed)?;
            let mut targets = Vec::new();
            targets.extend(detail.provider.map(Invalidation::Provider));
            targets.extend(detail.country.map(Invalidation::Country));
            if targets.is_empty() {
                return Err(CommandError::Empty);
            }
            Ok(CatalogueCommand::Invalidate(targets))
        }
        REFRESH_DUE | SCHEDULED => Ok(CatalogueCommand::RefreshFull),
        other => Err(CommandError::UnknownType(other.to_owned())),
    }
}

/// The catalogue events function.
#[derive(Debug)]
pub struct CatalogueEvents {
    catalogue: CatalogueService,
}

impl CatalogueEvents {
    /// Builds the consumer from its configuration and one AWS configuration.
    pub fn from_env(aws: &SdkConfig, env: &dyn EnvSource) -> Result<Self, ConfigError> {
        let core = CoreConfig::load(env)?;
        let providers = esim_shared::providers::from_env(env)?;
        let table = Table::new(AwsClients::new(aws).dynamodb, core.table_name);
        let catalogue = CatalogueService::new(
            table,
            providers,
            Arc::new(SystemClock),
            CatalogueConfig::load(env)?,
        );
        Ok(Self { catalogue })
    }

    async fn apply(&self, command: &CatalogueCommand) -> Result<u32, DomainError> {
        match command {
            CatalogueCommand::Invalidate(targets) => {
                let mut marked = 0;
                for target in targets {
                    marked += self.catalogue.invalidate(target).await?;
                }
                Ok(marked)
            }
            CatalogueCommand::RefreshFull => self.catalogue.refresh_full().await,
        }
    }
}

#[async_trait]
impl SqsConsumer for CatalogueEvents {
    async fn handle_message(&self, message: &SqsMessage) -> MessageOutcome {
        let body = message.body.as_deref().unwrap_or_default();
        let command = match parse_command(body) {
            Ok(command) => command,
            // Left for redelivery and, after the queue's receive limit, its dead-letter
            // queue, where an operator can read it.
            Err(error) => return MessageOutcome::Retry(error.to_string()),
        };

        let outcome = self.apply(&command).await;

        match outcome {
            Ok(entries) => {
                tracing::info!(?command, entries, "catalogue event applied");
                MessageOutcome::Done
            }
            Err(error) => MessageOutcome::Retry(error.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_invalidations_by_provider_and_country() {
        let body = r#"{"version":"0","id":"1","detail-type":"CatalogueInvalidated",
            "source":"esim-backend","detail":{"provider":"airalo","country":"jp"}}"#;

        let command = parse_command(body).expect("valid");

        assert_eq!(
            command,
            CatalogueCommand::Invalidate(vec![
                Invalidation::Provider(ProviderId::parse("airalo").expect("id")),
                Invalidation::Country(CountryCode::parse("JP").expect("cc")),
            ])
        );
    }

    #[test]
    fn scheduled_events_ask_for_the_full_refresh() {
        let body = r#"{"detail-type":"Scheduled Event","source":"aws.events","detail":{}}"#;

        assert_eq!(
            parse_command(body).expect("valid"),
            CatalogueCommand::RefreshFull
        );
    }

    #[test]
    fn refuses_empty_malformed_and_foreign_events() {
        let empty = r#"{"detail-type":"CatalogueInvalidated","detail":{}}"#;
        let bad_country = r#"{"detail-type":"CatalogueInvalidated","detail":{"country":"J"}}"#;
        let foreign = r#"{"detail-type":"LowBalance","detail":{}}"#;

        assert!(matches!(parse_command(empty), Err(CommandError::Empty)));
        assert!(matches!(
            parse_command(bad_country),
            Err(CommandError::Malformed(_))
        ));
        assert!(matches!(
            parse_command(foreign),
            Err(CommandError::UnknownType(_))
        ));
    }
}
