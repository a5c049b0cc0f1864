//! Per-tenant retail pricing: a margin in basis points and/or a fixed amount on top of the
//! wholesale price, rounded up to a price point, with overrides per country and per plan.
//! Integer arithmetic only; the retail price is always in the wholesale currency.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::domain::ids::PlanId;
use crate::domain::money::{Money, MoneyError};
use crate::domain::plan::{CountryCode, ProviderPlan};

/// Rounds a price up to the next price point: the smallest amount at or above it whose
/// remainder modulo `step_minor` is `ending_minor` (step 100, ending 99 gives 4.99, 5.99, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PricePoint {
    /// The spacing of price points in minor units, for example 100.
    pub step_minor: i64,
    /// Where in each step a price point sits, for example 99; below `step_minor`.
    pub ending_minor: i64,
}

impl PricePoint {
    /// The price point at or above `amount`.
    pub fn round_up(self, amount: i64) -> Option<i64> {
        if self.step_minor <= 0 || !(0..self.step_minor).contains(&self.ending_minor) {
            return None;
        }
        let base = amount.checked_sub(self.ending_minor)?;
        let steps =
            base.div_euclid(self.step_minor) + i64::from(base.rem_euclid(self.step_minor) != 0);
        steps
            .checked_mul(self.step_minor)?
            .checked_add(self.ending_minor)
    }
}

/// How one plan's retail price is made from its wholesale price.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriceRule {
    /// Margin on the wholesale price in basis points (2500 = 25%); the result rounds up.
    #[serde(default)]
    pub margin_bp: u32,
    /// A fixed amount in minor units added after the margin.
    #[serde(default)]
    pub fixed_minor: i64,
    /// The price point to round up to, if any.
    #[serde(default)]
    pub price_point: Option<PricePoint>,
    /// A set retail price in minor units that replaces the computation entirely.
    #[serde(default)]
    pub price_minor: Option<i64>,
}

impl Default for PriceRule {
    /// 30% margin, rounded up to the next .99.
    fn default() -> Self {
        Self {
            margin_bp: 3000,
            fixed_minor: 0,
            price_point: Some(PricePoint {
                step_minor: 100,
                ending_minor: 99,
            }),
            price_minor: None,
        }
    }
}

impl PriceRule {
    /// The retail price for a wholesale price.
    pub fn apply(&self, wholesale: Money) -> Result<Money, MoneyError> {
        if let Some(price) = self.price_minor {
            return Ok(Money::new(price, wholesale.currency));
        }
        let numerator = i128::from(wholesale.amount_minor) * (10_000 + i128::from(self.margin_bp));
        let with_margin = (numerator + 9_999).div_euclid(10_000);
        let with_fixed = with_margin + i128::from(self.fixed_minor);
        let amount = i64::try_from(with_fixed).map_err(|_| MoneyError::Overflow)?;
        let rounded = match self.price_point {
            Some(point) => point.round_up(amount).ok_or(MoneyError::Overflow)?,
            None => amount,
        };
        Ok(Money::new(rounded, wholesale.currency))
    }
}

/// A tenant's pricing: a default rule and overrides. The most specific rule wins: the plan's,
/// then its country's, then the default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PricingRules {
    /// The rule for every plan without an override.
    #[serde(default)]
    pub default: PriceRule,
    /// Overrides for single-country plans of a country. A multi-country plan has no one
    /// country, so it takes its plan override or the default: its price is then the same
    /// whichever country it is listed under.
    #[serde(default)]
    pub countries: BTreeMap<CountryCode, PriceRule>,
    /// Overrides for one plan.
    #[serde(default)]
    pub plans: BTreeMap<PlanId, PriceRule>,
}

impl PricingRules {
    /// The rule that prices `plan`.
    pub fn rule_for(&self, plan: &ProviderPlan) -> &PriceRule {
        if let Some(rule) = self.plans.get(&plan.plan_id) {
            return rule;
        }
        if let [country] = plan.coverage.countries.as_slice()
            && let Some(rule) = self.countries.get(country)
        {
            return rule;
        }
        &self.default
    }

