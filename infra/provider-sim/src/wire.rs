//! Wire helpers shared by both simulated APIs: the providers' timestamp formats, money as JSON
//! numbers, request bodies in form or JSON encoding, and responses lost after a commit.

use axum::body::{Body, Bytes};
use axum::extract::{Form, FromRequest, Json, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use time::OffsetDateTime;
use time::macros::format_description;

use crate::knobs::LoseMode;

/// Airalo's timestamp format: `2024-05-13 10:20:30` (UTC).
pub fn airalo_time(at: OffsetDateTime) -> String {
    at.format(format_description!(
        "[year]-[month]-[day] [hour]:[minute]:[second]"
    ))
    .unwrap_or_default()
}

/// eSIM Access's timestamp format: `2024-05-13T10:20:30+0000`.
pub fn esim_access_time(at: OffsetDateTime) -> String {
    at.format(format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second]+0000"
    ))
    .unwrap_or_default()
}

/// US cents as a JSON number of dollars (Airalo sends prices as decimal numbers).
pub fn dollars(cents: u64) -> serde_json::Value {
    serde_json::Number::from_f64(cents as f64 / 100.0)
        .map(serde_json::Value::Number)
        .unwrap_or(serde_json::Value::Null)
}

/// A number that may arrive as a JSON number or as text (form fields are always text).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Flexible {
    Number(u64),
    Text(String),
}

impl Flexible {
    /// The value as an integer, if it is one.
    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Self::Number(n) => Some(*n),
            Self::Text(text) => text.trim().parse().ok(),
        }
    }
}

/// Reads a body sent as JSON (`application/json`) or as a form (anything else), the two
/// encodings Airalo accepts; the error is the rejection text.
pub async fn form_or_json<T: DeserializeOwned>(request: Request) -> Result<T, String> {
    let is_json = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/json"));
    if is_json {
        Json::<T>::from_request(request, &())
            .await
            .map(|Json(value)| value)
            .map_err(|rejection| rejection.body_text())
    } else {
        Form::<T>::from_request(request, &())
            .await
            .map(|Form(value)| value)
            .map_err(|rejection| rejection.body_text())
    }
}

/// The answer to a request whose order was committed but whose response is lost.
pub fn lost_response(mode: LoseMode) -> Response {
    match mode {
        LoseMode::BadGateway => (
            StatusCode::BAD_GATEWAY,
            [(header::CONTENT_TYPE, HeaderValue::from_static("text/html"))],
            "<html><body><h1>502 Bad Gateway</h1></body></html>",
        )
            .into_response(),
        LoseMode::DropConnection => {
            // A body that fails on its first chunk makes the server abort the connection
            // before a complete response is written, as when a proxy or the network drops it.
            let broken = futures::stream::once(async {
                Err::<Bytes, std::io::Error>(std::io::Error::other("connection dropped"))
            });
            Response::builder()
                .status(StatusCode::OK)
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from_stream(broken))
                .unwrap_or_else(|_| StatusCode::BAD_GATEWAY.into_response())
        }
    }
}

/// A response with a `Retry-After` header.
pub fn with_retry_after(mut response: Response, seconds: u64) -> Response {
    if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn timestamps_use_each_provider_format() {
        let at = datetime!(2024-05-13 10:20:30 UTC);

        assert_eq!(airalo_time(at), "2024-05-13 10:20:30");
        assert_eq!(esim_access_time(at), "2024-05-13T10:20:30+0000");
    }

    #[test]
    fn cents_become_decimal_dollars() {
        assert_eq!(dollars(449).to_string(), "4.49");
    }

    #[test]
    fn flexible_numbers_accept_text() {
        assert_eq!(Flexible::Text(" 3 ".to_owned()).as_u64(), Some(3));
        assert_eq!(Flexible::Number(2).as_u64(), Some(2));
        assert_eq!(Flexible::Text("x".to_owned()).as_u64(), None);
    }
}
