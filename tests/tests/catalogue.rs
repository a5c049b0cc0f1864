//! The catalogue on the local stack with the provider simulator: lazy first fetch, TTL
//! expiry, stale-while-revalidate with the providers down, one refresher under concurrent
//! cold requests, invalidation by event and by admin command, ETag and 304, tenant prices,
//! and clear 400/404 answers.

use std::time::Duration;

use esim_shared::aws::DynamoCatalogueStore;
use esim_shared::catalogue::{CatalogueStore, Invalidation, PriceRule, PricingRules};
use esim_shared::domain::ids::{PlanId, TenantId};
use esim_shared::domain::plan::{CountryCode, ProviderPlan};
use esim_shared::ports::PlanCatalogue;
use esim_shared::providers;
use integration_tests::{admin, stack, table};
use local_stack::LocalStack;
use provider_sim::Provider;
use serde_json::{Value, json};

struct Catalogue {
    stack: LocalStack,
    aws: aws_config::SdkConfig,
    client: reqwest::Client,
    key: String,
    tenant: TenantId,
}

async fn catalogue(env: &[(&str, &str)]) -> Catalogue {
    let (stack, aws) = stack(|o| {
        o.background = false;
        o.simulator = Some(provider_sim::SimConfig::default());
        for (name, value) in env {
            o.extra_environment
                .insert((*name).to_owned(), (*value).to_owned());
        }
    })
    .await;
    let (tenant, key) = admin(&aws, &stack)
        .create_tenant("Catalogue Travel")
        .await
        .expect("tenant");
    Catalogue {
        stack,
        aws,
        client: reqwest::Client::new(),
        key: key.plaintext.clone(),
        tenant: tenant.tenant_id,
    }
}

struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Value,
    text: String,
}

impl Catalogue {
    async fn get_as(&self, key: &str, path: &str, if_none_match: Option<&str>) -> Answer {
        let mut request = self
            .client
            .get(format!("{}{path}", self.stack.base_url))
            .bearer_auth(key);
        if let Some(tag) = if_none_match {
            request = request.header("if-none-match", tag);
        }
        let response = request.send().await.expect("answer");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.expect("body");
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Answer {
            status,
            headers,
            body,
            text,
        }
    }

    async fn get(&self, path: &str) -> Answer {
        self.get_as(&self.key, path, None).await
    }

    fn sim(&self) -> &provider_sim::SimHandle {
        self.stack.simulator.as_ref().expect("simulator")
    }

    /// Catalogue requests each simulated provider has answered so far.
    fn catalogue_requests(&self) -> (u64, u64) {
        let count = |provider, operation: &str| {
            self.sim()
                .provider_snapshot(provider)
                .requests
                .get(operation)
                .copied()
                .unwrap_or(0)
        };
        (
            count(Provider::Airalo, "packages"),
            count(Provider::EsimAccess, "package_list"),
        )
    }

    /// The adapters as the functions build them, for facts the API never shows (wholesale).
    async fn wholesale_plans(&self, country: &str) -> Vec<ProviderPlan> {
        let env = local_stack::simulator_environment(self.sim());
        let mut plans = Vec::new();
        let country = CountryCode::parse(country).expect("country");
        for adapter in providers::from_env(&env).expect("providers") {
            plans.extend(adapter.list_plans(Some(&country)).await.expect("listed"));
        }
        plans
    }

    fn store(&self) -> DynamoCatalogueStore {
        DynamoCatalogueStore::new(table(&self.aws, &self.stack))
    }

    fn providers_down(&self, down: bool) {
        let knobs = if down {
            json!({"error_rate": 1.0, "error_kind": "unavailable"})
        } else {
            json!({"error_rate": 0.0})
        };
        for provider in [Provider::Airalo, Provider::EsimAccess] {
            self.sim().set_knobs(provider, &knobs).expect("knobs");
        }
    }
}

