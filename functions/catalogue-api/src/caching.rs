//! HTTP caching of catalogue answers: a weak `ETag` over the content (prices included, so it
//! differs per tenant), `Cache-Control: private` for as long as a warm container would answer
//! from memory, `Age` on stale answers, `304 Not Modified` for a matching `If-None-Match`,
//! and rendered answers kept in memory on warm containers.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use esim_shared::catalogue::Freshness;
use esim_shared::domain::DomainError;
use esim_shared::domain::ids::TenantId;
use esim_shared::http::{ApiRequest, ApiResponse};
use esim_shared::ports::Clock;
use lambda_http::http::{HeaderValue, StatusCode, header};
use serde_json::Value;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

/// The weak entity tag of `content` served with `freshness`. The age is left out: it grows
/// every second while the content stays the same.
pub fn entity_tag(content: &Value, freshness: Freshness) -> String {
    let mut hasher = Sha256::new();
    hasher.update(content.to_string().as_bytes());
    hasher.update(if freshness.stale { b"s" } else { b"f" });
    let digest = hasher.finalize();
    format!("W/\"{}\"", hex::encode(&digest[..16]))
}

/// True when an `If-None-Match` header value matches `tag` by weak comparison.
pub fn matches(if_none_match: &str, tag: &str) -> bool {
    let opaque = |t: &str| t.trim().trim_start_matches("W/").to_owned();
    let wanted = opaque(tag);
    if_none_match
        .split(',')
        .any(|candidate| candidate.trim() == "*" || opaque(candidate) == wanted)
}

/// A catalogue answer rendered once: its body, tag and caching headers. Warm containers
/// keep it in a [`RenderedCache`] so that a repeated request costs neither pricing nor
/// serialisation.
#[derive(Debug, Clone)]
pub struct Rendered {
    body: Arc<[u8]>,
    etag: HeaderValue,
    cache_control: HeaderValue,
    age: Option<HeaderValue>,
}

impl Rendered {
    /// Renders `content` plus the `stale` and `age_seconds` fields.
    pub fn new(
        content: Value,
        freshness: Freshness,
        max_age_seconds: u64,
    ) -> Result<Self, DomainError> {
        let value = |text: String| HeaderValue::from_str(&text).map_err(DomainError::internal);
        let etag = value(entity_tag(&content, freshness))?;
        let cache_control = value(if freshness.stale {
            "private, max-age=0, must-revalidate".to_owned()
        } else {
            format!("private, max-age={max_age_seconds}")
        })?;
        let age = freshness
            .stale
            .then(|| value(freshness.age_seconds.to_string()))
            .transpose()?;
        let mut body = content;
        if let Value::Object(fields) = &mut body {
            fields.insert("stale".to_owned(), Value::Bool(freshness.stale));
            fields.insert("age_seconds".to_owned(), freshness.age_seconds.into());
        }
        let body = serde_json::to_vec(&body).map_err(DomainError::internal)?;
        Ok(Self {
            body: body.into(),
            etag,
            cache_control,
            age,
        })
    }

    /// The answer to `request`: 304 with no body when its `If-None-Match` matches, otherwise
    /// 200 with the body.
    pub fn answer(&self, request: &ApiRequest) -> ApiResponse {
        let not_modified = request
            .header("if-none-match")
            .zip(self.etag.to_str().ok())
            .is_some_and(|(wanted, tag)| matches(wanted, tag));
        let (status, body) = if not_modified {
            (StatusCode::NOT_MODIFIED, Vec::new())
        } else {
            (StatusCode::OK, self.body.to_vec())
        };
        let mut headers = vec![
            (header::ETAG, self.etag.clone()),
            (header::CACHE_CONTROL, self.cache_control.clone()),
        ];
        if let Some(age) = &self.age {
            headers.push((header::AGE, age.clone()));
        }
        ApiResponse {
            status,
            headers,
            content_type: "application/json",
            body,
        }
    }
}

/// Rendered answers by tenant and request, for as long as the catalogue answers from memory;
/// the same staleness bound as the catalogue's own memory. Cleared when it grows past
/// [`RenderedCache::MAX_ENTRIES`], so a stream of distinct filters cannot exhaust memory.
#[derive(Debug)]
pub struct RenderedCache {
    ttl: time::Duration,
    clock: Arc<dyn Clock>,
    entries: Mutex<HashMap<String, (OffsetDateTime, Rendered)>>,
}

impl RenderedCache {
    /// How many answers are kept at most.
    pub const MAX_ENTRIES: usize = 10_000;

