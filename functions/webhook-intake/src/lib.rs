//! Webhook intake: provider webhooks at `POST /webhooks/{provider}` (and
//! `POST /webhooks/{provider}/{secret}` for providers authenticated by a secret path segment),
//! authenticated by each provider's own scheme rather than a tenant key; and the consumer of
//! the webhook retry queue, which applies parked facts once what they name is stored.
//!
//! The handler verifies, claims the dedupe key, applies and answers: well inside a provider's
//! delivery deadline, because anything that waits (an eSIM not stored yet, a provider call
//! for an asynchronous order) goes to a queue instead of being waited for.

use std::sync::Arc;

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_lambda_events::event::sqs::SqsMessage;
use esim_shared::aws::{
    AwsClients, DynamoEsimStore, DynamoTenantStore, DynamoWebhookStore, EventBridgePublisher,
    SqsQueue, Table,
};
use esim_shared::config::{ConfigError, CoreConfig, EnvSource, HttpConfig, required, seconds};
use esim_shared::domain::DomainError;
use esim_shared::http::{self, ApiRequest, ApiResponse, HttpHandler, RouteTable};
use esim_shared::ports::SystemClock;
use esim_shared::runtime::{MessageOutcome, SqsConsumer};
use esim_shared::tenancy::Authenticator;
use esim_shared::webhooks::{
    InboundWebhook, IntakeSettings, RetryMessage, WebhookPorts, WebhookService,
};
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};

/// The providers whose webhooks this deployment understands.
pub const KNOWN_PROVIDERS: [&str; 2] = ["airalo", "esim-access"];

/// The environment variable naming the webhook retry queue.
pub const RETRY_QUEUE_URL: &str = "WEBHOOK_RETRY_QUEUE_URL";
/// The environment variable setting how long a parked fact waits before its first retry.
pub const RETRY_DELAY_SECONDS: &str = "WEBHOOK_RETRY_DELAY_SECONDS";

#[derive(Debug, Clone, Copy)]
enum Route {
    Webhook,
}

/// Builds the intake's domain service from configuration: providers once, clients once.
pub fn service_from_env(
    aws: &SdkConfig,
    env: &dyn EnvSource,
    core: &CoreConfig,
) -> Result<WebhookService, ConfigError> {
    let providers = esim_shared::providers::from_env(env)?;
    let provisioning_url = required(
        env,
        "PROVISIONING_QUEUE_URL",
        "the provisioning queue's URL",
    )?;
    let retry_url = required(env, RETRY_QUEUE_URL, "the webhook retry queue's URL")?;
    let mut settings = IntakeSettings::default();
    settings.retry_delay = seconds(env, RETRY_DELAY_SECONDS, settings.retry_delay)?;
    let clients = AwsClients::new(aws);
    let table = Table::new(clients.dynamodb.clone(), core.table_name.clone());
    let ports = WebhookPorts {
        webhooks: Arc::new(DynamoWebhookStore::new(table.clone())),
        esims: Arc::new(DynamoEsimStore::new(table)),
        provisioning: Arc::new(SqsQueue::new(clients.sqs.clone(), provisioning_url)),
        retries: Arc::new(SqsQueue::new(clients.sqs, retry_url)),
        events: Arc::new(EventBridgePublisher::new(
            clients.eventbridge,
            core.event_bus_name.clone(),
            core.event_source.clone(),
        )),
        clock: Arc::new(SystemClock),
    };
    Ok(WebhookService::new(providers, ports, settings))
}

/// The webhook intake function.
#[derive(Debug)]
pub struct WebhookIntake {
    routes: RouteTable<Route>,
    auth: Authenticator,
    service: WebhookService,
}

impl WebhookIntake {
    /// Builds the function from its configuration and one AWS configuration.
    pub fn from_env(aws: &SdkConfig, env: &dyn EnvSource) -> Result<Self, ConfigError> {
        let config = HttpConfig::load(env)?;
        let service = service_from_env(aws, env, &config.core)?;
        let clients = AwsClients::new(aws);
        let table = Table::new(clients.dynamodb, config.core.table_name.clone());
        let store = Arc::new(DynamoTenantStore::new(table));
        let routes = RouteTable::default()
            .public(Method::POST, "/webhooks/{provider}", Route::Webhook)
            .public(
                Method::POST,
                "/webhooks/{provider}/{secret}",
                Route::Webhook,
            );
        Ok(Self {
            routes,
            auth: Authenticator::new(store, config.auth_cache),
            service,
        })
    }

    async fn receive(&self, request: ApiRequest) -> Result<ApiResponse, DomainError> {
        let inbound = InboundWebhook {
            provider: request.param("provider")?,
            path_secret: request.params.get("secret"),
            headers: &request.headers,
            body: &request.body,
            source_ip: request.source_ip,
        };

        let ack = self.service.receive(inbound).await?;

        ApiResponse::json(StatusCode::OK, &ack)
    }
}

#[async_trait]
impl HttpHandler for WebhookIntake {
    async fn handle(&self, request: Request) -> Response<Body> {
        http::serve(
            request,
            &self.routes,
            &self.auth,
            |route, request| async move {
                match route {
                    Route::Webhook => self.receive(request).await,
                }
            },
        )
        .await
    }
}

/// The consumer of the webhook retry queue.
#[derive(Debug)]
pub struct WebhookRetry {
    service: WebhookService,
}

impl WebhookRetry {
    /// Builds the consumer from its configuration and one AWS configuration.
    pub fn from_env(aws: &SdkConfig, env: &dyn EnvSource) -> Result<Self, ConfigError> {
        let core = CoreConfig::load(env)?;
        Ok(Self {
            service: service_from_env(aws, env, &core)?,
        })
    }
}

/// Parses a retry message body, saying what is wrong with it.
pub fn parse_retry_message(body: Option<&str>) -> Result<RetryMessage, String> {
    let body = body.ok_or_else(|| "message has no body".to_owned())?;
    serde_json::from_str(body).map_err(|e| format!("message body is not a retry message: {e}"))
}

#[async_trait]
impl SqsConsumer for WebhookRetry {
    async fn handle_message(&self, message: &SqsMessage) -> MessageOutcome {
        let parsed = match parse_retry_message(message.body.as_deref()) {
            Ok(parsed) => parsed,
            Err(reason) => return MessageOutcome::Retry(reason),
        };

        let outcome = self.service.retry_parked(&parsed).await;

        match outcome {
            Ok(outcome) if outcome.waiting == 0 => {
                tracing::info!(
                    provider = %parsed.provider,
                    reference = %parsed.reference,
                    %outcome,
                    "parked webhook facts applied"
                );
                MessageOutcome::Done
            }
            Ok(outcome) => {
                MessageOutcome::Retry(format!("{outcome}: what they name is not stored yet"))
            }
            Err(error) => MessageOutcome::Retry(format!("retry failed: {error}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_messages_parse_and_malformed_ones_are_explained() {
        let good = parse_retry_message(Some(r#"{"provider":"airalo","reference":"ICCID#89"}"#));
        let bad = parse_retry_message(Some("{}"));
        let empty = parse_retry_message(None);

        assert_eq!(good.expect("valid").reference, "ICCID#89");
        assert!(bad.expect_err("invalid").contains("missing field"));
        assert!(empty.expect_err("no body").contains("no body"));
    }
}