fn plan_ids(answer: &Answer) -> Vec<String> {
    answer.body["plans"]
        .as_array()
        .expect("plans")
        .iter()
        .map(|p| p["plan_id"].as_str().expect("id").to_owned())
        .collect()
}

const NO_MEMORY: (&str, &str) = ("CATALOGUE_MEMORY_TTL_SECONDS", "0");
const ONE_SECOND_TTL: (&str, &str) = ("CATALOGUE_CACHE_TTL_SECONDS", "1");

#[tokio::test]
async fn a_country_is_fetched_lazily_once_and_then_served_from_the_cache() {
    let catalogue = catalogue(&[]).await;
    let before = catalogue.catalogue_requests();

    let first = catalogue.get("/v1/plans?country=jp").await;
    let after_first = catalogue.catalogue_requests();
    let second = catalogue.get("/v1/plans?country=JP").await;

    assert_eq!(
        before,
        (0, 0),
        "nothing is fetched before the first request"
    );
    assert_eq!(first.status, 200, "{}", first.text);
    assert_eq!(first.body["country"], "JP");
    assert_eq!(first.body["stale"], false);
    let ids = plan_ids(&first);
    assert!(ids.iter().any(|id| id.starts_with("airalo:")), "{ids:?}");
    assert!(
        ids.iter().any(|id| id.starts_with("esim-access:")),
        "{ids:?}"
    );
    for plan in first.body["plans"].as_array().expect("plans") {
        assert!(
            plan["countries"]
                .as_array()
                .expect("countries")
                .contains(&json!("JP"))
        );
        assert!(plan["price"]["amount_minor"].as_i64().expect("price") > 0);
        assert!(plan["validity_days"].as_u64().expect("validity") > 0);
    }
    assert!(after_first.0 >= 1 && after_first.1 >= 1, "{after_first:?}");
    assert_eq!(second.status, 200);
    assert_eq!(plan_ids(&second), ids);
    assert_eq!(
        catalogue.catalogue_requests(),
        after_first,
        "the second is a cache hit"
    );
}

#[tokio::test]
async fn tenants_never_see_the_wholesale_cost() {
    let catalogue = catalogue(&[]).await;
    let wholesale = catalogue.wholesale_plans("JP").await;

    let listing = catalogue.get("/v1/plans?country=JP").await;
    let one = catalogue
        .get(&format!("/v1/plans/{}", wholesale[0].plan_id))
        .await;

    assert_eq!(listing.status, 200, "{}", listing.text);
    assert_eq!(one.status, 200, "{}", one.text);
    for text in [&listing.text, &one.text] {
        assert!(!text.contains("wholesale"), "{text}");
        assert!(!text.contains("net_price"), "{text}");
        assert!(!text.contains("provider_plan_code"), "{text}");
    }
    for plan in listing.body["plans"].as_array().expect("plans") {
        let cost = wholesale
            .iter()
            .find(|w| w.plan_id.as_str() == plan["plan_id"])
            .expect("listed by a provider");
        assert!(
            plan["price"]["amount_minor"].as_i64().expect("price")
                > cost.wholesale_price.amount_minor,
            "the default rule adds a margin: {plan}"
        );
    }
}

#[tokio::test]
async fn an_entry_past_its_ttl_is_fetched_again() {
    let catalogue = catalogue(&[NO_MEMORY, ("CATALOGUE_CACHE_TTL_SECONDS", "3")]).await;
    let first = catalogue.get("/v1/plans?country=FR").await;
    let after_first = catalogue.catalogue_requests();

    let within_ttl = catalogue.get("/v1/plans?country=FR").await;
    let after_within = catalogue.catalogue_requests();
    tokio::time::sleep(Duration::from_millis(3100)).await;
    let expired = catalogue.get("/v1/plans?country=FR").await;

    assert_eq!(first.status, 200, "{}", first.text);
    assert_eq!(within_ttl.status, 200);
    assert_eq!(
        after_within, after_first,
        "fresh from DynamoDB, no provider call"
    );
    assert_eq!(expired.status, 200);
    assert_eq!(expired.body["stale"], false);
    let after_expiry = catalogue.catalogue_requests();
    assert!(after_expiry.0 > after_first.0 && after_expiry.1 > after_first.1);
}

