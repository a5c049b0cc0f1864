//! Webhook intake: provider webhooks at `POST /webhooks/{provider}`, authenticated by each
//! provider's own scheme rather than a tenant key.
//!
//! This build routes the intake and refuses providers it does not know with 404. Verifying,
//! deduplicating and applying webhooks is not built yet: known providers get 501, which
//! providers treat as a failed delivery and retry, so no webhook is lost meanwhile.

use async_trait::async_trait;
use aws_config::SdkConfig;
use esim_shared::aws::{AwsClients, DynamoTenantStore, Table};
use esim_shared::config::{ConfigError, EnvSource, HttpConfig};
use esim_shared::domain::{DomainError, ErrorCode};
use esim_shared::http::{self, ApiRequest, ApiResponse, HttpHandler, RouteTable};
use esim_shared::tenancy::Authenticator;
use lambda_http::http::Method;
use lambda_http::{Body, Request, Response};

/// The providers whose webhooks this deployment understands.
pub const KNOWN_PROVIDERS: [&str; 2] = ["airalo", "esim-access"];

#[derive(Debug, Clone, Copy)]
enum Route {
    Webhook,
}

/// The webhook intake function.
#[derive(Debug)]
pub struct WebhookIntake {
    routes: RouteTable<Route>,
    auth: Authenticator,
}

impl WebhookIntake {
    /// Builds the function from its configuration and one AWS configuration.
    pub fn from_env(aws: &SdkConfig, env: &dyn EnvSource) -> Result<Self, ConfigError> {
        let config = HttpConfig::load(env)?;
        let clients = AwsClients::new(aws);
        let table = Table::new(clients.dynamodb, config.core.table_name.clone());
        let store = std::sync::Arc::new(DynamoTenantStore::new(table));
        let routes =
            RouteTable::default().public(Method::POST, "/webhooks/{provider}", Route::Webhook);
        Ok(Self {
            routes,
            auth: Authenticator::new(store, config.auth_cache),
        })
    }

    fn receive(request: &ApiRequest) -> Result<ApiResponse, DomainError> {
        let provider = request.param("provider")?;

        if !KNOWN_PROVIDERS.contains(&provider) {
            return Err(DomainError::with_message(
                ErrorCode::NotFound,
                format!("No webhook intake for provider {provider}."),
            ));
        }

        tracing::warn!(
            provider,
            bytes = request.body.len(),
            "webhook received but not processed"
        );
        http::not_implemented()
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
                    Route::Webhook => Self::receive(&request),
                }
            },
        )
        .await
    }
}
