//! One HTTP base URL for every route, matched as API Gateway matches the OpenAPI paths, each
//! request handed to its function as an API Gateway HTTP API (payload 2.0) event.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::{Body as AxumBody, to_bytes};
use axum::extract::{ConnectInfo, State};
use axum::http::{Request, Response, StatusCode};
use base64::Engine;
use esim_shared::http::HttpHandler;
use serde_json::json;

use crate::template::RouteSpec;

/// The largest body the router accepts; API Gateway's own limit is 10 MB.
const MAX_BODY: usize = 10 * 1024 * 1024;

/// What the router needs: the routes and each function's handler.
#[derive(Clone)]
pub struct Router {
    routes: Arc<Vec<(RouteSpec, Vec<String>)>>,
    handlers: Arc<HashMap<String, Arc<dyn HttpHandler>>>,
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Router")
            .field("routes", &self.routes.len())
            .finish()
    }
}

impl Router {
    /// A router over routes and the handlers of their functions, by logical id.
    pub fn new(routes: Vec<RouteSpec>, handlers: HashMap<String, Arc<dyn HttpHandler>>) -> Self {
        let routes = routes
            .into_iter()
            .map(|r| {
                let segments = r
                    .path
                    .trim_matches('/')
                    .split('/')
                    .map(str::to_owned)
                    .collect();
                (r, segments)
            })
            .collect();
        Self {
            routes: Arc::new(routes),
            handlers: Arc::new(handlers),
        }
    }

    /// The axum application.
    pub fn into_app(self) -> axum::Router {
        axum::Router::new().fallback(dispatch).with_state(self)
    }

    fn find(&self, method: &str, path: &str) -> Option<(&RouteSpec, HashMap<String, String>)> {
        let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
        self.routes.iter().find_map(|(route, segments)| {
            if route.method != method || segments.len() != parts.len() {
                return None;
            }
            let mut params = HashMap::new();
            for (segment, part) in segments.iter().zip(&parts) {
                match segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                    Some(name) => {
                        params.insert(name.to_owned(), (*part).to_owned());
                    }
                    None if segment == part => {}
                    None => return None,
                }
            }
            Some((route, params))
        })
    }
}

fn not_found() -> Response<AxumBody> {
    // API Gateway's own answer for a route it does not have.
    let mut response = Response::new(AxumBody::from(r#"{"message":"Not Found"}"#));
    *response.status_mut() = StatusCode::NOT_FOUND;
    response
}

async fn dispatch(
    State(router): State<Router>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request<AxumBody>,
) -> Response<AxumBody> {
    let (parts, body) = request.into_parts();
    let method = parts.method.as_str().to_owned();
    let path = parts.uri.path().to_owned();
    let Some((route, params)) = router.find(&method, &path) else {
        return not_found();
    };
    let Some(handler) = router.handlers.get(&route.function).cloned() else {
        return not_found();
    };
    let Ok(body) = to_bytes(body, MAX_BODY).await else {
        let mut response =
            Response::new(AxumBody::from(r#"{"message":"Request Entity Too Large"}"#));
        *response.status_mut() = StatusCode::PAYLOAD_TOO_LARGE;
        return response;
    };
    let mut headers = serde_json::Map::new();
    for (name, value) in &parts.headers {
        if let Ok(value) = value.to_str() {
            headers.insert(name.as_str().to_owned(), json!(value));
        }
    }
    let request_id = ulid::Ulid::new().to_string();
    let route_key = format!("{} {}", route.method, route.path);
    let (body_text, encoded) = match std::str::from_utf8(&body) {
        Ok(text) => (text.to_owned(), false),
        Err(_) => (
            base64::engine::general_purpose::STANDARD.encode(&body),
            true,
        ),
    };
    let user_agent = parts
        .headers
        .get("user-agent")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let event = json!({
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": path,
        "rawQueryString": parts.uri.query().unwrap_or(""),
        "headers": headers,
        "pathParameters": params,
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "local",
            "domainName": "127.0.0.1",
            "domainPrefix": "local",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": peer.ip().to_string(),
                "userAgent": user_agent,
            },
            "requestId": request_id,
            "routeKey": route_key,
            "stage": "$default",
            "time": "",
            "timeEpoch": 0,
        },
        "body": body_text,
        "isBase64Encoded": encoded,
    });
    let lambda_request = match lambda_http::request::from_str(&event.to_string()) {
        Ok(request) => request,
        Err(error) => {
            tracing::error!(%error, "failed to build the API Gateway event");
            let mut response =
                Response::new(AxumBody::from(r#"{"message":"Internal Server Error"}"#));
            *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            return response;
        }
    };
    let response = handler.handle(lambda_request).await;
    tracing::info!(
        %method,
        %path,
        status = response.status().as_u16(),
        function = %route.function,
        "request"
    );
    let (parts, body) = response.into_parts();
    Response::from_parts(parts, AxumBody::from(body.to_vec()))
}
