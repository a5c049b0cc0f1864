//! One polling round: lease a shard, read the eSIMs whose wheel slots came round since the
//! shard's cursor, page by page, ask each one's provider for its usage, merge, raise the alerts
//! it crossed exactly once, and write the eSIM only when something changed: its figure, its
//! tier (or a retry slot), or its plan ended (it leaves the wheel).
//!
//! An unchanged eSIM costs no write: the wheel comes round to it again after its tier's turn.
//! The cursors advance once per partition per round and are saved with the shard lease when
//! it is given back, so a round costs two lease writes however many eSIMs it polls.
//!
//! A round stops at its time budget; its cursor then points at the first eSIM it did not
//! reach, and the next tick resumes there, so no eSIM starves. A round polls each eSIM at
//! most once, also when a tier change moved it into a partition read later in that round.
//! A poller that crashes saves no cursor: the next one polls those slots again (an extra
//! provider call per eSIM, no extra alert, since alerts are claimed).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use serde::Serialize;
use time::{Duration, OffsetDateTime};

use super::{
    AlertKey, AlertSettings, PlanPeriod, Threshold, Tier, WheelPlace, crossed, key_after,
    minute_of, next_poll, partitions_of_shard, plan_over, remaining_percent, replaces,
    slot_first_key, slot_last_key, tier_of_key, wheel_partition, wheel_ranges,
};
use crate::domain::events::{DomainEvent, EventKind, RenewalOffer};
use crate::domain::ids::{OrderId, ProviderId, TenantId};
use crate::ports::provider::UsageReport;
use crate::ports::usage::{AlertClaim, Placement, PollTarget, PollWrite, UsageStore, WheelCursors};
use crate::ports::{Clock, EventPublisher, OrderStore, ProviderApi, ProviderError, StoreError};

/// How a poller runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PollerSettings {
    /// How many pollers share the index (`USAGE_POLL_SHARDS`).
    pub shards: u32,
    /// How long one round may run, below the function timeout.
    pub budget: std::time::Duration,
    /// This poller's name on shard leases.
    pub holder: String,
    /// eSIMs asked for per index page. DynamoDB also ends a page at 1 MB, a few hundred eSIM
    /// items; either way a page is one read for many eSIMs.
    pub page_size: usize,
    /// After this long an unpublished alert claim is taken over by the next poll.
    pub alert_retry_after: Duration,
}

impl Default for PollerSettings {
    fn default() -> Self {
        Self {
            shards: 1,
            budget: std::time::Duration::from_secs(45),
            holder: "usage-poller".to_owned(),
            page_size: 500,
            alert_retry_after: Duration::minutes(5),
        }
    }
}

/// What a round did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RoundSummary {
    /// eSIMs whose provider answered.
    pub polled: u64,
    /// Of those, how many had a changed figure.
    pub changed: u64,
    /// eSIM writes made: changed figures, tier moves, retries and retirements.
    pub esim_writes: u64,
    /// Alerts published.
    pub alerts: u64,
    /// eSIMs taken out of the index because their plan is over.
    pub retired: u64,
    /// eSIMs left for the next round because their provider was rate limiting.
    pub deferred: u64,
    /// eSIMs whose provider call failed; retried soon.
    pub failed: u64,
    /// Shards this round leased and polled.
    pub shards_polled: u32,
    /// Shards another poller held.
    pub shards_skipped: u32,
    /// Whether the budget ended the round before every due eSIM was reached.
    pub out_of_time: bool,
}

/// Why a round stopped early.
#[derive(Debug, thiserror::Error)]
pub enum UsagePollError {
    /// The table could not be read or written; the next tick retries.
    #[error("failed to read or write usage state")]
    Store(#[from] StoreError),
}

/// Polls usage for due eSIMs and raises low-balance and expiry alerts.
#[derive(Debug, Clone)]
pub struct UsagePollService {
    store: Arc<dyn UsageStore>,
    orders: Arc<dyn OrderStore>,
    providers: HashMap<ProviderId, Arc<dyn ProviderApi>>,
    publisher: Arc<dyn EventPublisher>,
    clock: Arc<dyn Clock>,
    settings: PollerSettings,
}

/// What one round remembers between eSIMs.
#[derive(Debug, Default)]
struct Round {
    settings: HashMap<TenantId, AlertSettings>,
    offers: HashMap<(TenantId, OrderId), Option<RenewalOffer>>,
    backed_off: HashSet<ProviderId>,
    seen: HashSet<String>,
    summary: RoundSummary,
}

impl UsagePollService {
    /// A poller over its ports.
    pub fn new(
        store: Arc<dyn UsageStore>,
        orders: Arc<dyn OrderStore>,
        providers: Vec<Arc<dyn ProviderApi>>,
        publisher: Arc<dyn EventPublisher>,
        clock: Arc<dyn Clock>,
        settings: PollerSettings,
    ) -> Self {
        let providers = providers.into_iter().map(|p| (p.id().clone(), p)).collect();
        Self {
            store,
            orders,
            providers,
            publisher,
            clock,
            settings,
        }
    }

