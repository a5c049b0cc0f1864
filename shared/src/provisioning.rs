//! Provisioning: turns an accepted, charged order into eSIM profiles at a provider, exactly
//! once, whatever is delivered twice, lost or interrupted.
//!
//! One [`Provisioner::process`] call handles one queue delivery:
//! - It takes the order's lease, so two deliveries of one order never both call a provider.
//! - Every step is written to the order before the next one runs: an attempt is stored as
//!   `started` before the provider is called. Found `started` or `outcome_unknown` later (a
//!   crash, a lost answer), the attempt is looked up at the provider by our reference before
//!   anything is ordered again.
//! - A refusal (out of stock, maintenance, unavailable, ...) moves the order to the next
//!   equivalent plan the tenant's routing rules allow. The customer's charge never changes.
//! - When every provider refused: refusals that may pass (maintenance, unavailable, throttled)
//!   are retried by redelivery up to [`ProvisioningConfig::max_rounds`] receives; then, or at
//!   once for refusals that will not pass (out of stock), the order fails and is refunded once.
//! - A pending order (asynchronous provider) is completed by a later message: the webhook
//!   intake's, or the worker's own delayed poll, at most [`ProvisioningConfig::max_polls`]
//!   times before it fails with a refund and a sentence asking the user to contact support.
//! - Events go through the order's outbox: committed with the change, published after it,
//!   then cleared. A crash in between publishes them again (consumers dedupe on `event_id`).
//!
//! Errors that stop a delivery ([`ProvisioningError`]) leave the message for redelivery and,
//! after the queue's maxReceiveCount, its dead-letter queue.

use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;

use crate::config::{ConfigError, EnvSource, seconds};
use crate::domain::esim::Esim;
use crate::domain::events::{DomainEvent, EventKind};
use crate::domain::ids::{EsimId, OrderId, ProviderId};
use crate::domain::lifecycle::{Lifecycle, ProfileState};
use crate::domain::order::{
    AttemptState, LedgerEntry, LedgerKind, Order, OrderFailure, OrderStatus, ProviderAttempt,
};
use crate::domain::plan::ProviderPlan;
use crate::domain::{DomainError, ErrorCode, Money};
use crate::orders::ProvisioningMessage;
use crate::ports::provider::{OrderOutcome, ProviderOrderRequest, ProvisionedProfile};
use crate::ports::{
    Clock, EventPublisher, IdGenerator, MessageQueue, OrderStore, PlanCatalogue, ProviderApi,
    ProviderError, PublishError, QueueError, StoreError, VersionedOrder,
};

/// A step of the order flow where a test can stop it, as a crash there would.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FaultPoint {
    /// `POST /v1/orders`, before the order's transaction.
    BeforeTransaction,
    /// `POST /v1/orders`, after the transaction and before the queue send.
    AfterTransaction,
    /// The worker, after storing the attempt and before calling the provider.
    BeforeProviderCall,
    /// The worker, after the provider answered and before anything was stored.
    AfterProviderCall,
    /// The worker, before writing the completed order and its eSIMs.
    BeforeCompletionWrite,
}

/// The flow was stopped at a fault point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("fault injected at {0:?}")]
pub struct InjectedFault(pub FaultPoint);

/// Decides whether the flow continues past a fault point. Production code uses
/// [`no_faults`]; tests inject crashes.
pub type FaultHook = Arc<dyn Fn(FaultPoint) -> Result<(), InjectedFault> + Send + Sync>;

/// The hook that never stops anything.
pub fn no_faults() -> FaultHook {
    Arc::new(|_| Ok(()))
}

/// How the worker paces itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvisioningConfig {
    /// How long a delivery holds an order's lease; longer than the function's timeout, so a
    /// running delivery never loses it, and short enough that a crashed one frees it soon.
    pub lease: Duration,
    /// Receives of one message during which refusals that may pass are retried; kept below
    /// the queue's maxReceiveCount so the order fails and is refunded rather than stranded.
    pub max_rounds: u32,
    /// The delay between two polls of a pending order.
    pub poll_every: Duration,
    /// Polls of a pending order before it fails with a refund.
    pub max_polls: u32,
}

impl Default for ProvisioningConfig {
    fn default() -> Self {
        Self {
            lease: Duration::from_secs(60),
            max_rounds: 3,
            poll_every: Duration::from_secs(60),
            max_polls: 30,
        }
    }
}

impl ProvisioningConfig {
    /// Reads `PROVISIONING_LEASE_SECONDS`, `PROVISIONING_MAX_ROUNDS`,
    /// `PROVISIONING_POLL_SECONDS` and `PROVISIONING_MAX_POLLS`, each optional.
    pub fn load(env: &dyn EnvSource) -> Result<Self, ConfigError> {
        let defaults = Self::default();
        Ok(Self {
            lease: seconds(env, "PROVISIONING_LEASE_SECONDS", defaults.lease)?,
            max_rounds: count(env, "PROVISIONING_MAX_ROUNDS", defaults.max_rounds)?,
            poll_every: seconds(env, "PROVISIONING_POLL_SECONDS", defaults.poll_every)?,
            max_polls: count(env, "PROVISIONING_MAX_POLLS", defaults.max_polls)?,
        })
    }
}

fn count(env: &dyn EnvSource, name: &'static str, default: u32) -> Result<u32, ConfigError> {
    match env.var(name) {
        None => Ok(default),
        Some(text) => text.trim().parse().map_err(|_| ConfigError::Invalid {
            name,
            reason: format!("expected a whole number, got {text:?}"),
        }),
    }
}

/// One delivery of a provisioning message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The message.
    pub message: ProvisioningMessage,
    /// How many times the queue delivered it, this time included.
    pub receive_count: u32,
    /// Who holds the lease for this delivery: unique per delivery, not per message, since
    /// one message can be delivered twice at once.
    pub holder: String,
}

/// Where a delivery left the order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// Its eSIMs exist.
    Provisioned,
    /// A provider works on it; a webhook or a poll completes it.
    Pending,
    /// It failed and was refunded.
    Failed,
    /// It was final already; only its outbox was published.
    AlreadyFinal,
}

