//! The catalogue API: countries and plans from the cached, normalised catalogue, priced for
//! the calling tenant, with `ETag`/`If-None-Match` and `Cache-Control`; and the catalogue
//! events consumer that applies invalidations and scheduled full refreshes from its queue.
//!
//! Layout:
//! - [`CatalogueApi`]: `GET /v1/countries`, `GET /v1/plans?country=XX`, `GET /v1/plans/{id}`.
//! - [`events::CatalogueEvents`]: the SQS consumer of `CatalogueInvalidated` and
//!   `CatalogueRefreshDue` events.
//! - [`caching`]: ETag, Cache-Control and Age headers, and 304 answers.

pub mod caching;
pub mod events;

use std::sync::Arc;

use async_trait::async_trait;
use aws_config::SdkConfig;
use esim_shared::aws::{AwsClients, DynamoTenantStore, Table};
use esim_shared::catalogue::{CatalogueConfig, CatalogueService, Freshness, PlanFilter};
use esim_shared::config::{ConfigError, EnvSource, HttpConfig};
use esim_shared::domain::plan::CountryCode;
use esim_shared::domain::{DomainError, PlanId};
use esim_shared::http::{self, ApiRequest, ApiResponse, HttpHandler, RouteTable};
use esim_shared::ports::{Clock, ProviderApi, SystemClock};
use esim_shared::tenancy::Authenticator;
use lambda_http::http::Method;
use lambda_http::{Body, Request, Response};
use serde_json::{Value, json};

use crate::caching::{Rendered, RenderedCache};
pub use events::CatalogueEvents;

#[derive(Debug, Clone, Copy)]
enum Route {
    ListCountries,
    ListPlans,
    GetPlan,
}

/// The catalogue function.
#[derive(Debug)]
pub struct CatalogueApi {
    routes: RouteTable<Route>,
    auth: Authenticator,
    catalogue: CatalogueService,
    rendered: RenderedCache,
}

impl CatalogueApi {
    /// Builds the function from its configuration and one AWS configuration.
    pub fn from_env(aws: &SdkConfig, env: &dyn EnvSource) -> Result<Self, ConfigError> {
        let providers = esim_shared::providers::from_env(env)?;
        Self::with_clients(AwsClients::new(aws).dynamodb, providers, env)
    }

    /// Builds the function over a DynamoDB client and providers built by the caller (the
    /// benchmark counts calls through both).
    pub fn with_clients(
        dynamodb: aws_sdk_dynamodb::Client,
        providers: Vec<Arc<dyn ProviderApi>>,
        env: &dyn EnvSource,
    ) -> Result<Self, ConfigError> {
        let config = HttpConfig::load(env)?;
        let catalogue_config = CatalogueConfig::load(env)?;
        let table = Table::new(dynamodb, config.core.table_name.clone());
        let store = Arc::new(DynamoTenantStore::new(table.clone()));
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let rendered = RenderedCache::new(catalogue_config.memory_ttl, clock.clone());
        let catalogue = CatalogueService::new(table, providers, clock, catalogue_config);
        let routes = RouteTable::default()
            .tenant(Method::GET, "/v1/countries", Route::ListCountries)
            .tenant(Method::GET, "/v1/plans", Route::ListPlans)
            .tenant(Method::GET, "/v1/plans/{plan_id}", Route::GetPlan);
        Ok(Self {
            routes,
            auth: Authenticator::new(store, config.auth_cache),
            catalogue,
            rendered,
        })
    }

    fn render(&self, content: Value, freshness: Freshness) -> Result<Rendered, DomainError> {
        Rendered::new(
            content,
            freshness,
            self.catalogue.config().memory_ttl.as_secs(),
        )
    }

    async fn list_countries(&self, request: ApiRequest) -> Result<ApiResponse, DomainError> {
        let key = RenderedCache::key(request.tenant()?, &request);
        if let Some(hit) = self.rendered.get(&key) {
            return Ok(hit.answer(&request));
        }

        let listing = self.catalogue.countries().await?;

        let rendered = self.render(json!({ "countries": listing.countries }), listing.freshness)?;
        self.rendered.put(key, &rendered);
        Ok(rendered.answer(&request))
    }

    async fn list_plans(&self, request: ApiRequest) -> Result<ApiResponse, DomainError> {
        let tenant_id = request.tenant()?;
        let country = request.query.get("country").ok_or_else(|| {
            DomainError::invalid(
                "query parameter country is required: a two-letter ISO 3166-1 code such as JP",
            )
        })?;
        let country = CountryCode::parse(country.trim())
            .map_err(|e| DomainError::invalid(format!("query parameter {e}")))?;
        let filter = PlanFilter::from_query(&request.query)?;
        let key = RenderedCache::key(tenant_id, &request);
        if let Some(hit) = self.rendered.get(&key) {
            return Ok(hit.answer(&request));
        }

        let listing = self.catalogue.plans(tenant_id, &country, &filter).await?;

        let content = json!({ "country": listing.country, "plans": listing.plans });
        let rendered = self.render(content, listing.freshness)?;
        self.rendered.put(key, &rendered);
        Ok(rendered.answer(&request))
    }

    async fn get_plan(&self, request: ApiRequest) -> Result<ApiResponse, DomainError> {
        let tenant_id = request.tenant()?;
        let plan_id = PlanId::parse(request.param("plan_id")?)
            .map_err(|e| DomainError::invalid(format!("path parameter plan_id: {e}")))?;
        let key = RenderedCache::key(tenant_id, &request);
        if let Some(hit) = self.rendered.get(&key) {
            return Ok(hit.answer(&request));
        }

        let (plan, freshness) = self
            .catalogue
            .plan(tenant_id, &plan_id)
            .await?
            .ok_or_else(DomainError::not_found)?;

        let content = serde_json::to_value(plan).map_err(DomainError::internal)?;
        let rendered = self.render(content, freshness)?;
        self.rendered.put(key, &rendered);
        Ok(rendered.answer(&request))
    }
}

#[async_trait]
impl HttpHandler for CatalogueApi {
    async fn handle(&self, request: Request) -> Response<Body> {
        http::serve(
            request,
            &self.routes,
            &self.auth,
            |route, request| async move {
                match route {
                    Route::ListCountries => self.list_countries(request).await,
                    Route::ListPlans => self.list_plans(request).await,
                    Route::GetPlan => self.get_plan(request).await,
                }
            },
        )
        .await
    }
}