    /// A cache keeping answers for `ttl`; a zero `ttl` keeps nothing.
    pub fn new(ttl: std::time::Duration, clock: Arc<dyn Clock>) -> Self {
        Self {
            ttl: time::Duration::try_from(ttl).unwrap_or(time::Duration::ZERO),
            clock,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The key of a request for a tenant: path and query parameters in name order.
    pub fn key(tenant_id: &TenantId, request: &ApiRequest) -> String {
        let mut query: Vec<_> = request.query.iter().collect();
        query.sort();
        let mut key = format!("{tenant_id} {}", request.path);
        for (name, value) in query {
            key.push_str(&format!(" {name}={value}"));
        }
        key
    }

    /// The rendered answer for `key`, while it is younger than the TTL.
    pub fn get(&self, key: &str) -> Option<Rendered> {
        let now = self.clock.now();
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries
            .get(key)
            .filter(|(at, _)| now - *at < self.ttl)
            .map(|(_, rendered)| rendered.clone())
    }

    /// Keeps `rendered` under `key`. A stale answer is not kept: the next request should see
    /// the refresh as soon as a provider answers again.
    pub fn put(&self, key: String, rendered: &Rendered) {
        if self.ttl.is_zero() || rendered.age.is_some() {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= Self::MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(key, (self.clock.now(), rendered.clone()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_tag_ignores_the_age_but_not_the_content_or_staleness() {
        let content = json!({"plans": [{"price": 499}]});
        let fresh = Freshness {
            stale: false,
            age_seconds: 1,
        };
        let older = Freshness {
            stale: false,
            age_seconds: 90,
        };
        let stale = Freshness {
            stale: true,
            age_seconds: 90,
        };

        let tag = entity_tag(&content, fresh);

        assert_eq!(tag, entity_tag(&content, older));
        assert_ne!(tag, entity_tag(&content, stale));
        assert_ne!(tag, entity_tag(&json!({"plans": [{"price": 599}]}), fresh));
        assert!(tag.starts_with("W/\""));
    }

    fn api_request(if_none_match: Option<&str>) -> ApiRequest {
        let mut builder = lambda_http::http::Request::builder().uri("/v1/plans?country=JP");
        if let Some(tag) = if_none_match {
            builder = builder.header("if-none-match", tag);
        }
        let request = builder.body(lambda_http::Body::Empty).expect("request");
        ApiRequest::from_lambda(request)
    }

    fn fresh() -> Freshness {
        Freshness {
            stale: false,
            age_seconds: 3,
        }
    }

    #[test]
    fn a_rendered_answer_is_304_for_its_own_tag_and_200_otherwise() {
        let rendered = Rendered::new(json!({"plans": []}), fresh(), 30).expect("rendered");
        let tag = rendered.etag.to_str().expect("text").to_owned();

        let full = rendered.answer(&api_request(None));
        let not_modified = rendered.answer(&api_request(Some(&tag)));

        assert_eq!(full.status, StatusCode::OK);
        let body: Value = serde_json::from_slice(&full.body).expect("json");
        assert_eq!(body, json!({"plans": [], "stale": false, "age_seconds": 3}));
        assert_eq!(not_modified.status, StatusCode::NOT_MODIFIED);
        assert!(not_modified.body.is_empty());
        let header = |response: &ApiResponse, name: &header::HeaderName| {
            response
                .headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.to_str().expect("text").to_owned())
        };
        assert_eq!(header(&not_modified, &header::ETAG), Some(tag));
        assert_eq!(
            header(&full, &header::CACHE_CONTROL).as_deref(),
            Some("private, max-age=30")
        );
        assert_eq!(header(&full, &header::AGE), None);
    }

    #[test]
    fn the_cache_keeps_fresh_answers_for_its_ttl_and_never_stale_ones() {
        let clock = Arc::new(esim_shared::testing::FixedClock::default());
        let cache = RenderedCache::new(std::time::Duration::from_secs(30), clock.clone());
        let stale = Freshness {
            stale: true,
            age_seconds: 900,
        };
        let fresh_answer = Rendered::new(json!({"plans": [1]}), fresh(), 30).expect("rendered");
        let stale_answer = Rendered::new(json!({"plans": [2]}), stale, 30).expect("rendered");

        cache.put("a".to_owned(), &fresh_answer);
        cache.put("b".to_owned(), &stale_answer);
        let within = cache.get("a");
        clock.advance(time::Duration::seconds(30));
        let after = cache.get("a");

        assert!(within.is_some());
        assert!(after.is_none());
        assert!(cache.get("b").is_none());
        let age = stale_answer.answer(&api_request(None));
        assert!(
            age.headers
                .iter()
                .any(|(n, v)| n == header::AGE && v == "900")
        );
    }

    #[test]
    fn if_none_match_compares_weakly_and_accepts_lists_and_star() {
        let tag = "W/\"abc\"";

        assert!(matches("W/\"abc\"", tag));
        assert!(matches("\"abc\"", tag));
        assert!(matches("\"x\", W/\"abc\"", tag));
        assert!(matches("*", tag));
        assert!(!matches("W/\"abd\"", tag));
    }
}
