//! Usage monitoring: when to poll an eSIM next, how a polled figure merges with the stored
//! one, which alert thresholds a figure crosses, and the poller that ties them together.
//!
//! Layout:
//! - this module: the pure rules (the poll wheel's tiers, slots, keys and cursors; merge,
//!   schedule, thresholds, plan periods).
//! - [`poller`]: one polling round over the wheel partitions of some shards.
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

/// How many partitions each tier of the poll wheel is spread over, by a hash of the eSIM id.
const PARTS_PER_TIER: u32 = 2;
/// How many partitions the poll wheel has in all ([`Tier::ALL`] times two). Fixed, because
/// every eSIM item carries its partition; `USAGE_POLL_SHARDS` only says how many pollers share
/// them. Few partitions keep a round at a handful of Query pages, so reads stay under one per
/// 100 eSIMs from about a thousand eSIMs up. Each costs a Query per round even when empty, so
/// a 5-minute tick between turns reads six to nine pages however few eSIMs came round; it
/// also caps the pollers sharing the wheel at six.
pub const INDEX_PARTITIONS: u32 = 3 * PARTS_PER_TIER;

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

/// How often the poll wheel comes round to an eSIM. An eSIM sits in one tier at one slot (a
/// minute of the tier's turn); every poller round polls the slots whose minute has come since
/// the last round, so an eSIM whose tier does not change is polled again without any write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Tier {
    /// Every 15 minutes: near a threshold, consuming fast, or retrying soon.
    Fast,
    /// Every hour: consuming.
    Hourly,
    /// Every 6 hours: not in use yet, or not consuming.
    Idle,
}

impl Tier {
    /// The tiers, fastest first.
    pub const ALL: [Tier; 3] = [Tier::Fast, Tier::Hourly, Tier::Idle];

    /// Minutes in one turn of the tier, which is also its number of slots.
    pub fn minutes(self) -> u32 {
        match self {
            Tier::Fast => 15,
            Tier::Hourly => 60,
            Tier::Idle => 360,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Tier::Fast => "15M",
            Tier::Hourly => "1H",
            Tier::Idle => "6H",
        }
    }

    fn from_label(label: &str) -> Option<Tier> {
        Tier::ALL.into_iter().find(|t| t.label() == label)
    }

    /// The tier for a wanted wait between polls: the slowest whose turn is no longer than
    /// `interval`, so the next poll never comes after the wanted time (the wheel may come round
    /// to a newly placed eSIM sooner, never later). Below 15 minutes the fast tier polls up to
    /// 15 minutes late: an expiry alert due within the next quarter hour can be that late.
    /// Never a tier faster than the provider refreshes its figures (`refresh`).
    pub fn for_interval(interval: Duration, refresh: Duration) -> Tier {
        let allowed: Vec<Tier> = Tier::ALL
            .into_iter()
            .filter(|t| Duration::minutes(i64::from(t.minutes())) >= refresh)
            .collect();
        let fitting = allowed
            .iter()
            .copied()
            .filter(|t| Duration::minutes(i64::from(t.minutes())) <= interval)
            .max();
        fitting
            .or_else(|| allowed.first().copied())
            .unwrap_or(Tier::Idle)
    }
}

