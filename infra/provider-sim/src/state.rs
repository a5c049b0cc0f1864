//! In-memory state of the two simulated providers (orders, profiles, top-ups, refunds, usage
//! queries, webhooks, request counts) behind one mutex that is never held across an await.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng, rngs::StdRng};
use serde::Serialize;
use serde_json::Value;
use time::OffsetDateTime;

use crate::catalogue::{BYTES_PER_MB, Catalogue};
use crate::clock::SimClock;
use crate::config::SimConfig;
use crate::knobs::{ErrorKind, KnobError, Knobs, LoseMode, Operation};
use crate::signing::airalo_webhook_signature;

/// The two simulated providers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Provider {
    #[serde(rename = "airalo")]
    Airalo,
    #[serde(rename = "esimaccess")]
    EsimAccess,
}

impl Provider {
    /// Both providers, in a fixed order.
    pub const ALL: [Provider; 2] = [Provider::Airalo, Provider::EsimAccess];

    /// The provider's name in URLs and knobs: `airalo` or `esimaccess`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Airalo => "airalo",
            Self::EsimAccess => "esimaccess",
        }
    }

    /// Parses `airalo`, `esimaccess` or `esim_access`.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "airalo" => Some(Self::Airalo),
            "esimaccess" | "esim_access" | "esim-access" => Some(Self::EsimAccess),
            _ => None,
        }
    }

    fn smdp_address(self) -> &'static str {
        match self {
            Self::Airalo => "smdp-plus.airalo.test",
            Self::EsimAccess => "smdp-plus.esimaccess.test",
        }
    }
}

/// The simulator: configuration, its own base URL and the locked state.
#[derive(Debug)]
pub struct Sim {
    pub config: SimConfig,
    pub base_url: String,
    state: Mutex<SimState>,
}

impl Sim {
    /// A simulator in its initial state for the configured seed.
    pub fn new(config: SimConfig, base_url: String) -> Self {
        let state = SimState::new(&config, config.seed, config.time_scale);
        Self {
            config,
            base_url,
            state: Mutex::new(state),
        }
    }

    /// Locks the state. A panic while the lock was held leaves the state usable, so poisoning
    /// is ignored rather than turning every later request into a failure.
    pub fn lock(&self) -> MutexGuard<'_, SimState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts a request, waits the configured latency and decides whether an error is injected.
    pub async fn enter(&self, provider: Provider, operation: Operation) -> Option<ErrorKind> {
        let (latency_ms, fault) = {
            let mut state = self.lock();
            let account = state.provider_mut(provider);
            *account
                .requests
                .entry(operation.name().to_owned())
                .or_default() += 1;
            let fault = account.knobs.roll_fault(&mut account.rng, operation);
            (account.knobs.latency_ms, fault)
        };
        tracing::debug!(
            provider = provider.name(),
            operation = operation.name(),
            injected = ?fault,
            "simulated provider request"
        );
        if latency_ms > 0 {
            tokio::time::sleep(Duration::from_millis(latency_ms)).await;
        }
        fault
    }

    /// Applies a partial knob update to one provider and returns the knobs now in force.
    pub fn set_knobs(&self, provider: Provider, patch: &Value) -> Result<Knobs, KnobError> {
        let mut state = self.lock();
        let account = state.provider_mut(provider);
        let updated = account.knobs.patched(patch)?;
        if updated.lose_response_after_commit != account.knobs.lose_response_after_commit
            || updated.lose_response_limit != account.knobs.lose_response_limit
        {
            account.lost_responses = 0;
        }
        account.knobs = updated.clone();
        tracing::info!(provider = provider.name(), "simulator knobs changed");
        Ok(updated)
    }

