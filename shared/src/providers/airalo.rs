//! Adapter for the Airalo Partner API v2: OAuth2 client-credentials token cached across calls,
//! the package catalogue, synchronous and asynchronous orders correlated by `description`,
//! SIM details, usage, top-ups, and `airalo-signature` webhooks.
//!
//! Airalo wraps every answer in `{"data": ..., "meta": ...}` and refuses requests with
//! `{"code": n, "reason": "..."}`; [`rejection`] maps those codes onto the domain's
//! [`ErrorCode`]. Prices arrive as JSON decimal numbers of US dollars and are converted to
//! minor units from their decimal text, never through float arithmetic.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use sha2::{Digest, Sha256, Sha512};
use subtle::ConstantTimeEq;
use time::OffsetDateTime;
use time::macros::format_description;

use crate::domain::ErrorCode;
use crate::domain::esim::ActivationCode;
use crate::domain::ids::{Iccid, InvalidId, PlanId, ProviderId};
use crate::domain::lifecycle::ProfileState;
use crate::domain::money::{Currency, Money};
use crate::domain::plan::{CountryCode, Coverage, DataAllowance, ProviderPlan};
use crate::ports::provider::{
    OrderOutcome, ProfileDetails, ProviderApi, ProviderCapabilities, ProviderError,
    ProviderOrderRequest, ProvisionedProfile, ProvisioningMode, TopUpOutcome, TransferPolicy,
    UsageReport, WebhookError, WebhookEvent, WebhookFact, WebhookRequest,
};
use crate::providers::http::{HttpError, HttpSettings, ProviderHttp, RawResponse, Safety};

/// Header carrying the hex HMAC-SHA512 of a webhook's raw body.
pub const SIGNATURE_HEADER: &str = "airalo-signature";

/// Packages asked for per page of `GET /v2/packages` and `GET /v2/orders`.
const PAGE_SIZE: u32 = 25;

/// Pages followed at most, so that a provider whose page counter never ends cannot keep a
/// catalogue refresh busy forever.
const MAX_PAGES: u32 = 200;

/// Longest time a token is refreshed ahead of its expiry.
const TOKEN_REFRESH_MARGIN: Duration = Duration::from_secs(300);

/// How often Airalo refreshes its usage figures, as its documentation says.
const USAGE_REFRESH_SECONDS: u32 = 20 * 60;

/// Settings of one Airalo partner account.
#[derive(Clone)]
pub struct AiraloConfig {
    /// Base URL without the `/v2` path, for example `https://partners-api.airalo.com`.
    pub base_url: String,
    /// OAuth2 client id.
    pub client_id: String,
    /// OAuth2 client secret.
    pub client_secret: String,
    /// Keys a webhook's `airalo-signature` may be made with; any one matching is accepted, so
    /// a new secret can be added before the old one is retired.
    pub webhook_secrets: Vec<String>,
    /// Where Airalo posts the result of an asynchronous order; `None` leaves it to the URL
    /// registered with Airalo for the account.
    pub async_order_webhook_url: Option<String>,
    /// Timeouts, retries and rate limit.
    pub http: HttpSettings,
}

impl std::fmt::Debug for AiraloConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AiraloConfig")
            .field("base_url", &self.base_url)
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field(
                "webhook_secrets",
                &format_args!("<{} redacted>", self.webhook_secrets.len()),
            )
            .field("async_order_webhook_url", &self.async_order_webhook_url)
            .field("http", &self.http)
            .finish()
    }
}

