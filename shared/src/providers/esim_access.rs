//! Adapter for the eSIM Access API v1 (`/api/v1/open/...`): signed JSON POSTs, asynchronous
//! orders keyed by our `transactionId`, profiles by `ORDER_STATUS` webhook or by polling
//! `esim/query`, and webhooks authenticated by a secret path segment and a sender allowlist.
//!
//! Wire facts the mapping relies on:
//! - every call carries `RT-AccessCode`, `RT-Timestamp` (milliseconds), `RT-RequestID` and
//!   `RT-Signature` = lowercase hex HMAC-SHA256, keyed with the secret key, over
//!   timestamp + request id + access code + body; all four are fresh on every attempt;
//! - answers are HTTP 200 with `{"success", "errorCode", "errorMsg", "obj"}`, also when the
//!   call was refused (`success: false`); only the provider's edge answers 429 and 5xx;
//! - prices are integers in major units times 10,000, volumes are bytes, validity is
//!   `duration` in `durationUnit`, coverage is a comma-separated list of ISO country codes.

use std::collections::HashMap;
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use hmac::{Hmac, Mac};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;

use super::http::{HttpError, HttpSettings, ProviderHttp, RawResponse, Safety};
use crate::domain::ErrorCode;
use crate::domain::esim::ActivationCode;
use crate::domain::ids::{Iccid, PlanId, ProviderId};
use crate::domain::lifecycle::ProfileState;
use crate::domain::money::{Currency, Money};
use crate::domain::plan::{CountryCode, Coverage, DataAllowance, ProviderPlan};
use crate::ports::provider::{
    OrderOutcome, ProfileDetails, ProviderApi, ProviderCapabilities, ProviderError,
    ProviderOrderRequest, ProvisionedProfile, ProvisioningMode, TopUpOutcome, TransferPolicy,
    UsageReport, WebhookError, WebhookEvent, WebhookFact, WebhookRequest,
};
use crate::ports::{Clock, IdGenerator, SystemClock, UlidGenerator};

/// Bytes in a megabyte, as the provider counts (1 GB = 1024 MB).
const BYTES_PER_MB: u64 = 1024 * 1024;
/// Prices are major units times this.
const PRICE_SCALE_EXPONENT: u32 = 4;
/// Profiles asked for per `esim/query` page.
const QUERY_PAGE_SIZE: u64 = 50;
/// Pages read at most by one lookup: 2,000 profiles. A date-range lookup on an account that
/// issued more profiles within the lookup window misses the oldest ones.
const MAX_QUERY_PAGES: u64 = 40;
/// How far past our clock a date-range lookup reaches, so that a provider clock running ahead
/// of ours cannot hide a profile allocated a moment ago.
const CLOCK_SKEW_ALLOWANCE: time::Duration = time::Duration::hours(1);
/// Orders this process placed and still remembers by our reference (see
/// [`EsimAccessProvider::find_order`]); the memory is cleared when it fills up.
const REMEMBERED_ORDERS: usize = 1024;
/// The provider's code for "profiles of this order are still being allocated".
const NOT_YET_ALLOCATED: &str = "200010";
/// The provider's code for "not allowed in the profile's current state".
const NOT_ALLOWED_IN_STATE: &str = "200002";

/// How to reach one eSIM Access partner account and how to authenticate its webhooks.
#[derive(Clone)]
pub struct EsimAccessConfig {
    /// Base URL without the API path, for example `https://api.esimaccess.com`.
    pub base_url: String,
    /// The partner's access code, sent as `RT-AccessCode`.
    pub access_code: String,
    /// The partner's secret key, which signs every request.
    pub secret_key: String,
    /// Secrets accepted as the last path segment of the webhook URL. A list, so that a new
    /// secret can be added to the provider's webhook URL before the old one is removed.
    pub webhook_path_secrets: Vec<String>,
    /// When set, webhooks are accepted only from these sender addresses.
    pub webhook_source_ips: Option<Vec<IpAddr>>,
    /// How far back [`EsimAccessProvider::find_order`] lists profiles by date when this
    /// process does not know the order number.
    pub order_lookup_window: Duration,
    /// Timeouts, retries and rate limit.
    pub http: HttpSettings,
}

impl EsimAccessConfig {
    /// A configuration with no webhook secret yet, no sender allowlist, a two-day order lookup
    /// window and the provider's documented rate of about 8 requests a second.
    pub fn new(
        base_url: impl Into<String>,
        access_code: impl Into<String>,
        secret_key: impl Into<String>,
    ) -> Self {
        Self {
            base_url: base_url.into(),
            access_code: access_code.into(),
            secret_key: secret_key.into(),
            webhook_path_secrets: Vec::new(),
            webhook_source_ips: None,
            order_lookup_window: Duration::from_secs(2 * 86_400),
            http: HttpSettings {
                requests_per_second: 8.0,
                burst: 8,
                ..HttpSettings::default()
            },
        }
    }
}

impl std::fmt::Debug for EsimAccessConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EsimAccessConfig")
            .field("base_url", &self.base_url)
            .field("access_code", &"<redacted>")
            .field("secret_key", &"<redacted>")
            .field(
                "webhook_path_secrets",
                &format_args!("<{} redacted>", self.webhook_path_secrets.len()),
            )
            .field("webhook_source_ips", &self.webhook_source_ips)
            .field("order_lookup_window", &self.order_lookup_window)
            .field("http", &self.http)
            .finish()
    }
}

/// Why the adapter could not be built from its configuration.
#[derive(Debug, thiserror::Error)]
pub enum EsimAccessSetupError {
    /// The base URL does not parse.
    #[error("eSIM Access base URL {url:?} is not a valid URL")]
    InvalidBaseUrl {
        /// The configured text.
        url: String,
        /// Why it does not parse.
        #[source]
        source: <reqwest::Url as FromStr>::Err,
    },
    /// The access code or the secret key is empty.
    #[error("eSIM Access access code and secret key must both be set")]
    MissingCredentials,
    /// A webhook path secret is empty, which would accept webhooks without any secret.
    #[error("eSIM Access webhook path secrets must not be empty")]
    EmptyWebhookSecret,
    /// The HTTP client could not be built.
    #[error("failed to build the eSIM Access HTTP client")]
    Http(#[source] reqwest::Error),
}

/// What a call may do at the provider, which decides how a lost answer is reported.
#[derive(Debug, Clone, Copy)]
enum Intent<'a> {
    /// Safe to repeat: retried by the plumbing, a lost answer is `Unavailable`.
    Read,
    /// Moves money: never repeated once it may have arrived, a lost answer is `OutcomeUnknown`.
    Commit { our_reference: &'a str },
}

impl Intent<'_> {
    fn safety(self) -> Safety {
        match self {
            Intent::Read => Safety::Idempotent,
            Intent::Commit { .. } => Safety::Unsafe,
        }
    }
}