    /// Runs one round over `shard`, or over every shard it can lease when `None`, starting
    /// from a different shard each minute so that a short budget does not always end on the
    /// same ones.
    pub async fn run_round(&self, shard: Option<u32>) -> Result<RoundSummary, UsagePollError> {
        let started = self.clock.now();
        let deadline = started + self.settings.budget;
        let shards = self.settings.shards.max(1);
        let order: Vec<u32> = match shard {
            Some(s) => vec![s % shards],
            None => {
                let first = (started.unix_timestamp().max(0) / 60) as u32 % shards;
                (0..shards).map(|i| (first + i) % shards).collect()
            }
        };
        let mut round = Round::default();
        for shard in order {
            if self.clock.now() >= deadline {
                round.summary.out_of_time = true;
                break;
            }
            let lease_until = deadline + Duration::minutes(1);
            let holder = &self.settings.holder;
            let Some(mut cursors) = self
                .store
                .take_shard(shard, holder, self.clock.now(), lease_until)
                .await?
            else {
                round.summary.shards_skipped += 1;
                continue;
            };
            let outcome = self
                .poll_shard(shard, started, deadline, &mut cursors, &mut round)
                .await;
            self.store.release_shard(shard, holder, &cursors).await?;
            outcome?;
            round.summary.shards_polled += 1;
        }
        tracing::info!(summary = ?round.summary, "usage round finished");
        Ok(round.summary)
    }

    async fn poll_shard(
        &self,
        shard: u32,
        started: OffsetDateTime,
        deadline: OffsetDateTime,
        cursors: &mut WheelCursors,
        round: &mut Round,
    ) -> Result<(), UsagePollError> {
        // Cursors live with the lease of the shard that polled them: changing
        // `USAGE_POLL_SHARDS` leaves a shard without cursors for its partitions, and its first
        // round makes one whole-turn pass over them (an extra provider call per eSIM there).
        let now = minute_of(started);
        // Slowest tier first: polls mostly move eSIMs to slower tiers, whose cursors then are
        // past this round already, so a moved eSIM waits for its new slot instead of being read
        // again by a later, cut round.
        for partition in partitions_of_shard(shard, self.settings.shards)
            .into_iter()
            .rev()
        {
            let (tier, part) = wheel_partition(partition);
            let key = super::index_partition_key(tier, part);
            let cursor = cursors.get(&key).cloned().unwrap_or_default();
            let mut held: Option<super::WheelCursor> = None;
            for range in wheel_ranges(&cursor, now, tier) {
                let mut from = range
                    .from
                    .clone()
                    .unwrap_or_else(|| slot_first_key(range.first));
                let to = slot_last_key(range.last);
                loop {
                    if self.clock.now() >= deadline {
                        round.summary.out_of_time = true;
                        let stop = held.unwrap_or_else(|| range.resume_at(&from, &cursor));
                        cursors.insert(key, stop);
                        return Ok(());
                    }
                    let page = self
                        .store
                        .due(&key, &from, &to, self.settings.page_size)
                        .await?;
                    self.prefetch_settings(&page.targets, round).await?;
                    for target in &page.targets {
                        if self.clock.now() >= deadline {
                            round.summary.out_of_time = true;
                            let stop = held.unwrap_or_else(|| {
                                range.resume_at(&target.place.sort_key, &cursor)
                            });
                            cursors.insert(key, stop);
                            return Ok(());
                        }
                        if !round.seen.insert(target.esim.esim_id.to_string()) {
                            continue;
                        }
                        if self.poll(target, round).await? == Polled::Deferred && held.is_none() {
                            // The cursor stays at the first eSIM its provider refused, so the
                            // next round comes back to it; eSIMs of other providers after it
                            // are polled now and again then.
                            held = Some(range.resume_at(&target.place.sort_key, &cursor));
                        }
                    }
                    match page.next {
                        Some(last) => from = key_after(&last),
                        None => break,
                    }
                }
            }
            // A cursor ahead of this poller's clock (another poller's clock runs ahead) stays.
            let done = super::WheelCursor {
                minute: (now + 1).max(cursor.minute),
                ..super::WheelCursor::default()
            };
            cursors.insert(key, held.unwrap_or(done));
        }
        Ok(())
    }

