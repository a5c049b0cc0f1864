//! The local stack's provider wiring: the settings it gives the functions reach the provider
//! simulator through both adapters, and every plan the simulator sells comes back.

use std::collections::{BTreeSet, HashMap};

use esim_shared::domain::plan::CountryCode;
use esim_shared::providers;
use integration_tests::stack;
use local_stack::LocalStack;

async fn stack_with_simulator() -> LocalStack {
    let (stack, _aws) = stack(|o| {
        o.background = false;
        o.simulator = Some(provider_sim::SimConfig::default());
    })
    .await;
    stack
}

#[tokio::test]
async fn both_adapters_list_the_simulated_catalogue_with_the_stack_settings() {
    let stack = stack_with_simulator().await;
    let sim = stack
        .simulator
        .as_ref()
        .expect("the stack started a simulator");
    let env: HashMap<String, String> = local_stack::simulator_environment(sim);
    let mut sold: HashMap<&str, usize> = HashMap::new();
    for offer in sim.sim().lock().catalogue.offers() {
        *sold.entry(offer.provider).or_default() += 1;
    }

    let adapters = providers::from_env(&env).expect("the stack's provider settings are valid");
    let mut listed = HashMap::new();
    for adapter in &adapters {
        let plans = adapter.list_plans(None).await.expect("catalogue listed");
        let countries: BTreeSet<_> = plans.iter().flat_map(|p| &p.coverage.countries).collect();
        println!(
            "{}: {} plans, {} countries",
            adapter.id(),
            plans.len(),
            countries.len()
        );
        listed.insert(adapter.id().to_string(), (plans.len(), countries.len()));
    }

    assert_eq!(listed.len(), 2, "both providers are configured: {listed:?}");
    assert_eq!(listed["airalo"].0, sold["airalo"]);
    assert_eq!(listed["esim-access"].0, sold["esimaccess"]);
    assert!(listed["airalo"].1 >= 24, "dozens of countries: {listed:?}");
    assert!(
        listed["esim-access"].1 >= 24,
        "dozens of countries: {listed:?}"
    );
}

#[tokio::test]
async fn the_country_filter_reaches_both_providers() {
    let stack = stack_with_simulator().await;
    let sim = stack
        .simulator
        .as_ref()
        .expect("the stack started a simulator");
    let adapters = providers::from_env(&local_stack::simulator_environment(sim)).expect("valid");
    let japan = CountryCode::parse("JP").expect("code");

    for adapter in &adapters {
        let plans = adapter.list_plans(Some(&japan)).await.expect("listed");

        assert!(!plans.is_empty(), "{} sells plans for JP", adapter.id());
        assert!(
            plans.iter().all(|p| p.coverage.countries.contains(&japan)),
            "{} answered plans that do not cover JP",
            adapter.id()
        );
    }
}