/// Why an answer or a webhook body could not be read.
#[derive(Debug, thiserror::Error)]
enum BodyError {
    #[error("the body is not the expected JSON")]
    Json(#[source] serde_json::Error),
    #[error("HTTP {status} came without the eSIM Access answer envelope")]
    NoEnvelope {
        status: u16,
        #[source]
        source: serde_json::Error,
    },
    #[error("field {0} is missing or empty")]
    Missing(&'static str),
    #[error("field {field} has an unusable value {value:?}")]
    Invalid { field: &'static str, value: String },
}

/// The eSIM Access API v1 behind the provider port.
pub struct EsimAccessProvider {
    id: ProviderId,
    api_base: String,
    access_code: String,
    secret_key: String,
    webhook_secret_digests: Vec<[u8; 32]>,
    webhook_source_ips: Option<Vec<IpAddr>>,
    order_lookup_window: time::Duration,
    http: ProviderHttp,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdGenerator>,
    placed: Mutex<HashMap<String, String>>,
}

impl std::fmt::Debug for EsimAccessProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EsimAccessProvider")
            .field("id", &self.id)
            .field("api_base", &self.api_base)
            .field("credentials", &"<redacted>")
            .field("webhook_secrets", &self.webhook_secret_digests.len())
            .field("webhook_source_ips", &self.webhook_source_ips)
            .finish_non_exhaustive()
    }
}

impl EsimAccessProvider {
    /// Builds the adapter with the wall clock and random request ids.
    pub fn new(id: ProviderId, config: EsimAccessConfig) -> Result<Self, EsimAccessSetupError> {
        let base = config.base_url.trim_end_matches('/').to_owned();
        reqwest::Url::parse(&base).map_err(|source| EsimAccessSetupError::InvalidBaseUrl {
            url: config.base_url.clone(),
            source,
        })?;
        if config.access_code.is_empty() || config.secret_key.is_empty() {
            return Err(EsimAccessSetupError::MissingCredentials);
        }
        if config.webhook_path_secrets.iter().any(String::is_empty) {
            return Err(EsimAccessSetupError::EmptyWebhookSecret);
        }
        let http =
            ProviderHttp::new(id.as_str(), config.http).map_err(EsimAccessSetupError::Http)?;
        let window =
            time::Duration::try_from(config.order_lookup_window).unwrap_or(time::Duration::days(2));
        Ok(Self {
            id,
            api_base: format!("{base}/api/v1/open"),
            access_code: config.access_code,
            secret_key: config.secret_key,
            webhook_secret_digests: config
                .webhook_path_secrets
                .iter()
                .map(|secret| sha256(secret.as_bytes()))
                .collect(),
            webhook_source_ips: config.webhook_source_ips,
            order_lookup_window: window,
            http,
            clock: Arc::new(SystemClock),
            ids: Arc::new(UlidGenerator::default()),
            placed: Mutex::new(HashMap::new()),
        })
    }

    /// The same adapter with another clock and id source, so that tests can predict the
    /// timestamps and request ids that requests are signed with.
    pub fn with_clock_and_ids(mut self, clock: Arc<dyn Clock>, ids: Arc<dyn IdGenerator>) -> Self {
        self.clock = clock;
        self.ids = ids;
        self
    }

    /// A signed POST of `body` to `url`, with a fresh timestamp and request id.
    fn signed(&self, client: &reqwest::Client, url: &str, body: &[u8]) -> reqwest::RequestBuilder {
        let timestamp = (self.clock.now().unix_timestamp_nanos() / 1_000_000).to_string();
        let request_id = format!("{:032x}", self.ids.next_ulid().0);
        let signature = signature(
            &self.secret_key,
            &timestamp,
            &request_id,
            &self.access_code,
            body,
        );
        client
            .post(url)
            .header("RT-AccessCode", &self.access_code)
            .header("RT-Timestamp", timestamp)
            .header("RT-RequestID", request_id)
            .header("RT-Signature", signature)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_vec())
    }

    /// Calls one endpoint and returns the `obj` of a successful answer.
    async fn call(
        &self,
        operation: &'static str,
        payload: &Value,
        intent: Intent<'_>,
    ) -> Result<Value, ProviderError> {
        let body = serde_json::to_vec(payload).map_err(|e| ProviderError::Protocol(Box::new(e)))?;
        let url = format!("{}/{operation}", self.api_base);
        let sent = self
            .http
            .send(intent.safety(), |client| self.signed(client, &url, &body))
            .await;
        let outcome = match sent {
            Ok(raw) => read_envelope(&raw),
            Err(error) => Err(transport_error(error, intent)),
        };
        match (outcome, intent) {
            (Ok(obj), _) => Ok(obj),
            // A commit whose answer cannot be read may still have been committed.
            (Err(ProviderError::Protocol(source)), Intent::Commit { our_reference }) => {
                Err(ProviderError::OutcomeUnknown {
                    our_reference: our_reference.to_owned(),
                    source,
                })
            }
            (Err(error @ ProviderError::Rejected { .. }), _) => {
                tracing::info!(provider = %self.id, operation, %error, "eSIM Access refused");
                Err(error)
            }
            (Err(error), _) => {
                tracing::warn!(provider = %self.id, operation, %error, "eSIM Access failed");
                Err(error)
            }
        }
    }

    /// Every profile a query matches, page by page.
    async fn query_profiles(&self, filter: Value) -> Result<Vec<EsimEntry>, ProviderError> {
        let mut profiles = Vec::new();
        for page in 1..=MAX_QUERY_PAGES {
            let mut payload = filter.clone();
            if let Value::Object(fields) = &mut payload {
                fields.insert(
                    "pager".to_owned(),
                    json!({"pageNum": page, "pageSize": QUERY_PAGE_SIZE}),
                );
            }
            let obj = self.call("esim/query", &payload, Intent::Read).await?;
            let answer: EsimList = decode(obj)?;
            let received = answer.esim_list.len() as u64;
            profiles.extend(answer.esim_list);
            let total = answer.pager.and_then(|p| p.total);
            let more = match total {
                Some(total) => (profiles.len() as u64) < total,
                None => received == QUERY_PAGE_SIZE,
            };
            if !more || received == 0 {
                break;
            }
        }
        Ok(profiles)
    }

    /// The one profile with this ICCID.
    async fn profile_entry(&self, iccid: &Iccid) -> Result<EsimEntry, ProviderError> {
        let answer = self
            .call(
                "esim/query",
                &json!({"iccid": iccid.as_str(), "pager": {"pageNum": 1, "pageSize": 1}}),
                Intent::Read,
            )
            .await?;
        let list: EsimList = decode(answer)?;
        list.esim_list
            .into_iter()
            .find(|entry| entry.iccid == iccid.as_str())
            .ok_or_else(|| ProviderError::Rejected {
                code: ErrorCode::NotFound,
                provider_code: "no_profile".to_owned(),
                provider_message: "esim/query answered without a profile for this ICCID".to_owned(),
            })
    }

    fn remember_order(&self, our_reference: &str, order_no: &str) {
        let mut placed = self.placed.lock().unwrap_or_else(|p| p.into_inner());
        if placed.len() >= REMEMBERED_ORDERS {
            placed.clear();
        }
        placed.insert(our_reference.to_owned(), order_no.to_owned());
    }

    fn remembered_order(&self, our_reference: &str) -> Option<String> {
        let placed = self.placed.lock().unwrap_or_else(|p| p.into_inner());
        placed.get(our_reference).cloned()
    }