    /// Forgets every order, profile and knob and regenerates the catalogue, keeping the current
    /// seed and time scale unless new ones are given.
    pub fn reset(&self, seed: Option<u64>, time_scale: Option<f64>) {
        let mut state = self.lock();
        let seed = seed.unwrap_or(state.seed);
        let scale = time_scale.unwrap_or_else(|| state.clock.scale());
        *state = SimState::new(&self.config, seed, scale);
    }
}

/// URL at which the simulator serves the activation code of a profile (the stand-in for the
/// QR code image a real provider hosts).
pub fn qr_url(base_url: &str, iccid: &str) -> String {
    format!("{base_url}/_sim/qr/{iccid}")
}

/// Everything that changes while the simulator runs.
#[derive(Debug)]
pub struct SimState {
    pub seed: u64,
    pub clock: SimClock,
    pub catalogue: Catalogue,
    pub airalo: ProviderState,
    pub esim_access: ProviderState,
}

impl SimState {
    fn new(config: &SimConfig, seed: u64, time_scale: f64) -> Self {
        Self {
            seed,
            clock: SimClock::new(time_scale),
            catalogue: Catalogue::generate(seed),
            airalo: ProviderState::new(
                Provider::Airalo,
                seed,
                config.initial_balance_cents,
                Some(config.airalo.client_secret.clone()),
            ),
            esim_access: ProviderState::new(
                Provider::EsimAccess,
                seed,
                config.initial_balance_cents,
                None,
            ),
        }
    }

    /// The state of one provider.
    pub fn provider(&self, provider: Provider) -> &ProviderState {
        match provider {
            Provider::Airalo => &self.airalo,
            Provider::EsimAccess => &self.esim_access,
        }
    }

    /// The state of one provider, mutably.
    pub fn provider_mut(&mut self, provider: Provider) -> &mut ProviderState {
        match provider {
            Provider::Airalo => &mut self.airalo,
            Provider::EsimAccess => &mut self.esim_access,
        }
    }

    /// A serialisable copy of everything, as served on `GET /_sim/state`.
    pub fn snapshot(&self) -> StateSnapshot {
        StateSnapshot {
            seed: self.seed,
            time_scale: self.clock.scale(),
            sim_time: self.clock.now(),
            airalo: self.airalo.snapshot(),
            esimaccess: self.esim_access.snapshot(),
        }
    }
}

/// Lifecycle status on the SM-DP+ side, in eSIM Access words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SmdpStatus {
    Released,
    Download,
    Installation,
    Enabled,
    Deleted,
}

impl SmdpStatus {
    /// The word both APIs use.
    pub fn word(self) -> &'static str {
        match self {
            Self::Released => "RELEASED",
            Self::Download => "DOWNLOAD",
            Self::Installation => "INSTALLATION",
            Self::Enabled => "ENABLED",
            Self::Deleted => "DELETED",
        }
    }
}

/// Plan usage status of a profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UsageState {
    NotActive,
    Active,
    Finished,
    Expired,
    UnusedExpired,
    Cancelled,
}

/// Status of an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    Pending,
    Completed,
    Failed,
}

/// What a profile was bought with: the terms copied from the catalogue at order time.
#[derive(Debug, Clone, Serialize)]
pub struct PlanTerms {
    pub package_id: String,
    pub title: String,
    pub data_mb: Option<u64>,
    pub days: u32,
    pub rechargeable: bool,
    pub cost_cents: u64,
    pub apn_value: String,
    pub location: Vec<&'static str>,
}

/// A failure of an asynchronous order, delivered later by webhook.
#[derive(Debug, Clone, Serialize)]
pub struct OrderFailure {
    pub code: String,
    pub reason: String,
}