#[tokio::test]
async fn stale_entries_are_served_with_their_age_while_the_providers_are_down() {
    let catalogue = catalogue(&[NO_MEMORY, ONE_SECOND_TTL]).await;
    let fresh = catalogue.get("/v1/plans?country=DE").await;
    catalogue.providers_down(true);
    tokio::time::sleep(Duration::from_millis(2100)).await;

    let stale = catalogue.get("/v1/plans?country=DE").await;
    let cold = catalogue.get("/v1/plans?country=IT").await;

    assert_eq!(fresh.status, 200, "{}", fresh.text);
    assert_eq!(stale.status, 200, "{}", stale.text);
    assert_eq!(stale.body["stale"], true);
    assert!(
        stale.body["age_seconds"].as_u64().expect("age") >= 2,
        "{}",
        stale.text
    );
    let age: u64 = stale.headers["age"]
        .to_str()
        .expect("text")
        .parse()
        .expect("seconds");
    assert!(age >= 2);
    assert!(
        stale.headers["cache-control"]
            .to_str()
            .expect("text")
            .contains("max-age=0")
    );
    assert_eq!(plan_ids(&stale), plan_ids(&fresh));
    assert_eq!(cold.status, 503, "{}", cold.text);
    assert_eq!(cold.body["error"]["code"], "provider_unavailable");
    assert_eq!(cold.body["error"]["retryable"], true);
}

#[tokio::test]
async fn concurrent_cold_requests_cause_exactly_one_provider_fetch() {
    let catalogue = catalogue(&[NO_MEMORY]).await;
    for provider in [Provider::Airalo, Provider::EsimAccess] {
        catalogue
            .sim()
            .set_knobs(provider, &json!({"latency_ms": 300}))
            .expect("knobs");
    }
    let before = catalogue.catalogue_requests();

    let mut burst = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let request = catalogue
            .client
            .get(format!("{}/v1/plans?country=ES", catalogue.stack.base_url))
            .bearer_auth(&catalogue.key);
        burst.spawn(async move {
            let response = request.send().await.expect("answer");
            let status = response.status().as_u16();
            let body: Value = response.json().await.expect("json");
            (status, body)
        });
    }
    let mut answers = Vec::new();
    while let Some(done) = burst.join_next().await {
        answers.push(done.expect("joined"));
    }
    let after_burst = catalogue.catalogue_requests();
    catalogue.wholesale_plans("ES").await;
    let after_one_fetch = catalogue.catalogue_requests();

    assert!(
        answers.iter().all(|(status, _)| *status == 200),
        "{answers:?}"
    );
    let ids = |body: &Value| body["plans"].as_array().map(Vec::len);
    assert!(ids(&answers[0].1) > Some(0));
    assert!(
        answers
            .iter()
            .all(|(_, body)| ids(body) == ids(&answers[0].1))
    );
    let burst = (after_burst.0 - before.0, after_burst.1 - before.1);
    let one_fetch = (
        after_one_fetch.0 - after_burst.0,
        after_one_fetch.1 - after_burst.1,
    );
    assert_eq!(
        burst, one_fetch,
        "eight cold requests cost what one fetch costs"
    );
}

