//! eSIM profiles and their activation details.

use serde::{Deserialize, Serialize};

/// The pieces of a GSMA SGP.22 activation code `LPA:1$<SM-DP+ address>$<matching id>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivationCode {
    /// The SM-DP+ server address; some providers send it empty.
    pub smdp_address: String,
    /// The matching id the SM-DP+ knows the profile by.
    pub matching_id: String,
}

/// The text is not an SGP.22 activation code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("activation code must look like LPA:1$<SM-DP+ address>$<matching id>")]
pub struct InvalidActivationCode;

impl ActivationCode {
    /// Parses `LPA:1$address$matching-id[$oid[$confirmation-flag]]`.
    pub fn parse(text: &str) -> Result<Self, InvalidActivationCode> {
        let rest = text.strip_prefix("LPA:1$").ok_or(InvalidActivationCode)?;
        let mut parts = rest.split('$');
        let smdp_address = parts.next().ok_or(InvalidActivationCode)?.to_owned();
        let matching_id = parts.next().ok_or(InvalidActivationCode)?.to_owned();
        if matching_id.is_empty() {
            return Err(InvalidActivationCode);
        }
        Ok(Self {
            smdp_address,
            matching_id,
        })
    }

    /// The activation code as a device's camera expects it in a QR code.
    pub fn to_lpa_string(&self) -> String {
        format!("LPA:1${}${}", self.smdp_address, self.matching_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lpa_strings_with_and_without_optional_parts() {
        let plain = ActivationCode::parse("LPA:1$smdp.example.com$ABC-123").expect("valid");
        let with_oid = ActivationCode::parse("LPA:1$smdp.example.com$ABC$1.2.3$1").expect("valid");
        let empty_address = ActivationCode::parse("LPA:1$$ABC").expect("valid");

        assert_eq!(plain.smdp_address, "smdp.example.com");
        assert_eq!(plain.to_lpa_string(), "LPA:1$smdp.example.com$ABC-123");
        assert_eq!(with_oid.matching_id, "ABC");
        assert_eq!(empty_address.smdp_address, "");
        assert!(ActivationCode::parse("LPA:1$only-address").is_err());
        assert!(ActivationCode::parse("https://example.com").is_err());
    }
}

/// One eSIM profile we sold, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Esim {
    /// Its id.
    pub esim_id: super::ids::EsimId,
    /// Its tenant.
    pub tenant_id: super::ids::TenantId,
    /// The order that bought it.
    pub order_id: super::ids::OrderId,
    /// The platform's customer.
    pub customer_id: super::ids::CustomerId,
    /// The plan bought.
    pub plan_id: super::ids::PlanId,
    /// The provider that issued it.
    pub provider: super::ids::ProviderId,
    /// The ICCID.
    pub iccid: super::ids::Iccid,
    /// The provider's own reference of the profile, where it has one.
    #[serde(default)]
    pub provider_profile_ref: Option<String>,
    /// The activation code.
    pub activation: ActivationCode,
    /// A hosted QR image, where the provider gives one.
    #[serde(default)]
    pub qr_code_url: Option<String>,
    /// A direct install link, where the provider gives one.
    #[serde(default)]
    pub direct_install_url: Option<String>,
    /// The APN, where the provider gives one.
    #[serde(default)]
    pub apn: Option<String>,
    /// Where the profile is in its life, and when it got to each state.
    pub lifecycle: super::lifecycle::Lifecycle,
    /// Until when the QR code can be used, where the provider says.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub qr_valid_until: Option<time::OffsetDateTime>,
    /// When it was issued.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: time::OffsetDateTime,
}
