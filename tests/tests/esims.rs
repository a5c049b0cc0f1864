//! The eSIM read routes on the local stack: state, next step, activation details, the QR
//! code as SVG, a customer's eSIMs, and another tenant's eSIM answering 404.

use aws_sdk_dynamodb::types::AttributeValue;
use esim_shared::aws::dynamo::{Item, to_item};
use esim_shared::domain::esim::{ActivationCode, Esim};
use esim_shared::domain::ids::{CustomerId, EsimId, Iccid, OrderId, PlanId, ProviderId, TenantId};
use esim_shared::domain::lifecycle::{Lifecycle, ProfileState};
use integration_tests::{admin, stack, table};

fn esim(tenant: &TenantId) -> Esim {
    let at = time::OffsetDateTime::now_utc();
    Esim {
        esim_id: EsimId::from_ulid(ulid::Ulid::new()),
        tenant_id: tenant.clone(),
        order_id: OrderId::from_ulid(ulid::Ulid::new()),
        customer_id: CustomerId::parse("traveller-7").expect("id"),
        plan_id: PlanId::parse("plan-1").expect("id"),
        provider: ProviderId::parse("airalo").expect("id"),
        iccid: Iccid::parse("8944771000000000017").expect("iccid"),
        provider_profile_ref: None,
        activation: ActivationCode::parse("LPA:1$smdp.example.com$ABCD-1234").expect("lpa"),
        qr_code_url: None,
        direct_install_url: Some("https://esimsetup.apple.com/install?x".to_owned()),
        apn: None,
        lifecycle: Lifecycle::new(ProfileState::Provisioned, at),
        qr_valid_until: Some(at + time::Duration::days(30)),
        created_at: at,
    }
}

#[tokio::test]
async fn an_esim_shows_its_state_next_step_activation_and_qr_code_to_its_tenant_only() {
    let (stack, aws) = stack(|o| o.background = false).await;
    let admin = admin(&aws, &stack);
    let (tenant, key) = admin.create_tenant("Acme Travel").await.expect("tenant");
    let (_, other_key) = admin.create_tenant("Other").await.expect("tenant");
    let esim = esim(&tenant.tenant_id);
    let mut item: Item = to_item(
        &esim,
        &format!("T#{}#ESIM#{}", esim.tenant_id, esim.esim_id),
        "ESIM",
    )
    .expect("item");
    item.insert(
        "gsi2pk".to_owned(),
        AttributeValue::S(format!(
            "T#{}#CUSTOMER#{}",
            esim.tenant_id, esim.customer_id
        )),
    );
    item.insert(
        "gsi2sk".to_owned(),
        AttributeValue::S(format!("{}#{}", esim.created_at, esim.esim_id)),
    );
    table(&aws, &stack).put_new(item).await.expect("stored");
    let client = reqwest::Client::new();
    let get = |path: String, key: String| {
        let request = client
            .get(format!("{}{path}", stack.base_url))
            .bearer_auth(key);
        async move { request.send().await.expect("answered") }
    };

    let view = get(format!("/v1/esims/{}", esim.esim_id), key.plaintext.clone()).await;
    let qr = get(
        format!("/v1/esims/{}/qr.svg", esim.esim_id),
        key.plaintext.clone(),
    )
    .await;
    let list = get(
        "/v1/customers/traveller-7/esims".to_owned(),
        key.plaintext.clone(),
    )
    .await;
    let foreign = get(
        format!("/v1/esims/{}", esim.esim_id),
        other_key.plaintext.clone(),
    )
    .await;
    let unknown = get("/v1/esims/not-an-id".to_owned(), key.plaintext.clone()).await;

    assert_eq!(view.status(), 200);
    let view: serde_json::Value = view.json().await.expect("json");
    assert_eq!(view["state"], "provisioned");
    assert_eq!(view["next_step"], ProfileState::Provisioned.next_step());
    assert_eq!(
        view["activation"]["lpa"],
        "LPA:1$smdp.example.com$ABCD-1234"
    );
    assert_eq!(view["activation"]["smdp_address"], "smdp.example.com");
    assert_eq!(view["activation"]["matching_id"], "ABCD-1234");
    assert!(view["activation"]["direct_install_url"].is_string());
    assert!(view["qr_valid_until"].is_string());
    assert_eq!(view["plan"]["plan_id"], "plan-1");
    assert!(view["usage"].is_null());
    assert_eq!(qr.status(), 200);
    assert_eq!(qr.headers()["content-type"], "image/svg+xml");
    assert!(qr.text().await.expect("svg").contains("<svg"));
    let list: serde_json::Value = list.json().await.expect("json");
    assert_eq!(list["esims"][0]["esim_id"], esim.esim_id.to_string());
    assert_eq!(foreign.status(), 404);
    assert_eq!(unknown.status(), 404);
}