    /// The notification's `notifyId` and its facts.
    fn parse_notification(
        &self,
        body: &[u8],
    ) -> Result<(Option<String>, Vec<WebhookFact>), BodyError> {
        let notification: Notification = serde_json::from_slice(body).map_err(BodyError::Json)?;
        let notify_id = non_empty(notification.notify_id);
        let at = notification
            .event_generate_time
            .as_deref()
            .and_then(parse_time)
            .unwrap_or_else(|| self.clock.now());
        let content = notification.content;
        let facts = match notification.notify_type.as_str() {
            "ORDER_STATUS" => {
                let content: OrderStatusContent = decode_body(content)?;
                let order_no = non_empty(content.order_no).ok_or(BodyError::Missing("orderNo"))?;
                match content.order_status.as_deref() {
                    Some("GOT_RESOURCE") => vec![WebhookFact::OrderCompleted {
                        provider_order_ref: order_no,
                        our_reference: non_empty(content.transaction_id),
                        profiles: Vec::new(),
                    }],
                    _ => Vec::new(),
                }
            }
            "SMDP_EVENT" | "ESIM_STATUS" => {
                let content: ProfileContent = decode_body(content)?;
                let iccid = parse_iccid(content.iccid)?;
                let state = profile_state(
                    content.esim_status.as_deref().unwrap_or_default(),
                    content.smdp_status.as_deref().unwrap_or_default(),
                );
                state
                    .map(|state| WebhookFact::ProfileState { iccid, state, at })
                    .into_iter()
                    .collect()
            }
            "DATA_USAGE" => {
                let content: DataUsageContent = decode_body(content)?;
                let iccid = parse_iccid(content.iccid)?;
                let remaining = content
                    .remain
                    .unwrap_or_else(|| content.total_volume.saturating_sub(content.order_usage));
                vec![WebhookFact::Usage(UsageReport {
                    iccid,
                    remaining_mb: Some(bytes_to_mb(remaining)),
                    total_mb: Some(bytes_to_mb(content.total_volume)),
                    expires_at: None,
                    measured_at: content.last_update_time.as_deref().and_then(parse_time),
                    state: None,
                })]
            }
            // VALIDITY_USAGE (one day left), CHECK_HEALTH and anything newer carry nothing the
            // port has a fact for.
            other => {
                tracing::debug!(provider = %self.id, notify_type = other, "webhook without facts");
                Vec::new()
            }
        };
        Ok((notify_id, facts))
    }
}

#[async_trait]
impl ProviderApi for EsimAccessProvider {
    fn id(&self) -> &ProviderId {
        &self.id
    }

    /// Asynchronous orders only, top-ups, refunding cancellation of unused profiles. A profile
    /// cannot move to another device. An unused profile stays installable for 180 days (the
    /// packages' `unusedValidTime`). Usage figures are refreshed about hourly: the provider's
    /// `lastUpdateTime` stamps fall on the hour; that interval is an observation, not a
    /// documented promise.
    fn capabilities(&self) -> ProviderCapabilities {
        ProviderCapabilities {
            provisioning: ProvisioningMode::Asynchronous,
            synchronous_available: false,
            top_up: true,
            cancel_refunds_unused: true,
            transfer: TransferPolicy::NotSupported,
            qr_validity_days: Some(180),
            usage_refresh_seconds: 3600,
        }
    }

    /// Base packages (`package/list`, `type` BASE), for one country through `locationCode` or
    /// for all. A package whose fields cannot be mapped is logged and left out.
    async fn list_plans(
        &self,
        country: Option<&CountryCode>,
    ) -> Result<Vec<ProviderPlan>, ProviderError> {
        let payload = json!({
            "type": "BASE",
            "locationCode": country.map_or("", CountryCode::as_str),
        });
        let obj = self.call("package/list", &payload, Intent::Read).await?;
        let list: PackageList = decode(obj)?;
        let plans = list
            .package_list
            .into_iter()
            .filter_map(|package| {
                let code = package.package_code.clone();
                match plan_from_package(&self.id, package) {
                    Ok(plan) => Some(plan),
                    Err(error) => {
                        tracing::warn!(
                            provider = %self.id,
                            package_code = %code,
                            error = %error,
                            "skipping a package that does not map onto a plan"
                        );
                        None
                    }
                }
            })
            .collect();
        Ok(plans)
    }

    /// Orders with `transactionId` = our reference and answers `Pending` with the `orderNo`;
    /// the profiles come by `ORDER_STATUS` webhook and [`ProviderApi::find_order`].
    ///
    /// The provider is idempotent on `transactionId`: a second order with the same one answers
    /// with the first order's `orderNo` and orders nothing. That is what makes reconciliation
    /// safe here: after `OutcomeUnknown`, placing the same request again with the same
    /// reference either commits it for the first time or returns the order already committed,
    /// never a second one. A new reference, by contrast, is a new order.
    async fn place_order(
        &self,
        request: &ProviderOrderRequest,
    ) -> Result<OrderOutcome, ProviderError> {
        let payload = json!({
            "transactionId": request.our_reference,
            "packageInfoList": [{"packageCode": request.plan_code, "count": request.quantity}],
        });
        let commit = Intent::Commit {
            our_reference: &request.our_reference,
        };
        let obj = self.call("esim/order", &payload, commit).await?;
        let answer: OrderAnswer = decode(obj).map_err(|error| ProviderError::OutcomeUnknown {
            our_reference: request.our_reference.clone(),
            source: Box::new(error),
        })?;
        let Some(order_no) = non_empty(answer.order_no) else {
            return Err(ProviderError::OutcomeUnknown {
                our_reference: request.our_reference.clone(),
                source: Box::new(BodyError::Missing("orderNo")),
            });
        };
        tracing::info!(
            provider = %self.id,
            our_reference = %request.our_reference,
            order_no = %order_no,
            "eSIM Access order accepted"
        );
        self.remember_order(&request.our_reference, &order_no);
        Ok(OrderOutcome::Pending {
            provider_order_ref: order_no,
        })
    }

    /// Finds an order by our reference.
    ///
    /// When this process placed the order it knows the `orderNo` and asks `esim/query` by it:
    /// `Pending` while the provider answers "not yet allocated", `Provisioned` after. Otherwise
    /// (a lost answer, another process) the API has no lookup by `transactionId`, so profiles
    /// of the last `order_lookup_window` are listed by date and matched on the `transactionId`
    /// each carries. An order still being allocated has no profiles yet and is not visible that
    /// way, so `None` then means "no profile carries this reference yet", not proof that the
    /// order was never committed; because the provider is idempotent on `transactionId`,
    /// placing the order again with the same reference is the safe way to settle it.
    async fn find_order(&self, our_reference: &str) -> Result<Option<OrderOutcome>, ProviderError> {
        if let Some(order_no) = self.remembered_order(our_reference) {
            let found = self.query_profiles(json!({"orderNo": order_no})).await;
            return match found {
                Ok(entries) => Ok(Some(OrderOutcome::Provisioned {
                    profiles: provisioned_profiles(entries)?,
                    provider_order_ref: order_no,
                })),
                Err(ProviderError::Rejected { provider_code, .. })
                    if provider_code == NOT_YET_ALLOCATED =>
                {
                    Ok(Some(OrderOutcome::Pending {
                        provider_order_ref: order_no,
                    }))
                }
                Err(error) => Err(error),
            };
        }
        let now = self.clock.now();
        let filter = json!({
            "startTime": query_time(now - self.order_lookup_window),
            "endTime": query_time(now + CLOCK_SKEW_ALLOWANCE),
        });
        let matching: Vec<EsimEntry> = self
            .query_profiles(filter)
            .await?
            .into_iter()
            .filter(|entry| entry.transaction_id.as_deref() == Some(our_reference))
            .collect();
        let Some(order_no) = matching.first().map(|entry| entry.order_no.clone()) else {
            return Ok(None);
        };
        Ok(Some(OrderOutcome::Provisioned {
            provider_order_ref: order_no,
            profiles: provisioned_profiles(matching)?,
        }))
    }

    async fn profile(&self, iccid: &Iccid) -> Result<ProfileDetails, ProviderError> {
        let entry = self.profile_entry(iccid).await?;
        Ok(ProfileDetails {
            iccid: iccid.clone(),
            state: profile_state(&entry.esim_status, &entry.smdp_status),
            provider_status: format!("{}/{}", entry.esim_status, entry.smdp_status),
        })
    }

