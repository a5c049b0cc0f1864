//! Lambda entry point of the catalogue events consumer: configuration, clients, then consume.

use std::sync::Arc;

use catalogue_api::CatalogueEvents;
use esim_shared::config::ProcessEnv;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let aws = esim_shared::aws::load_config().await;
    let consumer = CatalogueEvents::from_env(&aws, &ProcessEnv)?;
    esim_shared::runtime::run_sqs(Arc::new(consumer)).await
}
