//! Lambda entry point of the catalogue API: configuration, clients, then serve.

use std::sync::Arc;

use catalogue_api::CatalogueApi;
use esim_shared::config::ProcessEnv;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda_http::tracing::init_default_subscriber();
    let aws = esim_shared::aws::load_config().await;
    let api = CatalogueApi::from_env(&aws, &ProcessEnv)?;
    esim_shared::http::run(Arc::new(api)).await
}
