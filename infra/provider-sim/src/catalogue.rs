//! Seeded plan catalogue for both simulated providers: single-country and regional plans in
//! several sizes and validities, with the same seed always giving the same catalogue.
//!
//! Some facts hold whatever the seed, so that tests can rely on them: every country in
//! [`OVERLAP_COUNTRIES`] is sold by both providers with a 1 GB / 7 day and a 5 GB / 30 day plan,
//! both providers sell Europe and Asia regional plans of the same shapes, and only Airalo sells
//! unlimited plans (eSIM Access has no unlimited product in its public catalogue shape).

use std::collections::HashSet;

use rand::{Rng, SeedableRng, rngs::StdRng, seq::SliceRandom};
use serde::Serialize;

/// Megabytes per gigabyte, as both providers count them.
pub const MB_PER_GB: u64 = 1024;
/// Bytes per megabyte.
pub const BYTES_PER_MB: u64 = 1024 * 1024;

/// A world region, used for regional plans and for the price level of a country.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Region {
    Europe,
    Asia,
    Americas,
    MiddleEast,
    Africa,
    Oceania,
}

/// A country by ISO 3166-1 alpha-2 code.
#[derive(Debug, Clone, Copy)]
pub struct Country {
    pub code: &'static str,
    pub name: &'static str,
    pub region: Region,
}

const fn country(code: &'static str, name: &'static str, region: Region) -> Country {
    Country { code, name, region }
}

/// Every country the simulated providers may sell.
pub const COUNTRIES: &[Country] = &[
    country("FR", "France", Region::Europe),
    country("DE", "Germany", Region::Europe),
    country("ES", "Spain", Region::Europe),
    country("IT", "Italy", Region::Europe),
    country("GB", "United Kingdom", Region::Europe),
    country("PT", "Portugal", Region::Europe),
    country("NL", "Netherlands", Region::Europe),
    country("BE", "Belgium", Region::Europe),
    country("CH", "Switzerland", Region::Europe),
    country("AT", "Austria", Region::Europe),
    country("GR", "Greece", Region::Europe),
    country("IE", "Ireland", Region::Europe),
    country("SE", "Sweden", Region::Europe),
    country("NO", "Norway", Region::Europe),
    country("DK", "Denmark", Region::Europe),
    country("PL", "Poland", Region::Europe),
    country("CZ", "Czechia", Region::Europe),
    country("HU", "Hungary", Region::Europe),
    country("HR", "Croatia", Region::Europe),
    country("TR", "Türkiye", Region::Europe),
    country("JP", "Japan", Region::Asia),
    country("KR", "South Korea", Region::Asia),
    country("CN", "China", Region::Asia),
    country("HK", "Hong Kong", Region::Asia),
    country("TW", "Taiwan", Region::Asia),
    country("SG", "Singapore", Region::Asia),
    country("TH", "Thailand", Region::Asia),
    country("VN", "Viet Nam", Region::Asia),
    country("MY", "Malaysia", Region::Asia),
    country("ID", "Indonesia", Region::Asia),
    country("PH", "Philippines", Region::Asia),
    country("IN", "India", Region::Asia),
    country("US", "United States", Region::Americas),
    country("CA", "Canada", Region::Americas),
    country("MX", "Mexico", Region::Americas),
    country("BR", "Brazil", Region::Americas),
    country("AR", "Argentina", Region::Americas),
    country("CL", "Chile", Region::Americas),
    country("CO", "Colombia", Region::Americas),
    country("PE", "Peru", Region::Americas),
    country("AE", "United Arab Emirates", Region::MiddleEast),
    country("SA", "Saudi Arabia", Region::MiddleEast),
    country("IL", "Israel", Region::MiddleEast),
    country("QA", "Qatar", Region::MiddleEast),
    country("EG", "Egypt", Region::Africa),
    country("ZA", "South Africa", Region::Africa),
    country("MA", "Morocco", Region::Africa),
    country("KE", "Kenya", Region::Africa),
    country("AU", "Australia", Region::Oceania),
    country("NZ", "New Zealand", Region::Oceania),
];

/// Countries both providers sell, whatever the seed, with equivalent 1 GB / 7 day and
/// 5 GB / 30 day plans (the failover pairs).
pub const OVERLAP_COUNTRIES: &[&str] =
    &["FR", "DE", "ES", "IT", "GB", "JP", "KR", "TH", "SG", "US"];

/// Countries covered by the Asia regional plans.
pub const ASIA_REGIONAL: &[&str] = &["JP", "KR", "HK", "TW", "SG", "TH", "VN", "MY", "ID", "PH"];

