//! Lambda entry point of the webhook intake: configuration, clients, then serve.

use std::sync::Arc;

use esim_shared::config::ProcessEnv;
use webhook_intake::WebhookIntake;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda_http::tracing::init_default_subscriber();
    let aws = esim_shared::aws::load_config().await;
    let intake = WebhookIntake::from_env(&aws, &ProcessEnv)?;
    esim_shared::http::run(Arc::new(intake)).await
}