    /// Polls one eSIM, raises its alerts and records the result. Public so that the exactly
    /// once guarantee can be exercised with two pollers on the same eSIM at the same moment,
    /// as happens when a shard lease runs out under a slow poller.
    pub async fn poll_one(&self, target: &PollTarget) -> Result<RoundSummary, UsagePollError> {
        let mut round = Round::default();
        self.poll(target, &mut round).await?;
        Ok(round.summary)
    }

    /// Writes what a poll found, only when it changes something. The check time
    /// (`checked_at`, the usage route's freshness) is therefore stored only with a write: for
    /// an eSIM whose figure stays the same, the route shows when the figure was measured or
    /// last written, not the latest poll that confirmed it.
    async fn record(
        &self,
        target: &PollTarget,
        usage: Option<UsageReport>,
        placement: Placement,
        now: OffsetDateTime,
        round: &mut Round,
    ) -> Result<(), StoreError> {
        let placement = match placement {
            Placement::Move(place) if place == target.place => Placement::Keep,
            other => other,
        };
        if usage.is_none() && placement == Placement::Keep {
            return Ok(());
        }
        round.summary.esim_writes += 1;
        let write = PollWrite {
            usage,
            checked_at: now,
            placement,
        };
        self.store.record_poll(target, &write).await
    }

    /// Where an eSIM polled into `tier` goes: it stays at its slot while its tier holds (a
    /// retry slot included), and moves to its home slot of another tier.
    fn placement(target: &PollTarget, tier: Tier) -> Placement {
        if tier_of_key(&target.place.partition_key) == Some(tier) {
            Placement::Keep
        } else {
            Placement::Move(WheelPlace::home(&target.esim.esim_id, tier))
        }
    }

    async fn poll(&self, target: &PollTarget, round: &mut Round) -> Result<Polled, UsagePollError> {
        let now = self.clock.now();
        let esim = &target.esim;
        if plan_over(target.usage.as_ref(), now) {
            self.record(target, None, Placement::Remove, now, round)
                .await?;
            round.summary.retired += 1;
            return Ok(Polled::Done);
        }
        let Some(provider) = self.providers.get(&esim.provider) else {
            tracing::warn!(esim_id = %esim.esim_id, provider = %esim.provider,
                "no adapter configured for the eSIM's provider; polling later");
            let later = Self::placement(target, Tier::Idle);
            self.record(target, None, later, now, round).await?;
            round.summary.failed += 1;
            return Ok(Polled::Done);
        };
        if round.backed_off.contains(&esim.provider) {
            round.summary.deferred += 1;
            return Ok(Polled::Deferred);
        }
        let refresh = Duration::seconds(i64::from(provider.capabilities().usage_refresh_seconds));
        let mut report = match provider.usage(&esim.iccid).await {
            Ok(report) => report,
            Err(ProviderError::RateLimited { .. }) => {
                tracing::info!(provider = %esim.provider, "provider rate limited; backing off");
                round.backed_off.insert(esim.provider.clone());
                round.summary.deferred += 1;
                return Ok(Polled::Deferred);
            }
            Err(error) => {
                tracing::warn!(esim_id = %esim.esim_id, %error, "usage poll failed");
                let retry =
                    WheelPlace::fast_at(&esim.esim_id, now + refresh.max(Duration::minutes(5)));
                self.record(target, None, Placement::Move(retry), now, round)
                    .await?;
                round.summary.failed += 1;
                return Ok(Polled::Done);
            }
        };
        // A provider that does not stamp its figures is taken to have measured on answering.
        report.measured_at.get_or_insert(now);
        round.summary.polled += 1;

        let changed = replaces(target.usage.as_ref(), &report);
        let freshest = match &target.usage {
            Some(stored) if stored.measured_at > report.measured_at => stored.clone(),
            _ => report.clone(),
        };
        let settings = self.settings_of(&esim.tenant_id, round).await?;
        let mut alert_pending = false;
        for threshold in crossed(&settings, &freshest, now) {
            match self.raise(target, &freshest, threshold, now, round).await? {
                Raised::Published => round.summary.alerts += 1,
                Raised::Pending => alert_pending = true,
                Raised::Taken => {}
            }
        }
        let next = next_poll(
            &settings,
            target.usage.as_ref(),
            Some(&freshest),
            now,
            refresh,
        );
        let placement = match next {
            None => Placement::Remove,
            // Come back once an unpublished claim may be taken over, not before.
            Some(_) if alert_pending => Placement::Move(WheelPlace::fast_at(
                &esim.esim_id,
                now + self.settings.alert_retry_after,
            )),
            Some(next) => Self::placement(target, Tier::for_interval(next - now, refresh)),
        };
        if changed {
            round.summary.changed += 1;
        }
        self.record(target, changed.then_some(report), placement, now, round)
            .await?;
        Ok(Polled::Done)
    }

