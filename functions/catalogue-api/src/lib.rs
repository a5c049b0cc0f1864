//! The catalogue API: countries and plans, read from the cached, normalised catalogue.
//!
//! This build routes and authenticates every catalogue route of the contract; the catalogue
//! itself (provider fetch, cache, tenant pricing) is not served yet, and its routes answer
//! 501 `not_implemented` in the common error shape.

use std::sync::Arc;

use async_trait::async_trait;
use aws_config::SdkConfig;
use esim_shared::aws::{AwsClients, DynamoTenantStore, Table};
use esim_shared::config::{ConfigError, EnvSource, HttpConfig};
use esim_shared::http::{self, HttpHandler, RouteTable};
use esim_shared::tenancy::Authenticator;
use lambda_http::http::Method;
use lambda_http::{Body, Request, Response};

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
}

impl CatalogueApi {
    /// Builds the function from its configuration and one AWS configuration.
    pub fn from_env(aws: &SdkConfig, env: &dyn EnvSource) -> Result<Self, ConfigError> {
        let config = HttpConfig::load(env)?;
        let clients = AwsClients::new(aws);
        let table = Table::new(clients.dynamodb, config.core.table_name.clone());
        let store = Arc::new(DynamoTenantStore::new(table));
        let routes = RouteTable::default()
            .tenant(Method::GET, "/v1/countries", Route::ListCountries)
            .tenant(Method::GET, "/v1/plans", Route::ListPlans)
            .tenant(Method::GET, "/v1/plans/{plan_id}", Route::GetPlan);
        Ok(Self {
            routes,
            auth: Authenticator::new(store, config.auth_cache),
        })
    }
}

#[async_trait]
impl HttpHandler for CatalogueApi {
    async fn handle(&self, request: Request) -> Response<Body> {
        http::serve(
            request,
            &self.routes,
            &self.auth,
            |route, _request| async move {
                match route {
                    Route::ListCountries | Route::ListPlans | Route::GetPlan => {
                        http::not_implemented()
                    }
                }
            },
        )
        .await
    }
}