/// One order at one provider.
#[derive(Debug, Clone, Serialize)]
pub struct OrderRecord {
    /// Airalo numeric order id, or eSIM Access `orderNo`.
    pub id: String,
    /// Airalo order code, or eSIM Access `orderNo`.
    pub code: String,
    /// Our correlation value: Airalo `description`, eSIM Access `transactionId`.
    pub reference: Option<String>,
    pub package_id: String,
    pub quantity: u32,
    pub iccids: Vec<String>,
    pub status: OrderStatus,
    pub failure: Option<OrderFailure>,
    /// Airalo asynchronous orders only.
    pub request_id: Option<String>,
    pub asynchronous: bool,
    pub cost_cents: u64,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub ready_at: OffsetDateTime,
    /// Webhook URL given with the order (Airalo asynchronous orders may name one).
    pub webhook_url: Option<String>,
    pub response_lost: bool,
    /// Terms of the first (for Airalo the only) package of the order.
    #[serde(skip)]
    pub plan: PlanTerms,
    /// Every package of the order with its count (eSIM Access orders may mix packages).
    #[serde(skip)]
    pub lines: Vec<(PlanTerms, u32)>,
    #[serde(skip)]
    pub planned_failure: Option<ErrorKind>,
}

/// One eSIM profile and its simulated life.
#[derive(Debug, Clone, Serialize)]
pub struct Profile {
    pub iccid: String,
    pub esim_tran_no: String,
    pub order_id: String,
    pub matching_id: String,
    pub smdp_address: String,
    pub plan: PlanTerms,
    #[serde(with = "time::serde::rfc3339")]
    pub provisioned_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub downloaded_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub installed_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub activated_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
    pub activation_fails: bool,
    pub smdp_status: SmdpStatus,
    pub usage_state: UsageState,
    pub unlimited: bool,
    pub total_bytes: u64,
    pub used_bytes: u64,
    #[serde(with = "time::serde::rfc3339")]
    pub last_usage_at: OffsetDateTime,
    /// Thresholds already notified (so each is sent once).
    pub notified: Vec<String>,
    pub eid: Option<String>,
}

impl Profile {
    /// The GSMA activation code: `LPA:1$<SM-DP+ address>$<matching id>`.
    pub fn lpa(&self) -> String {
        format!("LPA:1${}${}", self.smdp_address, self.matching_id)
    }

    /// Remaining data in bytes (0 for unlimited plans, which have no allowance to count).
    pub fn remaining_bytes(&self) -> u64 {
        self.total_bytes.saturating_sub(self.used_bytes)
    }

    /// Percentage of the allowance used, 0 for unlimited plans.
    pub fn percent_used(&self) -> u64 {
        if self.unlimited || self.total_bytes == 0 {
            0
        } else {
            self.used_bytes.saturating_mul(100) / self.total_bytes
        }
    }
}

/// One top-up.
#[derive(Debug, Clone, Serialize)]
pub struct TopupRecord {
    pub id: String,
    pub reference: Option<String>,
    pub iccid: String,
    pub package_id: String,
    pub cost_cents: u64,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    pub response_lost: bool,
}

