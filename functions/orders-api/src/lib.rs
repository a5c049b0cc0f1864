//! The orders API: orders, eSIM status and activation details, usage, top-ups, reissue and
//! transfer answers, and `GET /v1/tenant` for a caller to check which tenant its key opens.
//!
//! This build routes and authenticates every route of the contract. Only `GET /v1/tenant`
//! is served; the order and eSIM routes answer 501 `not_implemented` in the common error
//! shape until provisioning is built.

use std::sync::Arc;

use async_trait::async_trait;
use aws_config::SdkConfig;
use esim_shared::aws::{AwsClients, DynamoTenantStore, Table};
use esim_shared::config::{ConfigError, EnvSource, HttpConfig, required};
use esim_shared::domain::DomainError;
use esim_shared::http::{self, ApiRequest, ApiResponse, HttpHandler, RouteTable};
use esim_shared::ports::TenantStore;
use esim_shared::tenancy::Authenticator;
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};
use serde_json::json;

#[derive(Debug, Clone, Copy)]
enum Route {
    WhoAmI,
    CreateOrder,
    GetOrder,
    GetEsim,
    GetEsimQr,
    GetEsimUsage,
    TopUp,
    Reissue,
    Transfer,
    CustomerEsims,
}

/// The orders function.
#[derive(Debug)]
pub struct OrdersApi {
    routes: RouteTable<Route>,
    auth: Authenticator,
    tenants: Arc<dyn TenantStore>,
    /// Where accepted orders are queued for the provisioning worker.
    pub provisioning_queue_url: String,
}

impl OrdersApi {
    /// Builds the function from its configuration and one AWS configuration.
    pub fn from_env(aws: &SdkConfig, env: &dyn EnvSource) -> Result<Self, ConfigError> {
        let config = HttpConfig::load(env)?;
        let provisioning_queue_url = required(
            env,
            "PROVISIONING_QUEUE_URL",
            "the provisioning queue's URL",
        )?;
        let clients = AwsClients::new(aws);
        let table = Table::new(clients.dynamodb, config.core.table_name.clone());
        let tenants: Arc<dyn TenantStore> = Arc::new(DynamoTenantStore::new(table));
        let routes = RouteTable::default()
            .tenant(Method::GET, "/v1/tenant", Route::WhoAmI)
            .tenant(Method::POST, "/v1/orders", Route::CreateOrder)
            .tenant(Method::GET, "/v1/orders/{order_id}", Route::GetOrder)
            .tenant(Method::GET, "/v1/esims/{esim_id}", Route::GetEsim)
            .tenant(Method::GET, "/v1/esims/{esim_id}/qr.svg", Route::GetEsimQr)
            .tenant(
                Method::GET,
                "/v1/esims/{esim_id}/usage",
                Route::GetEsimUsage,
            )
            .tenant(Method::POST, "/v1/esims/{esim_id}/topups", Route::TopUp)
            .tenant(Method::POST, "/v1/esims/{esim_id}/reissue", Route::Reissue)
            .tenant(Method::GET, "/v1/esims/{esim_id}/transfer", Route::Transfer)
            .tenant(
                Method::GET,
                "/v1/customers/{customer_id}/esims",
                Route::CustomerEsims,
            );
        let auth = Authenticator::new(tenants.clone(), config.auth_cache);
        Ok(Self {
            routes,
            auth,
            tenants,
            provisioning_queue_url,
        })
    }

    async fn who_am_i(&self, request: ApiRequest) -> Result<ApiResponse, DomainError> {
        let tenant_id = request.tenant()?;

        let tenant = self
            .tenants
            .get_tenant(tenant_id)
            .await?
            .ok_or_else(DomainError::not_found)?;

        let body = json!({ "tenant_id": tenant.tenant_id, "name": tenant.name });
        ApiResponse::json(StatusCode::OK, &body)
    }
}

#[async_trait]
impl HttpHandler for OrdersApi {
    async fn handle(&self, request: Request) -> Response<Body> {
        http::serve(
            request,
            &self.routes,
            &self.auth,
            |route, request| async move {
                match route {
                    Route::WhoAmI => self.who_am_i(request).await,
                    Route::CreateOrder
                    | Route::GetOrder
                    | Route::GetEsim
                    | Route::GetEsimQr
                    | Route::GetEsimUsage
                    | Route::TopUp
                    | Route::Reissue
                    | Route::Transfer
                    | Route::CustomerEsims => http::not_implemented(),
                }
            },
        )
        .await
    }
}