fn fnv(esim_id: &EsimId) -> u32 {
    let mut hash: u32 = 0x811c_9dc5;
    for byte in esim_id.as_str().bytes() {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash
}

/// The part of its tier an eSIM lives in: a stable hash of its id (FNV-1a).
pub fn index_partition(esim_id: &EsimId) -> u32 {
    fnv(esim_id) % PARTS_PER_TIER
}

/// The eSIM's own slot in a tier, stable so that it keeps its place while its tier holds.
pub fn home_slot(esim_id: &EsimId, tier: Tier) -> u32 {
    (fnv(esim_id) / PARTS_PER_TIER) % tier.minutes()
}

/// The slot the wheel reaches at minute `minute` (epoch minutes).
pub fn slot_at(tier: Tier, minute: i64) -> u32 {
    minute.rem_euclid(i64::from(tier.minutes())) as u32
}

/// Epoch minutes of a time.
pub fn minute_of(at: OffsetDateTime) -> i64 {
    at.unix_timestamp().div_euclid(60)
}

/// Wheel partition `partition` (0 to [`INDEX_PARTITIONS`]): its tier and part.
pub fn wheel_partition(partition: u32) -> (Tier, u32) {
    let tier = Tier::ALL[(partition / PARTS_PER_TIER) as usize % Tier::ALL.len()];
    (tier, partition % PARTS_PER_TIER)
}

/// The index partition key (`gsi3pk`) of a tier's part: `POLL#<tier>#<part>`.
pub fn index_partition_key(tier: Tier, part: u32) -> String {
    format!("POLL#{}#{part:02}", tier.label())
}

/// The tier an index partition key names.
pub fn tier_of_key(partition_key: &str) -> Option<Tier> {
    Tier::from_label(partition_key.strip_prefix("POLL#")?.split('#').next()?)
}

/// The index sort key (`gsi3sk`): the zero-padded slot, then the eSIM id, so that keys sort by
/// slot.
pub fn slot_sort_key(slot: u32, esim_id: &EsimId) -> String {
    format!("{slot:03}#{esim_id}")
}

/// The slot a sort key names.
pub fn slot_of_key(sort_key: &str) -> Option<u32> {
    sort_key.split('#').next()?.parse().ok()
}

/// The lowest sort key of a slot.
pub fn slot_first_key(slot: u32) -> String {
    format!("{slot:03}#")
}

/// The highest sort key of a slot.
pub fn slot_last_key(slot: u32) -> String {
    format!("{slot:03}#~")
}

/// The lowest sort key after `key`: eSIM ids have one length, so no key but `key` itself
/// starts with it, and a space sorts below every id character.
pub fn key_after(key: &str) -> String {
    format!("{key} ")
}

/// Where an eSIM sits in the wheel: index partition key and sort key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WheelPlace {
    /// `gsi3pk`.
    pub partition_key: String,
    /// `gsi3sk`.
    pub sort_key: String,
}

impl WheelPlace {
    /// The eSIM's home slot in `tier`.
    pub fn home(esim_id: &EsimId, tier: Tier) -> Self {
        Self {
            partition_key: index_partition_key(tier, index_partition(esim_id)),
            sort_key: slot_sort_key(home_slot(esim_id, tier), esim_id),
        }
    }

    /// The fast tier's slot of the minute `at` falls in, for a retry that must come no sooner.
    pub fn fast_at(esim_id: &EsimId, at: OffsetDateTime) -> Self {
        Self {
            partition_key: index_partition_key(Tier::Fast, index_partition(esim_id)),
            sort_key: slot_sort_key(slot_at(Tier::Fast, minute_of(at)), esim_id),
        }
    }

    /// Where the order store puts a new eSIM: its home slot in the fast tier, so its first
    /// poll comes within 15 minutes.
    pub fn new_esim(esim_id: &EsimId) -> Self {
        Self::home(esim_id, Tier::Fast)
    }
}

/// How far a poller got through one wheel partition, kept with the shard lease.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WheelCursor {
    /// Every slot whose minute (epoch minutes) is before this one was polled.
    pub minute: i64,
    /// Within the slot of `minute`, eSIMs from this sort key on are still to poll.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// Whether `from` belongs to a whole-turn pass (see [`wheel_ranges`]).
    #[serde(default)]
    pub full_pass: bool,
}

/// One run of consecutive slots to query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotRange {
    /// The first slot.
    pub first: u32,
    /// The last slot, included.
    pub last: u32,
    /// The minute the first slot stands for.
    pub first_minute: i64,
    /// Where in the first slot to start, when resuming.
    pub from: Option<String>,
    /// Whether this is a whole-turn pass.
    pub full_pass: bool,
}

impl SlotRange {
    /// The cursor that resumes this range at sort key `key` (not polled yet).
    pub fn resume_at(&self, key: &str, previous: &WheelCursor) -> WheelCursor {
        if self.full_pass {
            return WheelCursor {
                minute: previous.minute,
                from: Some(key.to_owned()),
                full_pass: true,
            };
        }
        match slot_of_key(key).filter(|s| (self.first..=self.last).contains(s)) {
            Some(slot) => WheelCursor {
                minute: self.first_minute + i64::from(slot - self.first),
                from: Some(key.to_owned()),
                full_pass: false,
            },
            None => WheelCursor {
                minute: self.first_minute,
                from: None,
                full_pass: false,
            },
        }
    }
}

