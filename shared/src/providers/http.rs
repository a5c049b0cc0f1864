//! HTTP plumbing shared by the provider adapters: one client with connect and request
//! timeouts, a token-bucket rate limiter per provider, retries with jittered exponential
//! backoff for requests that are safe to repeat, `Retry-After` on 429 and 503, and the
//! classification that lets an adapter tell "never sent" from "sent, answer lost".

use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::Rng;
use reqwest::header::{HeaderMap, RETRY_AFTER};

/// Timeouts, retry and rate-limit settings of one provider's HTTP client.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpSettings {
    /// Time allowed to open a connection.
    pub connect_timeout: Duration,
    /// Time allowed for a whole request, answer included.
    pub request_timeout: Duration,
    /// Attempts in all for a request that is safe to repeat (1 means no retry).
    pub max_attempts: u32,
    /// First backoff delay; doubles on each retry, with jitter.
    pub base_backoff: Duration,
    /// Longest backoff delay.
    pub max_backoff: Duration,
    /// Longest `Retry-After` the client waits out itself; a longer one is handed to the caller.
    pub max_retry_after: Duration,
    /// Sustained request rate allowed towards the provider.
    pub requests_per_second: f64,
    /// Requests allowed in a burst above the sustained rate.
    pub burst: u32,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(3),
            request_timeout: Duration::from_secs(20),
            max_attempts: 3,
            base_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(3),
            max_retry_after: Duration::from_secs(5),
            requests_per_second: 5.0,
            burst: 5,
        }
    }
}

/// Whether a request may be repeated without effect on the provider's side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Safety {
    /// Reads and token calls: retried on transport errors, 5xx, 429 and 503.
    Idempotent,
    /// Orders and top-ups: retried only when the connection could not even be opened, because
    /// anything later may have reached the provider.
    Unsafe,
}

/// A provider's answer, read completely.
#[derive(Debug, Clone)]
pub struct RawResponse {
    /// The HTTP status.
    pub status: u16,
    /// The headers.
    pub headers: HeaderMap,
    /// The body.
    pub body: Bytes,
}

impl RawResponse {
    /// The `Retry-After` delay, when the header holds whole seconds.
    pub fn retry_after(&self) -> Option<Duration> {
        retry_after(&self.headers)
    }
}

