//! eSIM reads: a profile's state, what its user should do next, its activation details, the
//! QR code rendered from its LPA string, its plan and its latest usage figure.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::domain::esim::Esim;
use crate::domain::ids::{CustomerId, EsimId, OrderId, TenantId};
use crate::domain::lifecycle::ProfileState;
use crate::domain::plan::DataAllowance;
use crate::domain::{DomainError, ErrorCode};
use crate::ports::esims::{EsimStore, StoredEsim};
use crate::ports::orders::OrderStore;
use crate::ports::provider::UsageReport;

/// How to activate the profile on a device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivationView {
    /// The SGP.22 activation code, as the QR code carries it.
    pub lpa: String,
    /// The SM-DP+ address, for entering the code by hand; may be empty.
    pub smdp_address: String,
    /// The matching id, for entering the code by hand.
    pub matching_id: String,
    /// Where the QR code is served as SVG.
    pub qr_svg_path: String,
    /// A direct install link, where the provider gives one.
    pub direct_install_url: Option<String>,
    /// The APN to configure, where the provider gives one.
    pub apn: Option<String>,
}

/// The plan an eSIM was bought with, without its wholesale price.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EsimPlanView {
    /// The plan id.
    pub plan_id: String,
    /// Its name, where the order is readable.
    pub name: Option<String>,
    /// Its data allowance, where the order is readable.
    pub data: Option<DataAllowance>,
    /// Its validity in days, where the order is readable.
    pub validity_days: Option<u32>,
}

/// The latest usage figure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageSummary {
    /// Megabytes left; `None` for unlimited plans.
    pub remaining_mb: Option<u64>,
    /// Megabytes in the plan; `None` for unlimited plans.
    pub total_mb: Option<u64>,
    /// When the provider measured it.
    #[serde(with = "time::serde::rfc3339::option")]
    pub measured_at: Option<OffsetDateTime>,
    /// When the plan ends, where known.
    #[serde(with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
}

/// An eSIM as `GET /v1/esims/{esim_id}` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EsimView {
    /// Its id.
    pub esim_id: EsimId,
    /// The order that bought it.
    pub order_id: OrderId,
    /// The platform's customer.
    pub customer_id: CustomerId,
    /// The provider that issued it.
    pub provider: String,
    /// The ICCID.
    pub iccid: String,
    /// Where it is in its life.
    pub state: ProfileState,
    /// What the user should do next, in a sentence an app can show as it is.
    pub next_step: String,
    /// When each state was first reached.
    pub state_history: BTreeMap<ProfileState, String>,
    /// How to install it.
    pub activation: ActivationView,
    /// Until when the QR code can be used, where the provider says.
    #[serde(with = "time::serde::rfc3339::option")]
    pub qr_valid_until: Option<OffsetDateTime>,
    /// The plan.
    pub plan: EsimPlanView,
    /// The latest usage figure, once a provider reported one.
    pub usage: Option<UsageSummary>,
    /// When it was issued.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// A customer's eSIMs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EsimList {
    /// Oldest first.
    pub esims: Vec<EsimView>,
}

fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

impl EsimView {
    /// The view of a stored eSIM; `plan` adds the plan's terms where the order was read.
    pub fn new(esim: &Esim, usage: Option<&UsageReport>, plan: Option<EsimPlanView>) -> Self {
        let state = esim.lifecycle.state;
        Self {
            esim_id: esim.esim_id.clone(),
            order_id: esim.order_id.clone(),
            customer_id: esim.customer_id.clone(),
            provider: esim.provider.to_string(),
            iccid: esim.iccid.to_string(),
            state,
            next_step: state.next_step().to_owned(),
            state_history: esim
                .lifecycle
                .reached_at
                .iter()
                .map(|(state, at)| (*state, rfc3339(at.0)))
                .collect(),
            activation: ActivationView {
                lpa: esim.activation.to_lpa_string(),
                smdp_address: esim.activation.smdp_address.clone(),
                matching_id: esim.activation.matching_id.clone(),
                qr_svg_path: format!("/v1/esims/{}/qr.svg", esim.esim_id),
                direct_install_url: esim.direct_install_url.clone(),
                apn: esim.apn.clone(),
            },
            qr_valid_until: esim.qr_valid_until,
            plan: plan.unwrap_or_else(|| EsimPlanView {
                plan_id: esim.plan_id.to_string(),
                name: None,
                data: None,
                validity_days: None,
            }),
            usage: usage.map(|u| UsageSummary {
                remaining_mb: u.remaining_mb,
                total_mb: u.total_mb,
                measured_at: u.measured_at,
                expires_at: u.expires_at,
            }),
            created_at: esim.created_at,
        }
    }
}