/// A refund request (Airalo) or a cancellation (eSIM Access).
#[derive(Debug, Clone, Serialize)]
pub struct RefundRecord {
    pub id: String,
    pub iccid: String,
    pub reason: Option<String>,
    /// `pending` for Airalo (manual review), `refunded` for an eSIM Access cancellation.
    pub status: String,
    pub credited_cents: u64,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// One usage query and the profiles it asked about.
#[derive(Debug, Clone, Serialize)]
pub struct UsageQueryRecord {
    pub iccids: Vec<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

/// One webhook delivery attempt.
#[derive(Debug, Clone, Serialize)]
pub struct WebhookRecord {
    /// Identifies the event; duplicates and retries of one event share it.
    pub event_id: u64,
    pub notify_id: Option<String>,
    pub kind: String,
    pub url: String,
    /// 0 for the original, 1.. for the knob-requested duplicates.
    pub copy: u32,
    /// 1 for the first attempt.
    pub attempt: u32,
    pub status: Option<u16>,
    pub error: Option<String>,
    pub body: Value,
    pub signature: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub sent_at: OffsetDateTime,
}

/// A webhook waiting in the outbox.
#[derive(Debug, Clone)]
pub struct OutgoingWebhook {
    pub event_id: u64,
    pub notify_id: Option<String>,
    pub kind: String,
    pub url: String,
    pub body: Vec<u8>,
    pub signature: Option<String>,
    pub due: Instant,
    pub copy: u32,
    pub attempt: u32,
    pub max_attempts: u32,
    pub retry_delay: Duration,
}

/// An issued Airalo access token.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    pub token: String,
    pub expires: Instant,
}

/// State of one simulated provider account.
#[derive(Debug)]
pub struct ProviderState {
    pub provider: Provider,
    pub knobs: Knobs,
    pub rng: StdRng,
    pub seq: u64,
    pub balance_cents: i64,
    pub orders: Vec<OrderRecord>,
    pub profiles: Vec<Profile>,
    pub topups: Vec<TopupRecord>,
    pub refunds: Vec<RefundRecord>,
    pub usage_queries: Vec<UsageQueryRecord>,
    pub webhooks_sent: Vec<WebhookRecord>,
    pub webhooks_skipped: u64,
    pub requests: BTreeMap<String, u64>,
    pub tokens: Vec<IssuedToken>,
    pub outbox: Vec<OutgoingWebhook>,
    /// Reorder knob: the webhook waiting for a later one to overtake it, and its deadline.
    pub held: Option<(OutgoingWebhook, Instant)>,
    pub lost_responses: u32,
    default_webhook_secret: Option<String>,
}

/// Serialisable copy of one provider's state.
#[derive(Debug, Clone, Serialize)]
pub struct ProviderSnapshot {
    pub knobs: Knobs,
    pub balance_cents: i64,
    pub orders: Vec<OrderRecord>,
    pub sims: Vec<Profile>,
    pub topups: Vec<TopupRecord>,
    pub refunds: Vec<RefundRecord>,
    pub usage_queries: Vec<UsageQueryRecord>,
    pub webhooks_sent: Vec<WebhookRecord>,
    pub webhooks_skipped: u64,
    pub webhooks_pending: usize,
    pub requests: BTreeMap<String, u64>,
}

/// Serialisable copy of the whole simulator.
#[derive(Debug, Clone, Serialize)]
pub struct StateSnapshot {
    pub seed: u64,
    pub time_scale: f64,
    #[serde(with = "time::serde::rfc3339")]
    pub sim_time: OffsetDateTime,
    pub airalo: ProviderSnapshot,
    pub esimaccess: ProviderSnapshot,
}

impl ProviderState {
    fn new(
        provider: Provider,
        seed: u64,
        balance_cents: i64,
        default_webhook_secret: Option<String>,
    ) -> Self {
        let stream = match provider {
            Provider::Airalo => 0xa1a1_0000,
            Provider::EsimAccess => 0xe5a0_0000,
        };
        Self {
            provider,
            knobs: Knobs::default(),
            rng: StdRng::seed_from_u64(seed ^ stream),
            seq: 0,
            balance_cents,
            orders: Vec::new(),
            profiles: Vec::new(),
            topups: Vec::new(),
            refunds: Vec::new(),
            usage_queries: Vec::new(),
            webhooks_sent: Vec::new(),
            webhooks_skipped: 0,
            requests: BTreeMap::new(),
            tokens: Vec::new(),
            outbox: Vec::new(),
            held: None,
            lost_responses: 0,
            default_webhook_secret,
        }
    }

    /// A serialisable copy.
    pub fn snapshot(&self) -> ProviderSnapshot {
        ProviderSnapshot {
            knobs: self.knobs.clone(),
            balance_cents: self.balance_cents,
            orders: self.orders.clone(),
            sims: self.profiles.clone(),
            topups: self.topups.clone(),
            refunds: self.refunds.clone(),
            usage_queries: self.usage_queries.clone(),
            webhooks_sent: self.webhooks_sent.clone(),
            webhooks_skipped: self.webhooks_skipped,
            webhooks_pending: self.outbox.len() + usize::from(self.held.is_some()),
            requests: self.requests.clone(),
        }
    }