#[tokio::test]
async fn concurrent_requests_for_an_expired_entry_get_it_stale_while_one_refreshes() {
    let catalogue = catalogue(&[NO_MEMORY, ("CATALOGUE_CACHE_TTL_SECONDS", "2")]).await;
    catalogue.get("/v1/plans?country=PT").await;
    for provider in [Provider::Airalo, Provider::EsimAccess] {
        catalogue
            .sim()
            .set_knobs(provider, &json!({"latency_ms": 400}))
            .expect("knobs");
    }
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let before = catalogue.catalogue_requests();

    let mut burst = tokio::task::JoinSet::new();
    for _ in 0..6 {
        let request = catalogue
            .client
            .get(format!("{}/v1/plans?country=PT", catalogue.stack.base_url))
            .bearer_auth(&catalogue.key);
        burst.spawn(async move {
            let started = std::time::Instant::now();
            let response = request.send().await.expect("answer");
            let body: Value = response.json().await.expect("json");
            (body["stale"].as_bool(), started.elapsed())
        });
    }
    let mut answers = Vec::new();
    while let Some(done) = burst.join_next().await {
        answers.push(done.expect("joined"));
    }
    let after_burst = catalogue.catalogue_requests();
    let next = catalogue.get("/v1/plans?country=PT").await;
    let after_next = catalogue.catalogue_requests();
    catalogue.wholesale_plans("PT").await;
    let after_one_fetch = catalogue.catalogue_requests();

    assert!(answers.iter().all(|(s, _)| s.is_some()), "{answers:?}");
    // Each provider's lease goes to one request; the requests that hold none answer with
    // the cached plans at once, without waiting for the provider.
    assert!(
        answers
            .iter()
            .any(|(s, took)| *s == Some(true) && *took < Duration::from_millis(400)),
        "{answers:?}"
    );
    assert_eq!(next.body["stale"], false, "{}", next.text);
    assert_eq!(after_next, after_burst, "refreshed once, fresh since");
    assert_eq!(
        (after_burst.0 - before.0, after_burst.1 - before.1),
        (
            after_one_fetch.0 - after_next.0,
            after_one_fetch.1 - after_next.1
        ),
        "one refresh for six requests"
    );
}

#[tokio::test]
async fn an_invalidation_event_on_the_bus_marks_the_country_stale() {
    let catalogue = catalogue(&[NO_MEMORY]).await;
    let first = catalogue.get("/v1/plans?country=JP").await;
    let after_first = catalogue.catalogue_requests();
    let eventbridge = aws_sdk_eventbridge::Client::new(&catalogue.aws);
    let detail = json!({"country": "JP"}).to_string();

    eventbridge
        .put_events()
        .entries(
            aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
                .event_bus_name(&catalogue.stack.resources.bus_name)
                .source("esim-backend.ops")
                .detail_type("CatalogueInvalidated")
                .detail(detail)
                .build(),
        )
        .send()
        .await
        .expect("published");
    let pump = catalogue.stack.pumps["CatalogueEventsQueue"].clone();
    let handled = pump
        .pump_once(Duration::from_secs(5))
        .await
        .expect("pumped");
    let unchanged = catalogue.get("/v1/plans?country=FR").await;
    let after_other_country = catalogue.catalogue_requests();
    let refreshed = catalogue.get("/v1/plans?country=JP").await;

    assert_eq!(first.status, 200);
    assert_eq!(
        handled, 1,
        "the rule routed the event to the catalogue events queue"
    );
    assert_eq!(unchanged.status, 200);
    let refreshed_requests = catalogue.catalogue_requests();
    assert_eq!(refreshed.status, 200);
    assert_eq!(refreshed.body["stale"], false);
    assert!(
        refreshed_requests.0 > after_other_country.0
            && refreshed_requests.1 > after_other_country.1,
        "JP was fetched again: {after_first:?} {after_other_country:?} {refreshed_requests:?}"
    );
}

#[tokio::test]
async fn the_admin_invalidation_of_a_provider_refreshes_only_that_provider() {
    let catalogue = catalogue(&[NO_MEMORY]).await;
    catalogue.get("/v1/plans?country=JP").await;
    catalogue.get("/v1/plans?country=FR").await;
    let before = catalogue.catalogue_requests();

    let marked = catalogue
        .store()
        .mark_stale(&Invalidation::Provider(
            esim_shared::domain::ProviderId::parse("airalo").expect("id"),
        ))
        .await
        .expect("marked");
    catalogue.get("/v1/plans?country=JP").await;
    catalogue.get("/v1/plans?country=FR").await;
    let after = catalogue.catalogue_requests();

    assert_eq!(marked, 2, "airalo's JP and FR entries");
    assert!(after.0 >= before.0 + 2, "{before:?} -> {after:?}");
    assert_eq!(after.1, before.1, "eSIM Access entries stayed fresh");
}

