//! The usage poller: fired by an EventBridge schedule, polls providers for the usage of the
//! eSIMs that are due and raises low-balance alerts.
//!
//! This build answers the schedule and reports what it did; polling is not built yet, so
//! every tick reports zero eSIMs polled.

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use esim_shared::aws::{AwsClients, Table};
use esim_shared::config::{ConfigError, CoreConfig, EnvSource};
use esim_shared::runtime::ScheduledJob;
use serde_json::json;

/// The usage poller.
#[derive(Debug)]
pub struct UsagePoller {
    /// The table eSIMs live in.
    pub table: Table,
}

impl UsagePoller {
    /// Builds the poller from its configuration and one AWS configuration.
    pub fn from_env(aws: &SdkConfig, env: &dyn EnvSource) -> Result<Self, ConfigError> {
        let core = CoreConfig::load(env)?;
        let clients = AwsClients::new(aws);
        Ok(Self {
            table: Table::new(clients.dynamodb, core.table_name),
        })
    }
}

#[async_trait]
impl ScheduledJob for UsagePoller {
    async fn run_once(
        &self,
        event: EventBridgeEvent<serde_json::Value>,
    ) -> Result<serde_json::Value, lambda_runtime::Error> {
        let tick = event.time.map(|t| t.to_rfc3339()).unwrap_or_default();

        tracing::info!(
            tick,
            table = self.table.name(),
            "usage poll tick; polling is not built"
        );

        Ok(json!({ "tick": tick, "polled": 0 }))
    }
}