    /// Next value of the provider's sequence, used in ids.
    pub fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// `len` random lowercase hex characters from the seeded RNG.
    pub fn random_hex(&mut self, len: usize) -> String {
        (0..len)
            .map(|_| char::from(b"0123456789abcdef"[self.rng.random_range(0..16)]))
            .collect()
    }

    /// Random decimal digits from the seeded RNG.
    pub fn random_digits(&mut self, len: usize) -> String {
        (0..len)
            .map(|_| char::from(b'0' + self.rng.random_range(0..10u8)))
            .collect()
    }

    /// Whether the response to a committed purchase must be lost, and how; counts it.
    pub fn take_lost_response(&mut self) -> Option<LoseMode> {
        if !self.knobs.lose_response_after_commit {
            return None;
        }
        if let Some(limit) = self.knobs.lose_response_limit
            && self.lost_responses >= limit
        {
            return None;
        }
        self.lost_responses += 1;
        Some(self.knobs.lose_response_mode)
    }

    /// The profile with this ICCID.
    pub fn profile(&self, iccid: &str) -> Option<&Profile> {
        self.profiles.iter().find(|p| p.iccid == iccid)
    }

    /// The profile with this ICCID, mutably.
    pub fn profile_mut(&mut self, iccid: &str) -> Option<&mut Profile> {
        self.profiles.iter_mut().find(|p| p.iccid == iccid)
    }

    /// Creates a profile for an order, provisioned now, and returns its ICCID.
    pub fn create_profile(
        &mut self,
        order_id: &str,
        plan: &PlanTerms,
        now: OffsetDateTime,
    ) -> String {
        let seq = self.next_seq();
        let stem = match self.provider {
            Provider::Airalo => format!("8944771{}{:06}", self.random_digits(6), seq % 1_000_000),
            Provider::EsimAccess => {
                format!("8985240{}{:06}", self.random_digits(5), seq % 1_000_000)
            }
        };
        let iccid = format!("{stem}{}", luhn_check_digit(&stem));
        let matching_id = format!(
            "{}-{}-{}-{}",
            self.random_hex(4),
            self.random_hex(4),
            self.random_hex(4),
            self.random_hex(4)
        )
        .to_uppercase();
        let esim_tran_no = format!("2{}{:08}", self.random_digits(7), seq);
        let activation_fails = self.knobs.activation_failure_rate > 0.0
            && self.rng.random::<f64>() < self.knobs.activation_failure_rate;
        self.profiles.push(Profile {
            iccid: iccid.clone(),
            esim_tran_no,
            order_id: order_id.to_owned(),
            matching_id,
            smdp_address: self.provider.smdp_address().to_owned(),
            plan: plan.clone(),
            provisioned_at: now,
            downloaded_at: None,
            installed_at: None,
            activated_at: None,
            expires_at: None,
            activation_fails,
            smdp_status: SmdpStatus::Released,
            usage_state: UsageState::NotActive,
            unlimited: plan.data_mb.is_none(),
            total_bytes: plan.data_mb.unwrap_or(0) * BYTES_PER_MB,
            used_bytes: 0,
            last_usage_at: now,
            notified: Vec::new(),
            eid: None,
        });
        iccid
    }

