//! The webhook intake: authenticate a provider's webhook over its raw body, deduplicate it,
//! and apply what it says to the one profile lifecycle.
//!
//! A webhook costs one conditional put (the dedupe claim), the reads that find what it names,
//! one conditional update per fact, and the update that marks the claim done. Facts are
//! idempotent on their own (the lifecycle only moves forward, usage only gets newer), so the
//! dedupe record saves work and keeps events single; it is not what keeps the state right.
//!
//! A fact naming an eSIM or order that is not stored yet is parked in the table and a retry
//! message is queued with a delay; [`WebhookService::retry_parked`] applies parked facts once
//! their target exists, and leaves the message for redelivery (bounded by the retry queue's
//! maxReceiveCount, then its dead-letter queue) while it does not. The provider gets 200
//! either way, so it neither loses the event nor retries it for days.
//!
//! Neither supported scheme carries a timestamp (Airalo signs the body alone; eSIM Access
//! signs nothing), so there is no timestamp tolerance to enforce; a replayed authentic body
//! is caught by the dedupe record for as long as it is kept.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::domain::events::{DomainEvent, EventKind};
use crate::domain::ids::{Iccid, ProviderId};
use crate::domain::lifecycle::{ProfileEvent, Transition};
use crate::domain::{DomainError, ErrorCode};
use crate::orders::ProvisioningMessage;
use crate::ports::esims::EsimStore;
use crate::ports::provider::{WebhookError, WebhookFact, WebhookRequest};
use crate::ports::webhooks::{Claim, ParkedEntry, ParkedFact, WebhookStore};
use crate::ports::{Clock, EventPublisher, MessageQueue, ProviderApi, StoreError};
use serde::{Deserialize, Serialize};

/// How long the intake holds and keeps things.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IntakeSettings {
    /// How long a processed webhook's dedupe record is kept: longer than any provider's
    /// retry horizon (Airalo retries for five hours; the design asks for at least 4 days).
    pub dedupe_retention: Duration,
    /// How long a delivery holds its claim; a crashed holder's claim lapses after this.
    pub claim_lease: Duration,
    /// How long a parked fact is kept in the table.
    pub parked_retention: Duration,
    /// How long after parking the first retry runs (SQS allows at most 15 minutes).
    pub retry_delay: Duration,
}

impl Default for IntakeSettings {
    fn default() -> Self {
        Self {
            dedupe_retention: Duration::from_secs(7 * 24 * 3600),
            claim_lease: Duration::from_secs(30),
            parked_retention: Duration::from_secs(14 * 24 * 3600),
            retry_delay: Duration::from_secs(30),
        }
    }
}

/// A webhook as it arrived at `POST /webhooks/{provider}[/{secret}]`.
#[derive(Debug, Clone, Copy)]
pub struct InboundWebhook<'a> {
    /// The provider path segment.
    pub provider: &'a str,
    /// The secret path segment, for providers that authenticate by URL.
    pub path_secret: Option<&'a str>,
    /// The headers.
    pub headers: &'a http::HeaderMap,
    /// The raw body.
    pub body: &'a [u8],
    /// The sender's address.
    pub source_ip: Option<IpAddr>,
}

/// What the intake did with a webhook; the body of its 200 answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookAck {
    /// `accepted` or `duplicate`.
    pub status: String,
    /// Facts applied now.
    pub applied: usize,
    /// Facts parked until what they name is stored.
    pub parked: usize,
}

/// The body of a webhook retry queue message: which parked facts to try again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryMessage {
    /// The provider.
    pub provider: ProviderId,
    /// The reference the facts are parked under.
    pub reference: String,
}

/// What a retry of parked facts did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryOutcome {
    /// Facts applied and removed.
    pub applied: usize,
    /// Facts still waiting for their eSIM or order.
    pub waiting: usize,
}

