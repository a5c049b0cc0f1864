//! Usage monitoring: when to poll an eSIM next, how a polled figure merges with the stored
//! one, which alert thresholds a figure crosses, and the poller that ties them together.
//!
//! Layout:
//! - this module: the pure rules (index keys, merge, schedule, thresholds, plan periods).
//! - [`poller`]: one polling round over the due eSIMs of some shards.
//! - [`view`]: the usage route's answer.
//! - `memory`: an in-memory, request-counting store for unit tests and the cost benchmark.

pub mod poller;
pub mod view;

#[cfg(any(test, feature = "test-support"))]
pub mod memory;

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use crate::domain::ids::{EsimId, TenantId};
use crate::domain::lifecycle::ProfileState;
use crate::ports::provider::UsageReport;

pub use poller::{PollerSettings, RoundSummary, UsagePollService};
pub use view::{UsageReader, UsageView};

/// How many partitions the due-for-poll index is spread over. Fixed, because every eSIM item
/// carries its partition; `USAGE_POLL_SHARDS` only says how many pollers share them.
/// Eight keep a round at one Query page per partition for the first few hundred eSIMs each,
/// so reads stay under one per 100 eSIMs from about a thousand eSIMs up.
pub const INDEX_PARTITIONS: u32 = 8;

/// The longest wait between two polls of an active eSIM.
pub const ACTIVE_MAX_INTERVAL: Duration = Duration::hours(1);
/// The wait between polls of an eSIM that is not in use yet, or not consuming.
pub const IDLE_INTERVAL: Duration = Duration::hours(6);
/// How close (in percent points) to the next threshold counts as "near".
const NEAR_THRESHOLD_POINTS: u64 = 5;
/// The wait between polls near a threshold, unless the provider refreshes more slowly.
const NEAR_THRESHOLD_INTERVAL: Duration = Duration::minutes(15);
/// The shortest wait between two polls of one eSIM, whatever the provider says.
const MIN_INTERVAL: Duration = Duration::minutes(1);

/// The index partition an eSIM lives in: a stable hash of its id (FNV-1a).
pub fn index_partition(esim_id: &EsimId) -> u32 {
    let mut hash: u32 = 0x811c_9dc5;
    for byte in esim_id.as_str().bytes() {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash % INDEX_PARTITIONS
}

/// The index partition key (`gsi3pk`) of partition `partition`.
pub fn index_partition_key(partition: u32) -> String {
    format!("POLL#{partition:02}")
}

/// The index sort key (`gsi3sk`): the due time in zero-padded epoch seconds, so that keys
/// sort by time, then the eSIM id.
pub fn due_sort_key(due: OffsetDateTime, esim_id: &EsimId) -> String {
    format!("{:012}#{esim_id}", due.unix_timestamp().max(0))
}

/// The first sort key after everything due at or before `due_before`.
pub fn due_bound(due_before: OffsetDateTime) -> String {
    format!("{:012}#~", due_before.unix_timestamp().max(0))
}

/// The partitions shard `shard` of `shards` polls.
pub fn partitions_of_shard(shard: u32, shards: u32) -> Vec<u32> {
    let shards = shards.clamp(1, INDEX_PARTITIONS);
    (0..INDEX_PARTITIONS)
        .filter(|p| p % shards == shard % shards)
        .collect()
}

/// A tenant's alert thresholds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertSettings {
    /// Alert when the remaining data falls to or below each of these percentages.
    pub low_balance_percent: Vec<u8>,
    /// Alert when the plan ends within each of these numbers of days.
    pub expiry_days: Vec<u32>,
}

impl Default for AlertSettings {
    fn default() -> Self {
        Self {
            low_balance_percent: vec![20, 10],
            expiry_days: vec![3, 1],
        }
    }
}

/// One alert threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Threshold {
    /// Remaining data at or below this percentage.
    RemainingPercent(u8),
    /// The plan ends within this many days.
    ExpiresWithinDays(u32),
}