/// Looks a country up by its alpha-2 code (case-insensitive).
pub fn find_country(code: &str) -> Option<&'static Country> {
    COUNTRIES.iter().find(|c| c.code.eq_ignore_ascii_case(code))
}

/// Data allowance and validity of a plan; `data_mb` is `None` for unlimited plans.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PlanShape {
    pub data_mb: Option<u64>,
    pub days: u32,
}

const fn gb(gigabytes: u64, days: u32) -> PlanShape {
    PlanShape {
        data_mb: Some(gigabytes * MB_PER_GB),
        days,
    }
}

const fn unlimited(days: u32) -> PlanShape {
    PlanShape {
        data_mb: None,
        days,
    }
}

const CORE_SHAPES: [PlanShape; 2] = [gb(1, 7), gb(5, 30)];
const EXTRA_SHAPES: [PlanShape; 5] = [gb(2, 15), gb(3, 30), gb(10, 30), gb(20, 30), gb(50, 180)];
const UNLIMITED_SHAPES: [PlanShape; 2] = [unlimited(7), unlimited(15)];
const REGIONAL_SHAPES: [PlanShape; 3] = [gb(1, 7), gb(5, 30), gb(10, 30)];

impl PlanShape {
    /// Human label of the allowance as the providers print it: "1 GB", "500 MB", "Unlimited".
    pub fn data_label(&self) -> String {
        match self.data_mb {
            None => "Unlimited".to_owned(),
            Some(mb) if mb % MB_PER_GB == 0 => format!("{} GB", mb / MB_PER_GB),
            Some(mb) => format!("{mb} MB"),
        }
    }

    /// Short tag used inside package ids: "1gb", "unlimited".
    fn id_tag(&self) -> String {
        match self.data_mb {
            None => "unlimited".to_owned(),
            Some(mb) if mb % MB_PER_GB == 0 => format!("{}gb", mb / MB_PER_GB),
            Some(mb) => format!("{mb}mb"),
        }
    }
}

/// One Airalo catalogue entry: a country (local operators) or a region (global operators).
#[derive(Debug, Clone)]
pub struct AiraloListing {
    pub slug: String,
    pub country_code: Option<&'static str>,
    pub title: String,
    pub operators: Vec<AiraloOperator>,
}

/// An Airalo operator: the network whose packages are sold, with its coverage.
#[derive(Debug, Clone)]
pub struct AiraloOperator {
    pub id: u32,
    pub title: String,
    pub local: bool,
    pub rechargeable: bool,
    pub apn_value: String,
    pub countries: Vec<&'static str>,
    pub packages: Vec<AiraloPackage>,
}

/// An Airalo package (a plan); prices in US cents.
#[derive(Debug, Clone)]
pub struct AiraloPackage {
    pub id: String,
    pub shape: PlanShape,
    pub price_cents: u64,
    pub net_price_cents: u64,
}

impl AiraloPackage {
    /// Title as Airalo prints it: "1 GB - 7 Days".
    pub fn title(&self) -> String {
        format!("{} - {} Days", self.shape.data_label(), self.shape.days)
    }
}

/// An eSIM Access package; prices in units of 1/10,000 US dollar, as the API sends them.
#[derive(Debug, Clone)]
pub struct EsimAccessPackage {
    pub code: String,
    pub slug: String,
    pub name: String,
    pub shape: PlanShape,
    pub price_x10000: u64,
    pub retail_x10000: u64,
    pub location: Vec<&'static str>,
    pub region: Option<Region>,
    pub speed: &'static str,
    pub topup_supported: bool,
}

impl EsimAccessPackage {
    /// Data allowance in bytes (every eSIM Access package has a finite allowance).
    pub fn volume_bytes(&self) -> u64 {
        self.shape.data_mb.unwrap_or(0) * BYTES_PER_MB
    }

    /// Code of the top-up package matching this base package.
    pub fn topup_code(&self) -> String {
        format!("T{}", self.code)
    }
}

/// A provider-neutral view of one plan, served on `GET /_sim/catalogue` so that tests can find
/// equivalent plans without parsing either provider shape.
#[derive(Debug, Clone, Serialize)]
pub struct Offer {
    pub provider: &'static str,
    pub package_id: String,
    pub countries: Vec<&'static str>,
    pub region: Option<Region>,
    pub data_mb: Option<u64>,
    pub days: u32,
    pub cost_cents: u64,
    pub topup_supported: bool,
}

/// The whole seeded catalogue.
#[derive(Debug, Clone)]
pub struct Catalogue {
    pub seed: u64,
    pub airalo: Vec<AiraloListing>,
    pub esim_access: Vec<EsimAccessPackage>,
}