/// The ports the intake talks through.
#[derive(Debug, Clone)]
pub struct WebhookPorts {
    /// Dedupe records, parked facts, pending orders.
    pub webhooks: Arc<dyn WebhookStore>,
    /// eSIMs.
    pub esims: Arc<dyn EsimStore>,
    /// The provisioning queue, where completed asynchronous orders are handed to the worker.
    pub provisioning: Arc<dyn MessageQueue>,
    /// The webhook retry queue.
    pub retries: Arc<dyn MessageQueue>,
    /// The event bus.
    pub events: Arc<dyn EventPublisher>,
    /// The clock.
    pub clock: Arc<dyn Clock>,
}

/// Verifies, deduplicates and applies provider webhooks.
#[derive(Debug, Clone)]
pub struct WebhookService {
    providers: Vec<Arc<dyn ProviderApi>>,
    ports: WebhookPorts,
    settings: IntakeSettings,
}

/// How many times a lifecycle update is retried after losing a race.
const UPDATE_ATTEMPTS: usize = 5;

fn iccid_reference(iccid: &Iccid) -> String {
    format!("ICCID#{iccid}")
}

fn order_reference(provider_order_ref: &str) -> String {
    format!("ORDER#{provider_order_ref}")
}

/// The reference a fact waits under, and the fact as it is parked.
fn parkable(fact: WebhookFact) -> (String, ParkedFact) {
    match fact {
        WebhookFact::ProfileState { iccid, state, at } => (
            iccid_reference(&iccid),
            ParkedFact::ProfileState { state, at },
        ),
        WebhookFact::Usage(report) => {
            (iccid_reference(&report.iccid), ParkedFact::Usage { report })
        }
        WebhookFact::OrderCompleted {
            provider_order_ref,
            profiles,
            ..
        } => (
            order_reference(&provider_order_ref),
            ParkedFact::OrderOutcome {
                iccids: profiles.into_iter().map(|p| p.iccid).collect(),
            },
        ),
        WebhookFact::OrderFailed {
            provider_order_ref, ..
        } => (
            order_reference(&provider_order_ref),
            ParkedFact::OrderOutcome { iccids: Vec::new() },
        ),
    }
}

fn unauthenticated() -> DomainError {
    DomainError::with_message(
        ErrorCode::Unauthorized,
        "The webhook could not be authenticated with this provider's scheme.",
    )
}

impl WebhookService {
    /// An intake for `providers` over its ports.
    pub fn new(
        providers: Vec<Arc<dyn ProviderApi>>,
        ports: WebhookPorts,
        settings: IntakeSettings,
    ) -> Self {
        Self {
            providers,
            ports,
            settings,
        }
    }

    fn provider(&self, name: &str) -> Result<&Arc<dyn ProviderApi>, DomainError> {
        self.providers
            .iter()
            .find(|p| p.id().as_str() == name)
            .ok_or_else(|| {
                DomainError::with_message(
                    ErrorCode::NotFound,
                    format!("No webhook intake for provider {name} in this deployment."),
                )
            })
    }