    /// Adds a top-up to a profile: more data, more days, and a used-up or expired plan becomes
    /// active again.
    pub fn apply_topup(
        &mut self,
        iccid: &str,
        added_mb: Option<u64>,
        added_days: u32,
        now: OffsetDateTime,
    ) {
        let Some(profile) = self.profile_mut(iccid) else {
            return;
        };
        match added_mb {
            Some(mb) => profile.total_bytes += mb * BYTES_PER_MB,
            None => profile.unlimited = true,
        }
        let extra = time::Duration::days(i64::from(added_days));
        match profile.expires_at {
            Some(expires_at) => profile.expires_at = Some(expires_at.max(now) + extra),
            None => profile.plan.days += added_days,
        }
        if matches!(
            profile.usage_state,
            UsageState::Finished | UsageState::Expired
        ) {
            profile.usage_state = UsageState::Active;
            profile.last_usage_at = now;
        }
        let percent = profile.percent_used();
        profile.notified.retain(|mark| {
            mark.strip_prefix("usage:")
                .and_then(|threshold| threshold.parse::<u64>().ok())
                .is_none_or(|threshold| percent >= threshold)
        });
    }

    /// Puts a webhook into the outbox following the delivery knobs, or counts it as skipped
    /// when no URL is configured.
    pub fn enqueue_webhook(
        &mut self,
        kind: &str,
        notify_id: Option<String>,
        body: &Value,
        url_override: Option<&str>,
    ) {
        let Some(url) = url_override
            .map(str::to_owned)
            .or_else(|| self.knobs.webhook_url.clone())
        else {
            self.webhooks_skipped += 1;
            return;
        };
        let body = match serde_json::to_vec(body) {
            Ok(bytes) => bytes,
            Err(error) => {
                tracing::warn!(%error, kind, "failed to serialise a webhook body");
                return;
            }
        };
        let signature = match self.provider {
            Provider::Airalo => self
                .knobs
                .webhook_secret
                .clone()
                .or_else(|| self.default_webhook_secret.clone())
                .map(|secret| airalo_webhook_signature(&secret, &body)),
            Provider::EsimAccess => None,
        };
        let event_id = self.next_seq();
        let due = Instant::now() + Duration::from_millis(self.knobs.webhook_delay_ms);
        let copies = 1 + self.knobs.webhook_duplicates;
        let batch: Vec<OutgoingWebhook> = (0..copies)
            .map(|copy| OutgoingWebhook {
                event_id,
                notify_id: notify_id.clone(),
                kind: kind.to_owned(),
                url: url.clone(),
                body: body.clone(),
                signature: signature.clone(),
                due: due + Duration::from_millis(u64::from(copy) * 10),
                copy,
                attempt: 1,
                max_attempts: 1 + self.knobs.webhook_retries,
                retry_delay: Duration::from_millis(self.knobs.webhook_retry_delay_ms),
            })
            .collect();

        if !self.knobs.webhook_reorder {
            self.outbox.extend(batch);
            return;
        }
        match self.held.take() {
            None => {
                let window = Duration::from_millis(self.knobs.webhook_reorder_window_ms);
                let mut batch = batch.into_iter();
                if let Some(first) = batch.next() {
                    self.held = Some((first, due + window));
                }
                self.outbox.extend(batch);
            }
            Some((mut earlier, _)) => {
                let last_due = batch.last().map_or(due, |w| w.due);
                self.outbox.extend(batch);
                earlier.due = last_due + Duration::from_millis(10);
                self.outbox.push(earlier);
            }
        }
    }

    /// Moves a held webhook into the outbox once its reorder window has passed.
    pub fn release_held(&mut self, now: Instant) {
        let expired = self
            .held
            .as_ref()
            .is_some_and(|(_, deadline)| *deadline <= now);
        if expired && let Some((mut webhook, _)) = self.held.take() {
            webhook.due = now;
            self.outbox.push(webhook);
        }
    }

