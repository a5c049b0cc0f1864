//! Lambda entry point of the webhook retry consumer: configuration, clients, then consume.

use std::sync::Arc;

use esim_shared::config::ProcessEnv;
use webhook_intake::WebhookRetry;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let aws = esim_shared::aws::load_config().await;
    let retry = WebhookRetry::from_env(&aws, &ProcessEnv)?;
    esim_shared::runtime::run_sqs(Arc::new(retry)).await
}
