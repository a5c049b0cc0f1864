//! A parsed API request, and strict JSON body parsing that names the offending field.

use std::collections::HashMap;
use std::net::IpAddr;

use http::{HeaderMap, Method};
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt};
use serde::de::DeserializeOwned;

use super::router::PathParams;
use crate::domain::ids::TenantId;
use crate::domain::{DomainError, ErrorCode};

/// The largest request body accepted, in bytes.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// One request, with what routing and authentication found out about it.
#[derive(Debug)]
pub struct ApiRequest {
    /// The method.
    pub method: Method,
    /// The path, without query.
    pub path: String,
    /// Captured `{name}` segments.
    pub params: PathParams,
    /// Query parameters (the first value of each).
    pub query: HashMap<String, String>,
    /// The headers.
    pub headers: HeaderMap,
    /// The raw body.
    pub body: Vec<u8>,
    /// The id support quotes to find this request in the logs.
    pub support_reference: String,
    /// The sender's address as API Gateway saw it.
    pub source_ip: Option<IpAddr>,
    /// The authenticated tenant, on tenant routes.
    pub tenant: Option<TenantId>,
}

impl ApiRequest {
    /// Takes a Lambda HTTP request apart.
    pub fn from_lambda(request: Request) -> Self {
        let (support_reference, source_ip) = match request.request_context_ref() {
            Some(RequestContext::ApiGatewayV2(ctx)) => (
                ctx.request_id.clone(),
                ctx.http.source_ip.as_deref().and_then(|ip| ip.parse().ok()),
            ),
            _ => (None, None),
        };
        let support_reference = support_reference
            .or_else(|| request.lambda_context_ref().map(|c| c.request_id.clone()))
            .filter(|r| !r.is_empty())
            .unwrap_or_else(|| ulid::Ulid::new().to_string());
        let (parts, body) = request.into_parts();
        let query = parts
            .uri
            .query()
            .map(|q| {
                let mut map = HashMap::new();
                for (k, v) in form_urlencoded::parse(q.as_bytes()) {
                    map.entry(k.into_owned()).or_insert_with(|| v.into_owned());
                }
                map
            })
            .unwrap_or_default();
        let body = match body {
            Body::Empty => Vec::new(),
            Body::Text(text) => text.into_bytes(),
            Body::Binary(bytes) => bytes,
            _ => Vec::new(),
        };
        Self {
            method: parts.method,
            path: parts.uri.path().to_owned(),
            params: PathParams::default(),
            query,
            headers: parts.headers,
            body,
            support_reference,
            source_ip,
            tenant: None,
        }
    }

    /// A header's value, when it is present and valid text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The authenticated tenant. Only tenant routes have one.
    pub fn tenant(&self) -> Result<&TenantId, DomainError> {
        self.tenant
            .as_ref()
            .ok_or_else(|| DomainError::new(ErrorCode::Unauthorized))
    }

    /// A path segment captured by the route template.
    pub fn param(&self, name: &str) -> Result<&str, DomainError> {
        self.params
            .get(name)
            .ok_or_else(|| DomainError::invalid(format!("path parameter {name} is missing")))
    }

    /// Refuses bodies over [`MAX_BODY_BYTES`].
    pub fn enforce_body_limit(&self) -> Result<(), DomainError> {
        if self.body.len() > MAX_BODY_BYTES {
            return Err(DomainError::invalid(format!(
                "request body is {} bytes; the limit is {MAX_BODY_BYTES} bytes",
                self.body.len()
            )));
        }
        Ok(())
    }

    /// Parses the body as JSON into `T`, strictly: wrong types, missing fields and (for
    /// types that deny them) unknown fields are a 400 naming the field.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, DomainError> {
        parse_json(&self.body)
    }
}

/// Parses a JSON body, naming the field at fault in the error.
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, DomainError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(DomainError::invalid(
            "request body is empty; send a JSON object",
        ));
    }
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        let message = if inner.is_syntax() || inner.is_eof() {
            format!("request body is not valid JSON: {inner}")
        } else if path == "." {
            format!("request body: {inner}")
        } else {
            format!("field {path}: {inner}")
        };
        DomainError::invalid(message)
    })?;
    deserializer
        .end()
        .map_err(|e| DomainError::invalid(format!("request body has trailing data: {e}")))?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::order::CreateOrderRequest;

    #[test]
    fn names_the_field_with_the_wrong_type() {
        let body =
            br#"{"customer_id":"c1","plan_id":"p1","quantity":"two","payment_method_ref":"pm"}"#;

        let error = parse_json::<CreateOrderRequest>(body).expect_err("wrong type");

        assert_eq!(error.code, ErrorCode::InvalidRequest);
        assert!(error.message.contains("quantity"), "{}", error.message);
    }

    #[test]
    fn names_unknown_and_missing_fields() {
        let unknown =
            br#"{"customer_id":"c1","plan_id":"p1","payment_method_ref":"pm","tenant_id":"x"}"#;
        let missing = br#"{"customer_id":"c1","payment_method_ref":"pm"}"#;

        let unknown = parse_json::<CreateOrderRequest>(unknown).expect_err("unknown field");
        let missing = parse_json::<CreateOrderRequest>(missing).expect_err("missing field");

        assert!(unknown.message.contains("tenant_id"), "{}", unknown.message);
        assert!(missing.message.contains("plan_id"), "{}", missing.message);
    }

    #[test]
    fn reports_malformed_json_and_empty_bodies() {
        let malformed = parse_json::<CreateOrderRequest>(b"{\"customer_id\": ").expect_err("x");
        let empty = parse_json::<CreateOrderRequest>(b"  ").expect_err("empty");

        assert!(
            malformed.message.contains("not valid JSON"),
            "{}",
            malformed.message
        );
        assert!(empty.message.contains("empty"));
    }

    #[test]
    fn names_invalid_ids_inside_fields() {
        let body = br#"{"customer_id":"has space","plan_id":"p1","payment_method_ref":"pm"}"#;

        let error = parse_json::<CreateOrderRequest>(body).expect_err("bad id");

        assert!(error.message.contains("customer_id"), "{}", error.message);
    }
}