#[tokio::test]
async fn a_matching_if_none_match_gets_304() {
    let catalogue = catalogue(&[]).await;
    let first = catalogue.get("/v1/countries").await;
    let tag = first.headers["etag"].to_str().expect("text").to_owned();

    let revalidated = catalogue
        .get_as(&catalogue.key, "/v1/countries", Some(&tag))
        .await;
    let other_tag = catalogue
        .get_as(&catalogue.key, "/v1/countries", Some("W/\"other\""))
        .await;

    assert_eq!(first.status, 200, "{}", first.text);
    assert!(
        first.headers["cache-control"]
            .to_str()
            .expect("text")
            .starts_with("private, max-age=")
    );
    let countries = first.body["countries"].as_array().expect("countries");
    assert!(countries.len() >= 24, "{}", first.text);
    assert!(
        countries
            .iter()
            .any(|c| c["code"] == "JP" && c["plan_count"].as_u64() > Some(0))
    );
    assert_eq!(revalidated.status, 304);
    assert!(revalidated.text.is_empty());
    assert_eq!(revalidated.headers["etag"].to_str().expect("text"), tag);
    assert_eq!(other_tag.status, 200);
}

#[tokio::test]
async fn each_tenant_sees_its_own_prices() {
    let catalogue = catalogue(&[]).await;
    let (other, other_key) = admin(&catalogue.aws, &catalogue.stack)
        .create_tenant("Other Travel")
        .await
        .expect("tenant");
    let wholesale = catalogue.wholesale_plans("JP").await;
    let single = wholesale
        .iter()
        .find(|p| p.coverage.countries.len() == 1)
        .expect("a JP-only plan");
    let mut rules = PricingRules {
        default: PriceRule {
            margin_bp: 5000,
            fixed_minor: 25,
            price_point: None,
            price_minor: None,
        },
        ..PricingRules::default()
    };
    rules.plans.insert(
        single.plan_id.clone(),
        PriceRule {
            price_minor: Some(1234),
            ..PriceRule::default()
        },
    );
    catalogue
        .store()
        .save_pricing(&catalogue.tenant, &rules)
        .await
        .expect("saved");

    let mine = catalogue.get("/v1/plans?country=JP").await;
    let theirs = catalogue
        .get_as(&other_key.plaintext, "/v1/plans?country=JP", None)
        .await;
    let overridden = catalogue
        .get(&format!("/v1/plans/{}", single.plan_id))
        .await;

    assert_eq!(mine.status, 200, "{}", mine.text);
    assert_eq!(theirs.status, 200, "{}", theirs.text);
    let price_of = |answer: &Answer, id: &PlanId| -> i64 {
        answer.body["plans"]
            .as_array()
            .expect("plans")
            .iter()
            .find(|p| p["plan_id"] == id.as_str())
            .expect("listed")["price"]["amount_minor"]
            .as_i64()
            .expect("price")
    };
    for plan in &wholesale {
        let expected_mine = rules.retail(plan).expect("priced").amount_minor;
        let expected_theirs = PricingRules::default()
            .retail(plan)
            .expect("priced")
            .amount_minor;
        assert_eq!(
            price_of(&mine, &plan.plan_id),
            expected_mine,
            "{}",
            plan.plan_id
        );
        assert_eq!(
            price_of(&theirs, &plan.plan_id),
            expected_theirs,
            "{}",
            plan.plan_id
        );
    }
    assert_eq!(overridden.body["price"]["amount_minor"], 1234);
    assert_ne!(mine.headers["etag"], theirs.headers["etag"]);
    assert_ne!(other.tenant_id, catalogue.tenant);
}

