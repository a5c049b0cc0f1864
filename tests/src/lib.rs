//! Helpers for the integration tests: AWS clients for the moto server `make test` starts, and
//! a local stack per test under its own stack name, so tests run in parallel on one server.

use std::sync::Arc;

use aws_config::SdkConfig;
use esim_shared::aws::{AwsClients, DynamoTenantStore, Table};
use esim_shared::ports::{SystemClock, UlidGenerator};
use esim_shared::tenancy::TenantAdmin;
use local_stack::{LocalStack, StackOptions, repository_root};

/// The moto server's URL, from `MOTO_ENDPOINT`.
pub fn moto_endpoint() -> String {
    match std::env::var("MOTO_ENDPOINT") {
        Ok(url) if !url.is_empty() => url,
        _ => panic!(
            "MOTO_ENDPOINT is not set: integration tests need a moto server; run them with \
             `make test`, which starts one"
        ),
    }
}

/// An AWS configuration pointing at the moto server.
pub async fn aws() -> SdkConfig {
    esim_shared::aws::local_config(&moto_endpoint()).await
}

/// A name no other test uses.
pub fn unique_name(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        ulid::Ulid::new().to_string().to_ascii_lowercase()
    )
}

/// A running stack with its own resources.
pub async fn stack(options: impl FnOnce(&mut StackOptions)) -> (LocalStack, SdkConfig) {
    let aws = aws().await;
    let mut stack_options = StackOptions::new(repository_root(), unique_name("t"));
    options(&mut stack_options);
    let stack = LocalStack::start(&aws, stack_options)
        .await
        .expect("local stack starts");
    (stack, aws)
}

/// Tenant administration over a stack's table.
pub fn admin(aws: &SdkConfig, stack: &LocalStack) -> TenantAdmin {
    TenantAdmin::new(
        Arc::new(DynamoTenantStore::new(table(aws, stack))),
        Arc::new(SystemClock),
        Arc::new(UlidGenerator::default()),
    )
}

/// A handle on a stack's table.
pub fn table(aws: &SdkConfig, stack: &LocalStack) -> Table {
    Table::new(
        AwsClients::new(aws).dynamodb,
        stack.resources.table_name.clone(),
    )
}