    /// Reads the settings of a page's tenants not read yet this round, in one batch.
    async fn prefetch_settings(
        &self,
        targets: &[PollTarget],
        round: &mut Round,
    ) -> Result<(), StoreError> {
        let mut missing: Vec<TenantId> = Vec::new();
        for target in targets {
            let tenant = &target.esim.tenant_id;
            if !round.settings.contains_key(tenant) && !missing.contains(tenant) {
                missing.push(tenant.clone());
            }
        }
        if !missing.is_empty() {
            round
                .settings
                .extend(self.store.alert_settings(&missing).await?);
        }
        Ok(())
    }

    async fn settings_of(
        &self,
        tenant_id: &TenantId,
        round: &mut Round,
    ) -> Result<AlertSettings, StoreError> {
        if let Some(settings) = round.settings.get(tenant_id) {
            return Ok(settings.clone());
        }
        let settings = self
            .store
            .alert_settings(std::slice::from_ref(tenant_id))
            .await?
            .remove(tenant_id)
            .unwrap_or_default();
        round.settings.insert(tenant_id.clone(), settings.clone());
        Ok(settings)
    }

    async fn offer_of(
        &self,
        tenant_id: &TenantId,
        order_id: &OrderId,
        round: &mut Round,
    ) -> Result<Option<RenewalOffer>, StoreError> {
        let key = (tenant_id.clone(), order_id.clone());
        if let Some(offer) = round.offers.get(&key) {
            return Ok(offer.clone());
        }
        let offer = self
            .orders
            .get(tenant_id, order_id)
            .await?
            .map(|o| RenewalOffer {
                plan_id: o.order.plan_id,
                price: o.order.unit_price,
            });
        round.offers.insert(key, offer.clone());
        Ok(offer)
    }

    /// Claims, publishes and marks one alert. A claim whose publication failed stays
    /// unpublished and is taken over after `alert_retry_after`; every publication of one alert
    /// carries the same event id.
    async fn raise(
        &self,
        target: &PollTarget,
        report: &UsageReport,
        threshold: Threshold,
        now: OffsetDateTime,
        round: &mut Round,
    ) -> Result<Raised, StoreError> {
        let esim = &target.esim;
        let Some(renewal) = self
            .offer_of(&esim.tenant_id, &esim.order_id, round)
            .await?
        else {
            tracing::warn!(esim_id = %esim.esim_id, order_id = %esim.order_id,
                "the eSIM's order is unreadable; no renewal offer, alert postponed");
            return Ok(Raised::Pending);
        };
        let key = AlertKey {
            tenant_id: esim.tenant_id.clone(),
            esim_id: esim.esim_id.clone(),
            period: PlanPeriod::of(report),
            threshold,
        };
        let stale_before = now - self.settings.alert_retry_after;
        if self.store.claim_alert(&key, now, stale_before).await? == AlertClaim::Taken {
            return Ok(Raised::Taken);
        }
        let kind = match threshold {
            Threshold::RemainingPercent(threshold_percent) => EventKind::LowBalance {
                esim_id: esim.esim_id.clone(),
                remaining_mb: report.remaining_mb.unwrap_or_default(),
                total_mb: report.total_mb.unwrap_or_default(),
                remaining_percent: remaining_percent(report).unwrap_or_default(),
                threshold_percent,
                renewal,
            },
            Threshold::ExpiresWithinDays(threshold_days) => EventKind::PlanExpiring {
                esim_id: esim.esim_id.clone(),
                expires_at: report.expires_at.unwrap_or(now),
                threshold_days,
                remaining_mb: report.remaining_mb,
                remaining_percent: remaining_percent(report),
                renewal,
            },
        };
        let event = DomainEvent {
            event_id: key.event_id(),
            tenant_id: esim.tenant_id.clone(),
            occurred_at: now,
            kind,
        };
        match self.publisher.publish(std::slice::from_ref(&event)).await {
            Ok(()) => {
                self.store.mark_alert_published(&key).await?;
                tracing::info!(esim_id = %esim.esim_id, event_id = %event.event_id,
                    alert = event.kind.detail_type(), "alert published");
                Ok(Raised::Published)
            }
            Err(error) => {
                tracing::warn!(esim_id = %esim.esim_id, %error,
                    "alert not published; retried after its claim goes stale");
                Ok(Raised::Pending)
            }
        }
    }
}

/// What polling one eSIM came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Polled {
    /// Asked, or settled without asking (retired, no adapter).
    Done,
    /// Left for the next round: its provider is rate limiting.
    Deferred,
}

