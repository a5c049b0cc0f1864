//! What `GET /v1/esims/{esim_id}/usage` shows: remaining and total, percent left, when a
//! provider last confirmed the figure, whether that is stale, and when the plan ends.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{IDLE_INTERVAL, remaining_percent};
use crate::domain::DomainError;
use crate::domain::ids::{EsimId, TenantId};
use crate::domain::lifecycle::ProfileState;
use crate::ports::Clock;
use crate::ports::usage::UsageStore;

/// An eSIM's balance and its freshness.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageView {
    /// The eSIM.
    pub esim_id: EsimId,
    /// Where the profile is in its life.
    pub state: ProfileState,
    /// Whether the plan has no data limit.
    pub unlimited: bool,
    /// Megabytes in the plan period; `None` for unlimited plans or before the first figure.
    pub total_mb: Option<u64>,
    /// Megabytes used in the plan period; `None` where not known.
    pub used_mb: Option<u64>,
    /// Megabytes left; `None` for unlimited plans or before the first figure.
    pub remaining_mb: Option<u64>,
    /// Percent left, 0 to 100; `None` where there is no limit or no figure yet.
    pub remaining_percent: Option<u8>,
    /// When the plan ends, where known.
    #[serde(with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
    /// When a provider last refreshed or confirmed the figure; `None` before the first one.
    #[serde(with = "time::serde::rfc3339::option")]
    pub as_of: Option<OffsetDateTime>,
    /// Whether the figure is older than twice the longest polling interval, or missing.
    pub stale: bool,
}

/// Reads usage for the API.
#[derive(Debug, Clone)]
pub struct UsageReader {
    store: Arc<dyn UsageStore>,
    clock: Arc<dyn Clock>,
}

impl UsageReader {
    /// A reader over the usage store.
    pub fn new(store: Arc<dyn UsageStore>, clock: Arc<dyn Clock>) -> Self {
        Self { store, clock }
    }

    /// The usage of one of the tenant's eSIMs; another tenant's eSIM is "not found".
    pub async fn usage(
        &self,
        tenant_id: &TenantId,
        esim_id: &str,
    ) -> Result<UsageView, DomainError> {
        let Ok(esim_id) = EsimId::parse(esim_id) else {
            return Err(DomainError::not_found());
        };
        let current = self
            .store
            .current(tenant_id, &esim_id)
            .await?
            .ok_or_else(DomainError::not_found)?;
        let usage = current.usage.as_ref();
        let as_of = usage.and_then(|u| u.measured_at).max(current.checked_at);
        let stale = as_of.is_none_or(|at| self.clock.now() - at > IDLE_INTERVAL * 2);
        Ok(UsageView {
            esim_id,
            state: current.esim.lifecycle.state,
            unlimited: usage.is_some_and(|u| u.total_mb.is_none()),
            total_mb: usage.and_then(|u| u.total_mb),
            used_mb: usage.and_then(|u| Some(u.total_mb?.saturating_sub(u.remaining_mb?))),
            remaining_mb: usage.and_then(|u| u.remaining_mb),
            remaining_percent: usage.and_then(remaining_percent),
            expires_at: usage.and_then(|u| u.expires_at),
            as_of,
            stale,
        })
    }
}