    /// Removes and returns the webhooks due now, oldest first.
    pub fn take_due_webhooks(&mut self, now: Instant) -> Vec<OutgoingWebhook> {
        self.release_held(now);
        let (mut due, waiting): (Vec<_>, Vec<_>) =
            self.outbox.drain(..).partition(|w| w.due <= now);
        self.outbox = waiting;
        due.sort_by_key(|w| w.due);
        due
    }
}

/// Luhn check digit for a string of decimal digits (non-digits are ignored).
pub fn luhn_check_digit(digits: &str) -> u32 {
    let sum: u32 = digits
        .chars()
        .rev()
        .filter_map(|c| c.to_digit(10))
        .enumerate()
        .map(|(index, digit)| {
            if index % 2 == 0 {
                let doubled = digit * 2;
                if doubled > 9 { doubled - 9 } else { doubled }
            } else {
                digit
            }
        })
        .sum();
    (10 - sum % 10) % 10
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn plan() -> PlanTerms {
        PlanTerms {
            package_id: "pkg".to_owned(),
            title: "1 GB - 7 Days".to_owned(),
            data_mb: Some(1024),
            days: 7,
            rechargeable: true,
            cost_cents: 300,
            apn_value: "internet".to_owned(),
            location: vec!["JP"],
        }
    }

    #[test]
    fn luhn_digit_matches_the_textbook_example() {
        assert_eq!(luhn_check_digit("7992739871"), 3);
    }

    #[test]
    fn generated_iccids_are_well_formed() {
        let mut airalo = ProviderState::new(Provider::Airalo, 1, 0, None);
        let mut esim_access = ProviderState::new(Provider::EsimAccess, 1, 0, None);
        let now = OffsetDateTime::now_utc();

        let a = airalo.create_profile("1", &plan(), now);
        let e = esim_access.create_profile("1", &plan(), now);

        for (iccid, len) in [(a, 20), (e, 19)] {
            assert_eq!(iccid.len(), len);
            assert!(iccid.starts_with("89"));
            let (stem, check) = iccid.split_at(iccid.len() - 1);
            assert_eq!(check, luhn_check_digit(stem).to_string());
        }
    }

    #[test]
    fn same_seed_generates_the_same_ids() {
        let now = OffsetDateTime::now_utc();
        let ids = |seed| {
            let mut state = ProviderState::new(Provider::Airalo, seed, 0, None);
            let iccid = state.create_profile("1", &plan(), now);
            (iccid, state.profiles[0].matching_id.clone())
        };

        assert_eq!(ids(11), ids(11));
        assert_ne!(ids(11), ids(12));
    }

    #[test]
    fn duplicates_share_event_id_and_body() {
        let mut state = ProviderState::new(Provider::Airalo, 1, 0, Some("s".to_owned()));
        state.knobs.webhook_url = Some("http://127.0.0.1:9/hook".to_owned());
        state.knobs.webhook_duplicates = 2;

        state.enqueue_webhook("low_data", None, &json!({"iccid": "1"}), None);

        assert_eq!(state.outbox.len(), 3);
        assert!(
            state
                .outbox
                .iter()
                .all(|w| w.event_id == state.outbox[0].event_id)
        );
        assert!(
            state
                .outbox
                .iter()
                .all(|w| w.signature == state.outbox[0].signature)
        );
    }

    #[test]
    fn reorder_sends_the_later_webhook_first() {
        let mut state = ProviderState::new(Provider::EsimAccess, 1, 0, None);
        state.knobs.webhook_url = Some("http://127.0.0.1:9/hook".to_owned());
        state.knobs.webhook_reorder = true;

        state.enqueue_webhook("first", None, &json!({}), None);
        state.enqueue_webhook("second", None, &json!({}), None);
        let due = state.take_due_webhooks(Instant::now() + Duration::from_secs(1));

        let kinds: Vec<&str> = due.iter().map(|w| w.kind.as_str()).collect();
        assert_eq!(kinds, ["second", "first"]);
    }

    #[test]
    fn webhooks_without_url_are_counted_as_skipped() {
        let mut state = ProviderState::new(Provider::EsimAccess, 1, 0, None);

        state.enqueue_webhook("ORDER_STATUS", None, &json!({}), None);

        assert_eq!(state.webhooks_skipped, 1);
        assert!(state.outbox.is_empty());
    }
}