    /// Authenticates, deduplicates and applies one webhook. A refused webhook is logged with
    /// its provider, reason and size, never its body.
    pub async fn receive(&self, inbound: InboundWebhook<'_>) -> Result<WebhookAck, DomainError> {
        let provider = self.provider(inbound.provider)?;
        let request = WebhookRequest {
            headers: inbound.headers,
            path_secret: inbound.path_secret,
            body: inbound.body,
            source_ip: inbound.source_ip,
        };
        let event = match provider.verify_webhook(request) {
            Ok(event) => event,
            Err(WebhookError::Unauthenticated(reason)) => {
                tracing::warn!(
                    provider = %provider.id(),
                    reason,
                    bytes = inbound.body.len(),
                    source_ip = ?inbound.source_ip,
                    "webhook refused"
                );
                return Err(unauthenticated());
            }
            Err(error @ WebhookError::Malformed(_)) => {
                tracing::warn!(
                    provider = %provider.id(),
                    bytes = inbound.body.len(),
                    %error,
                    "webhook not understood"
                );
                return Err(DomainError::with_message(
                    ErrorCode::InvalidRequest,
                    "The webhook is authentic but its body could not be read.",
                )
                .caused_by(error));
            }
        };
        let provider_id = provider.id().clone();
        let now = self.ports.clock.now();
        let lease_until = now + self.settings.claim_lease;

        let claim = self
            .ports
            .webhooks
            .claim(&provider_id, &event.dedupe_key, now, lease_until)
            .await?;
        match claim {
            Claim::Done => {
                tracing::info!(
                    provider = %provider_id,
                    dedupe_key = %event.dedupe_key,
                    "duplicate webhook"
                );
                return Ok(WebhookAck {
                    status: "duplicate".to_owned(),
                    applied: 0,
                    parked: 0,
                });
            }
            Claim::InFlight => {
                return Err(DomainError::with_message(
                    ErrorCode::Conflict,
                    "Another delivery of this webhook is being processed. Try again shortly.",
                ));
            }
            Claim::Claimed => {}
        }

        match self
            .apply_event(&provider_id, &event.dedupe_key, event.facts)
            .await
        {
            Ok(ack) => {
                self.ports
                    .webhooks
                    .finish(
                        &provider_id,
                        &event.dedupe_key,
                        now + self.settings.dedupe_retention,
                    )
                    .await?;
                tracing::info!(
                    provider = %provider_id,
                    dedupe_key = %event.dedupe_key,
                    applied = ack.applied,
                    parked = ack.parked,
                    "webhook processed"
                );
                Ok(ack)
            }
            Err(error) => {
                if let Err(release) = self
                    .ports
                    .webhooks
                    .release(&provider_id, &event.dedupe_key)
                    .await
                {
                    tracing::warn!(
                        provider = %provider_id,
                        error = %release,
                        "failed to release a webhook claim; it lapses with its lease"
                    );
                }
                Err(error)
            }
        }
    }

    async fn apply_event(
        &self,
        provider: &ProviderId,
        dedupe_key: &str,
        facts: Vec<WebhookFact>,
    ) -> Result<WebhookAck, DomainError> {
        let mut applied = 0;
        let mut waiting: BTreeMap<String, Vec<ParkedEntry>> = BTreeMap::new();
        for (index, fact) in facts.into_iter().enumerate() {
            let (reference, fact) = parkable(fact);
            if self.try_apply(provider, &reference, &fact).await? {
                applied += 1;
            } else {
                waiting.entry(reference).or_default().push(ParkedEntry {
                    entry_id: format!("{dedupe_key}#{index}"),
                    fact,
                });
            }
        }
        let parked = waiting.values().map(Vec::len).sum();
        let keep_until = self.ports.clock.now() + self.settings.parked_retention;
        for (reference, entries) in waiting {
            self.ports
                .webhooks
                .park(provider, &reference, &entries, keep_until)
                .await?;
            let message = RetryMessage {
                provider: provider.clone(),
                reference: reference.clone(),
            };
            let body = serde_json::to_string(&message).map_err(DomainError::internal)?;
            self.ports
                .retries
                .send_delayed(&body, self.settings.retry_delay)
                .await
                .map_err(DomainError::internal)?;
            tracing::info!(
                provider = %provider,
                reference,
                facts = entries.len(),
                "webhook facts parked until what they name is stored"
            );
        }
        Ok(WebhookAck {
            status: "accepted".to_owned(),
            applied,
            parked,
        })
    }

    /// Tries the facts parked under a reference again: applies those whose eSIM or order now
    /// exists and removes them. Safe to repeat.
    pub async fn retry_parked(&self, message: &RetryMessage) -> Result<RetryOutcome, DomainError> {
        let entries = self
            .ports
            .webhooks
            .parked(&message.provider, &message.reference)
            .await?;
        let mut outcome = RetryOutcome {
            applied: 0,
            waiting: 0,
        };
        for entry in entries {
            if self
                .try_apply(&message.provider, &message.reference, &entry.fact)
                .await?
            {
                self.ports
                    .webhooks
                    .unpark(&message.provider, &message.reference, &entry.entry_id)
                    .await?;
                outcome.applied += 1;
            } else {
                outcome.waiting += 1;
            }
        }
        Ok(outcome)
    }