/// What a new user does on `make run`: order from the asynchronous provider, then watch the
/// eSIM as the simulator's webhooks arrive.
#[tokio::test]
async fn an_async_order_walks_from_provisioned_to_activated_as_webhooks_arrive() {
    let (stack, aws) = stack(|o| {
        o.simulator = Some(provider_sim::SimConfig::default().with_time_scale(20.0));
        o.retry_after = Some(std::time::Duration::from_secs(1));
        o.extra_environment
            .insert("WEBHOOK_RETRY_DELAY_SECONDS".to_owned(), "1".to_owned());
    })
    .await;
    let sim = stack.simulator.as_ref().expect("simulator");
    sim.set_knobs(
        provider_sim::Provider::EsimAccess,
        &serde_json::json!({
            "provisioning_delay_s": 10.0,
            "download_after_s": 60.0,
            "install_after_s": 120.0,
            "activation_after_s": 180.0,
        }),
    )
    .expect("knobs");
    let (_, key) = admin(&aws, &stack)
        .create_tenant("Async Travel")
        .await
        .expect("tenant");
    let client = reqwest::Client::new();
    let url = |path: &str| format!("{}{path}", stack.base_url);
    let plans: serde_json::Value = client
        .get(url("/v1/plans?country=JP"))
        .bearer_auth(&key.plaintext)
        .send()
        .await
        .expect("answered")
        .json()
        .await
        .expect("json");
    let plan_id = plans["plans"]
        .as_array()
        .expect("plans")
        .iter()
        .find(|p| p["provider"] == "esim-access")
        .expect("an eSIM Access plan for JP")["plan_id"]
        .clone();

    let order: serde_json::Value = client
        .post(url("/v1/orders"))
        .bearer_auth(&key.plaintext)
        .header("idempotency-key", "async-walk-1")
        .json(&serde_json::json!({
            "customer_id": "traveller-9",
            "plan_id": plan_id,
            "quantity": 1,
            "payment_method_ref": "pm_test",
        }))
        .send()
        .await
        .expect("answered")
        .json()
        .await
        .expect("json");
    let order_id = order["order_id"].as_str().expect("order id").to_owned();
    let mut esim_id = None;
    for _ in 0..120 {
        let order: serde_json::Value = client
            .get(url(&format!("/v1/orders/{order_id}")))
            .bearer_auth(&key.plaintext)
            .send()
            .await
            .expect("answered")
            .json()
            .await
            .expect("json");
        if let Some(id) = order["esims"][0]["esim_id"].as_str() {
            esim_id = Some(id.to_owned());
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    let esim_id = esim_id.expect("the order was provisioned");
    let mut seen: Vec<(String, String)> = Vec::new();
    let mut last = serde_json::Value::Null;
    for _ in 0..240 {
        last = client
            .get(url(&format!("/v1/esims/{esim_id}")))
            .bearer_auth(&key.plaintext)
            .send()
            .await
            .expect("answered")
            .json()
            .await
            .expect("json");
        let state = last["state"].as_str().unwrap_or_default().to_owned();
        let next_step = last["next_step"].as_str().unwrap_or_default().to_owned();
        if seen.last().map(|(s, _)| s) != Some(&state) {
            seen.push((state.clone(), next_step));
        }
        if state == "activated" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }

    println!(
        "states seen: {:?}",
        seen.iter().map(|(s, _)| s).collect::<Vec<_>>()
    );
    assert_eq!(last["state"], "activated", "{last}");
    let order_of = |word: &str| {
        ProfileState::ALL
            .iter()
            .position(|s| s.as_str() == word)
            .expect("a state word")
    };
    for pair in seen.windows(2) {
        assert!(order_of(&pair[0].0) < order_of(&pair[1].0), "{seen:?}");
    }
    for (state, next_step) in &seen {
        let expected = ProfileState::ALL[order_of(state)].next_step();
        assert_eq!(next_step, expected, "{state}");
    }
    for state in ["provisioned", "downloaded", "installed", "activated"] {
        assert!(last["state_history"][state].is_string(), "{state}: {last}");
    }
    let deliveries = sim
        .provider_snapshot(provider_sim::Provider::EsimAccess)
        .webhooks_sent;
    let answered: Vec<_> = deliveries
        .iter()
        .map(|d| (d.kind.clone(), d.status))
        .collect();
    assert!(
        deliveries.iter().filter(|d| d.status == Some(200)).count() >= 4,
        "the order result and three profile events reached the intake: {answered:?}"
    );
    assert!(
        deliveries.iter().all(|d| d.status == Some(200)),
        "{answered:?}"
    );
}