/// Why a delivery stopped before the order reached a resting state. Every one of these
/// leaves the message for redelivery.
#[derive(Debug, thiserror::Error)]
pub enum ProvisioningError {
    /// The message names an order that does not exist.
    #[error("order {0} does not exist")]
    UnknownOrder(OrderId),
    /// Another delivery is working on the order.
    #[error("another delivery holds the lease of order {0}")]
    LeaseHeld(OrderId),
    /// The table could not be read or written, or another writer got there first.
    #[error("failed to read or write the order")]
    Store(#[from] StoreError),
    /// The catalogue could not say which plans can stand in.
    #[error("failed to read failover candidates")]
    Catalogue(#[source] DomainError),
    /// The bus refused the order's events.
    #[error("failed to publish the order's events")]
    Publish(#[from] PublishError),
    /// A pending order could not be queued for its next poll.
    #[error("failed to queue the next poll")]
    Queue(#[from] QueueError),
    /// A provider could not answer now; asking again later may work.
    #[error("provider {provider} could not answer")]
    Provider {
        /// Which provider.
        provider: ProviderId,
        /// Why.
        #[source]
        source: ProviderError,
    },
    /// Every provider refused with something that may pass; the next delivery tries again.
    #[error("every provider refused for now; trying again on redelivery")]
    ProvidersBusy,
    /// A test stopped the flow here.
    #[error(transparent)]
    Injected(#[from] InjectedFault),
}

/// The sentence an order shows when it failed: what the user can do, never a provider's code.
pub fn failure_message(code: ErrorCode, support_reference: &str) -> String {
    match code {
        ErrorCode::OutOfStock => format!(
            "This plan is sold out at every network we can use. Your payment was refunded; \
             choose another plan. If you need help, contact support quoting {support_reference}."
        ),
        ErrorCode::OperatorMaintenance | ErrorCode::ProviderUnavailable | ErrorCode::Throttled => {
            format!(
                "The network could not issue your eSIM right now. Your payment was refunded; \
                 try again in a few minutes. If it keeps failing, contact support quoting \
                 {support_reference}."
            )
        }
        _ => format!(
            "We could not issue your eSIM, and your payment was refunded. Contact support \
             quoting {support_reference}."
        ),
    }
}

/// Provisions orders through the ports.
#[derive(Clone)]
pub struct Provisioner {
    store: Arc<dyn OrderStore>,
    catalogue: Arc<dyn PlanCatalogue>,
    providers: Vec<Arc<dyn ProviderApi>>,
    queue: Arc<dyn MessageQueue>,
    events: Arc<dyn EventPublisher>,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdGenerator>,
    config: ProvisioningConfig,
    faults: FaultHook,
}

impl std::fmt::Debug for Provisioner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Provisioner")
            .field("providers", &self.providers)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// The ports a [`Provisioner`] talks through.
#[derive(Debug, Clone)]
pub struct ProvisioningPorts {
    /// Orders.
    pub store: Arc<dyn OrderStore>,
    /// Plans, for failover candidates and routing rules.
    pub catalogue: Arc<dyn PlanCatalogue>,
    /// Providers, by their ids.
    pub providers: Vec<Arc<dyn ProviderApi>>,
    /// The provisioning queue, for polls of pending orders.
    pub queue: Arc<dyn MessageQueue>,
    /// The bus.
    pub events: Arc<dyn EventPublisher>,
    /// The clock.
    pub clock: Arc<dyn Clock>,
    /// Ids of new eSIMs.
    pub ids: Arc<dyn IdGenerator>,
}

/// What to do after reading a pending order at its provider.
enum PendingCheck {
    Settled(Progress),
    Refused(ErrorCode),
}

impl Provisioner {
    /// A provisioner over its ports.
    pub fn new(ports: ProvisioningPorts, config: ProvisioningConfig) -> Self {
        Self {
            store: ports.store,
            catalogue: ports.catalogue,
            providers: ports.providers,
            queue: ports.queue,
            events: ports.events,
            clock: ports.clock,
            ids: ports.ids,
            config,
            faults: no_faults(),
        }
    }

    /// Checks `faults` at each step, so tests can stop the flow where a crash would.
    pub fn with_faults(mut self, faults: FaultHook) -> Self {
        self.faults = faults;
        self
    }

    /// Handles one delivery. `Ok` means the message is done with; `Err` means redeliver it.
    pub async fn process(&self, delivery: &Delivery) -> Result<Progress, ProvisioningError> {
        let tenant_id = &delivery.message.tenant_id;
        let order_id = &delivery.message.order_id;
        let current = self
            .store
            .get(tenant_id, order_id)
            .await?
            .ok_or_else(|| ProvisioningError::UnknownOrder(order_id.clone()))?;
        if current.order.status.is_final() {
            self.flush(current).await?;
            return Ok(Progress::AlreadyFinal);
        }
        let now = self.clock.now();
        let taken = self
            .store
            .take_lease(
                tenant_id,
                order_id,
                &delivery.holder,
                now,
                now + self.config.lease,
            )
            .await?;
        if !taken {
            return Err(ProvisioningError::LeaseHeld(order_id.clone()));
        }

        let outcome = self.drive(delivery).await;

        // A crash keeps its lease until it runs out; that is what the injected fault mimics.
        if !matches!(outcome, Err(ProvisioningError::Injected(_)))
            && let Err(error) = self
                .store
                .release_lease(tenant_id, order_id, &delivery.holder)
                .await
        {
            tracing::warn!(order_id = %order_id, %error, "failed to release the lease; it expires");
        }
        outcome
    }

    fn fault(&self, point: FaultPoint) -> Result<(), InjectedFault> {
        (self.faults)(point)
    }

    fn provider(&self, id: &ProviderId) -> Option<Arc<dyn ProviderApi>> {
        self.providers.iter().find(|p| p.id() == id).cloned()
    }

    async fn drive(&self, delivery: &Delivery) -> Result<Progress, ProvisioningError> {
        let message = &delivery.message;
        // Read again under the lease: the first read may predate another delivery's writes.
        let mut current = self
            .store
            .get(&message.tenant_id, &message.order_id)
            .await?
            .ok_or_else(|| ProvisioningError::UnknownOrder(message.order_id.clone()))?;
        if current.order.status.is_final() {
            self.flush(current).await?;
            return Ok(Progress::AlreadyFinal);
        }
        if !current.order.outbox.is_empty() {
            self.events.publish(&current.order.outbox).await?;
            current.order.outbox.clear();
            self.save(&mut current).await?;
        }
        let mut refused: Vec<(ProviderId, ErrorCode)> = Vec::new();
        let mut chain: Option<Vec<ProviderPlan>> = None;
        // An attempt this delivery started is ordered at once; one found started is looked up.
        let mut fresh = false;
        loop {
            let Some(attempt) = current.order.attempts.last().cloned() else {
                if !self
                    .start_attempt(&mut current, &refused, &mut chain)
                    .await?
                {
                    return self.exhausted(current, &refused, delivery).await;
                }
                fresh = true;
                continue;
            };
            match attempt.state {
                AttemptState::Refused => {
                    if !self
                        .start_attempt(&mut current, &refused, &mut chain)
                        .await?
                    {
                        return self.exhausted(current, &refused, delivery).await;
                    }
                    fresh = true;
                }
                AttemptState::Pending => match self.check_pending(&mut current, delivery).await? {
                    PendingCheck::Settled(progress) => return Ok(progress),
                    PendingCheck::Refused(code) => {
                        refused.push((attempt.provider.clone(), code));
                        self.refuse_last(&mut current, code).await?;
                    }
                },
                AttemptState::Started | AttemptState::OutcomeUnknown | AttemptState::Succeeded => {
                    let Some(provider) = self.provider(&attempt.provider) else {
                        tracing::error!(
                            order_id = %current.order.order_id,
                            provider = %attempt.provider,
                            "the order's provider is not configured"
                        );
                        refused.push((attempt.provider.clone(), ErrorCode::Internal));
                        self.refuse_last(&mut current, ErrorCode::Internal).await?;
                        continue;
                    };
                    if !fresh && let Some(found) = self.look_up(provider.as_ref(), &attempt).await?
                    {
                        return self
                            .settle(current, provider.as_ref(), found, delivery)
                            .await;
                    }
                    fresh = false;
                    match self
                        .place(provider.as_ref(), &current.order, &attempt)
                        .await?
                    {
                        Ok(outcome) => {
                            return self
                                .settle(current, provider.as_ref(), outcome, delivery)
                                .await;
                        }
                        Err(ProviderError::OutcomeUnknown { .. }) => {
                            return self.outcome_unknown(current, provider, delivery).await;
                        }
                        Err(error) => {
                            let code = error.code();
                            tracing::warn!(
                                order_id = %current.order.order_id,
                                provider = %attempt.provider,
                                code = code.as_str(),
                                %error,
                                "the provider refused the order"
                            );
                            refused.push((attempt.provider.clone(), code));
                            self.refuse_last(&mut current, code).await?;
                        }
                    }
                }
            }
        }
    }

    /// Calls the provider for the attempt, between its two fault points. A protocol error
    /// after an order call may hide a committed order, so it counts as an unknown outcome.
    async fn place(
        &self,
        provider: &dyn ProviderApi,
        order: &Order,
        attempt: &ProviderAttempt,
    ) -> Result<Result<OrderOutcome, ProviderError>, ProvisioningError> {
        let request = ProviderOrderRequest {
            our_reference: attempt.our_reference.clone(),
            plan_code: attempt.plan_code.clone(),
            quantity: order.quantity,
            prefer_synchronous: provider.capabilities().synchronous_available,
        };
        self.fault(FaultPoint::BeforeProviderCall)?;
        tracing::info!(
            order_id = %order.order_id,
            provider = %attempt.provider,
            our_reference = %attempt.our_reference,
            "ordering at the provider"
        );
        let result = provider.place_order(&request).await;
        self.fault(FaultPoint::AfterProviderCall)?;
        Ok(match result {
            Err(ProviderError::Protocol(source)) => Err(ProviderError::OutcomeUnknown {
                our_reference: attempt.our_reference.clone(),
                source,
            }),
            other => other,
        })
    }

    /// Looks an attempt up at its provider: `Some` when the provider has the order.
    async fn look_up(
        &self,
        provider: &dyn ProviderApi,
        attempt: &ProviderAttempt,
    ) -> Result<Option<OrderOutcome>, ProvisioningError> {
        provider
            .find_order(&attempt.our_reference)
            .await
            .map_err(|source| ProvisioningError::Provider {
                provider: attempt.provider.clone(),
                source,
            })
    }

    /// The answer was lost: record that, then look the order up once right away. If the
    /// provider does not show it yet, the next delivery looks again before ordering.
    async fn outcome_unknown(
        &self,
        mut current: VersionedOrder,
        provider: Arc<dyn ProviderApi>,
        delivery: &Delivery,
    ) -> Result<Progress, ProvisioningError> {
        let now = self.clock.now();
        let Some(attempt) = current.order.attempts.last_mut() else {
            return Err(ProvisioningError::ProvidersBusy);
        };
        attempt.state = AttemptState::OutcomeUnknown;
        let attempt = attempt.clone();
        current.order.updated_at = now;
        self.save(&mut current).await?;
        tracing::warn!(
            order_id = %current.order.order_id,
            provider = %attempt.provider,
            "the provider's answer was lost; looking the order up"
        );
        match self.look_up(provider.as_ref(), &attempt).await? {
            Some(found) => {
                self.settle(current, provider.as_ref(), found, delivery)
                    .await
            }
            None => Err(ProvisioningError::Provider {
                provider: attempt.provider.clone(),
                source: ProviderError::OutcomeUnknown {
                    our_reference: attempt.our_reference.clone(),
                    source: "the provider does not show the order yet".into(),
                },
            }),
        }
    }

    /// Adds an attempt at the next plan the chain offers; `false` when none is left.
    async fn start_attempt(
        &self,
        current: &mut VersionedOrder,
        refused: &[(ProviderId, ErrorCode)],
        chain: &mut Option<Vec<ProviderPlan>>,
    ) -> Result<bool, ProvisioningError> {
        let plan = if refused.is_empty() {
            current.order.plan.clone()
        } else {
            if chain.is_none() {
                *chain = Some(self.chain(&current.order).await?);
            }
            let plans = chain.as_deref().unwrap_or_default();
            let next = plans
                .iter()
                .find(|p| !refused.iter().any(|(provider, _)| *provider == p.provider));
            match next {
                Some(plan) => plan.clone(),
                None => return Ok(false),
            }
        };
        let now = self.clock.now();
        let order = &mut current.order;
        let number = order.attempts.len() + 1;
        if plan.provider != order.plan.provider {
            tracing::info!(
                order_id = %order.order_id,
                from = %order.plan.provider,
                to = %plan.provider,
                plan_code = %plan.provider_plan_code,
                "failing over to an equivalent plan"
            );
        }
        order.attempts.push(ProviderAttempt {
            provider: plan.provider.clone(),
            plan_code: plan.provider_plan_code.clone(),
            our_reference: format!("{}-{number}", order.order_id),
            state: AttemptState::Started,
            provider_order_ref: None,
            error_code: None,
            started_at: now,
        });
        order.status = OrderStatus::Provisioning;
        order.updated_at = now;
        self.save(current).await?;
        Ok(true)
    }

    /// The order's own plan, then the equivalent plans the tenant's rules allow, best first.
    /// Read only once a first refusal makes failover needed.
    async fn chain(&self, order: &Order) -> Result<Vec<ProviderPlan>, ProvisioningError> {
        let rules = self
            .catalogue
            .routing(&order.tenant_id)
            .await
            .map_err(ProvisioningError::Catalogue)?;
        let candidates = self
            .catalogue
            .candidates(&order.plan)
            .await
            .map_err(ProvisioningError::Catalogue)?;
        let usable: Vec<ProviderPlan> = candidates
            .into_iter()
            .filter(|p| self.provider(&p.provider).is_some())
            .collect();
        let mut plans = vec![order.plan.clone()];
        plans.extend(rules.failover_order(&order.plan, &usable));
        Ok(plans)
    }

    async fn refuse_last(
        &self,
        current: &mut VersionedOrder,
        code: ErrorCode,
    ) -> Result<(), ProvisioningError> {
        if let Some(attempt) = current.order.attempts.last_mut() {
            attempt.state = AttemptState::Refused;
            attempt.error_code = Some(code);
        }
        current.order.updated_at = self.clock.now();
        self.save(current).await
    }

    /// Every plan of the chain was refused in this delivery.
    async fn exhausted(
        &self,
        current: VersionedOrder,
        refused: &[(ProviderId, ErrorCode)],
        delivery: &Delivery,
    ) -> Result<Progress, ProvisioningError> {
        let passing = refused.iter().any(|(_, code)| code.retryable());
        if passing && delivery.receive_count < self.config.max_rounds {
            return Err(ProvisioningError::ProvidersBusy);
        }
        // The most telling refusal: a lasting one (out of stock) over a passing one.
        let code = refused
            .iter()
            .map(|(_, code)| *code)
            .find(|code| !code.retryable())
            .or_else(|| refused.last().map(|(_, code)| *code))
            .unwrap_or(ErrorCode::Internal);
        self.fail(current, code).await
    }

    /// Reads a pending order at its provider: completes it, keeps polling, or reports that the
    /// provider gave up on it.
    async fn check_pending(
        &self,
        current: &mut VersionedOrder,
        delivery: &Delivery,
    ) -> Result<PendingCheck, ProvisioningError> {
        let Some(attempt) = current.order.attempts.last().cloned() else {
            return Ok(PendingCheck::Refused(ErrorCode::Internal));
        };
        let Some(provider) = self.provider(&attempt.provider) else {
            return Ok(PendingCheck::Refused(ErrorCode::Internal));
        };
        let found = match provider.find_order(&attempt.our_reference).await {
            Ok(found) => found,
            Err(ProviderError::Rejected { code, .. }) => return Ok(PendingCheck::Refused(code)),
            Err(source) => {
                return Err(ProvisioningError::Provider {
                    provider: attempt.provider.clone(),
                    source,
                });
            }
        };
        match found {
            Some(OrderOutcome::Provisioned {
                provider_order_ref,
                profiles,
            }) => {
                let progress = self
                    .complete(
                        current.clone(),
                        provider.as_ref(),
                        provider_order_ref,
                        profiles,
                    )
                    .await?;
                Ok(PendingCheck::Settled(progress))
            }
            Some(OrderOutcome::Pending { .. }) => {
                if delivery.message.poll >= self.config.max_polls {
                    tracing::error!(
                        order_id = %current.order.order_id,
                        provider = %attempt.provider,
                        polls = delivery.message.poll,
                        "the provider never delivered the order"
                    );
                    let progress = self.fail(current.clone(), ErrorCode::Internal).await?;
                    return Ok(PendingCheck::Settled(progress));
                }
                self.schedule_poll(&delivery.message).await?;
                Ok(PendingCheck::Settled(Progress::Pending))
            }
            None => Ok(PendingCheck::Refused(ErrorCode::ProviderUnavailable)),
        }
    }

    async fn schedule_poll(&self, message: &ProvisioningMessage) -> Result<(), ProvisioningError> {
        let next = ProvisioningMessage {
            poll: message.poll + 1,
            ..message.clone()
        };
        let body = serde_json::to_string(&next).map_err(|e| StoreError::Malformed {
            what: format!("poll message of {}", next.order_id),
            source: Box::new(e),
        })?;
        self.queue
            .send_delayed(&body, self.config.poll_every)
            .await?;
        Ok(())
    }

    /// Takes what the provider answered to an order call or a look-up.
    async fn settle(
        &self,
        mut current: VersionedOrder,
        provider: &dyn ProviderApi,
        outcome: OrderOutcome,
        delivery: &Delivery,
    ) -> Result<Progress, ProvisioningError> {
        match outcome {
            OrderOutcome::Provisioned {
                provider_order_ref,
                profiles,
            } => {
                self.complete(current, provider, provider_order_ref, profiles)
                    .await
            }
            OrderOutcome::Pending { provider_order_ref } => {
                if let Some(attempt) = current.order.attempts.last_mut() {
                    attempt.state = AttemptState::Pending;
                    attempt.provider_order_ref = Some(provider_order_ref);
                }
                current.order.updated_at = self.clock.now();
                self.save(&mut current).await?;
                tracing::info!(
                    order_id = %current.order.order_id,
                    provider = %provider.id(),
                    "the provider will deliver later"
                );
                self.schedule_poll(&delivery.message).await?;
                Ok(Progress::Pending)
            }
        }
    }

    /// Stores the eSIMs with the provisioned order in one transaction, then publishes.
    async fn complete(
        &self,
        mut current: VersionedOrder,
        provider: &dyn ProviderApi,
        provider_order_ref: String,
        profiles: Vec<ProvisionedProfile>,
    ) -> Result<Progress, ProvisioningError> {
        self.fault(FaultPoint::BeforeCompletionWrite)?;
        let now = self.clock.now();
        let qr_validity = provider.capabilities().qr_validity_days;
        let order = &mut current.order;
        if profiles.len() != order.quantity as usize {
            tracing::warn!(
                order_id = %order.order_id,
                ordered = order.quantity,
                delivered = profiles.len(),
                "the provider delivered another number of profiles than ordered"
            );
        }
        let esims: Vec<Esim> = profiles
            .into_iter()
            .map(|profile| Esim {
                esim_id: EsimId::from_ulid(self.ids.next_ulid()),
                tenant_id: order.tenant_id.clone(),
                order_id: order.order_id.clone(),
                customer_id: order.customer_id.clone(),
                plan_id: order.plan_id.clone(),
                provider: provider.id().clone(),
                iccid: profile.iccid,
                provider_profile_ref: profile.provider_profile_ref,
                activation: profile.activation,
                qr_code_url: profile.qr_code_url,
                direct_install_url: profile.direct_install_url,
                apn: profile.apn,
                lifecycle: Lifecycle::new(ProfileState::Provisioned, now),
                qr_valid_until: qr_validity.map(|days| now + time::Duration::days(i64::from(days))),
                created_at: now,
            })
            .collect();
        if let Some(attempt) = order.attempts.last_mut() {
            attempt.state = AttemptState::Succeeded;
            attempt.provider_order_ref = Some(provider_order_ref);
        }
        order.status = OrderStatus::Provisioned;
        order.esim_ids = esims.iter().map(|e| e.esim_id.clone()).collect();
        order.updated_at = now;
        order.outbox.push(event(
            order,
            now,
            "provisioned",
            EventKind::OrderProvisioned {
                order_id: order.order_id.clone(),
            },
        ));
        self.store
            .complete(&current.order, current.version, &esims)
            .await?;
        current.version += 1;
        tracing::info!(
            order_id = %current.order.order_id,
            provider = %provider.id(),
            esims = esims.len(),
            "order provisioned"
        );
        self.flush(current).await?;
        Ok(Progress::Provisioned)
    }

    /// Fails the order and refunds its charge, in one transaction, then publishes.
    async fn fail(
        &self,
        mut current: VersionedOrder,
        code: ErrorCode,
    ) -> Result<Progress, ProvisioningError> {
        let now = self.clock.now();
        let order = &mut current.order;
        let support_reference = order.order_id.to_string();
        order.status = OrderStatus::Failed;
        order.failure = Some(OrderFailure {
            code,
            message: failure_message(code, &support_reference),
            support_reference,
        });
        order.updated_at = now;
        let refund = LedgerEntry {
            order_id: order.order_id.clone(),
            tenant_id: order.tenant_id.clone(),
            kind: LedgerKind::Refund,
            amount: Money::new(-order.total.amount_minor, order.total.currency),
            at: now,
        };
        let failed = event(
            order,
            now,
            "failed",
            EventKind::OrderFailed {
                order_id: order.order_id.clone(),
                reason_code: code.as_str().to_owned(),
            },
        );
        let refunded = event(
            order,
            now,
            "refunded",
            EventKind::OrderRefunded {
                order_id: order.order_id.clone(),
                amount: order.total,
            },
        );
        order.outbox.extend([failed, refunded]);
        self.store
            .fail(&current.order, current.version, &refund)
            .await?;
        current.version += 1;
        tracing::warn!(
            order_id = %current.order.order_id,
            code = code.as_str(),
            "order failed and refunded"
        );
        self.flush(current).await?;
        Ok(Progress::Failed)
    }

    async fn save(&self, current: &mut VersionedOrder) -> Result<(), ProvisioningError> {
        self.store.save(&current.order, current.version).await?;
        current.version += 1;
        Ok(())
    }

    /// Publishes the outbox, then clears it. A lost race on the clearing only means the
    /// events are published again later.
    async fn flush(&self, mut current: VersionedOrder) -> Result<(), ProvisioningError> {
        if current.order.outbox.is_empty() {
            return Ok(());
        }
        self.events.publish(&current.order.outbox).await?;
        current.order.outbox.clear();
        match self.save(&mut current).await {
            Ok(()) | Err(ProvisioningError::Store(StoreError::Conflict { .. })) => Ok(()),
            Err(other) => Err(other),
        }
    }
}

fn event(order: &Order, at: OffsetDateTime, what: &str, kind: EventKind) -> DomainEvent {
    DomainEvent {
        event_id: format!("{}:{what}", order.order_id),
        tenant_id: order.tenant_id.clone(),
        occurred_at: at,
        kind,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicU32, Ordering};

    use async_trait::async_trait;

    use super::*;
    use crate::domain::Money;
    use crate::domain::esim::ActivationCode;
    use crate::domain::ids::{CustomerId, Iccid, PlanId, TenantId};
    use crate::domain::money::Currency;
    use crate::domain::order::CreateOrderRequest;
    use crate::domain::plan::{CountryCode, Coverage, DataAllowance};
    use crate::domain::routing::RoutingRules;
    use crate::orders::OrderService;
    use crate::ports::provider::{
        ProfileDetails, ProviderCapabilities, ProvisioningMode, TopUpOutcome, TransferPolicy,
        UsageReport, WebhookError, WebhookEvent, WebhookRequest,
    };
    use crate::ports::{PricedPlan, VersionedOrder};
    use crate::testing::{
        FixedClock, InMemoryOrderStore, InMemoryPlanCatalogue, InMemoryPublisher, InMemoryQueue,
        SequentialIds,
    };

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Answer {
        Provisioned,
        Pending,
        NotFound,
        OutOfStock,
        Maintenance,
        Lost,
    }

    /// A provider answering from a script, counting what it was asked.
    #[derive(Debug)]
    struct ScriptedProvider {
        id: ProviderId,
        place: Mutex<VecDeque<Answer>>,
        find: Mutex<VecDeque<Answer>>,
        placed: AtomicU32,
        looked_up: AtomicU32,
    }

    impl ScriptedProvider {
        fn new(id: &str, place: &[Answer], find: &[Answer]) -> Arc<Self> {
            Arc::new(Self {
                id: ProviderId::parse(id).expect("id"),
                place: Mutex::new(place.iter().copied().collect()),
                find: Mutex::new(find.iter().copied().collect()),
                placed: AtomicU32::new(0),
                looked_up: AtomicU32::new(0),
            })
        }

        fn outcome(&self, answer: Answer) -> Result<Option<OrderOutcome>, ProviderError> {
            let rejected = |code, provider_code: &str| ProviderError::Rejected {
                code,
                provider_code: provider_code.to_owned(),
                provider_message: "scripted".to_owned(),
            };
            match answer {
                Answer::Provisioned => Ok(Some(OrderOutcome::Provisioned {
                    provider_order_ref: format!("{}-order", self.id),
                    profiles: vec![ProvisionedProfile {
                        iccid: Iccid::parse("8988247000100000000").expect("iccid"),
                        provider_profile_ref: None,
                        activation: ActivationCode {
                            smdp_address: "smdp.example".to_owned(),
                            matching_id: "MATCH-1".to_owned(),
                        },
                        qr_code_url: None,
                        direct_install_url: None,
                        apn: None,
                    }],
                })),
                Answer::Pending => Ok(Some(OrderOutcome::Pending {
                    provider_order_ref: format!("{}-order", self.id),
                })),
                Answer::NotFound => Ok(None),
                Answer::OutOfStock => Err(rejected(ErrorCode::OutOfStock, "33")),
                Answer::Maintenance => Err(rejected(ErrorCode::OperatorMaintenance, "13")),
                Answer::Lost => Err(ProviderError::OutcomeUnknown {
                    our_reference: "ref".to_owned(),
                    source: "connection dropped".into(),
                }),
            }
        }
    }

    #[async_trait]
    impl ProviderApi for ScriptedProvider {
        fn id(&self) -> &ProviderId {
            &self.id
        }

        fn capabilities(&self) -> ProviderCapabilities {
            ProviderCapabilities {
                provisioning: ProvisioningMode::Synchronous,
                synchronous_available: true,
                top_up: false,
                cancel_refunds_unused: false,
                transfer: TransferPolicy::NotSupported,
                qr_validity_days: Some(30),
                usage_refresh_seconds: 60,
            }
        }

        async fn list_plans(
            &self,
            _country: Option<&CountryCode>,
        ) -> Result<Vec<ProviderPlan>, ProviderError> {
            Ok(Vec::new())
        }

        async fn place_order(
            &self,
            _request: &ProviderOrderRequest,
        ) -> Result<OrderOutcome, ProviderError> {
            self.placed.fetch_add(1, Ordering::SeqCst);
            let next = self.place.lock().expect("lock").pop_front();
            match self.outcome(next.unwrap_or(Answer::Provisioned))? {
                Some(outcome) => Ok(outcome),
                None => Err(ProviderError::Unsupported("scripted none")),
            }
        }

        async fn find_order(
            &self,
            _our_reference: &str,
        ) -> Result<Option<OrderOutcome>, ProviderError> {
            self.looked_up.fetch_add(1, Ordering::SeqCst);
            let next = self.find.lock().expect("lock").pop_front();
            self.outcome(next.unwrap_or(Answer::NotFound))
        }

        async fn profile(&self, _iccid: &Iccid) -> Result<ProfileDetails, ProviderError> {
            Err(ProviderError::Unsupported("profile"))
        }

        async fn usage(&self, _iccid: &Iccid) -> Result<UsageReport, ProviderError> {
            Err(ProviderError::Unsupported("usage"))
        }

        async fn top_up(
            &self,
            _iccid: &Iccid,
            _plan_code: &str,
            _our_reference: &str,
        ) -> Result<TopUpOutcome, ProviderError> {
            Err(ProviderError::Unsupported("top-up"))
        }

        async fn cancel(&self, _iccid: &Iccid) -> Result<(), ProviderError> {
            Err(ProviderError::Unsupported("cancel"))
        }

        fn verify_webhook(
            &self,
            _request: WebhookRequest<'_>,
        ) -> Result<WebhookEvent, WebhookError> {
            Err(WebhookError::Unauthenticated("scripted"))
        }
    }

    fn plan(provider: &str, cents: i64) -> ProviderPlan {
        ProviderPlan {
            plan_id: PlanId::parse(format!("{provider}:jp-1gb-7d")).expect("id"),
            provider: ProviderId::parse(provider).expect("id"),
            provider_plan_code: "jp-1gb-7d".to_owned(),
            name: "Japan 1 GB".to_owned(),
            coverage: Coverage {
                countries: vec![CountryCode::parse("JP").expect("cc")],
                region: None,
            },
            data: DataAllowance::Limited { mb: 1024 },
            validity_days: 7,
            wholesale_price: Money::new(cents, Currency::USD),
            supports_top_up: false,
            network_speed: None,
        }
    }

    struct Fixture {
        store: Arc<InMemoryOrderStore>,
        queue: Arc<InMemoryQueue>,
        events: Arc<InMemoryPublisher>,
        provisioner: Provisioner,
        tenant: TenantId,
        order_id: OrderId,
    }

    async fn fixture(providers: Vec<Arc<ScriptedProvider>>) -> Fixture {
        let store = Arc::new(InMemoryOrderStore::default());
        let queue = Arc::new(InMemoryQueue::default());
        let events = Arc::new(InMemoryPublisher::default());
        let clock = Arc::new(FixedClock::default());
        let ids = Arc::new(SequentialIds::default());
        let catalogue = Arc::new(InMemoryPlanCatalogue::default());
        *catalogue.plans.lock().expect("lock") = vec![
            PricedPlan {
                plan: plan("airalo", 450),
                retail: Money::new(900, Currency::USD),
            },
            PricedPlan {
                plan: plan("esim-access", 470),
                retail: Money::new(990, Currency::USD),
            },
        ];
        let tenant = TenantId::parse("ten_a").expect("id");
        let orders = OrderService::new(
            store.clone(),
            catalogue.clone(),
            queue.clone(),
            clock.clone(),
            ids.clone(),
        );
        let request = CreateOrderRequest {
            customer_id: CustomerId::parse("cus_1").expect("id"),
            plan_id: PlanId::parse("airalo:jp-1gb-7d").expect("id"),
            quantity: 1,
            payment_method_ref: "pm_1".to_owned(),
        };
        let answer = orders
            .create(&tenant, Some("key-1"), &request)
            .await
            .expect("accepted");
        let providers: Vec<Arc<dyn ProviderApi>> = providers
            .into_iter()
            .map(|p| p as Arc<dyn ProviderApi>)
            .collect();
        let ports = ProvisioningPorts {
            store: store.clone(),
            catalogue,
            providers,
            queue: queue.clone(),
            events: events.clone(),
            clock,
            ids,
        };
        Fixture {
            store,
            queue,
            events,
            provisioner: Provisioner::new(ports, ProvisioningConfig::default()),
            tenant,
            order_id: answer.order_id,
        }
    }

    impl Fixture {
        fn delivery(&self, holder: &str, receive_count: u32) -> Delivery {
            Delivery {
                message: ProvisioningMessage::new(self.tenant.clone(), self.order_id.clone()),
                receive_count,
                holder: holder.to_owned(),
            }
        }

        async fn order(&self) -> VersionedOrder {
            self.store
                .get(&self.tenant, &self.order_id)
                .await
                .expect("read")
                .expect("exists")
        }

        async fn ledger_sum(&self) -> i64 {
            let ledger = self.store.ledger(&self.tenant).await.expect("ledger");
            ledger.iter().map(|e| e.amount.amount_minor).sum()
        }

        fn event_types(&self) -> Vec<&'static str> {
            let published = self.events.published.lock().expect("lock");
            published.iter().map(|e| e.kind.detail_type()).collect()
        }
    }

    #[tokio::test]
    async fn a_synchronous_order_gets_its_esim_and_events_after_the_commit() {
        let airalo = ScriptedProvider::new("airalo", &[Answer::Provisioned], &[]);
        let f = fixture(vec![airalo.clone()]).await;

        let progress = f.provisioner.process(&f.delivery("d1", 1)).await;

        assert_eq!(progress.expect("provisioned"), Progress::Provisioned);
        let stored = f.order().await;
        assert_eq!(stored.order.status, OrderStatus::Provisioned);
        assert!(stored.order.outbox.is_empty());
        let esim = f
            .store
            .esim(&f.tenant, &stored.order.esim_ids[0])
            .await
            .expect("read")
            .expect("esim");
        assert_eq!(esim.lifecycle.state, ProfileState::Provisioned);
        assert!(esim.qr_valid_until.is_some());
        assert_eq!(f.event_types(), ["OrderCharged", "OrderProvisioned"]);
        assert_eq!(airalo.placed.load(Ordering::SeqCst), 1);
        assert_eq!(f.ledger_sum().await, 900);
    }

    #[tokio::test]
    async fn out_of_stock_fails_over_to_an_equivalent_plan_without_changing_the_charge() {
        let airalo = ScriptedProvider::new("airalo", &[Answer::OutOfStock], &[]);
        let access = ScriptedProvider::new("esim-access", &[Answer::Provisioned], &[]);
        let f = fixture(vec![airalo.clone(), access.clone()]).await;

        let progress = f.provisioner.process(&f.delivery("d1", 1)).await;

        assert_eq!(progress.expect("provisioned"), Progress::Provisioned);
        let stored = f.order().await;
        let states: Vec<_> = stored.order.attempts.iter().map(|a| a.state).collect();
        assert_eq!(states, [AttemptState::Refused, AttemptState::Succeeded]);
        assert_eq!(stored.order.attempts[1].provider.as_str(), "esim-access");
        assert_eq!(stored.order.total.amount_minor, 900);
        assert_eq!(access.placed.load(Ordering::SeqCst), 1);
        assert_eq!(f.ledger_sum().await, 900);
    }

    #[tokio::test]
    async fn out_of_stock_everywhere_refunds_once_with_a_sentence_and_no_provider_code() {
        let airalo = ScriptedProvider::new("airalo", &[Answer::OutOfStock], &[]);
        let access = ScriptedProvider::new("esim-access", &[Answer::OutOfStock], &[]);
        let f = fixture(vec![airalo, access]).await;

        let first = f.provisioner.process(&f.delivery("d1", 1)).await;
        let again = f.provisioner.process(&f.delivery("d2", 2)).await;

        assert_eq!(first.expect("failed"), Progress::Failed);
        assert_eq!(again.expect("final"), Progress::AlreadyFinal);
        let stored = f.order().await;
        let failure = stored.order.failure.expect("failure");
        assert_eq!(failure.code, ErrorCode::OutOfStock);
        assert!(failure.message.contains("choose another plan"));
        assert!(failure.message.contains(&failure.support_reference));
        assert!(!failure.message.contains("33"));
        assert_eq!(f.ledger_sum().await, 0);
        let refunds = f
            .event_types()
            .iter()
            .filter(|t| **t == "OrderRefunded")
            .count();
        assert_eq!(refunds, 1);
    }

    #[tokio::test]
    async fn a_lost_answer_is_looked_up_before_anything_is_ordered_again() {
        let airalo = ScriptedProvider::new(
            "airalo",
            &[Answer::Lost],
            &[Answer::NotFound, Answer::Provisioned],
        );
        let f = fixture(vec![airalo.clone()]).await;

        let first = f.provisioner.process(&f.delivery("d1", 1)).await;
        let second = f.provisioner.process(&f.delivery("d2", 2)).await;

        assert!(matches!(first, Err(ProvisioningError::Provider { .. })));
        assert_eq!(second.expect("provisioned"), Progress::Provisioned);
        assert_eq!(airalo.placed.load(Ordering::SeqCst), 1);
        assert_eq!(airalo.looked_up.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_crash_after_the_provider_call_is_reconciled_without_a_second_order() {
        let airalo =
            ScriptedProvider::new("airalo", &[Answer::Provisioned], &[Answer::Provisioned]);
        let f = fixture(vec![airalo.clone()]).await;
        let crashing = f.provisioner.clone().with_faults(Arc::new(|point| {
            if point == FaultPoint::AfterProviderCall {
                Err(InjectedFault(point))
            } else {
                Ok(())
            }
        }));

        let crashed = crashing.process(&f.delivery("d1", 1)).await;
        let redelivered = f.provisioner.process(&f.delivery("d2", 2)).await;

        assert!(matches!(crashed, Err(ProvisioningError::Injected(_))));
        // The crashed delivery still holds its lease, so the redelivery waits for it.
        assert!(matches!(redelivered, Err(ProvisioningError::LeaseHeld(_))));
        let after_lease = f.provisioner.process(&f.delivery("d1", 3)).await;
        assert_eq!(after_lease.expect("provisioned"), Progress::Provisioned);
        assert_eq!(airalo.placed.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_pending_order_is_polled_and_completed_by_a_later_message() {
        let access = ScriptedProvider::new("airalo", &[Answer::Pending], &[Answer::Provisioned]);
        let f = fixture(vec![access.clone()]).await;

        let first = f.provisioner.process(&f.delivery("d1", 1)).await;
        let polls = f.queue.sent.lock().expect("lock").clone();
        let mut poll = f.delivery("d2", 1);
        poll.message.poll = 1;
        let second = f.provisioner.process(&poll).await;

        assert_eq!(first.expect("pending"), Progress::Pending);
        assert!(polls.last().expect("poll queued").contains(r#""poll":1"#));
        assert_eq!(second.expect("provisioned"), Progress::Provisioned);
        assert_eq!(access.placed.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_pending_order_that_never_completes_is_refunded_after_its_polls() {
        let airalo = ScriptedProvider::new("airalo", &[Answer::Pending], &[Answer::Pending]);
        let f = fixture(vec![airalo.clone()]).await;
        f.provisioner
            .process(&f.delivery("d1", 1))
            .await
            .expect("pending");
        let mut last_poll = f.delivery("d2", 1);
        last_poll.message.poll = ProvisioningConfig::default().max_polls;

        let progress = f.provisioner.process(&last_poll).await;

        assert_eq!(progress.expect("failed"), Progress::Failed);
        let failure = f.order().await.order.failure.expect("failure");
        assert!(failure.message.contains("Contact support quoting"));
        assert_eq!(f.ledger_sum().await, 0);
        assert_eq!(airalo.placed.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn failover_is_off_when_the_tenant_turns_it_off() {
        let airalo = ScriptedProvider::new("airalo", &[Answer::OutOfStock], &[]);
        let access = ScriptedProvider::new("esim-access", &[Answer::Provisioned], &[]);
        let f = fixture(vec![airalo, access.clone()]).await;
        let rules = RoutingRules {
            failover: false,
            ..RoutingRules::default()
        };
        let catalogue = Arc::new(InMemoryPlanCatalogue::default());
        *catalogue.rules.lock().expect("lock") = rules;
        *catalogue.plans.lock().expect("lock") = vec![PricedPlan {
            plan: plan("esim-access", 470),
            retail: Money::new(990, Currency::USD),
        }];
        let provisioner = Provisioner {
            catalogue,
            ..f.provisioner.clone()
        };

        let progress = provisioner.process(&f.delivery("d1", 1)).await;

        assert_eq!(progress.expect("failed"), Progress::Failed);
        assert_eq!(access.placed.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn maintenance_is_retried_by_redelivery_then_refunded() {
        let airalo = ScriptedProvider::new(
            "airalo",
            &[
                Answer::Maintenance,
                Answer::Maintenance,
                Answer::Maintenance,
            ],
            &[],
        );
        let f = fixture(vec![airalo.clone()]).await;

        let first = f.provisioner.process(&f.delivery("d1", 1)).await;
        let second = f.provisioner.process(&f.delivery("d2", 2)).await;
        let last = f.provisioner.process(&f.delivery("d3", 3)).await;

        assert!(matches!(first, Err(ProvisioningError::ProvidersBusy)));
        assert!(matches!(second, Err(ProvisioningError::ProvidersBusy)));
        assert_eq!(last.expect("failed"), Progress::Failed);
        assert_eq!(airalo.placed.load(Ordering::SeqCst), 3);
        assert_eq!(f.ledger_sum().await, 0);
        let failure = f.order().await.order.failure.expect("failure");
        assert!(failure.message.contains("try again in a few minutes"));
    }
}