#[tokio::test]
async fn a_plan_is_found_by_id_before_its_country_was_ever_listed() {
    let catalogue = catalogue(&[]).await;
    let wholesale = catalogue.wholesale_plans("GR").await;
    let plan = &wholesale[0];

    let found = catalogue.get(&format!("/v1/plans/{}", plan.plan_id)).await;
    let missing = catalogue.get("/v1/plans/airalo:no-such-package").await;
    let unknown_provider = catalogue.get("/v1/plans/acme:x").await;
    let malformed = catalogue.get("/v1/plans/has%20space").await;

    assert_eq!(found.status, 200, "{}", found.text);
    assert_eq!(found.body["plan_id"], plan.plan_id.as_str());
    assert_eq!(found.body["provider"], plan.provider.as_str());
    assert_eq!(found.body["validity_days"], plan.validity_days);
    assert_eq!(missing.status, 404, "{}", missing.text);
    assert_eq!(missing.body["error"]["code"], "not_found");
    assert_eq!(unknown_provider.status, 404);
    assert_eq!(malformed.status, 400, "{}", malformed.text);
}

#[tokio::test]
async fn unknown_countries_are_404_and_malformed_queries_400() {
    let catalogue = catalogue(&[]).await;

    let unknown = catalogue.get("/v1/plans?country=ZZ").await;
    let malformed = catalogue.get("/v1/plans?country=J1").await;
    let missing = catalogue.get("/v1/plans").await;
    let bad_filter = catalogue.get("/v1/plans?country=JP&min_data_mb=lots").await;
    let bad_flag = catalogue.get("/v1/plans?country=JP&unlimited=maybe").await;

    assert_eq!(unknown.status, 404, "{}", unknown.text);
    assert!(
        unknown.body["error"]["message"]
            .as_str()
            .expect("message")
            .contains("ZZ")
    );
    for (answer, word) in [
        (&malformed, "country"),
        (&missing, "country"),
        (&bad_filter, "min_data_mb"),
        (&bad_flag, "unlimited"),
    ] {
        assert_eq!(answer.status, 400, "{}", answer.text);
        assert_eq!(answer.body["error"]["code"], "invalid_request");
        let message = answer.body["error"]["message"].as_str().expect("message");
        assert!(message.contains(word), "{message}");
    }
}

#[tokio::test]
async fn filters_narrow_the_listing() {
    let catalogue = catalogue(&[]).await;
    let all = catalogue.get("/v1/plans?country=JP").await;
    let plans = all.body["plans"].as_array().expect("plans").clone();
    let largest_limited = plans
        .iter()
        .filter_map(|p| p["data_mb"].as_u64())
        .max()
        .expect("a limited plan");
    let longest = plans
        .iter()
        .filter_map(|p| p["validity_days"].as_u64())
        .max()
        .expect("validity");

    let big = catalogue
        .get(&format!(
            "/v1/plans?country=JP&min_data_mb={largest_limited}"
        ))
        .await;
    let long = catalogue
        .get(&format!("/v1/plans?country=JP&min_validity_days={longest}"))
        .await;
    let unlimited = catalogue.get("/v1/plans?country=JP&unlimited=true").await;

    for answer in [&big, &long, &unlimited] {
        assert_eq!(answer.status, 200, "{}", answer.text);
    }
    let big_plans = big.body["plans"].as_array().expect("plans");
    assert!(!big_plans.is_empty() && big_plans.len() < plans.len());
    assert!(
        big_plans
            .iter()
            .all(|p| p["unlimited"] == true || p["data_mb"].as_u64() >= Some(largest_limited))
    );
    let long_plans = long.body["plans"].as_array().expect("plans");
    assert!(!long_plans.is_empty());
    assert!(
        long_plans
            .iter()
            .all(|p| p["validity_days"].as_u64() == Some(longest))
    );
    let unlimited_plans = unlimited.body["plans"].as_array().expect("plans");
    assert!(unlimited_plans.iter().all(|p| p["unlimited"] == true));
    let expected_unlimited = plans.iter().filter(|p| p["unlimited"] == true).count();
    assert_eq!(unlimited_plans.len(), expected_unlimited);
}

