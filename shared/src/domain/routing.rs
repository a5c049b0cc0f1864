//! Per-tenant provider routing and the rule for which plans are equivalent, so that an order
//! can fail over to another provider without the customer paying a different price.

use serde::{Deserialize, Serialize};

use super::ids::ProviderId;
use super::plan::ProviderPlan;

/// How a tenant's orders choose and fail over between providers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoutingRules {
    /// Providers in order of preference for failover; providers not listed come after, in
    /// name order.
    #[serde(default)]
    pub preference: Vec<ProviderId>,
    /// Providers never used for this tenant.
    #[serde(default)]
    pub excluded: Vec<ProviderId>,
    /// How much more an equivalent plan may cost us wholesale, in basis points of the
    /// original plan's wholesale price (1000 = 10%).
    pub cost_tolerance_bp: u32,
    /// Whether failover is on at all.
    pub failover: bool,
}

impl Default for RoutingRules {
    fn default() -> Self {
        Self {
            preference: Vec::new(),
            excluded: Vec::new(),
            cost_tolerance_bp: 1000,
            failover: true,
        }
    }
}

impl RoutingRules {
    /// True when `candidate` can stand in for `original`: another provider, the same
    /// countries (at least), at least the data and the validity, in the same currency, and a
    /// wholesale price within the tolerance.
    pub fn is_equivalent(&self, original: &ProviderPlan, candidate: &ProviderPlan) -> bool {
        if candidate.provider == original.provider || self.excluded.contains(&candidate.provider) {
            return false;
        }
        let covers = original
            .coverage
            .countries
            .iter()
            .all(|c| candidate.coverage.countries.contains(c));
        let original_price = original.wholesale_price;
        let candidate_price = candidate.wholesale_price;
        if !covers
            || !candidate.data.covers(original.data)
            || candidate.validity_days < original.validity_days
            || candidate_price.currency != original_price.currency
        {
            return false;
        }
        let limit = i128::from(original_price.amount_minor)
            * (10_000 + i128::from(self.cost_tolerance_bp))
            / 10_000;
        i128::from(candidate_price.amount_minor) <= limit
    }

    /// The equivalent plans among `candidates`, best first: preferred providers first, then
    /// the cheapest.
    pub fn failover_order(
        &self,
        original: &ProviderPlan,
        candidates: &[ProviderPlan],
    ) -> Vec<ProviderPlan> {
        if !self.failover {
            return Vec::new();
        }
        let mut equivalent: Vec<ProviderPlan> = candidates
            .iter()
            .filter(|c| self.is_equivalent(original, c))
            .cloned()
            .collect();
        let rank = |p: &ProviderPlan| {
            let position = self.preference.iter().position(|x| *x == p.provider);
            (
                position.unwrap_or(usize::MAX),
                p.wholesale_price.amount_minor,
                p.provider.clone(),
            )
        };
        equivalent.sort_by_key(rank);
        equivalent
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ids::PlanId;
    use crate::domain::money::{Currency, Money};
    use crate::domain::plan::{CountryCode, Coverage, DataAllowance};

    fn plan(provider: &str, countries: &[&str], mb: u64, days: u32, cents: i64) -> ProviderPlan {
        ProviderPlan {
            plan_id: PlanId::parse(format!("{provider}:p{mb}-{days}")).expect("id"),
            provider: ProviderId::parse(provider).expect("id"),
            provider_plan_code: format!("p{mb}-{days}"),
            name: "plan".to_owned(),
            coverage: Coverage {
                countries: countries
                    .iter()
                    .map(|c| CountryCode::parse(c).expect("cc"))
                    .collect(),
                region: None,
            },
            data: DataAllowance::Limited { mb },
            validity_days: days,
            wholesale_price: Money::new(cents, Currency::USD),
            supports_top_up: true,
            network_speed: None,
        }
    }

    #[test]
    fn an_equivalent_plan_covers_the_countries_data_validity_and_price() {
        let rules = RoutingRules::default();
        let original = plan("airalo", &["JP"], 1024, 7, 450);

        assert!(rules.is_equivalent(&original, &plan("esim-access", &["JP", "KR"], 1024, 7, 495)));
        assert!(!rules.is_equivalent(&original, &plan("esim-access", &["JP"], 1024, 7, 496)));
        assert!(!rules.is_equivalent(&original, &plan("esim-access", &["KR"], 1024, 7, 400)));
        assert!(!rules.is_equivalent(&original, &plan("esim-access", &["JP"], 512, 7, 400)));
        assert!(!rules.is_equivalent(&original, &plan("esim-access", &["JP"], 1024, 5, 400)));
        assert!(!rules.is_equivalent(&original, &plan("airalo", &["JP"], 1024, 7, 400)));
    }

    #[test]
    fn failover_prefers_listed_providers_then_the_cheapest_and_skips_excluded_ones() {
        let original = plan("airalo", &["JP"], 1024, 7, 450);
        let candidates = [
            plan("b-prov", &["JP"], 1024, 7, 460),
            plan("c-prov", &["JP"], 1024, 7, 455),
            plan("d-prov", &["JP"], 1024, 7, 400),
        ];
        let rules = RoutingRules {
            preference: vec![ProviderId::parse("b-prov").expect("id")],
            excluded: vec![ProviderId::parse("d-prov").expect("id")],
            ..RoutingRules::default()
        };

        let order: Vec<String> = rules
            .failover_order(&original, &candidates)
            .iter()
            .map(|p| p.provider.to_string())
            .collect();

        assert_eq!(order, ["b-prov", "c-prov"]);
        let off = RoutingRules {
            failover: false,
            ..RoutingRules::default()
        };
        assert!(off.failover_order(&original, &candidates).is_empty());
    }
}