impl Threshold {
    fn label(&self) -> String {
        match self {
            Threshold::RemainingPercent(p) => format!("PCT{p}"),
            Threshold::ExpiresWithinDays(d) => format!("DAYS{d}"),
        }
    }
}

/// One plan period of an eSIM. A top-up gives the profile more data and a later end, so the
/// period is identified by the plan's total and its end as the provider reports them: a
/// top-up starts a new period, and the alerts of the old one no longer suppress new ones.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PlanPeriod(String);

impl PlanPeriod {
    /// The period a usage figure belongs to.
    pub fn of(report: &UsageReport) -> Self {
        let total = report
            .total_mb
            .map_or_else(|| "unlimited".to_owned(), |mb| format!("{mb}MB"));
        let end = report
            .expires_at
            .map_or_else(|| "open".to_owned(), |at| at.unix_timestamp().to_string());
        Self(format!("{total}-{end}"))
    }

    /// The period's identifier.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The identity of one alert: (eSIM, plan period, threshold). Alerted at most once.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AlertKey {
    /// The eSIM's tenant.
    pub tenant_id: TenantId,
    /// The eSIM.
    pub esim_id: EsimId,
    /// The plan period.
    pub period: PlanPeriod,
    /// The threshold.
    pub threshold: Threshold,
}

impl AlertKey {
    /// The alert record's sort key in the eSIM's partition.
    pub fn record_sort_key(&self) -> String {
        format!(
            "ALERT#{}#{}#{}",
            self.esim_id,
            self.period.as_str(),
            self.threshold.label()
        )
    }

    /// The event id every publication of this alert carries, so consumers drop repeats.
    pub fn event_id(&self) -> String {
        format!(
            "alert-{}-{}-{}",
            self.esim_id,
            self.period.as_str(),
            self.threshold.label().to_ascii_lowercase()
        )
    }
}

/// Percent of the plan left, rounded down; `None` for unlimited plans.
pub fn remaining_percent(report: &UsageReport) -> Option<u8> {
    match (report.remaining_mb, report.total_mb) {
        (Some(remaining), Some(total)) if total > 0 => {
            Some((remaining.min(total) * 100 / total) as u8)
        }
        _ => None,
    }
}

/// Whether `incoming` replaces `stored`: it must be measured later (the freshest figure by the
/// provider's timestamp wins) and say something different (no write for an unchanged value).
/// Webhook figures and polled figures go through this one rule.
pub fn replaces(stored: Option<&UsageReport>, incoming: &UsageReport) -> bool {
    let Some(stored) = stored else {
        return true;
    };
    let newer = match (stored.measured_at, incoming.measured_at) {
        (Some(old), Some(new)) => new > old,
        (None, _) => true,
        (Some(_), None) => false,
    };
    let changed = stored.remaining_mb != incoming.remaining_mb
        || stored.total_mb != incoming.total_mb
        || stored.expires_at != incoming.expires_at
        || stored.state != incoming.state;
    newer && changed
}

/// Whether an eSIM's plan is over, so it is polled no more.
pub fn plan_over(report: Option<&UsageReport>, now: OffsetDateTime) -> bool {
    report.is_some_and(|r| {
        r.state == Some(ProfileState::Expired) || r.expires_at.is_some_and(|at| at <= now)
    })
}

/// The thresholds a figure has crossed, in the tenant's settings, at `now`.
pub fn crossed(
    settings: &AlertSettings,
    report: &UsageReport,
    now: OffsetDateTime,
) -> Vec<Threshold> {
    let mut crossed = Vec::new();
    if let Some(percent) = remaining_percent(report) {
        for &threshold in &settings.low_balance_percent {
            if percent <= threshold {
                crossed.push(Threshold::RemainingPercent(threshold));
            }
        }
    }
    if let Some(expires_at) = report.expires_at
        && expires_at > now
    {
        for &days in &settings.expiry_days {
            if expires_at - now <= Duration::days(i64::from(days)) {
                crossed.push(Threshold::ExpiresWithinDays(days));
            }
        }
    }
    crossed
}

