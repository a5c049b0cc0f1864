//! The eSIM read routes: `GET /v1/esims/{esim_id}`, `GET /v1/esims/{esim_id}/qr.svg` and
//! `GET /v1/customers/{customer_id}/esims`.

use std::sync::Arc;

use esim_shared::aws::{DynamoEsimStore, DynamoOrderStore, Table};
use esim_shared::domain::DomainError;
use esim_shared::esims::EsimService;
use esim_shared::http::{ApiRequest, ApiResponse};
use lambda_http::http::StatusCode;
use lambda_http::http::header::{CACHE_CONTROL, HeaderValue};

/// The eSIM read handlers over one service.
#[derive(Debug, Clone)]
pub struct EsimRoutes {
    service: EsimService,
}

impl EsimRoutes {
    /// Handlers over the table.
    pub fn new(table: Table) -> Self {
        Self {
            service: EsimService::new(
                Arc::new(DynamoEsimStore::new(table.clone())),
                Arc::new(DynamoOrderStore::new(table)),
            ),
        }
    }

    /// `GET /v1/esims/{esim_id}`.
    pub async fn get(&self, request: ApiRequest) -> Result<ApiResponse, DomainError> {
        let tenant_id = request.tenant()?;
        let esim_id = request.param("esim_id")?;

        let view = self.service.get(tenant_id, esim_id).await?;

        ApiResponse::json(StatusCode::OK, &view)
    }

    /// `GET /v1/esims/{esim_id}/qr.svg`.
    pub async fn qr(&self, request: ApiRequest) -> Result<ApiResponse, DomainError> {
        let tenant_id = request.tenant()?;
        let esim_id = request.param("esim_id")?;

        let svg = self.service.qr(tenant_id, esim_id).await?;

        Ok(ApiResponse {
            status: StatusCode::OK,
            headers: Vec::new(),
            content_type: "image/svg+xml",
            body: svg.into_bytes(),
        }
        .with_header(CACHE_CONTROL, HeaderValue::from_static("private, no-store")))
    }

    /// `GET /v1/customers/{customer_id}/esims`.
    pub async fn for_customer(&self, request: ApiRequest) -> Result<ApiResponse, DomainError> {
        let tenant_id = request.tenant()?;
        let customer_id = request.param("customer_id")?;

        let list = self.service.for_customer(tenant_id, customer_id).await?;

        ApiResponse::json(StatusCode::OK, &list)
    }
}