    /// Applies one fact; false when what it names is not stored yet.
    async fn try_apply(
        &self,
        provider: &ProviderId,
        reference: &str,
        fact: &ParkedFact,
    ) -> Result<bool, DomainError> {
        if let Some(order_ref) = reference.strip_prefix("ORDER#") {
            if self.hand_order_to_worker(provider, order_ref).await? {
                return Ok(true);
            }
            let iccids = match fact {
                ParkedFact::OrderOutcome { iccids } => iccids.as_slice(),
                _ => &[],
            };
            for iccid in iccids {
                if self
                    .ports
                    .esims
                    .find_by_iccid(provider, iccid)
                    .await?
                    .is_some()
                {
                    return Ok(true);
                }
            }
            return Ok(false);
        }
        let iccid = reference
            .strip_prefix("ICCID#")
            .and_then(|text| Iccid::parse(text).ok())
            .ok_or_else(|| DomainError::invalid(format!("unknown parked reference {reference}")))?;
        match fact {
            ParkedFact::ProfileState { state, at } => {
                let event = ProfileEvent {
                    state: *state,
                    at: *at,
                };
                self.apply_state(provider, &iccid, event).await
            }
            ParkedFact::Usage { report } => self.apply_usage(provider, &iccid, report).await,
            ParkedFact::OrderOutcome { .. } => Ok(true),
        }
    }

    async fn hand_order_to_worker(
        &self,
        provider: &ProviderId,
        provider_order_ref: &str,
    ) -> Result<bool, DomainError> {
        let Some((tenant_id, order_id)) = self
            .ports
            .webhooks
            .pending_order(provider, provider_order_ref)
            .await?
        else {
            return Ok(false);
        };
        let message = ProvisioningMessage::new(tenant_id.clone(), order_id.clone());
        let body = serde_json::to_string(&message).map_err(DomainError::internal)?;
        self.ports
            .provisioning
            .send(&body)
            .await
            .map_err(DomainError::internal)?;
        tracing::info!(
            tenant_id = %tenant_id,
            order_id = %order_id,
            provider = %provider,
            "asynchronous order result handed to the provisioning worker"
        );
        Ok(true)
    }

    async fn apply_state(
        &self,
        provider: &ProviderId,
        iccid: &Iccid,
        event: ProfileEvent,
    ) -> Result<bool, DomainError> {
        let Some(mut stored) = self.ports.esims.find_by_iccid(provider, iccid).await? else {
            return Ok(false);
        };
        for _ in 0..UPDATE_ATTEMPTS {
            let mut lifecycle = stored.esim.lifecycle.clone();
            let transition = lifecycle.apply(event);
            if lifecycle == stored.esim.lifecycle {
                return Ok(true);
            }
            let esim = &stored.esim;
            match self
                .ports
                .esims
                .save_lifecycle(&esim.tenant_id, &esim.esim_id, &lifecycle, stored.version)
                .await
            {
                Ok(()) => {
                    if let Transition::Advanced { from, to } = transition {
                        self.publish_state_change(esim, &lifecycle, from, to)
                            .await?;
                    }
                    return Ok(true);
                }
                Err(StoreError::Conflict { .. }) => {
                    let (tenant_id, esim_id) = (esim.tenant_id.clone(), esim.esim_id.clone());
                    match self.ports.esims.get(&tenant_id, &esim_id).await? {
                        Some(fresh) => stored = fresh,
                        None => return Ok(false),
                    }
                }
                Err(other) => return Err(other.into()),
            }
        }
        Err(DomainError::new(ErrorCode::Conflict))
    }

    async fn publish_state_change(
        &self,
        esim: &crate::domain::esim::Esim,
        lifecycle: &crate::domain::lifecycle::Lifecycle,
        from: crate::domain::ProfileState,
        to: crate::domain::ProfileState,
    ) -> Result<(), DomainError> {
        let to_reached_at = lifecycle
            .reached(to)
            .unwrap_or_else(|| self.ports.clock.now());
        let event = DomainEvent {
            event_id: format!("{}:{}", esim.esim_id, to.as_str()),
            tenant_id: esim.tenant_id.clone(),
            occurred_at: to_reached_at,
            kind: EventKind::EsimStateChanged {
                esim_id: esim.esim_id.clone(),
                from,
                to,
                from_reached_at: lifecycle.reached(from),
                to_reached_at,
            },
        };
        tracing::info!(
            tenant_id = %esim.tenant_id,
            esim_id = %esim.esim_id,
            from = from.as_str(),
            to = to.as_str(),
            "eSIM state changed"
        );
        // The state is saved already; a failed publish is reported so the delivery is retried,
        // but the retry finds the state applied and does not publish again. The event is then
        // missing from the bus, which the time-to-activation metric counts as a gap.
        self.ports
            .events
            .publish(&[event])
            .await
            .map_err(DomainError::internal)
    }

