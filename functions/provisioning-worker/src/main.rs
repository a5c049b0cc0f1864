//! Lambda entry point of the provisioning worker: configuration, clients, then consume.

use std::sync::Arc;

use esim_shared::config::ProcessEnv;
use provisioning_worker::ProvisioningWorker;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let aws = esim_shared::aws::load_config().await;
    let worker = ProvisioningWorker::from_env(&aws, &ProcessEnv)?;
    esim_shared::runtime::run_sqs(Arc::new(worker)).await
}