/// What raising one alert came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Raised {
    /// Published now.
    Published,
    /// Published before, or being published by another poller.
    Taken,
    /// Claimed or due but not published yet; the eSIM is polled again soon.
    Pending,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ids::Iccid;
    use crate::domain::lifecycle::ProfileState;
    use crate::testing::{InMemoryOrderStore, InMemoryPublisher};
    use crate::usage::memory::{InMemoryUsageStore, ScriptedUsageProvider, sample_esim};
    use std::sync::Mutex;
    use time::macros::datetime;

    /// A clock that moves one second each time it is read, so budgets run out.
    #[derive(Debug)]
    struct TickingClock(Mutex<OffsetDateTime>);

    impl Clock for TickingClock {
        fn now(&self) -> OffsetDateTime {
            let mut now = self.0.lock().expect("clock");
            *now += Duration::seconds(1);
            *now
        }
    }

    fn t0() -> OffsetDateTime {
        datetime!(2026-03-01 12:00 UTC)
    }

    fn report(iccid: &Iccid, remaining: u64) -> UsageReport {
        UsageReport {
            iccid: iccid.clone(),
            remaining_mb: Some(remaining),
            total_mb: Some(1000),
            expires_at: Some(t0() + Duration::days(20)),
            measured_at: None,
            state: Some(ProfileState::Activated),
        }
    }

    struct Harness {
        store: Arc<InMemoryUsageStore>,
        provider: Arc<ScriptedUsageProvider>,
        clock: Arc<TickingClock>,
    }

    fn harness(esims: u64) -> Harness {
        let tenant = TenantId::parse("tenant-1").expect("tenant");
        let provider_id = ProviderId::parse("airalo").expect("provider");
        let store = Arc::new(InMemoryUsageStore::default());
        let provider = Arc::new(ScriptedUsageProvider::new(provider_id.clone(), 300));
        for n in 0..esims {
            let esim = sample_esim(&tenant, &provider_id, n, t0()).expect("esim");
            provider.set(report(&esim.iccid, 900));
            store.insert(esim);
        }
        Harness {
            store,
            provider,
            clock: Arc::new(TickingClock(Mutex::new(t0() + Duration::hours(1)))),
        }
    }

    fn poller(h: &Harness, settings: PollerSettings) -> UsagePollService {
        UsagePollService::new(
            h.store.clone(),
            Arc::new(InMemoryOrderStore::default()),
            vec![h.provider.clone()],
            Arc::new(InMemoryPublisher::default()),
            h.clock.clone(),
            settings,
        )
    }

    #[tokio::test]
    async fn a_round_polls_each_due_esim_once_over_small_pages() {
        let h = harness(25);
        let settings = PollerSettings {
            page_size: 2,
            budget: std::time::Duration::from_secs(3600),
            ..PollerSettings::default()
        };

        let summary = poller(&h, settings).run_round(None).await.expect("round");

        assert_eq!(summary.polled, 25);
        assert_eq!(h.provider.calls(), 25);
        assert_eq!(summary.changed, 25);
        assert!(!summary.out_of_time);
    }

    #[tokio::test]
    async fn a_round_stops_at_its_budget_and_the_next_resumes_with_the_rest() {
        let h = harness(40);
        let settings = PollerSettings {
            budget: std::time::Duration::from_secs(20),
            ..PollerSettings::default()
        };
        let poller = poller(&h, settings);

        let first = poller.run_round(None).await.expect("round");
        let mut rounds = vec![first.clone()];
        while rounds.iter().map(|r| r.polled).sum::<u64>() < 40 && rounds.len() < 40 {
            rounds.push(poller.run_round(None).await.expect("round"));
        }

        assert!(first.out_of_time);
        assert!(first.polled > 0 && first.polled < 40, "{first:?}");
        assert_eq!(rounds.iter().map(|r| r.polled).sum::<u64>(), 40);
        assert_eq!(h.provider.calls(), 40, "nobody was polled twice");
    }

    #[tokio::test]
    async fn a_rate_limited_provider_is_left_alone_for_the_rest_of_the_round() {
        let h = harness(10);
        h.provider.throttle_after(Some(3));

        let summary = poller(&h, PollerSettings::default())
            .run_round(None)
            .await
            .expect("round");
        h.provider.throttle_after(None);
        let next = poller(&h, PollerSettings::default())
            .run_round(None)
            .await
            .expect("round");

        assert_eq!(summary.polled, 3);
        assert_eq!(summary.deferred, 7);
        assert_eq!(
            h.provider.calls(),
            4 + 7,
            "one throttled call, then none that round"
        );
        assert_eq!(next.polled, 7, "the deferred eSIMs stayed due");
    }

    #[tokio::test]
    async fn a_shard_leased_by_another_poller_is_skipped() {
        let h = harness(5);
        h.store
            .take_shard(0, "other", t0(), t0() + Duration::days(1))
            .await
            .expect("lease");

        let summary = poller(&h, PollerSettings::default())
            .run_round(None)
            .await
            .expect("round");

        assert_eq!(summary.shards_skipped, 1);
        assert_eq!(summary.polled, 0);
    }

    fn move_clock(h: &Harness, by: Duration) {
        *h.clock.0.lock().expect("clock") += by;
    }

    #[tokio::test]
    async fn an_unchanged_esim_is_polled_again_each_turn_of_its_tier_without_a_write() {
        let h = harness(5);
        let poller = poller(&h, PollerSettings::default());
        poller.run_round(None).await.expect("first round");
        move_clock(&h, Duration::minutes(61));
        let before = h.store.calls();

        let again = poller.run_round(None).await.expect("round");

        let writes = h.store.calls().writes - before.writes;
        assert_eq!(again.polled, 5);
        assert_eq!(again.changed, 0);
        assert_eq!(again.esim_writes, 0);
        assert_eq!(writes, 2, "only the shard lease is written");
    }

    #[tokio::test]
    async fn a_round_between_turns_polls_only_the_slots_that_came_round() {
        let h = harness(60);
        let settings = PollerSettings {
            budget: std::time::Duration::from_secs(3600),
            ..PollerSettings::default()
        };
        let poller = poller(&h, settings);
        poller.run_round(None).await.expect("first round");
        move_clock(&h, Duration::minutes(20));

        let partial = poller.run_round(None).await.expect("round");

        // About a third of the hourly turn came round (plus the minutes the ticking clock
        // spent in the first round).
        assert!((10..=40).contains(&partial.polled), "{partial:?}");
        assert_eq!(partial.esim_writes, 0);
        assert!(!partial.out_of_time);
    }

    #[tokio::test]
    async fn nearing_a_threshold_moves_the_esim_to_the_fast_tier_in_the_write_of_its_figure() {
        let h = harness(1);
        let poller = poller(&h, PollerSettings::default());
        poller.run_round(None).await.expect("first round");
        let esim = sample_esim(
            &TenantId::parse("tenant-1").expect("tenant"),
            &ProviderId::parse("airalo").expect("provider"),
            0,
            t0(),
        )
        .expect("esim");
        let hourly = h.store.place(&esim.esim_id).expect("in the wheel");
        h.provider.set(report(&esim.iccid, 230));
        move_clock(&h, Duration::minutes(61));

        let round = poller.run_round(None).await.expect("round");

        let fast = h.store.place(&esim.esim_id).expect("in the wheel");
        assert_eq!(
            super::super::tier_of_key(&hourly.partition_key),
            Some(Tier::Hourly)
        );
        assert_eq!(
            super::super::tier_of_key(&fast.partition_key),
            Some(Tier::Fast)
        );
        assert_eq!((round.changed, round.esim_writes), (1, 1));
    }
}