    async fn apply_usage(
        &self,
        provider: &ProviderId,
        iccid: &Iccid,
        report: &crate::ports::provider::UsageReport,
    ) -> Result<bool, DomainError> {
        let Some(stored) = self.ports.esims.find_by_iccid(provider, iccid).await? else {
            return Ok(false);
        };
        let mut report = report.clone();
        report.measured_at.get_or_insert(self.ports.clock.now());
        // The one merge rule polls also follow: newer by the provider's clock and different.
        let saved = crate::usage::replaces(stored.usage.as_ref(), &report)
            && self
                .ports
                .esims
                .save_usage(&stored.esim.tenant_id, &stored.esim.esim_id, &report)
                .await?;
        tracing::debug!(esim_id = %stored.esim.esim_id, saved, "usage figure from a webhook");
        Ok(true)
    }
}

impl std::fmt::Display for RetryOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} applied, {} waiting", self.applied, self.waiting)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Mutex;

    use async_trait::async_trait;
    use proptest::prelude::*;
    use time::OffsetDateTime;
    use time::macros::datetime;

    use super::*;
    use crate::domain::esim::{ActivationCode, Esim};
    use crate::domain::ids::{CustomerId, EsimId, OrderId, PlanId, TenantId};
    use crate::domain::lifecycle::{Lifecycle, ProfileState};
    use crate::domain::plan::{CountryCode, ProviderPlan};
    use crate::ports::esims::StoredEsim;
    use crate::ports::provider::{
        OrderOutcome, ProfileDetails, ProviderCapabilities, ProviderError, ProviderOrderRequest,
        TopUpOutcome, UsageReport, WebhookEvent,
    };
    use crate::testing::{FixedClock, InMemoryPublisher, InMemoryQueue};

    const ICCID: &str = "8944000000000000017";

    fn t0() -> OffsetDateTime {
        datetime!(2026-06-01 12:00 UTC)
    }

    /// A provider whose webhooks are `{"id", "state", "minute"}` signed by the header
    /// `x-test-signature: ok`.
    #[derive(Debug)]
    struct TestProvider(ProviderId);

    #[async_trait]
    impl ProviderApi for TestProvider {
        fn id(&self) -> &ProviderId {
            &self.0
        }
        fn capabilities(&self) -> ProviderCapabilities {
            unreachable!("not used by the intake")
        }
        async fn list_plans(
            &self,
            _: Option<&CountryCode>,
        ) -> Result<Vec<ProviderPlan>, ProviderError> {
            Err(ProviderError::Unsupported("plans"))
        }
        async fn place_order(
            &self,
            _: &ProviderOrderRequest,
        ) -> Result<OrderOutcome, ProviderError> {
            Err(ProviderError::Unsupported("orders"))
        }
        async fn find_order(&self, _: &str) -> Result<Option<OrderOutcome>, ProviderError> {
            Err(ProviderError::Unsupported("orders"))
        }
        async fn profile(&self, _: &Iccid) -> Result<ProfileDetails, ProviderError> {
            Err(ProviderError::Unsupported("profiles"))
        }
        async fn usage(&self, _: &Iccid) -> Result<UsageReport, ProviderError> {
            Err(ProviderError::Unsupported("usage"))
        }
        async fn top_up(&self, _: &Iccid, _: &str, _: &str) -> Result<TopUpOutcome, ProviderError> {
            Err(ProviderError::Unsupported("top-ups"))
        }
        async fn cancel(&self, _: &Iccid) -> Result<(), ProviderError> {
            Err(ProviderError::Unsupported("cancel"))
        }
        fn verify_webhook(
            &self,
            request: WebhookRequest<'_>,
        ) -> Result<WebhookEvent, WebhookError> {
            let signed = request
                .headers
                .get("x-test-signature")
                .is_some_and(|v| v.as_bytes() == b"ok");
            if !signed {
                return Err(WebhookError::Unauthenticated("bad test signature"));
            }
            let body: serde_json::Value = serde_json::from_slice(request.body)
                .map_err(|e| WebhookError::Malformed(Box::new(e)))?;
            let state: ProfileState = serde_json::from_value(body["state"].clone())
                .map_err(|e| WebhookError::Malformed(Box::new(e)))?;
            let minute = body["minute"].as_i64().unwrap_or_default();
            Ok(WebhookEvent {
                dedupe_key: body["id"].as_str().unwrap_or_default().to_owned(),
                facts: vec![WebhookFact::ProfileState {
                    iccid: Iccid::parse(ICCID).expect("iccid"),
                    state,
                    at: t0() + time::Duration::minutes(minute),
                }],
            })
        }
    }

    #[derive(Debug, Default)]
    struct MemoryEsims(Mutex<HashMap<String, StoredEsim>>);

    #[async_trait]
    impl EsimStore for MemoryEsims {
        async fn find_by_iccid(
            &self,
            _: &ProviderId,
            iccid: &Iccid,
        ) -> Result<Option<StoredEsim>, StoreError> {
            let map = self.0.lock().expect("lock");
            Ok(map.values().find(|s| &s.esim.iccid == iccid).cloned())
        }
        async fn get(
            &self,
            _: &TenantId,
            esim_id: &EsimId,
        ) -> Result<Option<StoredEsim>, StoreError> {
            Ok(self.0.lock().expect("lock").get(esim_id.as_str()).cloned())
        }
        async fn list_for_customer(
            &self,
            _: &TenantId,
            _: &CustomerId,
        ) -> Result<Vec<StoredEsim>, StoreError> {
            Ok(self.0.lock().expect("lock").values().cloned().collect())
        }
        async fn save_lifecycle(
            &self,
            _: &TenantId,
            esim_id: &EsimId,
            lifecycle: &Lifecycle,
            expected_version: u64,
        ) -> Result<(), StoreError> {
            let mut map = self.0.lock().expect("lock");
            let stored = map.get_mut(esim_id.as_str()).expect("stored");
            if stored.version != expected_version {
                return Err(StoreError::Conflict {
                    what: "esim".to_owned(),
                });
            }
            stored.esim.lifecycle = lifecycle.clone();
            stored.version += 1;
            Ok(())
        }
        async fn save_usage(
            &self,
            _: &TenantId,
            esim_id: &EsimId,
            usage: &UsageReport,
        ) -> Result<bool, StoreError> {
            let mut map = self.0.lock().expect("lock");
            let stored = map.get_mut(esim_id.as_str()).expect("stored");
            stored.usage = Some(usage.clone());
            Ok(true)
        }
    }

    #[derive(Debug, Default)]
    struct MemoryWebhooks {
        dedupe: Mutex<HashMap<String, bool>>,
        parked: Mutex<HashMap<String, Vec<ParkedEntry>>>,
    }

    #[async_trait]
    impl WebhookStore for MemoryWebhooks {
        async fn claim(
            &self,
            _: &ProviderId,
            key: &str,
            _: OffsetDateTime,
            _: OffsetDateTime,
        ) -> Result<Claim, StoreError> {
            let mut map = self.dedupe.lock().expect("lock");
            Ok(match map.get(key) {
                Some(true) => Claim::Done,
                Some(false) => Claim::InFlight,
                None => {
                    map.insert(key.to_owned(), false);
                    Claim::Claimed
                }
            })
        }
        async fn finish(
            &self,
            _: &ProviderId,
            key: &str,
            _: OffsetDateTime,
        ) -> Result<(), StoreError> {
            self.dedupe
                .lock()
                .expect("lock")
                .insert(key.to_owned(), true);
            Ok(())
        }
        async fn release(&self, _: &ProviderId, key: &str) -> Result<(), StoreError> {
            self.dedupe.lock().expect("lock").remove(key);
            Ok(())
        }
        async fn park(
            &self,
            _: &ProviderId,
            reference: &str,
            entries: &[ParkedEntry],
            _: OffsetDateTime,
        ) -> Result<(), StoreError> {
            let mut map = self.parked.lock().expect("lock");
            map.entry(reference.to_owned())
                .or_default()
                .extend_from_slice(entries);
            Ok(())
        }
        async fn parked(
            &self,
            _: &ProviderId,
            reference: &str,
        ) -> Result<Vec<ParkedEntry>, StoreError> {
            Ok(self
                .parked
                .lock()
                .expect("lock")
                .get(reference)
                .cloned()
                .unwrap_or_default())
        }
        async fn unpark(
            &self,
            _: &ProviderId,
            reference: &str,
            entry_id: &str,
        ) -> Result<(), StoreError> {
            let mut map = self.parked.lock().expect("lock");
            if let Some(entries) = map.get_mut(reference) {
                entries.retain(|e| e.entry_id != entry_id);
            }
            Ok(())
        }
        async fn pending_order(
            &self,
            _: &ProviderId,
            _: &str,
        ) -> Result<Option<(TenantId, OrderId)>, StoreError> {
            Ok(None)
        }
    }

    struct Harness {
        service: WebhookService,
        esims: Arc<MemoryEsims>,
        webhooks: Arc<MemoryWebhooks>,
        retries: Arc<InMemoryQueue>,
        events: Arc<InMemoryPublisher>,
    }

    fn harness() -> Harness {
        let esims = Arc::new(MemoryEsims::default());
        let webhooks = Arc::new(MemoryWebhooks::default());
        let retries = Arc::new(InMemoryQueue::default());
        let events = Arc::new(InMemoryPublisher::default());
        let ports = WebhookPorts {
            webhooks: webhooks.clone(),
            esims: esims.clone(),
            provisioning: Arc::new(InMemoryQueue::default()),
            retries: retries.clone(),
            events: events.clone(),
            clock: Arc::new(FixedClock::default()),
        };
        let provider = Arc::new(TestProvider(ProviderId::parse("test").expect("id")));
        Harness {
            service: WebhookService::new(vec![provider], ports, IntakeSettings::default()),
            esims,
            webhooks,
            retries,
            events,
        }
    }

    fn store_esim(esims: &MemoryEsims) {
        let esim = Esim {
            esim_id: EsimId::from_ulid(ulid::Ulid::from_parts(1, 1)),
            tenant_id: TenantId::from_ulid(ulid::Ulid::from_parts(1, 2)),
            order_id: OrderId::from_ulid(ulid::Ulid::from_parts(1, 3)),
            customer_id: CustomerId::parse("customer-1").expect("id"),
            plan_id: PlanId::parse("test-plan").expect("id"),
            provider: ProviderId::parse("test").expect("id"),
            iccid: Iccid::parse(ICCID).expect("iccid"),
            provider_profile_ref: None,
            activation: ActivationCode::parse("LPA:1$smdp.example.com$M-1").expect("lpa"),
            qr_code_url: None,
            direct_install_url: None,
            apn: None,
            lifecycle: Lifecycle::new(ProfileState::Provisioned, t0()),
            qr_valid_until: None,
            created_at: t0(),
        };
        esims.0.lock().expect("lock").insert(
            esim.esim_id.to_string(),
            StoredEsim {
                esim,
                version: 1,
                usage: None,
            },
        );
    }

    fn headers(signed: bool) -> http::HeaderMap {
        let mut headers = http::HeaderMap::new();
        if signed {
            headers.insert("x-test-signature", http::HeaderValue::from_static("ok"));
        }
        headers
    }

    async fn deliver(h: &Harness, body: &str, signed: bool) -> Result<WebhookAck, DomainError> {
        let headers = headers(signed);
        h.service
            .receive(InboundWebhook {
                provider: "test",
                path_secret: None,
                headers: &headers,
                body: body.as_bytes(),
                source_ip: None,
            })
            .await
    }

    async fn drain_retries(h: &Harness) {
        let sent: Vec<String> = std::mem::take(&mut *h.retries.sent.lock().expect("lock"));
        for body in sent {
            let message: RetryMessage = serde_json::from_str(&body).expect("retry message");
            h.service.retry_parked(&message).await.expect("retried");
        }
    }

    fn current_state(h: &Harness) -> ProfileState {
        let map = h.esims.0.lock().expect("lock");
        map.values().next().expect("stored").esim.lifecycle.state
    }

    fn body(id: usize, state: ProfileState, minute: usize) -> String {
        serde_json::json!({"id": format!("evt-{id}"), "state": state, "minute": minute}).to_string()
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime")
    }

    #[test]
    fn an_unsigned_webhook_is_refused_and_changes_nothing() {
        let h = harness();
        store_esim(&h.esims);

        let refused = runtime().block_on(deliver(&h, &body(1, ProfileState::Installed, 1), false));

        assert_eq!(refused.expect_err("refused").code, ErrorCode::Unauthorized);
        assert_eq!(current_state(&h), ProfileState::Provisioned);
        assert!(h.webhooks.dedupe.lock().expect("lock").is_empty());
    }

    #[test]
    fn a_duplicate_is_acknowledged_without_a_second_event() {
        let h = harness();
        store_esim(&h.esims);
        let rt = runtime();
        let first = rt.block_on(deliver(&h, &body(1, ProfileState::Installed, 1), true));

        let second = rt.block_on(deliver(&h, &body(1, ProfileState::Installed, 1), true));

        assert_eq!(first.expect("first").applied, 1);
        assert_eq!(second.expect("second").status, "duplicate");
        assert_eq!(h.events.published.lock().expect("lock").len(), 1);
    }

    #[test]
    fn an_early_fact_is_parked_and_applied_once_the_esim_is_stored() {
        let h = harness();
        let rt = runtime();
        let early = rt.block_on(deliver(&h, &body(1, ProfileState::Downloaded, 1), true));
        store_esim(&h.esims);

        rt.block_on(drain_retries(&h));

        assert_eq!(early.expect("accepted").parked, 1);
        assert_eq!(current_state(&h), ProfileState::Downloaded);
        assert!(
            h.webhooks
                .parked
                .lock()
                .expect("lock")
                .values()
                .all(Vec::is_empty)
        );
    }

    fn any_state() -> impl Strategy<Value = ProfileState> {
        proptest::sample::select(ProfileState::ALL.to_vec())
    }

    proptest! {
        #[test]
        fn any_order_and_duplication_of_one_profiles_events_ends_in_the_reference_state(
            states in proptest::collection::vec(any_state(), 1..10),
            order in proptest::collection::vec(any::<u16>(), 1..30),
            stored_after in 0usize..30,
        ) {
            let h = harness();
            let rt = runtime();
            // Deliveries: every event at least once, plus duplicates picked by `order`, in an
            // order shuffled by `order`.
            let mut deliveries: Vec<usize> = (0..states.len()).collect();
            deliveries.extend(order.iter().map(|n| *n as usize % states.len()));
            for (i, n) in order.iter().enumerate() {
                let len = deliveries.len();
                deliveries.swap(i % len, (*n as usize + i) % len);
            }

            for (step, index) in deliveries.iter().enumerate() {
                if step == stored_after {
                    store_esim(&h.esims);
                }
                rt.block_on(deliver(&h, &body(*index, states[*index], *index + 1), true))
                    .expect("accepted");
            }
            if stored_after >= deliveries.len() {
                store_esim(&h.esims);
            }
            rt.block_on(drain_retries(&h));

            // The reference model: the furthest state any event named, never behind the start.
            let expected = states
                .iter()
                .copied()
                .chain([ProfileState::Provisioned])
                .max()
                .expect("non-empty");
            prop_assert_eq!(current_state(&h), expected);
            let published = h.events.published.lock().expect("lock").clone();
            let mut previous = ProfileState::Provisioned;
            for event in &published {
                let EventKind::EsimStateChanged { from, to, .. } = &event.kind else {
                    panic!("unexpected event {event:?}");
                };
                prop_assert_eq!(*from, previous);
                prop_assert!(*to > *from);
                previous = *to;
            }
            prop_assert_eq!(previous, expected);
        }
    }
}