    /// The retail price of `plan`.
    pub fn retail(&self, plan: &ProviderPlan) -> Result<Money, MoneyError> {
        self.rule_for(plan).apply(plan.wholesale_price)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ids::ProviderId;
    use crate::domain::money::Currency;
    use crate::domain::plan::{Coverage, DataAllowance};

    fn plan(id: &str, countries: &[&str], wholesale_minor: i64) -> ProviderPlan {
        ProviderPlan {
            plan_id: PlanId::parse(id).expect("id"),
            provider: ProviderId::parse("airalo").expect("id"),
            provider_plan_code: id.to_owned(),
            name: id.to_owned(),
            coverage: Coverage {
                countries: countries
                    .iter()
                    .map(|c| CountryCode::parse(c).expect("cc"))
                    .collect(),
                region: None,
            },
            data: DataAllowance::Limited { mb: 1024 },
            validity_days: 7,
            wholesale_price: Money::new(wholesale_minor, Currency::USD),
            supports_top_up: true,
            network_speed: None,
        }
    }

    fn usd(minor: i64) -> Money {
        Money::new(minor, Currency::USD)
    }

    #[test]
    fn the_default_adds_thirty_percent_and_rounds_up_to_99() {
        let rules = PricingRules::default();

        assert_eq!(rules.retail(&plan("airalo:a", &["JP"], 450)), Ok(usd(599)));
        assert_eq!(
            rules.retail(&plan("airalo:b", &["JP"], 1000)),
            Ok(usd(1399))
        );
        assert_eq!(
            rules.retail(&plan("airalo:c", &["JP"], 1460)),
            Ok(usd(1899))
        );
    }

    #[test]
    fn margin_rounds_up_to_the_minor_unit_then_adds_the_fixed_amount() {
        let rule = PriceRule {
            margin_bp: 1250,
            fixed_minor: 50,
            price_point: None,
            price_minor: None,
        };

        assert_eq!(rule.apply(usd(333)), Ok(usd(425)));
        assert_eq!(rule.apply(usd(800)), Ok(usd(950)));
        assert_eq!(rule.apply(usd(0)), Ok(usd(50)));
    }

    #[test]
    fn price_points_round_up_to_the_next_ending() {
        let nines = PricePoint {
            step_minor: 100,
            ending_minor: 99,
        };
        let fifties = PricePoint {
            step_minor: 50,
            ending_minor: 0,
        };

        assert_eq!(nines.round_up(499), Some(499));
        assert_eq!(nines.round_up(500), Some(599));
        assert_eq!(nines.round_up(12), Some(99));
        assert_eq!(fifties.round_up(1001), Some(1050));
        assert_eq!(fifties.round_up(1000), Some(1000));
        let broken = PricePoint {
            step_minor: 100,
            ending_minor: 100,
        };
        assert_eq!(broken.round_up(5), None);
    }

    #[test]
    fn a_plan_override_beats_a_country_override_which_beats_the_default() {
        let mut rules = PricingRules::default();
        rules.countries.insert(
            CountryCode::parse("JP").expect("cc"),
            PriceRule {
                margin_bp: 5000,
                fixed_minor: 0,
                price_point: None,
                price_minor: None,
            },
        );
        rules.plans.insert(
            PlanId::parse("airalo:set").expect("id"),
            PriceRule {
                price_minor: Some(990),
                ..PriceRule::default()
            },
        );

        assert_eq!(rules.retail(&plan("airalo:jp", &["JP"], 450)), Ok(usd(675)));
        assert_eq!(
            rules.retail(&plan("airalo:set", &["JP"], 450)),
            Ok(usd(990))
        );
        assert_eq!(rules.retail(&plan("airalo:kr", &["KR"], 450)), Ok(usd(599)));
        assert_eq!(
            rules.retail(&plan("airalo:asia", &["JP", "KR"], 450)),
            Ok(usd(599)),
            "a multi-country plan takes no country's override"
        );
    }

    #[test]
    fn rules_round_trip_through_json_and_refuse_unknown_fields() {
        let text = r#"{"default":{"margin_bp":2000,"price_point":{"step_minor":100,
            "ending_minor":49}},"countries":{"JP":{"fixed_minor":100}}}"#;

        let rules: PricingRules = serde_json::from_str(text).expect("valid");
        let typo = serde_json::from_str::<PricingRules>(r#"{"default":{"margin":5}}"#);

        assert_eq!(rules.default.margin_bp, 2000);
        assert_eq!(rules.retail(&plan("airalo:jp", &["JP"], 450)), Ok(usd(550)));
        assert_eq!(rules.retail(&plan("airalo:kr", &["KR"], 450)), Ok(usd(549)));
        assert!(typo.is_err());
    }
}