    /// Usage by `esim/usage/query`, which takes the profile's `esimTranNo`, so the profile is
    /// looked up first. Megabytes are rounded down. The end date is reported once the plan
    /// has started; before that the provider's `expiredTime` is when the unused profile lapses.
    async fn usage(&self, iccid: &Iccid) -> Result<UsageReport, ProviderError> {
        let entry = self.profile_entry(iccid).await?;
        let obj = self
            .call(
                "esim/usage/query",
                &json!({"esimTranNoList": [entry.esim_tran_no]}),
                Intent::Read,
            )
            .await?;
        let list = decode::<UsageAnswer>(obj)?.into_list();
        let usage = list
            .into_iter()
            .find(|u| u.esim_tran_no == entry.esim_tran_no)
            .ok_or_else(|| {
                ProviderError::Protocol(Box::new(BodyError::Missing("esimUsageList[esimTranNo]")))
            })?;
        let started = matches!(
            entry.esim_status.as_str(),
            "IN_USE" | "USED_UP" | "USED_EXPIRED"
        );
        Ok(UsageReport {
            iccid: iccid.clone(),
            remaining_mb: Some(bytes_to_mb(
                usage.total_data.saturating_sub(usage.data_usage),
            )),
            total_mb: Some(bytes_to_mb(usage.total_data)),
            expires_at: entry
                .expired_time
                .as_deref()
                .filter(|_| started)
                .and_then(parse_time),
            measured_at: usage.last_update_time.as_deref().and_then(parse_time),
            state: profile_state(&entry.esim_status, &entry.smdp_status),
        })
    }

    /// `esim/topup` with `transactionId` = our reference, as idempotent as orders are.
    /// `plan_code` may be the base package the profile was bought with or a top-up package
    /// code: the top-up package is looked up with `package/list` (`type` TOPUP) for the
    /// profile first.
    async fn top_up(
        &self,
        iccid: &Iccid,
        plan_code: &str,
        our_reference: &str,
    ) -> Result<TopUpOutcome, ProviderError> {
        let entry = self.profile_entry(iccid).await?;
        let listed = self
            .call(
                "package/list",
                &json!({"type": "TOPUP", "packageCode": plan_code, "iccid": iccid.as_str()}),
                Intent::Read,
            )
            .await?;
        let packages: PackageList = decode(listed)?;
        let Some(topup_code) = packages
            .package_list
            .into_iter()
            .map(|p| p.package_code)
            .find(|code| !code.is_empty())
        else {
            return Err(ProviderError::Rejected {
                code: ErrorCode::InvalidRequest,
                provider_code: "no_topup_package".to_owned(),
                provider_message: format!("no top-up package matches {plan_code} for this eSIM"),
            });
        };
        let payload = json!({
            "esimTranNo": entry.esim_tran_no,
            "packageCode": topup_code,
            "transactionId": our_reference,
        });
        let obj = self
            .call("esim/topup", &payload, Intent::Commit { our_reference })
            .await?;
        let answer: TopUpAnswer = decode(obj).unwrap_or_default();
        Ok(TopUpOutcome {
            provider_topup_ref: non_empty(answer.transaction_id)
                .unwrap_or_else(|| our_reference.to_owned()),
        })
    }

    /// `esim/cancel`, which refunds a profile never downloaded nor used. Cancelling an already
    /// cancelled profile succeeds, so that a cancel whose answer was lost can be repeated.
    async fn cancel(&self, iccid: &Iccid) -> Result<(), ProviderError> {
        let entry = self.profile_entry(iccid).await?;
        let payload = json!({"esimTranNo": entry.esim_tran_no});
        match self.call("esim/cancel", &payload, Intent::Read).await {
            Ok(_) => Ok(()),
            Err(ProviderError::Rejected {
                code,
                provider_code,
                provider_message,
            }) if provider_code == NOT_ALLOWED_IN_STATE => {
                let now = self.profile_entry(iccid).await?;
                if now.esim_status == "CANCEL" {
                    return Ok(());
                }
                Err(ProviderError::Rejected {
                    code,
                    provider_code,
                    provider_message,
                })
            }
            Err(error) => Err(error),
        }
    }

    /// eSIM Access signs no webhook, so the webhook URL carries a secret last path segment,
    /// compared in constant time with every configured secret, and when an allowlist is set
    /// the sender's address must be on it. `ORDER_STATUS` carries no profiles: it becomes
    /// `OrderCompleted` with an empty profile list, and the caller fetches the profiles with
    /// [`ProviderApi::find_order`]. The dedupe key is `notifyId`, or the SHA-256 of the body
    /// when there is none.
    fn verify_webhook(&self, request: WebhookRequest<'_>) -> Result<WebhookEvent, WebhookError> {
        let Some(presented) = request.path_secret else {
            return Err(WebhookError::Unauthenticated(
                "the webhook URL carries no secret path segment",
            ));
        };
        let presented = sha256(presented.as_bytes());
        let matched = self
            .webhook_secret_digests
            .iter()
            .fold(subtle::Choice::from(0), |any, known| {
                any | known.ct_eq(&presented)
            });
        if !bool::from(matched) {
            return Err(WebhookError::Unauthenticated(
                "the webhook path secret is not one of the configured secrets",
            ));
        }
        if let Some(allowed) = &self.webhook_source_ips {
            let listed = request.source_ip.is_some_and(|ip| allowed.contains(&ip));
            if !listed {
                return Err(WebhookError::Unauthenticated(
                    "the webhook sender's address is not on the allowlist",
                ));
            }
        }
        let (notify_id, facts) = self
            .parse_notification(request.body)
            .map_err(|error| WebhookError::Malformed(Box::new(error)))?;
        Ok(WebhookEvent {
            dedupe_key: notify_id.unwrap_or_else(|| hex::encode(sha256(request.body))),
            facts,
        })
    }
}

/// Lowercase hex HMAC-SHA256, keyed with the secret key, over timestamp + request id + access
/// code + body: the `RT-Signature` header.
fn signature(
    secret_key: &str,
    timestamp: &str,
    request_id: &str,
    access_code: &str,
    body: &[u8],
) -> String {
    // HMAC accepts keys of any length, so this cannot fail; an empty signature would only be
    // refused by the provider.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret_key.as_bytes()) else {
        return String::new();
    };
    mac.update(timestamp.as_bytes());
    mac.update(request_id.as_bytes());
    mac.update(access_code.as_bytes());
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// The answer envelope. `success` arrives as a boolean or as the text `"true"`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Envelope {
    #[serde(default, deserialize_with = "lenient_bool")]
    success: bool,
    #[serde(default)]
    error_code: Value,
    #[serde(default, alias = "errorMessage")]
    error_msg: Option<String>,
    #[serde(default)]
    obj: Value,
}

fn lenient_bool<'de, D: Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    Ok(match Value::deserialize(deserializer)? {
        Value::Bool(value) => value,
        Value::String(text) => text.eq_ignore_ascii_case("true"),
        _ => false,
    })
}

/// Reads an answer that came back with a status below 500 other than 429.
fn read_envelope(raw: &RawResponse) -> Result<Value, ProviderError> {
    let envelope: Envelope = serde_json::from_slice(&raw.body).map_err(|source| {
        let error = if raw.status == 200 {
            BodyError::Json(source)
        } else {
            BodyError::NoEnvelope {
                status: raw.status,
                source,
            }
        };
        ProviderError::Protocol(Box::new(error))
    })?;
    if envelope.success {
        return Ok(envelope.obj);
    }
    let provider_code = match envelope.error_code {
        Value::String(code) => code,
        Value::Number(code) => code.to_string(),
        _ => String::new(),
    };
    Err(ProviderError::Rejected {
        code: error_code_for(&provider_code),
        provider_message: envelope.error_msg.unwrap_or_default(),
        provider_code,
    })
}