/// When to poll an eSIM next, or `None` when its plan is over.
///
/// - Not in use yet (no figure, not activated, nothing consumed): rarely ([`IDLE_INTERVAL`]).
/// - Consuming: half the time the current rate needs to reach the next threshold, at most
///   [`ACTIVE_MAX_INTERVAL`]; near a threshold at most 15 minutes.
/// - Always before the next expiry threshold and never after the plan's end.
/// - Never sooner than the provider refreshes its own figures (`refresh`).
pub fn next_poll(
    settings: &AlertSettings,
    previous: Option<&UsageReport>,
    latest: Option<&UsageReport>,
    now: OffsetDateTime,
    refresh: Duration,
) -> Option<OffsetDateTime> {
    if plan_over(latest, now) {
        return None;
    }
    let floor = refresh.max(MIN_INTERVAL);
    let Some(latest) = latest else {
        return Some(now + IDLE_INTERVAL.max(floor));
    };
    let in_use = latest.state == Some(ProfileState::Activated)
        || matches!((latest.remaining_mb, latest.total_mb), (Some(r), Some(t)) if r < t);
    let mut interval = if in_use {
        active_interval(settings, previous, latest)
    } else {
        IDLE_INTERVAL
    };
    if let Some(expires_at) = latest.expires_at {
        for &days in &settings.expiry_days {
            let alert_at = expires_at - Duration::days(i64::from(days));
            if alert_at > now {
                interval = interval.min(alert_at - now);
            }
        }
        interval = interval.min(expires_at - now);
    }
    Some(now + interval.max(floor))
}

fn active_interval(
    settings: &AlertSettings,
    previous: Option<&UsageReport>,
    latest: &UsageReport,
) -> Duration {
    let (Some(remaining), Some(total)) = (latest.remaining_mb, latest.total_mb) else {
        return ACTIVE_MAX_INTERVAL;
    };
    let percent = remaining_percent(latest).map_or(100, u64::from);
    let next_threshold = settings
        .low_balance_percent
        .iter()
        .map(|&p| u64::from(p))
        .filter(|&p| p < percent)
        .max();
    let Some(next_threshold) = next_threshold else {
        return ACTIVE_MAX_INTERVAL;
    };
    let mut interval = ACTIVE_MAX_INTERVAL;
    if percent - next_threshold <= NEAR_THRESHOLD_POINTS {
        interval = interval.min(NEAR_THRESHOLD_INTERVAL);
    }
    let rate = previous.and_then(|p| consumption_mb_per_second(p, latest));
    if let Some(rate) = rate.filter(|r| *r > 0.0) {
        let threshold_mb = total * next_threshold / 100;
        let seconds = remaining.saturating_sub(threshold_mb) as f64 / rate / 2.0;
        interval = interval.min(Duration::seconds_f64(seconds));
    }
    interval
}

