//! Responses, and the one place errors become HTTP: 4xx with the precise sentence and no
//! error log, 5xx with a generic sentence and the detail logged under the support reference.

use http::{HeaderName, HeaderValue, StatusCode};
use lambda_http::{Body, Response};
use serde::Serialize;
use serde_json::json;

use crate::domain::DomainError;

/// A successful response before it becomes a Lambda response.
#[derive(Debug, Clone)]
pub struct ApiResponse {
    /// The status code.
    pub status: StatusCode,
    /// Extra headers.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// The content type.
    pub content_type: &'static str,
    /// The body.
    pub body: Vec<u8>,
}

impl ApiResponse {
    /// A JSON response.
    pub fn json(status: StatusCode, value: &impl Serialize) -> Result<Self, DomainError> {
        let body = serde_json::to_vec(value).map_err(DomainError::internal)?;
        Ok(Self {
            status,
            headers: Vec::new(),
            content_type: "application/json",
            body,
        })
    }

    /// Adds a header.
    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }

    /// The Lambda response.
    pub fn into_lambda(self) -> Response<Body> {
        let mut builder = Response::builder()
            .status(self.status)
            .header(http::header::CONTENT_TYPE, self.content_type);
        for (name, value) in self.headers {
            builder = builder.header(name, value);
        }
        let body = if self.body.is_empty() {
            Body::Empty
        } else {
            Body::Binary(self.body)
        };
        builder.body(body).unwrap_or_else(|_| plain_500())
    }
}

fn plain_500() -> Response<Body> {
    let mut response = Response::new(Body::Text(
        concat!(
            r#"{"error":{"code":"internal","#,
            r#""message":"Something went wrong on our side.","retryable":true}}"#
        )
        .to_owned(),
    ));
    *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
    response
}

/// The error body every route answers with:
/// `{"error": {"code", "message", "retryable", "support_reference"}}`.
pub fn error_response(error: &DomainError, support_reference: &str) -> Response<Body> {
    let status =
        StatusCode::from_u16(error.code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let message = if status.is_server_error() {
        tracing::error!(
            support_reference,
            code = %error.code,
            error = %error,
            cause = ?error.source,
            "request failed"
        );
        error.code.default_message().to_owned()
    } else {
        tracing::info!(
            support_reference,
            code = %error.code,
            status = status.as_u16(),
            "request refused"
        );
        error.message.clone()
    };
    let body = json!({
        "error": {
            "code": error.code.as_str(),
            "message": message,
            "retryable": error.retryable(),
            "support_reference": support_reference,
        }
    });
    let mut response = ApiResponse::json(status, &body)
        .map(ApiResponse::into_lambda)
        .unwrap_or_else(|_| plain_500());
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            http::header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer"),
        );
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ErrorCode;

    fn body_of(response: &Response<Body>) -> serde_json::Value {
        serde_json::from_slice(response.body().as_ref()).expect("json body")
    }

    #[test]
    fn client_errors_carry_their_precise_message() {
        let error = DomainError::invalid("field quantity: must be 1 to 10");

        let response = error_response(&error, "ref-1");

        assert_eq!(response.status(), 400);
        let body = body_of(&response);
        assert_eq!(body["error"]["code"], "invalid_request");
        assert_eq!(body["error"]["message"], "field quantity: must be 1 to 10");
        assert_eq!(body["error"]["retryable"], false);
        assert_eq!(body["error"]["support_reference"], "ref-1");
    }

    #[test]
    fn server_errors_never_carry_internals() {
        let error = DomainError::with_message(ErrorCode::Internal, "table esim-prod timed out");

        let response = error_response(&error, "ref-2");

        assert_eq!(response.status(), 500);
        let text = body_of(&response).to_string();
        assert!(!text.contains("esim-prod"), "{text}");
        assert!(text.contains("support reference"));
    }
}
