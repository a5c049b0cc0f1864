//! The HTTP layer every HTTP function shares: routing, tenant authentication, request
//! parsing, and the one mapping from errors to responses.
//!
//! A handler is parse, one domain call, map the result; [`serve`] does the parts around it
//! the same way for every route: match the route, authenticate tenant routes, give the
//! request a support reference, and turn any [`DomainError`] into the common error body.

mod request;
mod response;
mod router;

use std::future::Future;
use std::sync::Arc;

use async_trait::async_trait;
use lambda_http::{Body, Request, Response};

pub use request::{ApiRequest, MAX_BODY_BYTES};
pub use response::{ApiResponse, error_response};
pub use router::{Access, PathParams, RouteTable};

use crate::domain::{DomainError, ErrorCode};
use crate::tenancy::Authenticator;

/// An HTTP function, callable by the Lambda runtime and in-process by the local stack.
#[async_trait]
pub trait HttpHandler: Send + Sync {
    /// Answers one request. Never fails: errors become error responses.
    async fn handle(&self, request: Request) -> Response<Body>;
}

/// Routes one request: finds its route, authenticates it when the route needs a tenant,
/// calls `handler`, and maps the outcome to a response.
pub async fn serve<R, F, Fut>(
    request: Request,
    routes: &RouteTable<R>,
    auth: &Authenticator,
    handler: F,
) -> Response<Body>
where
    R: Copy,
    F: FnOnce(R, ApiRequest) -> Fut,
    Fut: Future<Output = Result<ApiResponse, DomainError>>,
{
    let mut api = ApiRequest::from_lambda(request);
    let reference = api.support_reference.clone();
    let outcome = async {
        let (route, access, params) = routes.find(&api.method, &api.path)?;
        api.params = params;
        if access == Access::Tenant {
            api.tenant = Some(auth.authenticate(api.header("authorization")).await?);
        }
        api.enforce_body_limit()?;
        handler(route, api).await
    }
    .await;
    match outcome {
        Ok(response) => response.into_lambda(),
        Err(error) => error_response(&error, &reference),
    }
}

/// Runs an HTTP handler under the Lambda runtime until the runtime stops it.
pub async fn run(handler: Arc<dyn HttpHandler>) -> Result<(), lambda_http::Error> {
    lambda_http::run(lambda_http::service_fn(move |request: Request| {
        let handler = handler.clone();
        async move { Ok::<_, std::convert::Infallible>(handler.handle(request).await) }
    }))
    .await
}

/// The answer for a route that is in the API contract but not served by this build yet.
pub fn not_implemented() -> Result<ApiResponse, DomainError> {
    Err(DomainError::new(ErrorCode::NotImplemented))
}