/// Megabytes consumed per second between two figures of one plan period.
fn consumption_mb_per_second(previous: &UsageReport, latest: &UsageReport) -> Option<f64> {
    if PlanPeriod::of(previous) != PlanPeriod::of(latest) {
        return None;
    }
    let elapsed = (latest.measured_at? - previous.measured_at?).as_seconds_f64();
    let used = previous.remaining_mb?.checked_sub(latest.remaining_mb?)?;
    (elapsed > 0.0).then(|| used as f64 / elapsed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ids::Iccid;
    use time::macros::datetime;

    fn now() -> OffsetDateTime {
        datetime!(2026-03-01 12:00 UTC)
    }

    fn report(remaining: u64, total: u64, minutes_ago: i64) -> UsageReport {
        UsageReport {
            iccid: Iccid::parse("8944771000000000017").expect("iccid"),
            remaining_mb: Some(remaining),
            total_mb: Some(total),
            expires_at: Some(now() + Duration::days(20)),
            measured_at: Some(now() - Duration::minutes(minutes_ago)),
            state: Some(ProfileState::Activated),
        }
    }

    #[test]
    fn a_newer_changed_figure_replaces_and_an_older_or_equal_one_does_not() {
        let stored = report(500, 1000, 10);

        let newer_changed = replaces(Some(&stored), &report(400, 1000, 0));
        let newer_same = replaces(Some(&stored), &report(500, 1000, 0));
        let older_changed = replaces(Some(&stored), &report(400, 1000, 20));

        assert!(newer_changed);
        assert!(!newer_same);
        assert!(!older_changed);
        assert!(replaces(None, &stored));
    }

    #[test]
    fn crossing_thresholds_counts_percent_left_and_days_to_expiry() {
        let settings = AlertSettings::default();
        let mut near_end = report(150, 1000, 0);
        near_end.expires_at = Some(now() + Duration::hours(30));

        let at_fifteen = crossed(&settings, &report(150, 1000, 0), now());
        let at_five_near_end = crossed(&settings, &report(50, 1000, 0), now());
        let near_end = crossed(&settings, &near_end, now());

        assert_eq!(at_fifteen, vec![Threshold::RemainingPercent(20)]);
        assert_eq!(
            at_five_near_end,
            vec![
                Threshold::RemainingPercent(20),
                Threshold::RemainingPercent(10)
            ]
        );
        assert!(near_end.contains(&Threshold::ExpiresWithinDays(3)));
        assert!(!near_end.contains(&Threshold::ExpiresWithinDays(1)));
    }

    #[test]
    fn fast_consumption_polls_sooner_than_slow_and_idle_polls_rarely() {
        let settings = AlertSettings::default();
        let refresh = Duration::minutes(5);
        let fast = next_poll(
            &settings,
            Some(&report(900, 1000, 10)),
            Some(&report(600, 1000, 0)),
            now(),
            refresh,
        );
        let slow = next_poll(
            &settings,
            Some(&report(601, 1000, 10)),
            Some(&report(600, 1000, 0)),
            now(),
            refresh,
        );
        let mut unused = report(1000, 1000, 0);
        unused.state = Some(ProfileState::Provisioned);

        let idle = next_poll(&settings, None, Some(&unused), now(), refresh);

        assert!(fast.expect("due") < slow.expect("due"));
        assert_eq!(slow, Some(now() + ACTIVE_MAX_INTERVAL));
        assert_eq!(idle, Some(now() + IDLE_INTERVAL));
    }

    #[test]
    fn never_polls_faster_than_the_provider_refreshes_nor_after_expiry() {
        let settings = AlertSettings::default();
        let refresh = Duration::minutes(20);
        let mut expired = report(10, 1000, 0);
        expired.expires_at = Some(now() - Duration::minutes(1));

        let racing = next_poll(
            &settings,
            Some(&report(1000, 1000, 1)),
            Some(&report(250, 1000, 0)),
            now(),
            refresh,
        );
        let over = next_poll(&settings, None, Some(&expired), now(), refresh);

        assert_eq!(racing, Some(now() + refresh));
        assert_eq!(over, None);
    }

    #[test]
    fn a_top_up_starts_a_new_plan_period() {
        let before = report(100, 1000, 0);
        let mut after = report(1100, 2000, 0);
        after.expires_at = Some(now() + Duration::days(27));

        assert_ne!(PlanPeriod::of(&before), PlanPeriod::of(&after));
        assert_eq!(
            PlanPeriod::of(&before),
            PlanPeriod::of(&report(50, 1000, 5))
        );
    }

    #[test]
    fn shards_split_the_partitions_without_overlap() {
        let mut all: Vec<u32> = (0..3).flat_map(|s| partitions_of_shard(s, 3)).collect();
        all.sort_unstable();

        assert_eq!(all, (0..INDEX_PARTITIONS).collect::<Vec<_>>());
        assert!(index_partition(&EsimId::from_ulid(ulid::Ulid::new())) < INDEX_PARTITIONS);
    }
}
