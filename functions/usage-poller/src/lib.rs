//! The usage poller: fired by an EventBridge schedule, polls providers for the usage of the
//! eSIMs that are due, merges the figures and raises low-balance and plan-expiry alerts
//! exactly once ([`UsagePollService`]). Each tick also runs the sweep of accepted orders whose
//! provisioning message may have been lost ([`AcceptedOrderSweep`]).
//!
//! Which shard a tick polls: the schedule's input may name one (`{"shard": 2}` in the event's
//! `detail`); without it the tick leases and polls every shard no other poller holds.

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use std::sync::Arc;
use std::time::Duration;

use esim_shared::aws::{
    AwsClients, DynamoOrderStore, DynamoUsageStore, EventBridgePublisher, SqsQueue, Table,
};
use esim_shared::config::{ConfigError, CoreConfig, EnvSource, required, seconds};
use esim_shared::orders::{AcceptedOrderSweep, SWEEP_AFTER};
use esim_shared::ports::SystemClock;
use esim_shared::runtime::ScheduledJob;
use esim_shared::usage::{PollerSettings, UsagePollService};
use serde_json::json;

/// How many pollers share the poll wheel.
pub const USAGE_POLL_SHARDS: &str = "USAGE_POLL_SHARDS";
/// How long one round may run; keep it below the function timeout.
pub const USAGE_POLL_BUDGET_SECONDS: &str = "USAGE_POLL_BUDGET_SECONDS";

/// Reads the poller's settings: shards (default 1, at most the index's partitions) and the
/// time budget (default 45 seconds).
pub fn poller_settings(env: &dyn EnvSource) -> Result<PollerSettings, ConfigError> {
    let mut settings = PollerSettings::default();
    if let Some(text) = env.var(USAGE_POLL_SHARDS) {
        settings.shards = text
            .trim()
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=esim_shared::usage::INDEX_PARTITIONS).contains(n))
            .ok_or_else(|| ConfigError::Invalid {
                name: USAGE_POLL_SHARDS,
                reason: format!(
                    "expected 1 to {}, got {text:?}",
                    esim_shared::usage::INDEX_PARTITIONS
                ),
            })?;
    }
    settings.budget = seconds(env, USAGE_POLL_BUDGET_SECONDS, Duration::from_secs(45))?;
    settings.holder = format!("usage-poller-{}", ulid::Ulid::new());
    Ok(settings)
}

/// The usage poller.
#[derive(Debug)]
pub struct UsagePoller {
    /// The table eSIMs live in.
    pub table: Table,
    /// The polling rounds.
    pub service: UsagePollService,
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
        let settings = poller_settings(env)?;
        let providers = esim_shared::providers::from_env(env)?;
        let clients = AwsClients::new(aws);
        let table = Table::new(clients.dynamodb, core.table_name);
        let orders = Arc::new(DynamoOrderStore::new(table.clone()));
        let service = UsagePollService::new(
            Arc::new(DynamoUsageStore::new(table.clone())),
            orders.clone(),
            providers,
            Arc::new(EventBridgePublisher::new(
                clients.eventbridge,
                core.event_bus_name,
                core.event_source,
            )),
            Arc::new(SystemClock),
            settings,
        );
        let sweep = AcceptedOrderSweep::new(
            orders,
            Arc::new(SqsQueue::new(clients.sqs, queue_url)),
            Arc::new(SystemClock),
        );
        Ok(Self {
            table,
            service,
            sweep,
        })
    }
}

/// The shard a scheduled event names in its detail, if any.
pub fn requested_shard(event: &EventBridgeEvent<serde_json::Value>) -> Option<u32> {
    event
        .detail
        .get("shard")
        .and_then(serde_json::Value::as_u64)
        .and_then(|s| u32::try_from(s).ok())
}

#[async_trait]
impl ScheduledJob for UsagePoller {
    async fn run_once(
        &self,
        event: EventBridgeEvent<serde_json::Value>,
    ) -> Result<serde_json::Value, lambda_runtime::Error> {
        let tick = event.time.map(|t| t.to_rfc3339()).unwrap_or_default();
        let shard = requested_shard(&event);

        let round = self.service.run_round(shard).await?;
        let resent = self.sweep.run(SWEEP_AFTER).await?;

        Ok(json!({
            "tick": tick,
            "polled": round.polled,
            "usage": round,
            "orders_resent": resent,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn reads_shards_and_budget_and_refuses_impossible_shard_counts() {
        let good = poller_settings(&env(&[
            (USAGE_POLL_SHARDS, "4"),
            (USAGE_POLL_BUDGET_SECONDS, "30"),
        ]))
        .expect("valid");

        let zero = poller_settings(&env(&[(USAGE_POLL_SHARDS, "0")]));
        let too_many = poller_settings(&env(&[(USAGE_POLL_SHARDS, "9")]));

        assert_eq!(good.shards, 4);
        assert_eq!(good.budget, Duration::from_secs(30));
        assert!(zero.is_err());
        assert!(too_many.is_err());
    }

    #[test]
    fn takes_the_shard_from_the_schedule_input() {
        let mut event = EventBridgeEvent::<serde_json::Value>::default();
        event.detail = json!({"shard": 3});

        assert_eq!(requested_shard(&event), Some(3));
        event.detail = json!({});
        assert_eq!(requested_shard(&event), None);
    }
}