/// Why a request produced no usable answer.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The request could not be built (a bad base URL in the configuration).
    #[error("failed to build the provider request; check the provider base URL")]
    Build(#[source] reqwest::Error),
    /// No connection could be opened: the request never reached the provider.
    #[error("failed to connect to the provider")]
    Connect(#[source] reqwest::Error),
    /// The request was sent (or may have been) and no complete answer came back.
    #[error("the provider's answer was lost")]
    Lost(#[source] reqwest::Error),
    /// The provider answered with a status the caller must interpret (only 429 and 5xx are
    /// returned this way; other statuses come back as a [`RawResponse`]).
    #[error("the provider answered HTTP {}", .response.status)]
    Status {
        /// The answer.
        response: RawResponse,
    },
}

impl HttpError {
    /// True when the provider may have processed the request although we have no answer:
    /// a lost answer, or a gateway error (500, 502, 504) that can follow a commit.
    pub fn may_have_committed(&self) -> bool {
        match self {
            HttpError::Build(_) | HttpError::Connect(_) => false,
            HttpError::Lost(_) => true,
            HttpError::Status { response } => matches!(response.status, 500 | 502 | 504),
        }
    }
}

/// A token bucket: `rate` requests a second on average, up to `burst` at once.
#[derive(Debug)]
pub struct RateLimiter {
    rate: f64,
    burst: f64,
    bucket: Mutex<(f64, Instant)>,
}

impl RateLimiter {
    /// A full bucket.
    pub fn new(requests_per_second: f64, burst: u32) -> Self {
        let rate = if requests_per_second.is_finite() && requests_per_second > 0.0 {
            requests_per_second
        } else {
            1.0
        };
        let burst = f64::from(burst.max(1));
        Self {
            rate,
            burst,
            bucket: Mutex::new((burst, Instant::now())),
        }
    }

    /// Waits until a request may go.
    pub async fn acquire(&self) {
        loop {
            let wait = {
                let mut bucket = self.bucket.lock().unwrap_or_else(|p| p.into_inner());
                let now = Instant::now();
                let refill = now.duration_since(bucket.1).as_secs_f64() * self.rate;
                bucket.0 = (bucket.0 + refill).min(self.burst);
                bucket.1 = now;
                if bucket.0 >= 1.0 {
                    bucket.0 -= 1.0;
                    return;
                }
                Duration::from_secs_f64((1.0 - bucket.0) / self.rate)
            };
            tokio::time::sleep(wait).await;
        }
    }
}

/// One provider's HTTP client: timeouts, rate limit and retry policy in one place.
#[derive(Debug)]
pub struct ProviderHttp {
    provider: String,
    client: reqwest::Client,
    limiter: RateLimiter,
    settings: HttpSettings,
}

impl ProviderHttp {
    /// Builds the client; `provider` names it in logs.
    pub fn new(provider: &str, settings: HttpSettings) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .connect_timeout(settings.connect_timeout)
            .timeout(settings.request_timeout)
            .build()?;
        Ok(Self {
            provider: provider.to_owned(),
            limiter: RateLimiter::new(settings.requests_per_second, settings.burst),
            client,
            settings,
        })
    }

    /// Sends a request built by `build` (called once per attempt, so that signatures and
    /// timestamps are fresh) and reads the whole answer.
    ///
    /// Statuses below 500 other than 429 come back as `Ok`, for the adapter to interpret.
    /// Idempotent requests are retried on connection errors, lost answers, 429, and 5xx;
    /// unsafe ones only when no connection could be opened.
    pub async fn send(
        &self,
        safety: Safety,
        build: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    ) -> Result<RawResponse, HttpError> {
        let attempts = self.settings.max_attempts.max(1);
        let mut attempt = 1;
        loop {
            self.limiter.acquire().await;
            let outcome = self.attempt(&build).await;
            let retry_in = match &outcome {
                Ok(_) => None,
                Err(HttpError::Build(_)) => None,
                Err(HttpError::Connect(_)) => Some(self.backoff(attempt)),
                Err(HttpError::Lost(_)) => {
                    (safety == Safety::Idempotent).then(|| self.backoff(attempt))
                }
                Err(HttpError::Status { response }) => match safety {
                    Safety::Unsafe => None,
                    Safety::Idempotent => match response.retry_after() {
                        Some(wait) if wait > self.settings.max_retry_after => None,
                        Some(wait) => Some(wait),
                        None => Some(self.backoff(attempt)),
                    },
                },
            };
            match (outcome, retry_in) {
                (Err(error), Some(wait)) if attempt < attempts => {
                    tracing::warn!(
                        provider = %self.provider,
                        attempt,
                        wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                        error = %error,
                        "retrying provider request"
                    );
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                (outcome, _) => return outcome,
            }
        }
    }

    async fn attempt(
        &self,
        build: &impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    ) -> Result<RawResponse, HttpError> {
        let request = build(&self.client).build().map_err(HttpError::Build)?;
        let response = self.client.execute(request).await.map_err(|error| {
            if error.is_connect() {
                HttpError::Connect(error)
            } else {
                HttpError::Lost(error)
            }
        })?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.bytes().await.map_err(HttpError::Lost)?;
        let raw = RawResponse {
            status,
            headers,
            body,
        };
        if status == 429 || status >= 500 {
            return Err(HttpError::Status { response: raw });
        }
        Ok(raw)
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let exponent = attempt.saturating_sub(1).min(16);
        let ceiling = self
            .settings
            .base_backoff
            .saturating_mul(1 << exponent)
            .min(self.settings.max_backoff);
        // Full jitter in the upper half keeps clients that failed together from retrying
        // together.
        let factor = rand::rng().random_range(0.5..=1.0);
        ceiling.mul_f64(factor)
    }
}

/// Parses `Retry-After` given in whole seconds (the HTTP-date form is not used by these
/// providers and is ignored).
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use reqwest::header::HeaderValue;

    use super::*;

    #[test]
    fn retry_after_reads_whole_seconds_only() {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        let mut dated = HeaderMap::new();
        dated.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );

        assert_eq!(retry_after(&headers), Some(Duration::from_secs(7)));
        assert_eq!(retry_after(&dated), None);
        assert_eq!(retry_after(&HeaderMap::new()), None);
    }

    #[test]
    fn backoff_grows_and_stays_under_the_cap() {
        let http = ProviderHttp::new("test", HttpSettings::default()).expect("client");

        let first = http.backoff(1);
        let late = http.backoff(10);

        assert!(first <= Duration::from_millis(200));
        assert!(first >= Duration::from_millis(100));
        assert!(late <= Duration::from_secs(3));
        assert!(late >= Duration::from_millis(1500));
    }

    #[tokio::test]
    async fn rate_limiter_spaces_requests_beyond_the_burst() {
        let limiter = RateLimiter::new(50.0, 2);
        let started = Instant::now();

        for _ in 0..4 {
            limiter.acquire().await;
        }

        assert!(started.elapsed() >= Duration::from_millis(35));
    }

    #[test]
    fn gateway_errors_and_lost_answers_may_have_committed() {
        let status = |status| HttpError::Status {
            response: RawResponse {
                status,
                headers: HeaderMap::new(),
                body: Bytes::new(),
            },
        };

        assert!(status(502).may_have_committed());
        assert!(status(504).may_have_committed());
        assert!(!status(503).may_have_committed());
        assert!(!status(429).may_have_committed());
    }
}
