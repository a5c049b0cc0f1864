//! The usage poller: fired by an EventBridge schedule, polls providers for the usage of the
//! eSIMs that are due and raises low-balance alerts.
//!
//! This build answers the schedule and reports what it did; polling is not built yet, so
//! every tick reports zero eSIMs polled. Each tick also runs the sweep of accepted orders
//! whose provisioning message may have been lost ([`AcceptedOrderSweep`]).

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use std::sync::Arc;

use esim_shared::aws::{AwsClients, DynamoOrderStore, SqsQueue, Table};
use esim_shared::config::{ConfigError, CoreConfig, EnvSource, required};
use esim_shared::orders::{AcceptedOrderSweep, SWEEP_AFTER};
use esim_shared::ports::SystemClock;
use esim_shared::runtime::ScheduledJob;
use serde_json::json;

/// The usage poller.
#[derive(Debug)]
pub struct UsagePoller {
    /// The table eSIMs live in.
    pub table: Table,
    sweep: AcceptedOrderSweep,
}

impl UsagePoller {
    /// Builds the poller from its configuration and one AWS configuration.
    pub fn from_env(aws: &SdkConfig, env: &dyn EnvSource) -> Result<Self, ConfigError> {
        let core = CoreConfig::load(env)?;
        let queue_url = required(
            env,
            "PROVISIONING_QUEUE_URL",
            "the provisioning queue's URL",
        )?;
        let clients = AwsClients::new(aws);
        let table = Table::new(clients.dynamodb, core.table_name);
        let sweep = AcceptedOrderSweep::new(
            Arc::new(DynamoOrderStore::new(table.clone())),
            Arc::new(SqsQueue::new(clients.sqs, queue_url)),
            Arc::new(SystemClock),
        );
        Ok(Self { table, sweep })
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

        let resent = self.sweep.run(SWEEP_AFTER).await?;

        Ok(json!({ "tick": tick, "polled": 0, "orders_resent": resent }))
    }
}
