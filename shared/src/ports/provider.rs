//! The provider port: what the backend needs from a wholesale eSIM provider, whatever its
//! API looks like. One adapter per provider API lives in [`crate::providers`].
//!
//! Invariants every adapter keeps:
//! - `place_order` is not retried by the adapter once the request may have reached the
//!   provider; a lost answer is reported as [`ProviderError::OutcomeUnknown`], and the caller
//!   asks [`ProviderApi::find_order`] by its own reference before it ever orders again.
//! - Reads (`list_plans`, `find_order`, `profile`, `usage`) are safe to repeat and are retried
//!   with backoff on transport errors, 5xx and 429.
//! - Errors carry the domain's [`ErrorCode`], so nothing above the adapter sees a provider's
//!   own error numbers.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::domain::ErrorCode;
use crate::domain::esim::ActivationCode;
use crate::domain::ids::{Iccid, ProviderId};
use crate::domain::lifecycle::ProfileState;
use crate::domain::plan::{CountryCode, ProviderPlan};

/// How a provider delivers profiles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProvisioningMode {
    /// The order call answers with the profiles.
    Synchronous,
    /// The order call answers with a reference; profiles come by webhook or by polling.
    Asynchronous,
}

/// What a user can do when they change phones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransferPolicy {
    /// The profile cannot move; a new device needs a new eSIM.
    NotSupported,
    /// The same profile can be downloaded again after it was deleted from the first device,
    /// a limited number of times.
    RedownloadAfterDelete {
        /// How many downloads in all, the first included.
        max_downloads: u32,
    },
}

/// What a provider can do, so the domain can answer honestly instead of trying and failing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderCapabilities {
    /// How orders complete.
    pub provisioning: ProvisioningMode,
    /// Whether the order call can also answer synchronously when asked.
    pub synchronous_available: bool,
    /// Whether top-ups are sold.
    pub top_up: bool,
    /// Whether an unused profile can be cancelled for a refund.
    pub cancel_refunds_unused: bool,
    /// Device change policy.
    pub transfer: TransferPolicy,
    /// Days a QR code stays usable before installation, where the provider says.
    pub qr_validity_days: Option<u32>,
    /// How often the provider refreshes its own usage figures; polling faster is waste.
    pub usage_refresh_seconds: u32,
}

/// An order as we hand it to a provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderOrderRequest {
    /// Our reference, unique per order attempt at this provider, used to find the order again
    /// when an answer was lost.
    pub our_reference: String,
    /// The provider's plan code.
    pub plan_code: String,
    /// How many profiles.
    pub quantity: u32,
    /// Ask for a synchronous answer where the provider offers both.
    pub prefer_synchronous: bool,
}

/// A profile as the provider delivered it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProvisionedProfile {
    /// The ICCID.
    pub iccid: Iccid,
    /// The provider's own reference of the profile where it has one (eSIM Access esimTranNo).
    pub provider_profile_ref: Option<String>,
    /// The SGP.22 activation code.
    pub activation: ActivationCode,
    /// A hosted QR image, where the provider gives one.
    pub qr_code_url: Option<String>,
    /// A direct install link for iOS, where the provider gives one.
    pub direct_install_url: Option<String>,
    /// The APN to configure, where the provider gives one.
    pub apn: Option<String>,
}

/// How an order call ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrderOutcome {
    /// The profiles exist.
    Provisioned {
        /// The provider's order reference.
        provider_order_ref: String,
        /// The profiles.
        profiles: Vec<ProvisionedProfile>,
    },
    /// The provider accepted the order and will deliver later.
    Pending {
        /// The provider's order or request reference.
        provider_order_ref: String,
    },
}

/// A profile's state as the provider reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileDetails {
    /// The ICCID.
    pub iccid: Iccid,
    /// The lifecycle state the provider's vocabulary maps to, when it maps to one.
    pub state: Option<ProfileState>,
    /// The provider's own words, for support.
    pub provider_status: String,
}

/// Data usage as the provider reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageReport {
    /// The ICCID.
    pub iccid: Iccid,
    /// Megabytes left; `None` for unlimited plans.
    pub remaining_mb: Option<u64>,
    /// Megabytes in the plan; `None` for unlimited plans.
    pub total_mb: Option<u64>,
    /// When the plan ends, where known.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
    /// When the provider last refreshed the figure, where it says.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub measured_at: Option<OffsetDateTime>,
    /// The lifecycle state the provider's usage status maps to, where it does.
    pub state: Option<ProfileState>,
}

/// How a top-up call ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopUpOutcome {
    /// The provider's reference of the top-up.
    pub provider_topup_ref: String,
}

/// A webhook as it arrived, before any parsing.
#[derive(Debug, Clone, Copy)]
pub struct WebhookRequest<'a> {
    /// The headers, names lower-cased.
    pub headers: &'a http::HeaderMap,
    /// The secret path segment the webhook URL carried, if any.
    pub path_secret: Option<&'a str>,
    /// The raw body, exactly as received: signatures are over these bytes.
    pub body: &'a [u8],
    /// The sender's address, as API Gateway saw it.
    pub source_ip: Option<std::net::IpAddr>,
}

