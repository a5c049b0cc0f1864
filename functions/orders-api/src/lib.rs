//! The orders API: orders, eSIM status and activation details, usage, top-ups, reissue and
//! transfer answers, and `GET /v1/tenant` for a caller to check which tenant its key opens.
//!
//! `POST /v1/orders` and `GET /v1/orders/{order_id}` are served by
//! [`esim_shared::orders::OrderService`]: idempotent by the `Idempotency-Key` header, one
//! transaction and one queue send per order, and for synchronous providers a bounded wait
//! (`ORDER_SYNC_WAIT_MS`, default 2500; 0 never waits) for the profile before answering 201
//! instead of 202. The eSIM routes not yet built answer 501 `not_implemented` in the common
//! error shape.

mod esims;
mod usage;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_config::SdkConfig;
use esim_shared::aws::{AwsClients, DynamoOrderStore, DynamoTenantStore, SqsQueue, Table};
use esim_shared::catalogue::{CatalogueConfig, CatalogueService};
use esim_shared::config::{ConfigError, EnvSource, HttpConfig, required};
use esim_shared::domain::DomainError;
use esim_shared::domain::ids::OrderId;
use esim_shared::domain::order::CreateOrderRequest;
use esim_shared::http::{self, ApiRequest, ApiResponse, HttpHandler, RouteTable};
use esim_shared::orders::{OrderAnswer, OrderService, SyncWait};
use esim_shared::ports::{SystemClock, TenantStore, UlidGenerator};
use esim_shared::tenancy::Authenticator;
use lambda_http::http::header::{HeaderName, HeaderValue, LOCATION};
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};
use serde_json::json;

/// The default bounded wait for a synchronous provider's profile.
pub const DEFAULT_SYNC_WAIT: Duration = Duration::from_millis(2500);

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
    orders: OrderService,
    esims: esims::EsimRoutes,
    usage: usage::UsageRoute,
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
        let wait = sync_wait(env)?;
        let providers = esim_shared::providers::from_env(env)?;
        let clients = AwsClients::new(aws);
        let table = Table::new(clients.dynamodb, config.core.table_name.clone());
        let tenants: Arc<dyn TenantStore> = Arc::new(DynamoTenantStore::new(table.clone()));
        let esims = esims::EsimRoutes::new(table.clone());
        let usage = usage::UsageRoute::new(table.clone());
        let clock = Arc::new(SystemClock);
        let sync_providers = providers
            .iter()
            .filter(|p| p.capabilities().synchronous_available)
            .map(|p| p.id().clone())
            .collect();
        let catalogue = CatalogueService::new(
            table.clone(),
            providers,
            clock.clone(),
            CatalogueConfig::load(env)?,
        );
        let orders = OrderService::new(
            Arc::new(DynamoOrderStore::new(table)),
            Arc::new(catalogue),
            Arc::new(SqsQueue::new(clients.sqs, provisioning_queue_url)),
            clock,
            Arc::new(UlidGenerator::default()),
        )
        .with_sync_wait(SyncWait {
            providers: sync_providers,
            wait,
            every: Duration::from_millis(200),
        });
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
            orders,
            esims,
            usage,
        })
    }

    async fn create_order(&self, request: ApiRequest) -> Result<ApiResponse, DomainError> {
        let tenant_id = request.tenant()?;
        let key = request.header("idempotency-key");
        let body: CreateOrderRequest = request.json()?;

        let answer = self.orders.create(tenant_id, key, &body).await?;

        order_answer(answer)
    }

    async fn get_order(&self, request: ApiRequest) -> Result<ApiResponse, DomainError> {
        let tenant_id = request.tenant()?;
        let order_id =
            OrderId::parse(request.param("order_id")?).map_err(|_| DomainError::not_found())?;

        let view = self.orders.get(tenant_id, &order_id).await?;

        ApiResponse::json(StatusCode::OK, &view)
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
                    Route::CreateOrder => self.create_order(request).await,
                    Route::GetOrder => self.get_order(request).await,
                    Route::GetEsim => self.esims.get(request).await,
                    Route::GetEsimQr => self.esims.qr(request).await,
                    Route::CustomerEsims => self.esims.for_customer(request).await,
                    Route::GetEsimUsage => self.usage.get(request).await,
                    Route::TopUp | Route::Reissue | Route::Transfer => http::not_implemented(),
                }
            },
        )
        .await
    }
}

/// `ORDER_SYNC_WAIT_MS`: how long `POST /v1/orders` waits for a synchronous provider.
fn sync_wait(env: &dyn EnvSource) -> Result<Duration, ConfigError> {
    match env.var("ORDER_SYNC_WAIT_MS") {
        None => Ok(DEFAULT_SYNC_WAIT),
        Some(text) => text
            .trim()
            .parse::<u64>()
            .map(Duration::from_millis)
            .map_err(|_| ConfigError::Invalid {
                name: "ORDER_SYNC_WAIT_MS",
                reason: format!("expected whole milliseconds, got {text:?}"),
            }),
    }
}

/// The answer as stored, status and body, with where to poll the order.
fn order_answer(answer: OrderAnswer) -> Result<ApiResponse, DomainError> {
    let status = StatusCode::from_u16(answer.status).map_err(DomainError::internal)?;
    let location = HeaderValue::try_from(format!("/v1/orders/{}", answer.order_id))
        .map_err(DomainError::internal)?;
    let mut response = ApiResponse {
        status,
        headers: Vec::new(),
        content_type: "application/json",
        body: answer.body.into_bytes(),
    }
    .with_header(LOCATION, location);
    if answer.replayed {
        response = response.with_header(
            HeaderName::from_static("idempotent-replayed"),
            HeaderValue::from_static("true"),
        );
    }
    Ok(response)
}