/// What the domain makes of the provider's error codes.
fn error_code_for(provider_code: &str) -> ErrorCode {
    match provider_code {
        "200007" => ErrorCode::InsufficientCredit,
        // No profiles left, and a package the provider no longer sells: either way the plan
        // cannot be bought now and another plan or provider may serve instead.
        "200011" | "310241" | "310243" => ErrorCode::OutOfStock,
        "900001" => ErrorCode::OperatorMaintenance,
        "000001" | NOT_YET_ALLOCATED => ErrorCode::ProviderUnavailable,
        "000101" | "000102" | "000103" | "000104" | "000105" | "000106" | "000107" | "200002"
        | "200005" | "200006" | "200008" => ErrorCode::InvalidRequest,
        "310272" | "310403" => ErrorCode::NotFound,
        // Timestamp, IP block and signature failures are our configuration or clock, never the
        // caller's: an internal failure whose provider message says which.
        "101001" | "101002" | "101003" => ErrorCode::Internal,
        _ => ErrorCode::Internal,
    }
}

fn transport_error(error: HttpError, intent: Intent<'_>) -> ProviderError {
    if let HttpError::Status { response } = &error
        && response.status == 429
    {
        return ProviderError::RateLimited {
            retry_after: response.retry_after(),
        };
    }
    match intent {
        Intent::Commit { our_reference } if error.may_have_committed() => {
            ProviderError::OutcomeUnknown {
                our_reference: our_reference.to_owned(),
                source: Box::new(error),
            }
        }
        _ => ProviderError::Unavailable(Box::new(error)),
    }
}

fn decode<T: DeserializeOwned>(obj: Value) -> Result<T, ProviderError> {
    serde_json::from_value(obj).map_err(|e| ProviderError::Protocol(Box::new(BodyError::Json(e))))
}

fn decode_body<T: DeserializeOwned>(value: Value) -> Result<T, BodyError> {
    serde_json::from_value(value).map_err(BodyError::Json)
}

fn non_empty(text: Option<String>) -> Option<String> {
    text.filter(|t| !t.trim().is_empty())
}

fn parse_iccid(text: Option<String>) -> Result<Iccid, BodyError> {
    let text = non_empty(text).ok_or(BodyError::Missing("iccid"))?;
    Iccid::parse(text.clone()).map_err(|_| BodyError::Invalid {
        field: "iccid",
        value: text,
    })
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct PackageList {
    package_list: Vec<Package>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct Package {
    package_code: String,
    name: String,
    price: i64,
    currency_code: Option<String>,
    volume: u64,
    duration: u32,
    duration_unit: Option<String>,
    location: String,
    speed: Option<String>,
    support_top_up_type: Option<u8>,
}

/// One package as a plan. Data is rounded down to whole megabytes and the price up to whole
/// minor units, so that neither the allowance is overstated nor the cost understated.
/// Daily-allowance packages (the provider's `dataType` other than 1) are not told apart: their
/// `volume` is taken as the allowance of the whole plan.
fn plan_from_package(provider: &ProviderId, package: Package) -> Result<ProviderPlan, BodyError> {
    if package.package_code.is_empty() {
        return Err(BodyError::Missing("packageCode"));
    }
    let plan_id = PlanId::parse(format!("{provider}:{}", package.package_code)).map_err(|_| {
        BodyError::Invalid {
            field: "packageCode",
            value: package.package_code.clone(),
        }
    })?;
    let currency_text = package.currency_code.unwrap_or_else(|| "USD".to_owned());
    let currency = Currency::parse(&currency_text).map_err(|_| BodyError::Invalid {
        field: "currencyCode",
        value: currency_text.clone(),
    })?;
    let wholesale_price =
        price_to_money(package.price, currency).ok_or_else(|| BodyError::Invalid {
            field: "price",
            value: package.price.to_string(),
        })?;
    let validity_days = validity_days(package.duration, package.duration_unit.as_deref())
        .ok_or_else(|| BodyError::Invalid {
            field: "durationUnit",
            value: format!("{} {:?}", package.duration, package.duration_unit),
        })?;
    let countries: Vec<CountryCode> = package
        .location
        .split(',')
        .filter_map(|code| CountryCode::parse(code.trim()).ok())
        .collect();
    if countries.is_empty() {
        return Err(BodyError::Invalid {
            field: "location",
            value: package.location,
        });
    }
    let region = (countries.len() > 1).then(|| region_name(&package.name));
    Ok(ProviderPlan {
        plan_id,
        provider: provider.clone(),
        provider_plan_code: package.package_code,
        name: package.name,
        coverage: Coverage { countries, region },
        data: DataAllowance::Limited {
            mb: bytes_to_mb(package.volume),
        },
        validity_days,
        wholesale_price,
        supports_top_up: package.support_top_up_type == Some(2),
        network_speed: non_empty(package.speed),
    })
}

/// A price in major units times 10,000 as minor units of `currency`, rounded up.
fn price_to_money(price: i64, currency: Currency) -> Option<Money> {
    let exponent = currency.minor_unit_exponent();
    if price < 0 || exponent > PRICE_SCALE_EXPONENT {
        return None;
    }
    let divisor = 10_i64.pow(PRICE_SCALE_EXPONENT - exponent);
    let minor = price.checked_add(divisor - 1)? / divisor;
    Some(Money::new(minor, currency))
}

/// Whole megabytes in a byte count, rounded down.
fn bytes_to_mb(bytes: u64) -> u64 {
    bytes / BYTES_PER_MB
}

/// Validity in days from `duration` and `durationUnit` (DAY when absent). Months count 30
/// days; hours round up to whole days.
fn validity_days(duration: u32, unit: Option<&str>) -> Option<u32> {
    let unit = unit.unwrap_or("DAY").trim().to_ascii_uppercase();
    match unit.as_str() {
        "DAY" | "DAYS" => Some(duration),
        "HOUR" | "HOURS" => Some(duration.div_ceil(24)),
        "MONTH" | "MONTHS" => duration.checked_mul(30),
        "YEAR" | "YEARS" => duration.checked_mul(365),
        _ => None,
    }
}

/// The region of a multi-country package, read from its name: the words before the first
/// parenthesis or number ("Europe (30 areas) 5GB 30Days" is Europe, "Asia 11 countries 1GB"
/// is Asia). The provider gives no separate region field.
fn region_name(name: &str) -> String {
    let head = name.split('(').next().unwrap_or(name);
    let words: Vec<&str> = head
        .split_whitespace()
        .take_while(|word| !word.starts_with(|c: char| c.is_ascii_digit()))
        .collect();
    if words.is_empty() {
        name.trim().to_owned()
    } else {
        words.join(" ")
    }
}

/// Where a profile is, from the plan status (`esimStatus`) and the independent SM-DP+ status
/// (`smdpStatus`). The plan status wins once the plan has started or ended; before, the SM-DP+
/// status says how far the device got. Cancelled and revoked profiles, and a profile deleted
/// from the device before use, have no lifecycle state: `None`, with the provider's words kept
/// in [`ProfileDetails::provider_status`].
fn profile_state(esim_status: &str, smdp_status: &str) -> Option<ProfileState> {
    match esim_status {
        "USED_UP" => Some(ProfileState::Depleted),
        "USED_EXPIRED" | "UNUSED_EXPIRED" => Some(ProfileState::Expired),
        "IN_USE" => Some(ProfileState::Activated),
        "CANCEL" | "REVOKED" => None,
        _ => match smdp_status {
            "RELEASED" => Some(ProfileState::Provisioned),
            "DOWNLOAD" => Some(ProfileState::Downloaded),
            "INSTALLATION" | "DISABLED" => Some(ProfileState::Installed),
            "ENABLED" => Some(ProfileState::Activated),
            _ => None,
        },
    }
}

/// A time as the provider writes it: `2024-05-13T10:20:30+0000`, or RFC 3339 (`Z`, `+00:00`).
fn parse_time(text: &str) -> Option<OffsetDateTime> {
    let compact = format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second][offset_hour sign:mandatory][offset_minute]"
    );
    OffsetDateTime::parse(text.trim(), compact)
        .or_else(|_| OffsetDateTime::parse(text.trim(), &Rfc3339))
        .ok()
}

