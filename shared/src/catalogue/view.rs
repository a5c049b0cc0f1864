//! What tenants see of the catalogue: plans with their retail price and never the wholesale
//! cost, with how fresh the answer is.

use serde::{Deserialize, Serialize};

use crate::domain::DomainError;
use crate::domain::ids::{PlanId, ProviderId};
use crate::domain::money::Money;
use crate::domain::plan::{CountryCode, DataAllowance, ProviderPlan};

/// How old the data behind an answer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Freshness {
    /// True when some of it is past its TTL or invalidated and could not be refreshed (the
    /// provider is down, or another caller is refreshing it).
    pub stale: bool,
    /// Seconds since the oldest provider answer in it was fetched.
    pub age_seconds: u64,
}

/// A plan as a tenant sees it (the `Plan` schema of the API contract).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RetailPlan {
    /// The plan id, stable across catalogue refreshes.
    pub plan_id: PlanId,
    /// The provider that sells it.
    pub provider: ProviderId,
    /// A display name.
    pub name: String,
    /// ISO 3166-1 alpha-2 codes of the countries it covers.
    pub countries: Vec<CountryCode>,
    /// The region name of a multi-country plan, for example "Europe".
    pub region: Option<String>,
    /// Megabytes included; `None` for unlimited plans.
    pub data_mb: Option<u64>,
    /// Whether the plan has no fixed data cap.
    pub unlimited: bool,
    /// Days of validity from activation.
    pub validity_days: u32,
    /// The tenant's retail price.
    pub price: Money,
    /// Whether top-ups can be bought for it.
    pub topup_supported: bool,
    /// Network speed where the provider says.
    pub network_speed: Option<String>,
}

impl RetailPlan {
    /// The tenant's view of `plan` at `price`.
    pub fn new(plan: &ProviderPlan, price: Money) -> Self {
        let data_mb = match plan.data {
            DataAllowance::Limited { mb } => Some(mb),
            DataAllowance::Unlimited => None,
        };
        Self {
            plan_id: plan.plan_id.clone(),
            provider: plan.provider.clone(),
            name: plan.name.clone(),
            countries: plan.coverage.countries.clone(),
            region: plan.coverage.region.clone(),
            data_mb,
            unlimited: data_mb.is_none(),
            validity_days: plan.validity_days,
            price,
            topup_supported: plan.supports_top_up,
            network_speed: plan.network_speed.clone(),
        }
    }
}

/// A country with plans, and how many plans cover it across providers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CountrySummary {
    /// The ISO 3166-1 alpha-2 code.
    pub code: CountryCode,
    /// Plans covering it.
    pub plan_count: u32,
}

/// Which plans of a country to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlanFilter {
    /// At least this much data (unlimited plans always qualify).
    pub min_data_mb: Option<u64>,
    /// At least this many days of validity.
    pub min_validity_days: Option<u32>,
    /// Only unlimited plans (true) or only limited ones (false).
    pub unlimited: Option<bool>,
    /// Only plans of this region, by name, ignoring case.
    pub region: Option<String>,
}

impl PlanFilter {
    /// Reads the filter from query parameters `min_data_mb`, `min_validity_days`,
    /// `unlimited` and `region`, naming the parameter that is malformed.
    pub fn from_query(
        query: &std::collections::HashMap<String, String>,
    ) -> Result<Self, DomainError> {
        fn number<T: std::str::FromStr>(
            query: &std::collections::HashMap<String, String>,
            name: &str,
        ) -> Result<Option<T>, DomainError> {
            query
                .get(name)
                .map(|text| {
                    text.trim().parse::<T>().map_err(|_| {
                        DomainError::invalid(format!(
                            "query parameter {name} must be a whole number, got {text:?}"
                        ))
                    })
                })
                .transpose()
        }
        let unlimited = match query.get("unlimited").map(String::as_str) {
            None => None,
            Some("true") => Some(true),
            Some("false") => Some(false),
            Some(other) => {
                return Err(DomainError::invalid(format!(
                    "query parameter unlimited must be true or false, got {other:?}"
                )));
            }
        };
        let region = query
            .get("region")
            .map(|r| r.trim().to_owned())
            .filter(|r| !r.is_empty());
        Ok(Self {
            min_data_mb: number(query, "min_data_mb")?,
            min_validity_days: number(query, "min_validity_days")?,
            unlimited,
            region,
        })
    }

    /// True when `plan` passes every condition set.
    pub fn accepts(&self, plan: &ProviderPlan) -> bool {
        let data_ok = self
            .min_data_mb
            .is_none_or(|mb| plan.data.covers(DataAllowance::Limited { mb }));
        let validity_ok = self
            .min_validity_days
            .is_none_or(|days| plan.validity_days >= days);
        let unlimited_ok = self
            .unlimited
            .is_none_or(|want| want == matches!(plan.data, DataAllowance::Unlimited));
        let region_ok = self.region.as_deref().is_none_or(|want| {
            plan.coverage
                .region
                .as_deref()
                .is_some_and(|region| region.eq_ignore_ascii_case(want))
        });
        data_ok && validity_ok && unlimited_ok && region_ok
    }
}

/// The plans covering one country, priced for one tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlanListing {
    /// The country asked for.
    pub country: CountryCode,
    /// The plans, cheapest first.
    pub plans: Vec<RetailPlan>,
    /// How fresh they are.
    #[serde(flatten)]
    pub freshness: Freshness,
}

/// The countries the catalogue has plans for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CountryListing {
    /// The countries, in code order.
    pub countries: Vec<CountrySummary>,
    /// How fresh the list is.
    #[serde(flatten)]
    pub freshness: Freshness,
}
