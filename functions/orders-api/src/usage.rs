//! The usage route: `GET /v1/esims/{esim_id}/usage`.

use std::sync::Arc;

use esim_shared::aws::{DynamoUsageStore, Table};
use esim_shared::domain::DomainError;
use esim_shared::http::{ApiRequest, ApiResponse};
use esim_shared::ports::SystemClock;
use esim_shared::usage::UsageReader;
use lambda_http::http::StatusCode;

/// The usage handler over one reader.
#[derive(Debug, Clone)]
pub struct UsageRoute {
    reader: UsageReader,
}

impl UsageRoute {
    /// A handler over the table.
    pub fn new(table: Table) -> Self {
        Self {
            reader: UsageReader::new(
                Arc::new(DynamoUsageStore::new(table)),
                Arc::new(SystemClock),
            ),
        }
    }

    /// `GET /v1/esims/{esim_id}/usage`.
    pub async fn get(&self, request: ApiRequest) -> Result<ApiResponse, DomainError> {
        let tenant_id = request.tenant()?;
        let esim_id = request.param("esim_id")?;

        let view = self.reader.usage(tenant_id, esim_id).await?;

        ApiResponse::json(StatusCode::OK, &view)
    }
}