#[tokio::test]
async fn the_scheduled_full_refresh_fills_every_country_of_the_listed_providers() {
    let catalogue = catalogue(&[("CATALOGUE_FULL_REFRESH_PROVIDERS", "airalo")]).await;
    let queue_url = catalogue.stack.resources.queues["CatalogueEventsQueue"]
        .url
        .clone();
    let sqs = aws_sdk_sqs::Client::new(&catalogue.aws);

    sqs.send_message()
        .queue_url(&queue_url)
        .message_body(r#"{"detail-type": "CatalogueRefreshDue", "detail": {}}"#)
        .send()
        .await
        .expect("sent");
    let handled = catalogue.stack.pumps["CatalogueEventsQueue"]
        .pump_once(Duration::from_secs(5))
        .await
        .expect("pumped");
    let after_refresh = catalogue.catalogue_requests();
    let entries = catalogue
        .store()
        .entries(&esim_shared::catalogue::Scope::Country(
            CountryCode::parse("JP").expect("cc"),
        ))
        .await
        .expect("read");

    assert_eq!(handled, 1);
    assert_eq!(
        after_refresh.1, 0,
        "eSIM Access did not ask for a full refresh"
    );
    assert!(after_refresh.0 >= 1);
    let providers: Vec<_> = entries.iter().map(|e| e.provider.to_string()).collect();
    assert_eq!(providers, ["airalo"]);
    assert!(entries[0].fetched_at.is_some() && !entries[0].plans.is_empty());
}

#[tokio::test]
async fn the_order_flow_port_prices_plans_finds_failover_candidates_and_reads_routing() {
    let catalogue = catalogue(&[]).await;
    let service = esim_shared::catalogue::CatalogueService::new(
        table(&catalogue.aws, &catalogue.stack),
        providers::from_env(&local_stack::simulator_environment(catalogue.sim()))
            .expect("providers"),
        std::sync::Arc::new(esim_shared::ports::SystemClock),
        esim_shared::catalogue::CatalogueConfig::default(),
    );
    let wholesale = catalogue.wholesale_plans("JP").await;
    let airalo_jp = wholesale
        .iter()
        .find(|p| p.provider.as_str() == "airalo" && p.coverage.countries.len() == 1)
        .expect("an Airalo JP plan");
    let routing = esim_shared::domain::routing::RoutingRules {
        preference: vec![esim_shared::domain::ProviderId::parse("esim-access").expect("id")],
        cost_tolerance_bp: 2500,
        ..Default::default()
    };
    catalogue
        .store()
        .save_routing(&catalogue.tenant, &routing)
        .await
        .expect("saved");
    let other_tenant = TenantId::parse("ten_without_rules").expect("id");

    let priced = service
        .priced_plan(&catalogue.tenant, &airalo_jp.plan_id)
        .await
        .expect("looked up")
        .expect("found");
    let candidates = service.candidates(&priced.plan).await.expect("listed");
    let stored_routing = service.routing(&catalogue.tenant).await.expect("read");
    let default_routing = service.routing(&other_tenant).await.expect("read");

    assert_eq!(&priced.plan, airalo_jp);
    assert_eq!(
        priced.retail,
        PricingRules::default().retail(airalo_jp).expect("priced")
    );
    assert!(!candidates.is_empty());
    assert!(candidates.iter().all(|c| {
        c.provider.as_str() == "esim-access"
            && c.coverage
                .countries
                .contains(&CountryCode::parse("JP").expect("cc"))
    }));
    assert_eq!(stored_routing, routing);
    assert_eq!(
        default_routing,
        esim_shared::domain::routing::RoutingRules::default()
    );
}
