//! Lambda entry point of the usage poller: configuration, clients, then run on schedule.

use std::sync::Arc;

use esim_shared::config::ProcessEnv;
use usage_poller::UsagePoller;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let aws = esim_shared::aws::load_config().await;
    let poller = UsagePoller::from_env(&aws, &ProcessEnv)?;
    esim_shared::runtime::run_scheduled(Arc::new(poller)).await
}