/// Renders an LPA activation string as a QR code in SVG.
pub fn qr_svg(lpa: &str) -> Result<String, DomainError> {
    let code = qrcode::QrCode::new(lpa.as_bytes()).map_err(|error| {
        DomainError::with_message(
            ErrorCode::Internal,
            "The activation code could not be drawn as a QR code.",
        )
        .caused_by(error)
    })?;
    Ok(code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(256, 256)
        .quiet_zone(true)
        .build())
}

/// Reads eSIMs for the API.
#[derive(Debug, Clone)]
pub struct EsimService {
    esims: Arc<dyn EsimStore>,
    orders: Arc<dyn OrderStore>,
}

impl EsimService {
    /// A service over its stores.
    pub fn new(esims: Arc<dyn EsimStore>, orders: Arc<dyn OrderStore>) -> Self {
        Self { esims, orders }
    }

    async fn stored(&self, tenant_id: &TenantId, esim_id: &str) -> Result<StoredEsim, DomainError> {
        // An id that cannot be ours is simply not found, exactly like another tenant's.
        let Ok(esim_id) = EsimId::parse(esim_id) else {
            return Err(DomainError::not_found());
        };
        self.esims
            .get(tenant_id, &esim_id)
            .await?
            .ok_or_else(DomainError::not_found)
    }

    /// One eSIM of the tenant with its plan's terms. Another tenant's eSIM is "not found".
    pub async fn get(&self, tenant_id: &TenantId, esim_id: &str) -> Result<EsimView, DomainError> {
        let stored = self.stored(tenant_id, esim_id).await?;
        let plan = self
            .orders
            .get(tenant_id, &stored.esim.order_id)
            .await?
            .map(|order| EsimPlanView {
                plan_id: order.order.plan_id.to_string(),
                name: Some(order.order.plan.name.clone()),
                data: Some(order.order.plan.data),
                validity_days: Some(order.order.plan.validity_days),
            });
        Ok(EsimView::new(&stored.esim, stored.usage.as_ref(), plan))
    }

    /// The activation QR code of one eSIM, as SVG.
    pub async fn qr(&self, tenant_id: &TenantId, esim_id: &str) -> Result<String, DomainError> {
        let stored = self.stored(tenant_id, esim_id).await?;
        qr_svg(&stored.esim.activation.to_lpa_string())
    }

    /// A customer's eSIMs, oldest first.
    pub async fn for_customer(
        &self,
        tenant_id: &TenantId,
        customer_id: &str,
    ) -> Result<EsimList, DomainError> {
        let customer_id = CustomerId::parse(customer_id)
            .map_err(|e| DomainError::invalid(format!("customer_id: {e}")))?;
        let stored = self
            .esims
            .list_for_customer(tenant_id, &customer_id)
            .await?;
        Ok(EsimList {
            esims: stored
                .iter()
                .map(|s| EsimView::new(&s.esim, s.usage.as_ref(), None))
                .collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_qr_code_is_an_svg_drawn_from_the_lpa_string() {
        let short = qr_svg("LPA:1$smdp.example.com$ABC").expect("renders");
        let long = qr_svg("LPA:1$smdp.example.com$ABCD-EFGH-IJKL-MNOP-QRST-UVWX").expect("renders");

        assert!(short.starts_with("<?xml"));
        assert!(short.contains("<svg"));
        assert!(short.contains("<path"));
        assert_ne!(short, long);
    }
}