/// Why a webhook was refused.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// The signature or secret is missing or wrong, or the sender is not allowed.
    #[error("webhook authentication failed: {0}")]
    Unauthenticated(&'static str),
    /// The body is authentic but not understood.
    #[error("webhook body could not be parsed")]
    Malformed(#[source] Box<dyn std::error::Error + Send + Sync + 'static>),
}

/// One fact a webhook told us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookFact {
    /// An asynchronous order completed.
    OrderCompleted {
        /// The provider's order or request reference.
        provider_order_ref: String,
        /// Our reference, where the provider echoes it.
        our_reference: Option<String>,
        /// The profiles.
        profiles: Vec<ProvisionedProfile>,
    },
    /// An asynchronous order failed.
    OrderFailed {
        /// The provider's order or request reference.
        provider_order_ref: String,
        /// The domain code the provider's reason maps to.
        code: ErrorCode,
        /// The provider's words, for support.
        provider_reason: String,
    },
    /// A profile reached a lifecycle state.
    ProfileState {
        /// The ICCID.
        iccid: Iccid,
        /// The state.
        state: ProfileState,
        /// When, by the provider's clock.
        at: OffsetDateTime,
    },
    /// A usage figure.
    Usage(UsageReport),
}

/// An authenticated webhook, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookEvent {
    /// The provider's event id, or a hash of the body where it has none.
    pub dedupe_key: String,
    /// What it told us.
    pub facts: Vec<WebhookFact>,
}

/// Why a provider call failed.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// The provider answered and refused; `code` says what the domain makes of it.
    #[error("provider refused the request ({provider_code}): {provider_message}")]
    Rejected {
        /// The domain code.
        code: ErrorCode,
        /// The provider's own code, for logs and support.
        provider_code: String,
        /// The provider's own message, for logs; never shown to end users.
        provider_message: String,
    },
    /// The provider throttled us.
    #[error("provider rate limit hit")]
    RateLimited {
        /// How long it asked us to wait.
        retry_after: Option<std::time::Duration>,
    },
    /// The provider could not be reached, timed out before the request was sent, or answered
    /// with a server error to a request that is safe to repeat.
    #[error("provider unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync + 'static>),
    /// An order may have been committed, but the answer was lost.
    #[error("order outcome unknown; look it up by our reference {our_reference}")]
    OutcomeUnknown {
        /// The reference to look the order up by.
        our_reference: String,
        /// What happened to the answer.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
    /// The provider answered with something we cannot read.
    #[error("provider answered with an unexpected body")]
    Protocol(#[source] Box<dyn std::error::Error + Send + Sync + 'static>),
    /// The operation is not offered by this provider.
    #[error("the provider does not support {0}")]
    Unsupported(&'static str),
}

impl ProviderError {
    /// The domain code of this failure.
    pub fn code(&self) -> ErrorCode {
        match self {
            ProviderError::Rejected { code, .. } => *code,
            ProviderError::RateLimited { .. } => ErrorCode::Throttled,
            ProviderError::Unavailable(_) | ProviderError::Protocol(_) => {
                ErrorCode::ProviderUnavailable
            }
            ProviderError::OutcomeUnknown { .. } => ErrorCode::OutcomeUnknown,
            ProviderError::Unsupported(_) => ErrorCode::InvalidRequest,
        }
    }

    /// Whether the same call may succeed later.
    pub fn retryable(&self) -> bool {
        self.code().retryable()
    }
}

/// A wholesale eSIM provider.
#[async_trait]
pub trait ProviderApi: Send + Sync + std::fmt::Debug {
    /// Which provider this is.
    fn id(&self) -> &ProviderId;

    /// What it can do.
    fn capabilities(&self) -> ProviderCapabilities;

    /// Plans on sale, for one country or all. Safe to repeat.
    async fn list_plans(
        &self,
        country: Option<&CountryCode>,
    ) -> Result<Vec<ProviderPlan>, ProviderError>;

    /// Places an order. Not repeated by the adapter once it may have reached the provider.
    async fn place_order(
        &self,
        request: &ProviderOrderRequest,
    ) -> Result<OrderOutcome, ProviderError>;

    /// Finds an order by our reference: `None` when the provider never committed it.
    async fn find_order(&self, our_reference: &str) -> Result<Option<OrderOutcome>, ProviderError>;

    /// A profile's state.
    async fn profile(&self, iccid: &Iccid) -> Result<ProfileDetails, ProviderError>;

    /// A profile's data usage.
    async fn usage(&self, iccid: &Iccid) -> Result<UsageReport, ProviderError>;

    /// Adds a plan to an existing profile.
    async fn top_up(
        &self,
        iccid: &Iccid,
        plan_code: &str,
        our_reference: &str,
    ) -> Result<TopUpOutcome, ProviderError>;

    /// Cancels an unused profile; `Unsupported` where the provider has no such call.
    async fn cancel(&self, iccid: &Iccid) -> Result<(), ProviderError>;

    /// Authenticates a webhook over its raw body and parses it.
    fn verify_webhook(&self, request: WebhookRequest<'_>) -> Result<WebhookEvent, WebhookError>;
}