/// The slot ranges a round at minute `now` polls in a tier, given the partition's cursor:
/// the slots of the minutes from the cursor to `now`, in wheel order (two ranges when they
/// wrap past the last slot). When a whole turn or more passed (a new partition, a poller down
/// a while, a clock jump) every eSIM is due: one range over all slots, resumable by sort key.
/// After such a pass the wheel comes round to each eSIM at its own slot again, for some sooner
/// than a whole turn: one extra provider call each, without a write.
pub fn wheel_ranges(cursor: &WheelCursor, now: i64, tier: Tier) -> Vec<SlotRange> {
    let len = i64::from(tier.minutes());
    if now - cursor.minute >= len {
        return vec![SlotRange {
            first: 0,
            last: tier.minutes() - 1,
            first_minute: now,
            from: cursor.from.clone().filter(|_| cursor.full_pass),
            full_pass: true,
        }];
    }
    if cursor.minute > now {
        return Vec::new();
    }
    let count = (now - cursor.minute + 1) as u32;
    let first = slot_at(tier, cursor.minute);
    let from = cursor.from.clone().filter(|_| !cursor.full_pass);
    if first + count <= tier.minutes() {
        return vec![SlotRange {
            first,
            last: first + count - 1,
            first_minute: cursor.minute,
            from,
            full_pass: false,
        }];
    }
    let head = tier.minutes() - first;
    vec![
        SlotRange {
            first,
            last: tier.minutes() - 1,
            first_minute: cursor.minute,
            from,
            full_pass: false,
        },
        SlotRange {
            first: 0,
            last: count - head - 1,
            first_minute: cursor.minute + i64::from(head),
            from: None,
            full_pass: false,
        },
    ]
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
        assert!(index_partition(&EsimId::from_ulid(ulid::Ulid::new())) < PARTS_PER_TIER);
    }

    #[test]
    fn the_wheel_polls_the_slots_since_the_cursor_and_wraps_past_the_last() {
        let tier = Tier::Fast;
        let cursor = |minute| WheelCursor {
            minute,
            ..WheelCursor::default()
        };

        let inside = wheel_ranges(&cursor(1503), 1507, tier);
        let wrapping = wheel_ranges(&cursor(1512), 1517, tier);
        let caught_up = wheel_ranges(&cursor(1518), 1517, tier);
        let whole_turn = wheel_ranges(&cursor(100), 1517, tier);

        assert_eq!((inside[0].first, inside[0].last), (3, 7));
        assert_eq!(inside.len(), 1);
        assert_eq!((wrapping[0].first, wrapping[0].last), (12, 14));
        assert_eq!((wrapping[1].first, wrapping[1].last), (0, 2));
        assert_eq!(wrapping[1].first_minute, 1515);
        assert!(caught_up.is_empty());
        assert_eq!((whole_turn[0].first, whole_turn[0].last), (0, 14));
        assert!(whole_turn[0].full_pass);
    }

    #[test]
    fn a_cut_range_resumes_at_the_esim_it_did_not_reach() {
        let esim = EsimId::from_ulid(ulid::Ulid::new());
        let start = WheelCursor {
            minute: 1512,
            ..WheelCursor::default()
        };
        let ranges = wheel_ranges(&start, 1517, Tier::Fast);
        let key = slot_sort_key(1, &esim);

        let resumed = ranges[1].resume_at(&key, &start);
        let next = wheel_ranges(&resumed, 1520, Tier::Fast);

        assert_eq!(resumed.minute, 1516);
        assert_eq!(next[0].first, 1);
        assert_eq!(next[0].from.as_deref(), Some(key.as_str()));
        assert_eq!(next[0].last, 5);
    }

    #[test]
    fn tiers_fit_the_wanted_interval_but_never_beat_the_provider_refresh() {
        let five = Duration::minutes(5);

        let near = Tier::for_interval(Duration::minutes(10), five);
        let active = Tier::for_interval(Duration::minutes(90), five);
        let idle = Tier::for_interval(IDLE_INTERVAL, five);
        let slow_provider = Tier::for_interval(Duration::minutes(10), Duration::minutes(30));

        assert_eq!(near, Tier::Fast);
        assert_eq!(active, Tier::Hourly);
        assert_eq!(idle, Tier::Idle);
        assert_eq!(slow_provider, Tier::Hourly);
    }
}