const OPERATOR_NAMES: &[&str] = &[
    "Bluewave",
    "Northwind",
    "Meridian",
    "Sunline",
    "Polar Net",
    "Citadel",
    "Lotus Mobile",
    "Granite",
    "Aurora",
    "Compass",
    "Skylark",
    "Harbour",
];

const SPEEDS: &[&str] = &["3G/4G", "4G/LTE", "3G/4G/5G"];

impl Catalogue {
    /// Builds the catalogue for a seed; the same seed always gives the same catalogue.
    pub fn generate(seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed ^ 0x00ca_7a10_6e5e_ed00);
        let mut codes = HashSet::new();
        let mut airalo = Vec::new();
        let mut esim_access = Vec::new();
        let mut operator_id = 1000;

        for country in COUNTRIES {
            let overlap = OVERLAP_COUNTRIES.contains(&country.code);
            let sells_airalo = overlap || rng.random_bool(0.85);
            let sells_esim_access = overlap || rng.random_bool(0.55);
            let price_level = region_price_level(country.region) * rng.random_range(0.9..1.15);
            let shapes = pick_shapes(&mut rng);

            if sells_airalo {
                operator_id += 1;
                let name = OPERATOR_NAMES[rng.random_range(0..OPERATOR_NAMES.len())];
                let mut airalo_shapes = shapes.clone();
                if rng.random_bool(0.35) {
                    airalo_shapes
                        .push(UNLIMITED_SHAPES[rng.random_range(0..UNLIMITED_SHAPES.len())]);
                }
                let operator_slug = format!("{}-{}", slugify(name), country.code.to_lowercase());
                airalo.push(AiraloListing {
                    slug: slugify(country.name),
                    country_code: Some(country.code),
                    title: country.name.to_owned(),
                    operators: vec![airalo_operator(
                        &mut rng,
                        operator_id,
                        format!("{name} {}", country.name),
                        &operator_slug,
                        true,
                        vec![country.code],
                        &airalo_shapes,
                        price_level,
                    )],
                });
            }

            if sells_esim_access {
                for shape in &shapes {
                    let cost = cost_cents(shape, price_level) * rng.random_range(85..=110) / 100;
                    esim_access.push(EsimAccessPackage {
                        code: unique_code(&mut rng, &mut codes),
                        slug: format!(
                            "{}_{}_{}",
                            country.code,
                            shape.data_mb.unwrap_or(0) / MB_PER_GB,
                            shape.days
                        ),
                        name: format!("{} {} {}Days", country.name, shape.data_label(), shape.days)
                            .replace(" GB", "GB"),
                        shape: *shape,
                        price_x10000: cost * 100,
                        retail_x10000: cost * 100 * 13 / 10,
                        location: vec![country.code],
                        region: None,
                        speed: SPEEDS[rng.random_range(0..SPEEDS.len())],
                        topup_supported: rng.random_bool(0.7),
                    });
                }
            }
        }

        let europe: Vec<&'static str> = COUNTRIES
            .iter()
            .filter(|c| c.region == Region::Europe)
            .map(|c| c.code)
            .collect();
        for (region, slug, title, coverage, operator) in [
            (Region::Europe, "europe", "Europe", europe, "Continental"),
            (
                Region::Asia,
                "asia",
                "Asia",
                ASIA_REGIONAL.to_vec(),
                "Pacific Link",
            ),
        ] {
            let level = region_price_level(region) * 1.2;
            operator_id += 1;
            airalo.push(AiraloListing {
                slug: slug.to_owned(),
                country_code: None,
                title: title.to_owned(),
                operators: vec![airalo_operator(
                    &mut rng,
                    operator_id,
                    operator.to_owned(),
                    &slugify(operator),
                    false,
                    coverage.clone(),
                    &REGIONAL_SHAPES,
                    level,
                )],
            });
            let prefix = if region == Region::Europe { "EU" } else { "AS" };
            for shape in &REGIONAL_SHAPES {
                let cost = cost_cents(shape, level) * rng.random_range(85..=110) / 100;
                esim_access.push(EsimAccessPackage {
                    code: unique_code(&mut rng, &mut codes),
                    slug: format!(
                        "{prefix}-{}_{}_{}",
                        coverage.len(),
                        shape.data_mb.unwrap_or(0) / MB_PER_GB,
                        shape.days
                    ),
                    name: format!(
                        "{title} ({} areas) {}GB {}Days",
                        coverage.len(),
                        shape.data_mb.unwrap_or(0) / MB_PER_GB,
                        shape.days
                    ),
                    shape: *shape,
                    price_x10000: cost * 100,
                    retail_x10000: cost * 100 * 13 / 10,
                    location: coverage.clone(),
                    region: Some(region),
                    speed: "3G/4G/5G",
                    topup_supported: true,
                });
            }
        }

