//! Catalogue plans, normalised across providers.

use serde::{Deserialize, Serialize};

use super::ids::{PlanId, ProviderId};
use super::money::Money;

/// An ISO 3166-1 alpha-2 country code, upper case.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CountryCode(String);

/// The text was not two ASCII letters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("country must be a two-letter ISO 3166-1 alpha-2 code such as JP, got {0:?}")]
pub struct InvalidCountry(pub String);

impl CountryCode {
    /// Parses two ASCII letters, upper-casing them.
    pub fn parse(text: &str) -> Result<Self, InvalidCountry> {
        if text.len() != 2 || !text.chars().all(|c| c.is_ascii_alphabetic()) {
            return Err(InvalidCountry(text.to_owned()));
        }
        Ok(Self(text.to_ascii_uppercase()))
    }

    /// The code, for example `"JP"`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for CountryCode {
    type Error = InvalidCountry;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<CountryCode> for String {
    fn from(c: CountryCode) -> String {
        c.0
    }
}

/// How much data a plan includes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DataAllowance {
    /// A fixed amount in megabytes (1 GB = 1024 MB, as providers count).
    Limited {
        /// Megabytes included.
        mb: u64,
    },
    /// No fixed cap (fair-use throttling may apply).
    Unlimited,
}

impl DataAllowance {
    /// True when this allowance is at least `other`.
    pub fn covers(self, other: DataAllowance) -> bool {
        match (self, other) {
            (DataAllowance::Unlimited, _) => true,
            (DataAllowance::Limited { .. }, DataAllowance::Unlimited) => false,
            (DataAllowance::Limited { mb: a }, DataAllowance::Limited { mb: b }) => a >= b,
        }
    }
}

/// Where a plan works.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Coverage {
    /// Countries covered.
    pub countries: Vec<CountryCode>,
    /// The region name for multi-country plans, for example "Europe".
    pub region: Option<String>,
}

/// A provider's plan as we store it: wholesale facts, before any tenant's pricing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderPlan {
    /// Our stable id for the plan.
    pub plan_id: PlanId,
    /// Which provider sells it.
    pub provider: ProviderId,
    /// The provider's own code for the plan (Airalo package slug, eSIM Access packageCode).
    pub provider_plan_code: String,
    /// A display name.
    pub name: String,
    /// Where it works.
    pub coverage: Coverage,
    /// Data included.
    pub data: DataAllowance,
    /// Days of validity from activation.
    pub validity_days: u32,
    /// What the provider charges us.
    pub wholesale_price: Money,
    /// Whether the provider sells top-ups for it.
    pub supports_top_up: bool,
    /// Network speed where the provider says, for example "4G/5G".
    pub network_speed: Option<String>,
}