/// A time as `esim/query` takes it: UTC, `2024-05-13T10:20:30+0000`.
fn query_time(at: OffsetDateTime) -> String {
    at.to_offset(time::UtcOffset::UTC)
        .format(format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second]+0000"
        ))
        .unwrap_or_default()
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct EsimList {
    esim_list: Vec<EsimEntry>,
    pager: Option<PagerAnswer>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct PagerAnswer {
    total: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct EsimEntry {
    esim_tran_no: String,
    order_no: String,
    transaction_id: Option<String>,
    iccid: String,
    ac: String,
    qr_code_url: Option<String>,
    smdp_status: String,
    esim_status: String,
    apn: Option<String>,
    expired_time: Option<String>,
}

fn provisioned_profiles(entries: Vec<EsimEntry>) -> Result<Vec<ProvisionedProfile>, ProviderError> {
    entries
        .into_iter()
        .map(|entry| {
            let iccid = Iccid::parse(entry.iccid.clone()).map_err(|_| BodyError::Invalid {
                field: "iccid",
                value: entry.iccid.clone(),
            })?;
            let activation = ActivationCode::parse(&entry.ac).map_err(|_| BodyError::Invalid {
                field: "ac",
                value: "<activation code withheld>".to_owned(),
            })?;
            Ok(ProvisionedProfile {
                iccid,
                provider_profile_ref: non_empty(Some(entry.esim_tran_no)),
                activation,
                qr_code_url: non_empty(entry.qr_code_url),
                direct_install_url: None,
                apn: non_empty(entry.apn),
            })
        })
        .collect::<Result<_, BodyError>>()
        .map_err(|error| ProviderError::Protocol(Box::new(error)))
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct OrderAnswer {
    order_no: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct TopUpAnswer {
    transaction_id: Option<String>,
}

/// `esim/usage/query` answers `{"esimUsageList": [...]}`; some documentation shows the bare
/// list, which is accepted too.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum UsageAnswer {
    Wrapped {
        #[serde(rename = "esimUsageList")]
        esim_usage_list: Vec<UsageEntry>,
    },
    Bare(Vec<UsageEntry>),
}

impl UsageAnswer {
    fn into_list(self) -> Vec<UsageEntry> {
        match self {
            UsageAnswer::Wrapped { esim_usage_list } => esim_usage_list,
            UsageAnswer::Bare(list) => list,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct UsageEntry {
    esim_tran_no: String,
    data_usage: u64,
    total_data: u64,
    last_update_time: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Notification {
    notify_type: String,
    #[serde(default)]
    event_generate_time: Option<String>,
    #[serde(default)]
    notify_id: Option<String>,
    #[serde(default)]
    content: Value,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct OrderStatusContent {
    order_no: Option<String>,
    transaction_id: Option<String>,
    order_status: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct ProfileContent {
    iccid: Option<String>,
    esim_status: Option<String>,
    smdp_status: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct DataUsageContent {
    iccid: Option<String>,
    total_volume: u64,
    order_usage: u64,
    remain: Option<u64>,
    last_update_time: Option<String>,
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use time::macros::datetime;

    use super::*;
    use crate::testing::{FixedClock, SequentialIds};

    fn provider_with(secrets: &[&str], source_ips: Option<Vec<IpAddr>>) -> EsimAccessProvider {
        let mut config = EsimAccessConfig::new("http://127.0.0.1:9/", "test-code", "test-secret");
        config.webhook_path_secrets = secrets.iter().map(|s| (*s).to_owned()).collect();
        config.webhook_source_ips = source_ips;
        let id = ProviderId::parse("esimaccess").expect("provider id");
        EsimAccessProvider::new(id, config)
            .expect("adapter builds")
            .with_clock_and_ids(
                Arc::new(FixedClock::default()),
                Arc::new(SequentialIds::default()),
            )
    }

    fn webhook<'a>(
        headers: &'a http::HeaderMap,
        secret: Option<&'a str>,
        body: &'a [u8],
    ) -> WebhookRequest<'a> {
        WebhookRequest {
            headers,
            path_secret: secret,
            body,
            source_ip: Some(IpAddr::V4(Ipv4Addr::new(3, 1, 131, 226))),
        }
    }

    fn iccid(text: &str) -> Iccid {
        Iccid::parse(text).expect("iccid")
    }

    #[test]
    fn signature_matches_the_documented_example() {
        let body = br#"{"imsi":"326543826"}"#;

        let signed = signature(
            "1111",
            "1628670421",
            "4ce9d9cdac9e4e17b3a2c66c358c1ce2",
            "11111",
            body,
        );

        assert_eq!(
            signed,
            "7eb765e27df5373dea2dbc8c41a7d9557743e46c8054750f3d851b3fd01d0835"
        );
    }

    #[test]
    fn every_attempt_is_signed_with_a_fresh_timestamp_and_request_id() {
        let provider = provider_with(&[], None);
        let client = reqwest::Client::new();
        let body = br#"{"transactionId":"ord-1"}"#;

        let first = provider
            .signed(&client, "http://127.0.0.1:9/api/v1/open/esim/order", body)
            .build()
            .expect("request");
        let second = provider
            .signed(&client, "http://127.0.0.1:9/api/v1/open/esim/order", body)
            .build()
            .expect("request");

        let header = |request: &reqwest::Request, name: &str| {
            request.headers()[name].to_str().expect("ascii").to_owned()
        };
        assert_eq!(header(&first, "RT-AccessCode"), "test-code");
        assert_eq!(header(&first, "RT-Timestamp"), "1780315200000");
        assert_eq!(
            header(&first, "RT-RequestID"),
            "018bcfe5680000000000000000000001"
        );
        assert_eq!(
            header(&first, "RT-Signature"),
            "40140525ae7c982a49db1542ee42a7a0a91636cd34774cdbbf5488d4a1aa04e7"
        );
        assert_eq!(
            header(&second, "RT-RequestID"),
            "018bcfe5680000000000000000000002"
        );
        assert_ne!(
            header(&second, "RT-Signature"),
            header(&first, "RT-Signature")
        );
        assert_eq!(first.body().and_then(|b| b.as_bytes()), Some(&body[..]));
    }

    #[test]
    fn prices_scaled_by_ten_thousand_become_minor_units_rounded_up() {
        let jpy = Currency::parse("JPY").expect("currency");
        let kwd = Currency::parse("KWD").expect("currency");

        assert_eq!(
            price_to_money(10_000, Currency::USD),
            Some(Money::new(100, Currency::USD))
        );
        assert_eq!(
            price_to_money(12_345, Currency::USD),
            Some(Money::new(124, Currency::USD))
        );
        assert_eq!(price_to_money(15_000, jpy), Some(Money::new(2, jpy)));
        assert_eq!(price_to_money(12_345, kwd), Some(Money::new(1235, kwd)));
        assert_eq!(
            price_to_money(0, Currency::USD),
            Some(Money::new(0, Currency::USD))
        );
        assert_eq!(price_to_money(-1, Currency::USD), None);
    }

    #[test]
    fn volumes_in_bytes_become_whole_megabytes_rounded_down() {
        assert_eq!(bytes_to_mb(1_073_741_824), 1024);
        assert_eq!(bytes_to_mb(524_288_000), 500);
        assert_eq!(bytes_to_mb(1_073_741_823), 1023);
        assert_eq!(bytes_to_mb(0), 0);
    }

    #[test]
    fn durations_in_any_unit_become_days() {
        assert_eq!(validity_days(7, Some("DAY")), Some(7));
        assert_eq!(validity_days(7, None), Some(7));
        assert_eq!(validity_days(1, Some("MONTH")), Some(30));
        assert_eq!(validity_days(1, Some("year")), Some(365));
        assert_eq!(validity_days(36, Some("HOUR")), Some(2));
        assert_eq!(validity_days(1, Some("WEEK")), None);
    }

    #[test]
    fn a_package_maps_onto_a_plan_with_exact_figures() {
        let package: Package = serde_json::from_value(json!({
            "packageCode": "CKH491",
            "slug": "EU-30_5_30",
            "name": "Europe (30 areas) 5GB 30Days",
            "price": 57_000,
            "currencyCode": "USD",
            "volume": 5_368_709_120_u64,
            "duration": 30,
            "durationUnit": "DAY",
            "location": "FR,DE,ES",
            "speed": "3G/4G/5G",
            "supportTopUpType": 2
        }))
        .expect("package");
        let provider = ProviderId::parse("esimaccess").expect("provider id");

        let plan = plan_from_package(&provider, package).expect("maps");

        let countries = ["FR", "DE", "ES"].map(|c| CountryCode::parse(c).expect("code"));
        assert_eq!(
            plan,
            ProviderPlan {
                plan_id: PlanId::parse("esimaccess:CKH491").expect("plan id"),
                provider,
                provider_plan_code: "CKH491".to_owned(),
                name: "Europe (30 areas) 5GB 30Days".to_owned(),
                coverage: Coverage {
                    countries: countries.to_vec(),
                    region: Some("Europe".to_owned()),
                },
                data: DataAllowance::Limited { mb: 5120 },
                validity_days: 30,
                wholesale_price: Money::new(570, Currency::USD),
                supports_top_up: true,
                network_speed: Some("3G/4G/5G".to_owned()),
            }
        );
    }

    #[test]
    fn a_single_country_package_has_no_region_and_type_1_has_no_top_up() {
        let package: Package = serde_json::from_value(json!({
            "packageCode": "P1", "name": "Japan 1GB 7Days", "price": 18_000,
            "currencyCode": "USD", "volume": 1_073_741_824_u64, "duration": 7,
            "durationUnit": "DAY", "location": "JP", "supportTopUpType": 1
        }))
        .expect("package");

        let plan = plan_from_package(&ProviderId::parse("ea").expect("id"), package);

        let plan = plan.expect("maps");
        assert_eq!(plan.coverage.region, None);
        assert!(!plan.supports_top_up);
        assert_eq!(plan.wholesale_price, Money::new(180, Currency::USD));
    }

    #[test]
    fn region_names_are_read_from_package_names() {
        assert_eq!(region_name("Europe (30 areas) 5GB 30Days"), "Europe");
        assert_eq!(region_name("Asia 11 countries 1GB 30 Days"), "Asia");
        assert_eq!(region_name("North America 3GB"), "North America");
    }

    #[test]
    fn status_pairs_map_onto_the_lifecycle() {
        let cases = [
            ("GOT_RESOURCE", "RELEASED", Some(ProfileState::Provisioned)),
            ("GOT_RESOURCE", "DOWNLOAD", Some(ProfileState::Downloaded)),
            (
                "GOT_RESOURCE",
                "INSTALLATION",
                Some(ProfileState::Installed),
            ),
            ("GOT_RESOURCE", "DISABLED", Some(ProfileState::Installed)),
            ("GOT_RESOURCE", "ENABLED", Some(ProfileState::Activated)),
            ("GOT_RESOURCE", "DELETED", None),
            ("IN_USE", "ENABLED", Some(ProfileState::Activated)),
            ("IN_USE", "DISABLED", Some(ProfileState::Activated)),
            ("USED_UP", "ENABLED", Some(ProfileState::Depleted)),
            ("USED_EXPIRED", "DELETED", Some(ProfileState::Expired)),
            ("UNUSED_EXPIRED", "RELEASED", Some(ProfileState::Expired)),
            ("CANCEL", "RELEASED", None),
            ("REVOKED", "ENABLED", None),
            ("", "", None),
        ];

        for (esim, smdp, expected) in cases {
            assert_eq!(profile_state(esim, smdp), expected, "{esim}/{smdp}");
        }
    }

    #[test]
    fn provider_error_codes_map_onto_domain_codes() {
        let cases = [
            ("200007", ErrorCode::InsufficientCredit),
            ("200011", ErrorCode::OutOfStock),
            ("310241", ErrorCode::OutOfStock),
            ("900001", ErrorCode::OperatorMaintenance),
            ("000105", ErrorCode::InvalidRequest),
            ("000104", ErrorCode::InvalidRequest),
            ("200002", ErrorCode::InvalidRequest),
            ("310403", ErrorCode::NotFound),
            ("310272", ErrorCode::NotFound),
            ("200010", ErrorCode::ProviderUnavailable),
            ("000001", ErrorCode::ProviderUnavailable),
            ("101003", ErrorCode::Internal),
            ("999999", ErrorCode::Internal),
        ];

        for (provider_code, expected) in cases {
            assert_eq!(error_code_for(provider_code), expected, "{provider_code}");
        }
    }

    #[test]
    fn a_refusal_with_http_200_becomes_rejected() {
        let raw = RawResponse {
            status: 200,
            headers: reqwest::header::HeaderMap::new(),
            body: bytes::Bytes::from_static(
                br#"{"success":false,"errorCode":"200011","errorMsg":"No stock.","obj":null}"#,
            ),
        };

        let outcome = read_envelope(&raw);

        let Err(ProviderError::Rejected {
            code,
            provider_code,
            provider_message,
        }) = outcome
        else {
            panic!("expected a rejection, got {outcome:?}");
        };
        assert_eq!(code, ErrorCode::OutOfStock);
        assert_eq!(provider_code, "200011");
        assert_eq!(provider_message, "No stock.");
    }

    #[test]
    fn success_given_as_text_is_accepted_and_html_is_a_protocol_error() {
        let answer = |body: &'static [u8]| RawResponse {
            status: 200,
            headers: reqwest::header::HeaderMap::new(),
            body: bytes::Bytes::from_static(body),
        };

        let text = read_envelope(&answer(br#"{"success":"true","obj":{"orderNo":"B1"}}"#));
        let html = read_envelope(&answer(b"<html>busy</html>"));

        assert_eq!(text.expect("success"), json!({"orderNo": "B1"}));
        assert!(matches!(html, Err(ProviderError::Protocol(_))));
    }

    #[test]
    fn provider_times_parse_in_both_offset_forms() {
        assert_eq!(
            parse_time("2025-09-11T13:28:09+0000"),
            Some(datetime!(2025-09-11 13:28:09 UTC))
        );
        assert_eq!(
            parse_time("2025-08-09T00:23:45Z"),
            Some(datetime!(2025-08-09 00:23:45 UTC))
        );
        assert_eq!(parse_time("yesterday"), None);
        assert_eq!(
            query_time(datetime!(2026-06-01 12:00:05 UTC)),
            "2026-06-01T12:00:05+0000"
        );
    }

    #[test]
    fn order_status_webhook_completes_the_order_without_profiles() {
        let provider = provider_with(&["s3cret"], None);
        let headers = http::HeaderMap::new();
        let body = br#"{"notifyType":"ORDER_STATUS","eventGenerateTime":"2025-09-11T13:28:09+0000",
            "notifyId":"n-1","content":{"orderNo":"B25091113270004","transactionId":"att_1",
            "orderStatus":"GOT_RESOURCE"}}"#;

        let event = provider.verify_webhook(webhook(&headers, Some("s3cret"), body));

        assert_eq!(
            event.expect("accepted"),
            WebhookEvent {
                dedupe_key: "n-1".to_owned(),
                facts: vec![WebhookFact::OrderCompleted {
                    provider_order_ref: "B25091113270004".to_owned(),
                    our_reference: Some("att_1".to_owned()),
                    profiles: Vec::new(),
                }],
            }
        );
    }

    #[test]
    fn smdp_and_esim_status_webhooks_report_profile_states() {
        let provider = provider_with(&["s3cret"], None);
        let headers = http::HeaderMap::new();
        let smdp = br#"{"notifyType":"SMDP_EVENT","eventGenerateTime":"2025-09-11T13:28:09+0000",
            "notifyId":"n-2","content":{"eid":"8904","iccid":"8997250230000292199",
            "esimStatus":"GOT_RESOURCE","smdpStatus":"DOWNLOAD","orderNo":"B1"}}"#;
        let status = br#"{"notifyType":"ESIM_STATUS","eventGenerateTime":"2025-08-09T00:23:45Z",
            "notifyId":"n-3","content":{"iccid":"8997250230000292199","esimStatus":"USED_UP",
            "smdpStatus":"ENABLED"}}"#;
        let cancelled = br#"{"notifyType":"ESIM_STATUS","notifyId":"n-4","content":{
            "iccid":"8997250230000292199","esimStatus":"CANCEL","smdpStatus":"RELEASED"}}"#;

        let smdp = provider.verify_webhook(webhook(&headers, Some("s3cret"), smdp));
        let status = provider.verify_webhook(webhook(&headers, Some("s3cret"), status));
        let cancelled = provider.verify_webhook(webhook(&headers, Some("s3cret"), cancelled));

        assert_eq!(
            smdp.expect("accepted").facts,
            vec![WebhookFact::ProfileState {
                iccid: iccid("8997250230000292199"),
                state: ProfileState::Downloaded,
                at: datetime!(2025-09-11 13:28:09 UTC),
            }]
        );
        assert_eq!(
            status.expect("accepted").facts,
            vec![WebhookFact::ProfileState {
                iccid: iccid("8997250230000292199"),
                state: ProfileState::Depleted,
                at: datetime!(2025-08-09 00:23:45 UTC),
            }]
        );
        assert_eq!(cancelled.expect("accepted").facts, Vec::new());
    }

    #[test]
    fn data_usage_webhook_reports_megabytes() {
        let provider = provider_with(&["s3cret"], None);
        let headers = http::HeaderMap::new();
        let body = br#"{"notifyType":"DATA_USAGE","eventGenerateTime":"2025-07-21T10:57:28Z",
            "notifyId":"n-5","content":{"iccid":"8943108170001029631","totalVolume":5368709120,
            "orderUsage":4831838208,"remain":536870912,"lastUpdateTime":"2025-07-21T09:38:25Z",
            "remainThreshold":0.1}}"#;

        let event = provider.verify_webhook(webhook(&headers, Some("s3cret"), body));

        assert_eq!(
            event.expect("accepted").facts,
            vec![WebhookFact::Usage(UsageReport {
                iccid: iccid("8943108170001029631"),
                remaining_mb: Some(512),
                total_mb: Some(5120),
                expires_at: None,
                measured_at: Some(datetime!(2025-07-21 09:38:25 UTC)),
                state: None,
            })]
        );
    }

    #[test]
    fn unknown_notify_types_have_no_facts_and_a_body_hash_dedupe_key() {
        let provider = provider_with(&["s3cret"], None);
        let headers = http::HeaderMap::new();
        let body =
            br#"{"notifyType":"CHECK_HEALTH","content":{"orderNo":"1","orderStatus":"Test"}}"#;

        let event = provider.verify_webhook(webhook(&headers, Some("s3cret"), body));

        let event = event.expect("accepted");
        assert_eq!(event.facts, Vec::new());
        assert_eq!(event.dedupe_key, hex::encode(Sha256::digest(body)));
    }

    #[test]
    fn webhooks_need_a_configured_path_secret_and_accept_a_rotated_one() {
        let provider = provider_with(&["old-secret", "new-secret"], None);
        let headers = http::HeaderMap::new();
        let body = br#"{"notifyType":"CHECK_HEALTH","notifyId":"n-6","content":{}}"#;

        let old = provider.verify_webhook(webhook(&headers, Some("old-secret"), body));
        let new = provider.verify_webhook(webhook(&headers, Some("new-secret"), body));
        let wrong = provider.verify_webhook(webhook(&headers, Some("new-secreT"), body));
        let missing = provider.verify_webhook(webhook(&headers, None, body));

        assert_eq!(old.expect("old secret accepted").dedupe_key, "n-6");
        assert_eq!(new.expect("new secret accepted").dedupe_key, "n-6");
        assert!(matches!(wrong, Err(WebhookError::Unauthenticated(_))));
        assert!(matches!(missing, Err(WebhookError::Unauthenticated(_))));
    }

    #[test]
    fn webhooks_from_outside_the_allowlist_are_refused() {
        let allowed = IpAddr::V4(Ipv4Addr::new(3, 1, 131, 226));
        let provider = provider_with(&["s3cret"], Some(vec![allowed]));
        let headers = http::HeaderMap::new();
        let body = br#"{"notifyType":"CHECK_HEALTH","notifyId":"n-7","content":{}}"#;
        let mut outsider = webhook(&headers, Some("s3cret"), body);
        outsider.source_ip = Some(IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7)));
        let mut unknown = webhook(&headers, Some("s3cret"), body);
        unknown.source_ip = None;

        let listed = provider.verify_webhook(webhook(&headers, Some("s3cret"), body));
        let outsider = provider.verify_webhook(outsider);
        let unknown = provider.verify_webhook(unknown);

        assert!(listed.is_ok());
        assert!(matches!(outsider, Err(WebhookError::Unauthenticated(_))));
        assert!(matches!(unknown, Err(WebhookError::Unauthenticated(_))));
    }

    #[test]
    fn an_authentic_webhook_that_is_not_json_is_malformed() {
        let provider = provider_with(&["s3cret"], None);
        let headers = http::HeaderMap::new();

        let event = provider.verify_webhook(webhook(&headers, Some("s3cret"), b"not json"));

        assert!(matches!(event, Err(WebhookError::Malformed(_))));
    }

    #[test]
    fn configuration_debug_output_hides_every_secret() {
        let mut config = EsimAccessConfig::new("https://api.esimaccess.com", "code-1", "key-1");
        config.webhook_path_secrets = vec!["path-1".to_owned()];

        let printed = format!("{config:?}");

        assert!(printed.contains("https://api.esimaccess.com"));
        assert!(!printed.contains("code-1"));
        assert!(!printed.contains("key-1"));
        assert!(!printed.contains("path-1"));
    }

    #[test]
    fn setup_refuses_empty_secrets_and_bad_urls() {
        let id = ProviderId::parse("esimaccess").expect("id");
        let mut empty_secret = EsimAccessConfig::new("https://api.esimaccess.com", "c", "k");
        empty_secret.webhook_path_secrets = vec![String::new()];

        let bad_url = EsimAccessProvider::new(id.clone(), EsimAccessConfig::new("::", "c", "k"));
        let no_key = EsimAccessProvider::new(
            id.clone(),
            EsimAccessConfig::new("https://api.esimaccess.com", "c", ""),
        );
        let empty_secret = EsimAccessProvider::new(id, empty_secret);

        assert!(matches!(
            bad_url,
            Err(EsimAccessSetupError::InvalidBaseUrl { .. })
        ));
        assert!(matches!(
            no_key,
            Err(EsimAccessSetupError::MissingCredentials)
        ));
        assert!(matches!(
            empty_secret,
            Err(EsimAccessSetupError::EmptyWebhookSecret)
        ));
    }
}