/// Why an Airalo adapter could not be built.
#[derive(Debug, thiserror::Error)]
pub enum AiraloSetupError {
    /// The base URL is not an absolute http(s) URL.
    #[error("failed to parse the Airalo base URL {url:?}; give an absolute http(s) URL")]
    BaseUrl {
        /// The URL as configured.
        url: String,
    },
    /// A credential is empty.
    #[error("the Airalo {0} is empty; set it in the provider configuration")]
    MissingCredential(&'static str),
    /// No webhook secret, or an empty one, was configured.
    #[error("at least one non-empty Airalo webhook secret is required to authenticate webhooks")]
    MissingWebhookSecret,
    /// The HTTP client could not be built.
    #[error("failed to build the Airalo HTTP client")]
    HttpClient(#[source] reqwest::Error),
}

/// Why an Airalo answer could not be read.
#[derive(Debug, thiserror::Error)]
pub enum AiraloProtocolError {
    /// The body is not the JSON expected.
    #[error("failed to parse the Airalo {context} body")]
    Json {
        /// Which answer it was.
        context: &'static str,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// A field the adapter needs is missing or has the wrong type.
    #[error("the Airalo {context} answer has no usable {field}")]
    Field {
        /// Which answer it was.
        context: &'static str,
        /// The field.
        field: &'static str,
    },
    /// An ICCID or package id cannot be used as one of our identifiers.
    #[error("Airalo sent an identifier that cannot be stored")]
    Id(#[source] InvalidId),
    /// A price cannot be expressed exactly in minor units.
    #[error("Airalo sent the price {text:?}, which is not an exact amount of US cents")]
    Price {
        /// The price as sent.
        text: String,
    },
    /// The provider answered with an HTTP status the adapter does not expect here.
    #[error("Airalo answered HTTP {0} where success was expected")]
    Status(u16),
}

/// A token as cached: the value and when to fetch a new one.
struct CachedToken {
    value: String,
    refresh_at: Instant,
}

/// The Airalo Partner API v2 behind the provider port.
pub struct AiraloProvider {
    id: ProviderId,
    base_url: String,
    config: AiraloConfig,
    http: ProviderHttp,
    token: tokio::sync::Mutex<Option<CachedToken>>,
}

impl std::fmt::Debug for AiraloProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AiraloProvider")
            .field("id", &self.id)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// A failed call before its answer is interpreted: either no token, or an HTTP failure.
enum CallError {
    Token(ProviderError),
    Http(HttpError),
}

impl AiraloProvider {
    /// Checks the configuration and builds the HTTP client; no request is sent yet.
    pub fn new(id: ProviderId, config: AiraloConfig) -> Result<Self, AiraloSetupError> {
        let base_url = config.base_url.trim_end_matches('/').to_owned();
        let parsed = reqwest::Url::parse(&base_url).ok();
        if !parsed.is_some_and(|url| matches!(url.scheme(), "http" | "https")) {
            return Err(AiraloSetupError::BaseUrl {
                url: config.base_url.clone(),
            });
        }
        if config.client_id.is_empty() {
            return Err(AiraloSetupError::MissingCredential("client id"));
        }
        if config.client_secret.is_empty() {
            return Err(AiraloSetupError::MissingCredential("client secret"));
        }
        if config.webhook_secrets.is_empty() || config.webhook_secrets.iter().any(String::is_empty)
        {
            return Err(AiraloSetupError::MissingWebhookSecret);
        }
        let http = ProviderHttp::new(id.as_str(), config.http.clone())
            .map_err(AiraloSetupError::HttpClient)?;
        Ok(Self {
            id,
            base_url,
            config,
            http,
            token: tokio::sync::Mutex::new(None),
        })
    }

    /// The SIM record (`GET /v2/sims/{iccid}`): the activation details as Airalo keeps them,
    /// for showing the QR code again. Safe to repeat.
    pub async fn sim(&self, iccid: &Iccid) -> Result<ProvisionedProfile, ProviderError> {
        let url = format!("{}/v2/sims/{}", self.base_url, iccid.as_str());
        let raw = self.read(|client| client.get(&url)).await?;
        let sim: WireSim = data_of(&raw, "sim")?;
        profile_of(sim).map_err(protocol)
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// A valid token: the cached one, or a new one fetched while other callers wait for it.
    async fn bearer(&self) -> Result<String, ProviderError> {
        let mut cached = self.token.lock().await;
        if let Some(token) = cached.as_ref()
            && Instant::now() < token.refresh_at
        {
            return Ok(token.value.clone());
        }
        let fresh = self.fetch_token().await?;
        let value = fresh.value.clone();
        *cached = Some(fresh);
        Ok(value)
    }

    /// Forgets `used` if it is still the cached token (another caller may have replaced it).
    async fn drop_token(&self, used: &str) {
        let mut cached = self.token.lock().await;
        if cached.as_ref().is_some_and(|token| token.value == used) {
            *cached = None;
        }
    }

    async fn fetch_token(&self) -> Result<CachedToken, ProviderError> {
        let url = self.url("/v2/token");
        let form = [
            ("client_id", self.config.client_id.as_str()),
            ("client_secret", self.config.client_secret.as_str()),
            ("grant_type", "client_credentials"),
        ];
        let started = Instant::now();
        let raw = self
            .http
            .send(Safety::Idempotent, |client| {
                client
                    .post(&url)
                    .header(reqwest::header::ACCEPT, "application/json")
                    .form(&form)
            })
            .await
            .map_err(read_failure)?;
        if !is_success(raw.status) {
            // Refused credentials are a configuration fault on our side, whatever code the
            // provider gives them.
            return Err(match rejection(raw.status, &raw.body) {
                ProviderError::Rejected {
                    provider_code,
                    provider_message,
                    ..
                } => ProviderError::Rejected {
                    code: ErrorCode::Internal,
                    provider_code,
                    provider_message,
                },
                other => other,
            });
        }
        let token: WireToken = data_of(&raw, "token")?;
        if token.access_token.is_empty() {
            return Err(protocol(AiraloProtocolError::Field {
                context: "token",
                field: "access_token",
            }));
        }
        let lifetime = Duration::from_secs(token.expires_in.unwrap_or(86_400));
        let margin = TOKEN_REFRESH_MARGIN.min(lifetime / 10);
        tracing::info!(
            provider = %self.id,
            expires_in_s = lifetime.as_secs(),
            "fetched an Airalo access token"
        );
        Ok(CachedToken {
            value: token.access_token,
            refresh_at: started + lifetime.saturating_sub(margin),
        })
    }

    /// Sends an authenticated request; on a 401 the token is dropped, a new one fetched and
    /// the request sent once more. A 401 means the request was refused, so this is safe even
    /// for orders.
    async fn call(
        &self,
        safety: Safety,
        build: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    ) -> Result<RawResponse, CallError> {
        let mut retried = false;
        loop {
            let token = self.bearer().await.map_err(CallError::Token)?;
            let raw = self
                .http
                .send(safety, |client| {
                    build(client)
                        .bearer_auth(&token)
                        .header(reqwest::header::ACCEPT, "application/json")
                })
                .await
                .map_err(CallError::Http)?;
            if raw.status != 401 || retried {
                return Ok(raw);
            }
            tracing::info!(provider = %self.id, "Airalo refused the token; fetching a new one");
            self.drop_token(&token).await;
            retried = true;
        }
    }

    /// A read: safe to repeat, failures mapped for reads, refusals mapped by [`rejection`].
    async fn read(
        &self,
        build: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    ) -> Result<RawResponse, ProviderError> {
        let raw = match self.call(Safety::Idempotent, build).await {
            Ok(raw) => raw,
            Err(CallError::Token(error)) => return Err(error),
            Err(CallError::Http(error)) => return Err(read_failure(error)),
        };
        if is_success(raw.status) {
            Ok(raw)
        } else {
            Err(rejection(raw.status, &raw.body))
        }
    }

    /// A purchase: sent once; an answer that may follow a commit and is lost or unreadable
    /// becomes `OutcomeUnknown`.
    async fn purchase<T: DeserializeOwned>(
        &self,
        our_reference: &str,
        context: &'static str,
        build: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    ) -> Result<T, ProviderError> {
        let raw = match self.call(Safety::Unsafe, build).await {
            Ok(raw) => raw,
            Err(CallError::Token(error)) => return Err(error),
            Err(CallError::Http(error)) if error.may_have_committed() => {
                tracing::warn!(
                    provider = %self.id,
                    our_reference,
                    error = %error,
                    "Airalo purchase answer lost; the outcome is unknown"
                );
                return Err(ProviderError::OutcomeUnknown {
                    our_reference: our_reference.to_owned(),
                    source: Box::new(error),
                });
            }
            Err(CallError::Http(error)) => return Err(read_failure(error)),
        };
        if !is_success(raw.status) {
            return Err(rejection(raw.status, &raw.body));
        }
        // A success we cannot read still committed: the caller must reconcile, not reorder.
        data_of::<T>(&raw, context).map_err(|error| {
            let source: Box<dyn std::error::Error + Send + Sync> = match error {
                ProviderError::Protocol(source) => source,
                other => Box::new(other),
            };
            ProviderError::OutcomeUnknown {
                our_reference: our_reference.to_owned(),
                source,
            }
        })
    }

    fn order_body(&self, request: &ProviderOrderRequest, asynchronous: bool) -> Value {
        let mut body = serde_json::json!({
            "package_id": request.plan_code,
            "quantity": request.quantity,
            "type": "sim",
            "description": request.our_reference,
        });
        if asynchronous
            && let (Some(url), Value::Object(map)) =
                (&self.config.async_order_webhook_url, &mut body)
        {
            map.insert("webhook_url".to_owned(), Value::String(url.clone()));
        }
        body
    }

    fn plans_of(&self, listings: Vec<WireListing>, plans: &mut Vec<ProviderPlan>) {
        for listing in listings {
            for operator in &listing.operators {
                for package in &operator.packages {
                    match plan_of(&self.id, &listing, operator, package) {
                        Ok(plan) => plans.push(plan),
                        Err(error) => tracing::warn!(
                            provider = %self.id,
                            package_id = %package.id,
                            error = %error,
                            "skipping an Airalo package that cannot be read"
                        ),
                    }
                }
            }
        }
    }
}

#[async_trait]
impl ProviderApi for AiraloProvider {
    fn id(&self) -> &ProviderId {
        &self.id
    }

    /// Airalo answers orders either way; the adapter orders asynchronously unless the caller
    /// asks for a synchronous answer. Cancellation is not offered: `POST /v2/refund` files a
    /// refund request that Airalo reviews by hand and credits later, if at all, and leaves the
    /// profile as it is, which is not the "cancel an unused profile for a refund" the port
    /// means. Airalo eSIMs can in general be installed once only, so a new device needs a new
    /// eSIM. Airalo's API names no installation deadline for a QR code, so none is claimed.
    fn capabilities(&self) -> ProviderCapabilities {
        ProviderCapabilities {
            provisioning: ProvisioningMode::Asynchronous,
            synchronous_available: true,
            top_up: true,
            cancel_refunds_unused: false,
            transfer: TransferPolicy::NotSupported,
            qr_validity_days: None,
            usage_refresh_seconds: USAGE_REFRESH_SECONDS,
        }
    }

    async fn list_plans(
        &self,
        country: Option<&CountryCode>,
    ) -> Result<Vec<ProviderPlan>, ProviderError> {
        let url = self.url("/v2/packages");
        let mut plans = Vec::new();
        let mut page = 1;
        loop {
            let mut query = vec![
                ("limit".to_owned(), PAGE_SIZE.to_string()),
                ("page".to_owned(), page.to_string()),
            ];
            if let Some(country) = country {
                query.push(("filter[country]".to_owned(), country.as_str().to_owned()));
            }
            let raw = self.read(|client| client.get(&url).query(&query)).await?;
            let envelope: Envelope<Vec<WireListing>> = parse(&raw.body, "packages")?;
            self.plans_of(envelope.data, &mut plans);
            let last_page = envelope
                .meta
                .and_then(|meta| meta.last_page)
                .unwrap_or(u64::from(page));
            if u64::from(page) >= last_page {
                break;
            }
            if page >= MAX_PAGES {
                tracing::warn!(
                    provider = %self.id,
                    pages = page,
                    last_page,
                    "stopped following Airalo package pages; the catalogue is incomplete"
                );
                break;
            }
            page += 1;
        }
        tracing::info!(provider = %self.id, plans = plans.len(), "listed Airalo packages");
        Ok(plans)
    }

    async fn place_order(
        &self,
        request: &ProviderOrderRequest,
    ) -> Result<OrderOutcome, ProviderError> {
        let synchronous = request.prefer_synchronous && self.capabilities().synchronous_available;
        let body = self.order_body(request, !synchronous);
        let reference = request.our_reference.as_str();
        tracing::info!(
            provider = %self.id,
            our_reference = reference,
            plan_code = %request.plan_code,
            quantity = request.quantity,
            synchronous,
            "placing an Airalo order"
        );
        if synchronous {
            let url = self.url("/v2/orders");
            let order: WireOrder = self
                .purchase(reference, "order", |client| client.post(&url).json(&body))
                .await?;
            let outcome = outcome_of(order).map_err(|error| ProviderError::OutcomeUnknown {
                our_reference: reference.to_owned(),
                source: Box::new(error),
            })?;
            if let OrderOutcome::Provisioned { profiles, .. } = &outcome
                && u32::try_from(profiles.len()).ok() != Some(request.quantity)
            {
                tracing::warn!(
                    provider = %self.id,
                    our_reference = reference,
                    ordered = request.quantity,
                    delivered = profiles.len(),
                    "Airalo delivered a different number of profiles than ordered"
                );
            }
            Ok(outcome)
        } else {
            let url = self.url("/v2/orders-async");
            let accepted: WireAccepted = self
                .purchase(reference, "async order", |client| {
                    client.post(&url).json(&body)
                })
                .await?;
            let provider_order_ref =
                id_text(&accepted.request_id).ok_or_else(|| ProviderError::OutcomeUnknown {
                    our_reference: reference.to_owned(),
                    source: Box::new(AiraloProtocolError::Field {
                        context: "async order",
                        field: "request_id",
                    }),
                })?;
            Ok(OrderOutcome::Pending { provider_order_ref })
        }
    }

    /// Looks the order up with `filter[description]`, the only field that carries our
    /// reference. Airalo lists an asynchronous order only once it is processed, so an accepted
    /// order that is still being processed is not found yet; a caller that lost the answer of
    /// an asynchronous order should wait for the result webhook before it orders again.
    async fn find_order(&self, our_reference: &str) -> Result<Option<OrderOutcome>, ProviderError> {
        let url = self.url("/v2/orders");
        let query = [
            ("filter[description]", our_reference),
            ("include", "sims,status"),
            ("limit", "10"),
        ];
        let raw = self.read(|client| client.get(&url).query(&query)).await?;
        let envelope: Envelope<Vec<WireOrder>> = parse(&raw.body, "orders")?;
        let mut matching = envelope
            .data
            .into_iter()
            .filter(|order| order.description.as_deref() == Some(our_reference));
        let Some(order) = matching.next() else {
            return Ok(None);
        };
        let others = matching.count();
        if others > 0 {
            tracing::warn!(
                provider = %self.id,
                our_reference,
                others,
                "several Airalo orders carry the same reference; using the most recent"
            );
        }
        outcome_of(order).map(Some).map_err(protocol)
    }

    /// Airalo's SIM record carries no lifecycle status, so the state comes from the usage
    /// endpoint's `status`, the only place Airalo reports one.
    async fn profile(&self, iccid: &Iccid) -> Result<ProfileDetails, ProviderError> {
        let usage = self.fetch_usage(iccid).await?;
        let provider_status = usage.status.unwrap_or_default();
        Ok(ProfileDetails {
            iccid: iccid.clone(),
            state: state_of_status(&provider_status),
            provider_status,
        })
    }

    async fn usage(&self, iccid: &Iccid) -> Result<UsageReport, ProviderError> {
        let usage = self.fetch_usage(iccid).await?;
        usage_report(iccid, usage).map_err(protocol)
    }

    /// `plan_code` is an Airalo top-up package id, as `GET /v2/sims/{iccid}/topups` lists
    /// them, not the id of the package the eSIM was bought with. Airalo has no lookup of a
    /// top-up by our reference, so a top-up whose answer was lost has to be reconciled by
    /// hand (its `description` carries our reference).
    async fn top_up(
        &self,
        iccid: &Iccid,
        plan_code: &str,
        our_reference: &str,
    ) -> Result<TopUpOutcome, ProviderError> {
        let url = self.url("/v2/orders/topups");
        let body = serde_json::json!({
            "iccid": iccid.as_str(),
            "package_id": plan_code,
            "description": our_reference,
        });
        tracing::info!(
            provider = %self.id,
            our_reference,
            plan_code,
            "placing an Airalo top-up"
        );
        let topup: WireTopUp = self
            .purchase(our_reference, "top-up", |client| {
                client.post(&url).json(&body)
            })
            .await?;
        let provider_topup_ref =
            id_text(&topup.id)
                .or(topup.code)
                .ok_or_else(|| ProviderError::OutcomeUnknown {
                    our_reference: our_reference.to_owned(),
                    source: Box::new(AiraloProtocolError::Field {
                        context: "top-up",
                        field: "id",
                    }),
                })?;
        Ok(TopUpOutcome { provider_topup_ref })
    }

    /// Not offered: see [`AiraloProvider::capabilities`] for why a refund request is not a
    /// cancellation.
    async fn cancel(&self, _iccid: &Iccid) -> Result<(), ProviderError> {
        Err(ProviderError::Unsupported("cancelling an eSIM"))
    }

    fn verify_webhook(&self, request: WebhookRequest<'_>) -> Result<WebhookEvent, WebhookError> {
        let signature =
            request
                .headers
                .get(SIGNATURE_HEADER)
                .ok_or(WebhookError::Unauthenticated(
                    "missing airalo-signature header",
                ))?;
        let signature = signature
            .to_str()
            .ok()
            .and_then(|text| hex::decode(text.trim()).ok())
            .ok_or(WebhookError::Unauthenticated(
                "malformed airalo-signature header",
            ))?;
        if !signature_matches(&self.config.webhook_secrets, request.body, &signature) {
            tracing::warn!(provider = %self.id, "Airalo webhook signature does not match");
            return Err(WebhookError::Unauthenticated(
                "airalo-signature does not match",
            ));
        }
        let event = parse_webhook(request.body, OffsetDateTime::now_utc())?;
        tracing::info!(
            provider = %self.id,
            dedupe_key = %event.dedupe_key,
            facts = event.facts.len(),
            "accepted an Airalo webhook"
        );
        Ok(event)
    }
}

impl AiraloProvider {
    async fn fetch_usage(&self, iccid: &Iccid) -> Result<WireUsage, ProviderError> {
        let url = format!("{}/v2/sims/{}/usage", self.base_url, iccid.as_str());
        let raw = self.read(|client| client.get(&url)).await?;
        data_of(&raw, "usage")
    }
}

// ---- Wire shapes --------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
struct Envelope<T> {
    data: T,
    #[serde(default)]
    meta: Option<PageMeta>,
}

#[derive(Debug, Deserialize)]
struct PageMeta {
    #[serde(default)]
    last_page: Option<u64>,
}

#[derive(Debug, Deserialize)]
struct WireToken {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

#[derive(Debug, Deserialize)]
struct WireListing {
    #[serde(default)]
    country_code: Option<String>,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    operators: Vec<WireOperator>,
}

#[derive(Debug, Deserialize)]
struct WireOperator {
    #[serde(default)]
    countries: Vec<WireCountry>,
    #[serde(default)]
    rechargeability: Value,
    #[serde(default)]
    packages: Vec<WirePackage>,
}

#[derive(Debug, Deserialize)]
struct WireCountry {
    country_code: String,
}

#[derive(Debug, Deserialize)]
struct WirePackage {
    id: String,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    amount: Value,
    #[serde(default)]
    day: Value,
    #[serde(default)]
    is_unlimited: Value,
    #[serde(default)]
    price: Value,
    #[serde(default)]
    net_price: Value,
}

#[derive(Debug, Deserialize)]
struct WireOrder {
    #[serde(default)]
    id: Value,
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    sims: Vec<WireSim>,
}

#[derive(Debug, Deserialize)]
struct WireSim {
    iccid: String,
    #[serde(default)]
    lpa: Option<String>,
    #[serde(default)]
    matching_id: Option<String>,
    #[serde(default)]
    qrcode: Option<String>,
    #[serde(default)]
    qrcode_url: Option<String>,
    #[serde(default)]
    direct_apple_installation_url: Option<String>,
    #[serde(default)]
    apn_value: Option<String>,
}

#[derive(Debug, Deserialize)]
struct WireAccepted {
    #[serde(default)]
    request_id: Value,
}

#[derive(Debug, Deserialize)]
struct WireUsage {
    #[serde(default)]
    remaining: Value,
    #[serde(default)]
    total: Value,
    #[serde(default)]
    expired_at: Option<String>,
    #[serde(default)]
    is_unlimited: Value,
    #[serde(default)]
    status: Option<String>,
}

#[derive(Debug, Deserialize)]
struct WireTopUp {
    #[serde(default)]
    id: Value,
    #[serde(default)]
    code: Option<String>,
}

// ---- Pure mappings ------------------------------------------------------------------------

fn is_success(status: u16) -> bool {
    (200..300).contains(&status)
}

fn protocol(error: AiraloProtocolError) -> ProviderError {
    ProviderError::Protocol(Box::new(error))
}

fn parse<T: DeserializeOwned>(body: &[u8], context: &'static str) -> Result<T, ProviderError> {
    serde_json::from_slice(body)
        .map_err(|source| protocol(AiraloProtocolError::Json { context, source }))
}

fn data_of<T: DeserializeOwned>(
    raw: &RawResponse,
    context: &'static str,
) -> Result<T, ProviderError> {
    parse::<Envelope<T>>(&raw.body, context).map(|envelope| envelope.data)
}

/// A failure of a request that is safe to repeat, after the plumbing's own retries.
fn read_failure(error: HttpError) -> ProviderError {
    match error {
        HttpError::Status { response } if response.status == 429 => ProviderError::RateLimited {
            retry_after: response.retry_after(),
        },
        other => ProviderError::Unavailable(Box::new(other)),
    }
}

/// Text of an id Airalo sends as a number or as a string.
fn id_text(value: &Value) -> Option<String> {
    match value {
        Value::Number(number) => Some(number.to_string()),
        Value::String(text) if !text.is_empty() => Some(text.clone()),
        _ => None,
    }
}

/// A flag Airalo sends as a boolean, a 0/1 number or text.
fn flag(value: &Value) -> bool {
    match value {
        Value::Bool(flag) => *flag,
        Value::Number(number) => number.as_f64().is_some_and(|n| n != 0.0),
        Value::String(text) => matches!(text.trim(), "1" | "true" | "yes"),
        _ => false,
    }
}

/// A whole number Airalo sends as an integer, a decimal or text; a fraction is dropped, as
/// megabytes and days are only ever reported whole.
fn whole_number(value: &Value) -> Option<u64> {
    let text = match value {
        Value::Number(number) => number.to_string(),
        Value::String(text) => text.trim().to_owned(),
        _ => return None,
    };
    decimal_to_scaled(&text, 0, true).and_then(|whole| u64::try_from(whole).ok())
}

/// Converts a non-negative decimal (`"4.49"`, `"13"`, `"1.5e1"`) into an integer count of
/// `10^-scale` units without floating point. With `truncate`, digits beyond the scale are
/// dropped; without it, a non-zero digit beyond the scale makes the conversion fail.
fn decimal_to_scaled(text: &str, scale: u32, truncate: bool) -> Option<i128> {
    let text = text.trim();
    let (mantissa, exponent) = match text.find(['e', 'E']) {
        Some(at) => (&text[..at], text[at + 1..].parse::<i32>().ok()?),
        None => (text, 0),
    };
    let mantissa = mantissa.strip_prefix('+').unwrap_or(mantissa);
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if whole.is_empty() && fraction.is_empty() {
        return None;
    }
    let digits: String = format!("{whole}{fraction}");
    if digits.len() > 30 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut value: i128 = if digits.is_empty() {
        0
    } else {
        digits.parse().ok()?
    };
    let fraction_len = i32::try_from(fraction.len()).ok()?;
    let shift = exponent
        .checked_sub(fraction_len)?
        .checked_add(i32::try_from(scale).ok()?)?;
    if shift >= 0 {
        let factor = 10_i128.checked_pow(u32::try_from(shift).ok()?)?;
        value = value.checked_mul(factor)?;
    } else {
        let factor = 10_i128.checked_pow(u32::try_from(-shift).ok()?)?;
        if !truncate && value % factor != 0 {
            return None;
        }
        value /= factor;
    }
    Some(value)
}

/// A price Airalo sends as a JSON number or text of US dollars, as [`Money`]. Numbers are read
/// from their shortest decimal text, which gives back exactly the digits Airalo wrote for any
/// price of up to 15 significant digits.
fn price_of(value: &Value) -> Result<Money, AiraloProtocolError> {
    let text = match value {
        Value::Number(number) => number.to_string(),
        Value::String(text) => text.trim().to_owned(),
        _ => {
            return Err(AiraloProtocolError::Field {
                context: "package",
                field: "price",
            });
        }
    };
    let currency = Currency::USD;
    decimal_to_scaled(&text, currency.minor_unit_exponent(), false)
        .and_then(|minor| i64::try_from(minor).ok())
        .map(|minor| Money::new(minor, currency))
        .ok_or(AiraloProtocolError::Price { text })
}

fn plan_of(
    provider: &ProviderId,
    listing: &WireListing,
    operator: &WireOperator,
    package: &WirePackage,
) -> Result<ProviderPlan, AiraloProtocolError> {
    let field = |field| AiraloProtocolError::Field {
        context: "package",
        field,
    };
    let price = if package.net_price.is_null() {
        &package.price
    } else {
        &package.net_price
    };
    let wholesale_price = price_of(price)?;
    let data = if flag(&package.is_unlimited) {
        DataAllowance::Unlimited
    } else {
        DataAllowance::Limited {
            mb: whole_number(&package.amount).ok_or_else(|| field("amount"))?,
        }
    };
    let validity_days = whole_number(&package.day)
        .and_then(|days| u32::try_from(days).ok())
        .ok_or_else(|| field("day"))?;
    let mut countries: Vec<CountryCode> = operator
        .countries
        .iter()
        .filter_map(|country| CountryCode::parse(&country.country_code).ok())
        .collect();
    if countries.is_empty()
        && let Some(code) = listing.country_code.as_deref()
    {
        countries.push(CountryCode::parse(code).map_err(|_| field("country_code"))?);
    }
    countries.sort();
    countries.dedup();
    if countries.is_empty() {
        return Err(field("countries"));
    }
    // Global listings (regions) have no country code of their own; their title names the
    // region.
    let region = match listing.country_code.as_deref() {
        Some(code) if !code.is_empty() => None,
        _ => listing.title.clone(),
    };
    let package_title = package.title.clone().unwrap_or_else(|| package.id.clone());
    let name = match &listing.title {
        Some(title) => format!("{title} {package_title}"),
        None => package_title,
    };
    Ok(ProviderPlan {
        plan_id: plan_id(provider, &package.id)?,
        provider: provider.clone(),
        provider_plan_code: package.id.clone(),
        name,
        coverage: Coverage { countries, region },
        data,
        validity_days,
        wholesale_price,
        supports_top_up: flag(&operator.rechargeability),
        network_speed: None,
    })
}

/// `<provider>:<package id>`, or a hash of the package id where that is too long or uses
/// characters ids do not allow.
fn plan_id(provider: &ProviderId, package_id: &str) -> Result<PlanId, AiraloProtocolError> {
    PlanId::parse(format!("{provider}:{package_id}"))
        .or_else(|_| {
            let digest = hex::encode(Sha256::digest(package_id.as_bytes()));
            PlanId::parse(format!("{provider}:h{}", &digest[..24]))
        })
        .map_err(AiraloProtocolError::Id)
}

fn profile_of(sim: WireSim) -> Result<ProvisionedProfile, AiraloProtocolError> {
    let field = |field| AiraloProtocolError::Field {
        context: "sim",
        field,
    };
    let iccid = Iccid::parse(sim.iccid.trim()).map_err(AiraloProtocolError::Id)?;
    let from_qr = sim
        .qrcode
        .as_deref()
        .and_then(|text| ActivationCode::parse(text.trim()).ok());
    let activation = match from_qr {
        Some(code) => code,
        None => {
            let matching_id = sim
                .matching_id
                .filter(|id| !id.is_empty())
                .ok_or_else(|| field("matching_id"))?;
            ActivationCode {
                smdp_address: sim.lpa.unwrap_or_default(),
                matching_id,
            }
        }
    };
    let non_empty = |text: Option<String>| text.filter(|t| !t.trim().is_empty());
    Ok(ProvisionedProfile {
        iccid,
        provider_profile_ref: None,
        activation,
        qr_code_url: non_empty(sim.qrcode_url),
        direct_install_url: non_empty(sim.direct_apple_installation_url),
        apn: non_empty(sim.apn_value),
    })
}

/// An order as Airalo lists it: provisioned when it carries SIMs, otherwise still pending.
/// The order's numeric id is its reference (the one `GET /v2/orders/{id}` takes).
fn outcome_of(order: WireOrder) -> Result<OrderOutcome, AiraloProtocolError> {
    let provider_order_ref =
        id_text(&order.id)
            .or(order.code)
            .ok_or(AiraloProtocolError::Field {
                context: "order",
                field: "id",
            })?;
    if order.sims.is_empty() {
        return Ok(OrderOutcome::Pending { provider_order_ref });
    }
    let profiles = order
        .sims
        .into_iter()
        .map(profile_of)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(OrderOutcome::Provisioned {
        provider_order_ref,
        profiles,
    })
}

/// Airalo's usage `status` on the one lifecycle. `NOT_ACTIVE` says only that the plan has not
/// started, so it maps to the least it implies; `UNKNOWN` and anything new map to nothing.
fn state_of_status(status: &str) -> Option<ProfileState> {
    match status.trim().to_ascii_uppercase().as_str() {
        "NOT_ACTIVE" => Some(ProfileState::Provisioned),
        "ACTIVE" => Some(ProfileState::Activated),
        "FINISHED" => Some(ProfileState::Depleted),
        "EXPIRED" => Some(ProfileState::Expired),
        _ => None,
    }
}

/// Airalo's timestamps: `2024-05-13 10:20:30` in UTC, or RFC 3339.
fn airalo_time(text: &str) -> Option<OffsetDateTime> {
    let text = text.trim();
    let format = format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    time::PrimitiveDateTime::parse(text, format)
        .map(time::PrimitiveDateTime::assume_utc)
        .ok()
        .or_else(|| {
            OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()
        })
}

fn usage_report(iccid: &Iccid, usage: WireUsage) -> Result<UsageReport, AiraloProtocolError> {
    let unlimited = flag(&usage.is_unlimited);
    let figure = |value: &Value, field| {
        if unlimited {
            Ok(None)
        } else {
            whole_number(value)
                .map(Some)
                .ok_or(AiraloProtocolError::Field {
                    context: "usage",
                    field,
                })
        }
    };
    let expires_at = match usage.expired_at.as_deref().filter(|t| !t.trim().is_empty()) {
        None => None,
        Some(text) => Some(airalo_time(text).ok_or(AiraloProtocolError::Field {
            context: "usage",
            field: "expired_at",
        })?),
    };
    Ok(UsageReport {
        iccid: iccid.clone(),
        remaining_mb: figure(&usage.remaining, "remaining")?,
        total_mb: figure(&usage.total, "total")?,
        expires_at,
        measured_at: None,
        state: usage.status.as_deref().and_then(state_of_status),
    })
}

/// The domain code of an Airalo error code, where the code says more than the HTTP status.
fn code_of_airalo(code: &str) -> Option<ErrorCode> {
    match code {
        "11" => Some(ErrorCode::InsufficientCredit),
        "13" => Some(ErrorCode::OperatorMaintenance),
        "33" | "34" => Some(ErrorCode::OutOfStock),
        // The operator does not sell top-ups for this eSIM: asking again will not help.
        "23" => Some(ErrorCode::InvalidRequest),
        // The ICCID was recycled: the profile we knew no longer exists for us.
        "73" => Some(ErrorCode::NotFound),
        "422" => Some(ErrorCode::InvalidRequest),
        "404" => Some(ErrorCode::NotFound),
        _ => None,
    }
}

fn code_of_status(status: u16) -> ErrorCode {
    match status {
        404 | 410 => ErrorCode::NotFound,
        409 => ErrorCode::Conflict,
        // Our credentials or permissions are refused: a configuration fault on our side.
        401 | 403 => ErrorCode::Internal,
        429 => ErrorCode::Throttled,
        500..=599 => ErrorCode::ProviderUnavailable,
        _ => ErrorCode::InvalidRequest,
    }
}

/// Maps a refusal (`{"code", "reason"}`, or Laravel's `{"data": {field: message}, "meta":
/// {"message"}}` validation body) onto the port's error; a body that is neither is a protocol
/// error.
fn rejection(status: u16, body: &[u8]) -> ProviderError {
    let value: Value = match serde_json::from_slice(body) {
        Ok(value @ Value::Object(_)) => value,
        Ok(_) => {
            return protocol(AiraloProtocolError::Status(status));
        }
        Err(source) => {
            return protocol(AiraloProtocolError::Json {
                context: "error",
                source,
            });
        }
    };
    let provider_code = id_text(&value["code"]).unwrap_or_else(|| status.to_string());
    let mut provider_message = value["reason"]
        .as_str()
        .or_else(|| value["meta"]["message"].as_str())
        .or_else(|| value["message"].as_str())
        .unwrap_or_default()
        .to_owned();
    if let Value::Object(fields) = &value["data"] {
        let details: Vec<String> = fields
            .iter()
            .filter_map(|(name, message)| message.as_str().map(|m| format!("{name}: {m}")))
            .collect();
        if !details.is_empty() {
            provider_message = format!("{provider_message} ({})", details.join("; "));
        }
    }
    let code = code_of_airalo(&provider_code).unwrap_or_else(|| code_of_status(status));
    ProviderError::Rejected {
        code,
        provider_code,
        provider_message,
    }
}

/// Whether `signature` is the HMAC-SHA512 of `body` under any of `secrets`. Every secret is
/// tried, and each comparison takes the same time wherever the bytes differ.
fn signature_matches(secrets: &[String], body: &[u8], signature: &[u8]) -> bool {
    let mut matched = subtle::Choice::from(0);
    for secret in secrets {
        let Ok(mut mac) = Hmac::<Sha512>::new_from_slice(secret.as_bytes()) else {
            continue;
        };
        mac.update(body);
        let expected = mac.finalize().into_bytes();
        matched |= expected.as_slice().ct_eq(signature);
    }
    matched.into()
}

#[derive(Debug, thiserror::Error)]
#[error("the Airalo webhook body is not a JSON object")]
struct NotAnObject;

/// Parses an authenticated webhook body. `received_at` stands in for the time of facts whose
/// body carries none.
fn parse_webhook(body: &[u8], received_at: OffsetDateTime) -> Result<WebhookEvent, WebhookError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|error| WebhookError::Malformed(Box::new(error)))?;
    if !value.is_object() {
        return Err(WebhookError::Malformed(Box::new(NotAnObject)));
    }
    let body_hash = || hex::encode(Sha256::digest(body));
    if let Some(request_id) = id_text(&value["request_id"]) {
        let fact = async_order_fact(&value, &request_id)?;
        return Ok(WebhookEvent {
            dedupe_key: request_id,
            facts: vec![fact],
        });
    }
    if let (Some(iccid), Some(_level)) = (value["iccid"].as_str(), value["level"].as_str()) {
        let iccid =
            Iccid::parse(iccid.trim()).map_err(|error| WebhookError::Malformed(Box::new(error)))?;
        // A low-data notice (75 % or 90 % used) or an expiry reminder (3 days or 1 day left)
        // means the plan is running: data was used, or the validity that starts on first use
        // is counting down. The body has no figures in megabytes and no time, so it yields the
        // state alone, dated when it was received, which is at or after the real activation.
        return Ok(WebhookEvent {
            dedupe_key: body_hash(),
            facts: vec![WebhookFact::ProfileState {
                iccid,
                state: ProfileState::Activated,
                at: received_at,
            }],
        });
    }
    // Airalo also sends notices the backend has no use for (credit limit warnings); they are
    // acknowledged with no facts so that Airalo stops retrying them.
    Ok(WebhookEvent {
        dedupe_key: body_hash(),
        facts: Vec::new(),
    })
}

fn async_order_fact(value: &Value, request_id: &str) -> Result<WebhookFact, WebhookError> {
    let data = &value["data"];
    if data.is_object() {
        let order: WireOrder = serde_json::from_value(data.clone())
            .map_err(|error| WebhookError::Malformed(Box::new(error)))?;
        let our_reference = order.description.clone();
        let profiles = order
            .sims
            .into_iter()
            .map(profile_of)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|error| WebhookError::Malformed(Box::new(error)))?;
        return Ok(WebhookFact::OrderCompleted {
            provider_order_ref: request_id.to_owned(),
            our_reference,
            profiles,
        });
    }
    let provider_code = id_text(&value["code"]).unwrap_or_default();
    let provider_reason = value["reason"]
        .as_str()
        .or_else(|| value["meta"]["message"].as_str())
        .unwrap_or_default()
        .to_owned();
    let code = code_of_airalo(&provider_code).unwrap_or(ErrorCode::ProviderUnavailable);
    Ok(WebhookFact::OrderFailed {
        provider_order_ref: request_id.to_owned(),
        code,
        provider_reason: if provider_code.is_empty() {
            provider_reason
        } else {
            format!("{provider_code}: {provider_reason}")
        },
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use time::macros::datetime;

    use super::*;

    fn sign(secret: &str, body: &[u8]) -> Vec<u8> {
        let mut mac = Hmac::<Sha512>::new_from_slice(secret.as_bytes()).expect("any key length");
        mac.update(body);
        mac.finalize().into_bytes().to_vec()
    }

    fn rejected(error: ProviderError) -> (ErrorCode, String, String) {
        match error {
            ProviderError::Rejected {
                code,
                provider_code,
                provider_message,
            } => (code, provider_code, provider_message),
            other => panic!("expected a rejection, got {other:?}"),
        }
    }

    #[test]
    fn prices_become_exact_cents() {
        let usd = |cents| Money::new(cents, Currency::USD);

        assert_eq!(price_of(&json!(4.49)).expect("price"), usd(449));
        assert_eq!(price_of(&json!(13)).expect("price"), usd(1300));
        assert_eq!(price_of(&json!(0.1)).expect("price"), usd(10));
        assert_eq!(price_of(&json!(0.29)).expect("price"), usd(29));
        assert_eq!(price_of(&json!(1.005e2)).expect("price"), usd(10050));
        assert_eq!(price_of(&json!("4.50")).expect("price"), usd(450));
        assert_eq!(price_of(&json!("12.300")).expect("price"), usd(1230));
    }

    #[test]
    fn prices_finer_than_a_cent_or_not_numbers_are_refused() {
        assert!(matches!(
            price_of(&json!(4.495)),
            Err(AiraloProtocolError::Price { .. })
        ));
        assert!(matches!(
            price_of(&json!("-1.00")),
            Err(AiraloProtocolError::Price { .. })
        ));
        assert!(matches!(
            price_of(&json!("4,50")),
            Err(AiraloProtocolError::Price { .. })
        ));
        assert!(matches!(
            price_of(&Value::Null),
            Err(AiraloProtocolError::Field { .. })
        ));
    }

    #[test]
    fn every_documented_error_code_maps_to_its_domain_code() {
        let cases = [
            (11, ErrorCode::InsufficientCredit),
            (13, ErrorCode::OperatorMaintenance),
            (23, ErrorCode::InvalidRequest),
            (33, ErrorCode::OutOfStock),
            (34, ErrorCode::OutOfStock),
            (73, ErrorCode::NotFound),
            (422, ErrorCode::InvalidRequest),
        ];

        for (airalo_code, expected) in cases {
            let body = json!({"code": airalo_code, "reason": "why"}).to_string();

            let (code, provider_code, message) = rejected(rejection(422, body.as_bytes()));

            assert_eq!(code, expected, "code {airalo_code}");
            assert_eq!(provider_code, airalo_code.to_string());
            assert_eq!(message, "why");
        }
    }

    #[test]
    fn validation_bodies_without_a_code_keep_the_field_messages() {
        let body = json!({
            "data": {"package_id": "The selected package id is invalid."},
            "meta": {"message": "the parameter is invalid"},
        })
        .to_string();

        let (code, provider_code, message) = rejected(rejection(422, body.as_bytes()));

        assert_eq!(code, ErrorCode::InvalidRequest);
        assert_eq!(provider_code, "422");
        assert_eq!(
            message,
            "the parameter is invalid (package_id: The selected package id is invalid.)"
        );
    }

    #[test]
    fn unknown_sims_are_not_found_and_unreadable_refusals_are_protocol_errors() {
        let not_found = json!({"code": 404, "reason": "no such SIM"}).to_string();

        let (code, _, _) = rejected(rejection(404, not_found.as_bytes()));
        let html = rejection(400, b"<html>bad request</html>");

        assert_eq!(code, ErrorCode::NotFound);
        assert!(matches!(html, ProviderError::Protocol(_)));
    }

    #[test]
    fn usage_status_words_map_onto_the_lifecycle() {
        assert_eq!(
            state_of_status("NOT_ACTIVE"),
            Some(ProfileState::Provisioned)
        );
        assert_eq!(state_of_status("ACTIVE"), Some(ProfileState::Activated));
        assert_eq!(state_of_status("FINISHED"), Some(ProfileState::Depleted));
        assert_eq!(state_of_status("EXPIRED"), Some(ProfileState::Expired));
        assert_eq!(state_of_status("UNKNOWN"), None);
        assert_eq!(state_of_status("SOMETHING_NEW"), None);
    }

    #[test]
    fn usage_reads_megabytes_and_airalo_timestamps() {
        let iccid = Iccid::parse("8988247000100000000").expect("iccid");
        let usage: WireUsage = serde_json::from_value(json!({
            "remaining": 734, "total": 1024, "expired_at": "2026-03-01 12:30:00",
            "is_unlimited": false, "status": "ACTIVE",
        }))
        .expect("usage shape");

        let report = usage_report(&iccid, usage).expect("report");

        assert_eq!(report.remaining_mb, Some(734));
        assert_eq!(report.total_mb, Some(1024));
        assert_eq!(report.expires_at, Some(datetime!(2026-03-01 12:30:00 UTC)));
        assert_eq!(report.state, Some(ProfileState::Activated));
    }

    #[test]
    fn unlimited_usage_has_no_figures() {
        let iccid = Iccid::parse("8988247000100000000").expect("iccid");
        let usage: WireUsage = serde_json::from_value(json!({
            "remaining": null, "total": null, "expired_at": null,
            "is_unlimited": true, "status": "NOT_ACTIVE",
        }))
        .expect("usage shape");

        let report = usage_report(&iccid, usage).expect("report");

        assert_eq!(report.remaining_mb, None);
        assert_eq!(report.total_mb, None);
        assert_eq!(report.expires_at, None);
        assert_eq!(report.state, Some(ProfileState::Provisioned));
    }

    #[test]
    fn a_signature_by_any_configured_secret_is_accepted() {
        let body = br#"{"iccid":"8988247000100000000","level":"75%"}"#;
        let secrets = vec!["old-secret".to_owned(), "new-secret".to_owned()];

        let by_old = signature_matches(&secrets, body, &sign("old-secret", body));
        let by_new = signature_matches(&secrets, body, &sign("new-secret", body));
        let by_other = signature_matches(&secrets, body, &sign("other-secret", body));
        let tampered = signature_matches(&secrets, b"{}", &sign("new-secret", body));
        let truncated = signature_matches(&secrets, body, &sign("new-secret", body)[..32]);

        assert!(by_old);
        assert!(by_new);
        assert!(!by_other);
        assert!(!tampered);
        assert!(!truncated);
    }

    #[test]
    fn an_async_order_result_yields_its_profiles_and_our_reference() {
        let body = json!({
            "request_id": "req-1",
            "data": {
                "id": 100001, "code": "20260101-abc", "description": "ref-1",
                "sims": [{
                    "iccid": "8988247000100000000", "lpa": "smdp.example",
                    "matching_id": "M-1", "qrcode": "LPA:1$smdp.example$M-1",
                    "qrcode_url": "https://qr.example/1", "apn_value": "globaldata",
                    "direct_apple_installation_url": "https://apple.example/1",
                }],
            },
        })
        .to_string();

        let event = parse_webhook(body.as_bytes(), datetime!(2026-01-01 0:00 UTC)).expect("parses");

        assert_eq!(event.dedupe_key, "req-1");
        assert_eq!(
            event.facts,
            vec![WebhookFact::OrderCompleted {
                provider_order_ref: "req-1".to_owned(),
                our_reference: Some("ref-1".to_owned()),
                profiles: vec![ProvisionedProfile {
                    iccid: Iccid::parse("8988247000100000000").expect("iccid"),
                    provider_profile_ref: None,
                    activation: ActivationCode {
                        smdp_address: "smdp.example".to_owned(),
                        matching_id: "M-1".to_owned(),
                    },
                    qr_code_url: Some("https://qr.example/1".to_owned()),
                    direct_install_url: Some("https://apple.example/1".to_owned()),
                    apn: Some("globaldata".to_owned()),
                }],
            }]
        );
    }

    #[test]
    fn a_failed_async_order_yields_the_mapped_code() {
        let body = json!({"request_id": "req-2", "data": null, "code": 33, "reason": "sold out"});

        let event = parse_webhook(body.to_string().as_bytes(), datetime!(2026-01-01 0:00 UTC))
            .expect("parses");

        assert_eq!(
            event.facts,
            vec![WebhookFact::OrderFailed {
                provider_order_ref: "req-2".to_owned(),
                code: ErrorCode::OutOfStock,
                provider_reason: "33: sold out".to_owned(),
            }]
        );
    }

    #[test]
    fn a_low_data_notice_says_the_plan_is_running_and_dedupes_by_body_hash() {
        let body = br#"{"iccid":"8988247000100000000","level":"90%","remaining_percentage":10}"#;
        let received = datetime!(2026-01-02 3:04:05 UTC);

        let event = parse_webhook(body, received).expect("parses");

        assert_eq!(event.dedupe_key, hex::encode(Sha256::digest(body)));
        assert_eq!(
            event.facts,
            vec![WebhookFact::ProfileState {
                iccid: Iccid::parse("8988247000100000000").expect("iccid"),
                state: ProfileState::Activated,
                at: received,
            }]
        );
    }

    #[test]
    fn decimals_convert_without_floats() {
        assert_eq!(decimal_to_scaled("4.49", 2, false), Some(449));
        assert_eq!(decimal_to_scaled("4.495", 2, false), None);
        assert_eq!(decimal_to_scaled("4.495", 2, true), Some(449));
        assert_eq!(decimal_to_scaled("1e-2", 2, false), Some(1));
        assert_eq!(decimal_to_scaled("2.5E3", 0, false), Some(2500));
        assert_eq!(decimal_to_scaled(".5", 2, false), Some(50));
        assert_eq!(decimal_to_scaled("", 2, false), None);
        assert_eq!(decimal_to_scaled("1.2.3", 2, false), None);
    }

    #[test]
    fn config_debug_redacts_every_secret() {
        let config = AiraloConfig {
            base_url: "https://partners.example".to_owned(),
            client_id: "client".to_owned(),
            client_secret: "very-secret".to_owned(),
            webhook_secrets: vec!["hook-secret".to_owned()],
            async_order_webhook_url: None,
            http: HttpSettings::default(),
        };

        let printed = format!("{config:?}");

        assert!(!printed.contains("very-secret"));
        assert!(!printed.contains("hook-secret"));
        assert!(printed.contains("client"));
    }
}
