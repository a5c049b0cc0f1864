//! AWS adapters of the ports: DynamoDB stores, the SQS queue and the EventBridge bus.
//!
//! One [`aws_config::SdkConfig`] per container, every client built from it once in `main`.
//! Endpoints come from configuration: in AWS the SDK's defaults, locally `AWS_ENDPOINT_URL`
//! (which the SDK reads itself) pointing at the moto server, so the same code talks to both.

pub mod catalogue_store;
pub mod dynamo;
pub mod esim_store;
pub mod eventbridge;
pub mod order_store;
pub mod sqs;
pub mod tenant_store;
pub mod usage_store;
pub mod webhook_store;

use aws_config::{BehaviorVersion, SdkConfig};

pub use catalogue_store::DynamoCatalogueStore;
pub use dynamo::Table;
pub use esim_store::DynamoEsimStore;
pub use eventbridge::EventBridgePublisher;
pub use order_store::DynamoOrderStore;
pub use sqs::SqsQueue;
pub use tenant_store::DynamoTenantStore;
pub use usage_store::DynamoUsageStore;
pub use webhook_store::DynamoWebhookStore;

/// Loads the AWS configuration from the environment, once per container.
pub async fn load_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest()).load().await
}

/// A configuration for a local emulator at `endpoint`, with throwaway credentials and a fixed
/// region, for the local stack and integration tests.
pub async fn local_config(endpoint: &str) -> SdkConfig {
    let credentials = aws_config::Region::new("us-east-1");
    aws_config::defaults(BehaviorVersion::latest())
        .region(credentials)
        .endpoint_url(endpoint)
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "local",
            "local",
            None,
            None,
            "local-stack",
        ))
        .load()
        .await
}

/// Every AWS client a function may use, built once from one configuration.
#[derive(Debug, Clone)]
pub struct AwsClients {
    /// DynamoDB.
    pub dynamodb: aws_sdk_dynamodb::Client,
    /// SQS.
    pub sqs: aws_sdk_sqs::Client,
    /// EventBridge.
    pub eventbridge: aws_sdk_eventbridge::Client,
}

impl AwsClients {
    /// Builds the clients. Cheap to clone: clients share their connection pool.
    pub fn new(config: &SdkConfig) -> Self {
        Self {
            dynamodb: aws_sdk_dynamodb::Client::new(config),
            sqs: aws_sdk_sqs::Client::new(config),
            eventbridge: aws_sdk_eventbridge::Client::new(config),
        }
    }
}