        Self {
            seed,
            airalo,
            esim_access,
        }
    }

    /// Finds an Airalo package (not a top-up) by id, with its listing and operator.
    pub fn airalo_package(
        &self,
        id: &str,
    ) -> Option<(&AiraloListing, &AiraloOperator, &AiraloPackage)> {
        self.airalo.iter().find_map(|listing| {
            listing.operators.iter().find_map(|operator| {
                operator
                    .packages
                    .iter()
                    .find(|p| p.id == id)
                    .map(|package| (listing, operator, package))
            })
        })
    }

    /// Finds the base package behind an Airalo top-up id (`<package id>-topup`).
    pub fn airalo_topup(
        &self,
        id: &str,
    ) -> Option<(&AiraloListing, &AiraloOperator, &AiraloPackage)> {
        id.strip_suffix("-topup")
            .and_then(|base| self.airalo_package(base))
    }

    /// Finds an eSIM Access base package by code.
    pub fn esim_access_package(&self, code: &str) -> Option<&EsimAccessPackage> {
        self.esim_access.iter().find(|p| p.code == code)
    }

    /// Finds the base package behind an eSIM Access top-up code.
    pub fn esim_access_topup(&self, code: &str) -> Option<&EsimAccessPackage> {
        code.strip_prefix('T')
            .and_then(|base| self.esim_access_package(base))
            .filter(|p| p.topup_supported)
    }

    /// Every plan of both providers in one provider-neutral list.
    pub fn offers(&self) -> Vec<Offer> {
        let airalo = self.airalo.iter().flat_map(|listing| {
            listing.operators.iter().flat_map(move |operator| {
                operator.packages.iter().map(move |package| Offer {
                    provider: "airalo",
                    package_id: package.id.clone(),
                    countries: operator.countries.clone(),
                    region: listing
                        .country_code
                        .is_none()
                        .then(|| region_of_slug(&listing.slug))
                        .flatten(),
                    data_mb: package.shape.data_mb,
                    days: package.shape.days,
                    cost_cents: package.net_price_cents,
                    topup_supported: operator.rechargeable,
                })
            })
        });
        let esim_access = self.esim_access.iter().map(|package| Offer {
            provider: "esimaccess",
            package_id: package.code.clone(),
            countries: package.location.clone(),
            region: package.region,
            data_mb: package.shape.data_mb,
            days: package.shape.days,
            cost_cents: package.price_x10000 / 100,
            topup_supported: package.topup_supported,
        });
        airalo.chain(esim_access).collect()
    }
}

#[allow(clippy::too_many_arguments)]
fn airalo_operator(
    rng: &mut StdRng,
    id: u32,
    title: String,
    slug: &str,
    local: bool,
    countries: Vec<&'static str>,
    shapes: &[PlanShape],
    price_level: f64,
) -> AiraloOperator {
    let packages = shapes
        .iter()
        .map(|shape| {
            let net = cost_cents(shape, price_level);
            AiraloPackage {
                id: format!("{slug}-{}days-{}", shape.days, shape.id_tag()),
                shape: *shape,
                price_cents: retail_cents(net * 13 / 10),
                net_price_cents: net,
            }
        })
        .collect();
    AiraloOperator {
        id,
        title,
        local,
        rechargeable: !local || rng.random_bool(0.8),
        apn_value: if rng.random_bool(0.5) {
            "globaldata".to_owned()
        } else {
            "internet".to_owned()
        },
        countries,
        packages,
    }
}

/// The core shapes plus one to three extra ones, in a stable order.
fn pick_shapes(rng: &mut StdRng) -> Vec<PlanShape> {
    let mut extra = EXTRA_SHAPES.to_vec();
    extra.shuffle(rng);
    let count = rng.random_range(1..=3);
    let mut shapes: Vec<PlanShape> = CORE_SHAPES.to_vec();
    shapes.extend(extra.into_iter().take(count));
    shapes.sort_by_key(|s| (s.data_mb.unwrap_or(u64::MAX), s.days));
    shapes
}

fn region_price_level(region: Region) -> f64 {
    match region {
        Region::Europe => 1.0,
        Region::Asia => 1.1,
        Region::Americas => 1.3,
        Region::Oceania => 1.4,
        Region::MiddleEast => 1.6,
        Region::Africa => 1.8,
    }
}

