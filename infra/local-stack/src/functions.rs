//! Builds each function in-process, by binary name, from its resolved environment: the same
//! constructors the Lambda binaries call in their `main`.

use std::collections::HashMap;
use std::sync::Arc;

use aws_config::SdkConfig;
use esim_shared::config::ConfigError;
use esim_shared::http::HttpHandler;
use esim_shared::runtime::{ScheduledJob, SqsConsumer};

/// A function ready to be invoked.
#[derive(Clone)]
pub enum LocalFunction {
    /// Served through the HTTP router.
    Http(Arc<dyn HttpHandler>),
    /// Fed by a queue pump.
    Sqs(Arc<dyn SqsConsumer>),
    /// Fired by a schedule.
    Scheduled(Arc<dyn ScheduledJob>),
}

impl std::fmt::Debug for LocalFunction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LocalFunction::Http(_) => "Http",
            LocalFunction::Sqs(_) => "Sqs",
            LocalFunction::Scheduled(_) => "Scheduled",
        })
    }
}

/// Building a function failed.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The template names a binary this workspace does not have.
    #[error("template.yaml names binary {0}, which the local stack does not know")]
    UnknownBinary(String),
    /// The function refused its configuration.
    #[error("function {binary} refused its configuration")]
    Config {
        /// Which function.
        binary: String,
        /// Why.
        #[source]
        source: ConfigError,
    },
}

/// Builds the function of `binary` with `env` as its environment.
pub fn build(
    binary: &str,
    aws: &SdkConfig,
    env: &HashMap<String, String>,
) -> Result<LocalFunction, BuildError> {
    let config = |source| BuildError::Config {
        binary: binary.to_owned(),
        source,
    };
    Ok(match binary {
        "catalogue-api" => LocalFunction::Http(Arc::new(
            catalogue_api::CatalogueApi::from_env(aws, env).map_err(config)?,
        )),
        "catalogue-events" => LocalFunction::Sqs(Arc::new(
            catalogue_api::CatalogueEvents::from_env(aws, env).map_err(config)?,
        )),
        "orders-api" => LocalFunction::Http(Arc::new(
            orders_api::OrdersApi::from_env(aws, env).map_err(config)?,
        )),
        "webhook-intake" => LocalFunction::Http(Arc::new(
            webhook_intake::WebhookIntake::from_env(aws, env).map_err(config)?,
        )),
        "webhook-retry" => LocalFunction::Sqs(Arc::new(
            webhook_intake::WebhookRetry::from_env(aws, env).map_err(config)?,
        )),
        "provisioning-worker" => LocalFunction::Sqs(Arc::new(
            provisioning_worker::ProvisioningWorker::from_env(aws, env).map_err(config)?,
        )),
        "usage-poller" => LocalFunction::Scheduled(Arc::new(
            usage_poller::UsagePoller::from_env(aws, env).map_err(config)?,
        )),
        other => return Err(BuildError::UnknownBinary(other.to_owned())),
    })
}