/// Wholesale cost in US cents for a plan shape at a price level.
fn cost_cents(shape: &PlanShape, level: f64) -> u64 {
    let raw = match shape.data_mb {
        Some(mb) => 180.0 + (mb as f64 / MB_PER_GB as f64) * 120.0 + f64::from(shape.days) * 4.0,
        None => 600.0 + f64::from(shape.days) * 110.0,
    };
    (raw * level).round().max(100.0) as u64
}

/// Rounds a price to the shop-style ".x9" ending.
fn retail_cents(cents: u64) -> u64 {
    (cents.div_ceil(50) * 50).saturating_sub(1).max(99)
}

fn unique_code(rng: &mut StdRng, taken: &mut HashSet<String>) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    loop {
        let code: String = (0..6)
            .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
            .collect();
        let code = format!("P{code}");
        if taken.insert(code.clone()) {
            return code;
        }
    }
}

fn slugify(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            'ü' => 'u',
            c if c.is_ascii_alphanumeric() => c.to_ascii_lowercase(),
            _ => '-',
        })
        .collect()
}

fn region_of_slug(slug: &str) -> Option<Region> {
    match slug {
        "europe" => Some(Region::Europe),
        "asia" => Some(Region::Asia),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_gives_the_same_catalogue() {
        let first = Catalogue::generate(7);

        let second = Catalogue::generate(7);

        assert_eq!(
            serde_json::to_string(&first.offers()).ok(),
            serde_json::to_string(&second.offers()).ok()
        );
    }

    #[test]
    fn different_seeds_give_different_catalogues() {
        let first = Catalogue::generate(1);

        let second = Catalogue::generate(2);

        assert_ne!(
            serde_json::to_string(&first.offers()).ok(),
            serde_json::to_string(&second.offers()).ok()
        );
    }

    #[test]
    fn overlap_countries_have_equivalent_plans_at_both_providers_for_any_seed() {
        for seed in 0..20 {
            let catalogue = Catalogue::generate(seed);
            let offers = catalogue.offers();

            for code in OVERLAP_COUNTRIES {
                for shape in CORE_SHAPES {
                    let sold_by = |provider: &str| {
                        offers.iter().any(|o| {
                            o.provider == provider
                                && o.region.is_none()
                                && o.countries == [*code]
                                && o.data_mb == shape.data_mb
                                && o.days == shape.days
                        })
                    };
                    assert!(
                        sold_by("airalo"),
                        "seed {seed}: airalo lacks {code} {shape:?}"
                    );
                    assert!(
                        sold_by("esimaccess"),
                        "seed {seed}: esimaccess lacks {code}"
                    );
                }
            }
        }
    }

    #[test]
    fn catalogue_has_dozens_of_countries_regional_and_unlimited_plans() {
        let catalogue = Catalogue::generate(42);
        let offers = catalogue.offers();

        let countries: HashSet<&str> = offers
            .iter()
            .filter(|o| o.region.is_none())
            .flat_map(|o| o.countries.iter().copied())
            .collect();

        assert!(countries.len() >= 36, "only {} countries", countries.len());
        assert!(offers.iter().any(|o| o.region == Some(Region::Europe)));
        assert!(offers.iter().any(|o| o.region == Some(Region::Asia)));
        assert!(offers.iter().any(|o| o.data_mb.is_none()));
        assert!(
            offers
                .iter()
                .filter(|o| o.provider == "esimaccess")
                .all(|o| o.data_mb.is_some())
        );
    }

    #[test]
    fn package_ids_are_unique_per_provider() {
        let offers = Catalogue::generate(3).offers();

        let mut seen = HashSet::new();

        assert!(
            offers
                .iter()
                .all(|o| seen.insert((o.provider, o.package_id.clone())))
        );
    }

    #[test]
    fn topup_ids_resolve_to_their_base_packages() {
        let catalogue = Catalogue::generate(5);
        let base = &catalogue.airalo[0].operators[0].packages[0];
        let esim = catalogue
            .esim_access
            .iter()
            .find(|p| p.topup_supported)
            .map(|p| p.code.clone());

        let airalo_topup = catalogue.airalo_topup(&format!("{}-topup", base.id));
        let esim_topup = esim
            .as_deref()
            .and_then(|c| catalogue.esim_access_topup(&format!("T{c}")));

        assert_eq!(
            airalo_topup.map(|(_, _, p)| p.id.clone()),
            Some(base.id.clone())
        );
        assert_eq!(esim_topup.map(|p| p.code.clone()), esim);
    }
}
