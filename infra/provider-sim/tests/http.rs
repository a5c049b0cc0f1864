//! End-to-end checks of the simulator over HTTP: both provider shapes, the control API and
//! webhook delivery to a receiver on loopback.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use provider_sim::signing::{airalo_webhook_signature, esim_access_signature};
use provider_sim::{Provider, SimConfig, SimHandle, spawn};
use serde_json::{Value, json};

type Received = Arc<Mutex<Vec<(HeaderMap, Bytes)>>>;

/// A webhook receiver on a free port that records every request.
async fn receiver() -> (String, Received) {
    let received: Received = Arc::default();
    let app = Router::new()
        .route(
            "/{*path}",
            post(
                |State(log): State<Received>, headers: HeaderMap, body: Bytes| async move {
                    log.lock().expect("receiver lock").push((headers, body));
                    "ok"
                },
            ),
        )
        .with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind receiver");
    let url = format!("http://{}", listener.local_addr().expect("receiver addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, received)
}

async fn wait_for(received: &Received, count: usize) -> Vec<(HeaderMap, Bytes)> {
    for _ in 0..300 {
        let snapshot = received.lock().expect("receiver lock").clone();
        if snapshot.len() >= count {
            return snapshot;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    received.lock().expect("receiver lock").clone()
}

async fn start() -> (SimHandle, reqwest::Client) {
    let sim = spawn(SimConfig::default().with_seed(7))
        .await
        .expect("simulator starts");
    (sim, reqwest::Client::new())
}

async fn airalo_token(sim: &SimHandle, client: &reqwest::Client) -> String {
    let response = client
        .post(format!("{}/v2/token", sim.airalo_url()))
        .form(&[
            ("client_id", sim.config().airalo.client_id.as_str()),
            ("client_secret", sim.config().airalo.client_secret.as_str()),
            ("grant_type", "client_credentials"),
        ])
        .send()
        .await
        .expect("token request");
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("token body");
    body["data"]["access_token"]
        .as_str()
        .expect("access token")
        .to_owned()
}

async fn airalo_order(
    sim: &SimHandle,
    client: &reqwest::Client,
    token: &str,
    path: &str,
    body: Value,
) -> reqwest::Response {
    client
        .post(format!("{}/v2/{path}", sim.airalo_url()))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .expect("order request")
}

fn first_package(sim: &SimHandle, country: &str) -> String {
    let state = sim.sim().lock();
    state
        .catalogue
        .airalo
        .iter()
        .find(|l| l.country_code == Some(country))
        .map(|l| l.operators[0].packages[0].id.clone())
        .expect("package for country")
}

async fn esim_access(
    sim: &SimHandle,
    client: &reqwest::Client,
    path: &str,
    body: &Value,
    secret: &str,
) -> reqwest::Response {
    let body = serde_json::to_vec(body).expect("json");
    let timestamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_millis()
        .to_string();
    let request_id = "9b1deb4d-3b7d-4bad-9bdd-2b0d7b3dcb6d";
    let access_code = sim.config().esim_access.access_code.clone();
    let signature = esim_access_signature(secret, &timestamp, request_id, &access_code, &body);
    client
        .post(format!("{}/api/v1/open/{path}", sim.esim_access_url()))
        .header("RT-AccessCode", access_code)
        .header("RT-Timestamp", timestamp)
        .header("RT-RequestID", request_id)
        .header("RT-Signature", signature)
        .header("Content-Type", "application/json")
        .body(body)
        .send()
        .await
        .expect("esim access request")
}

#[tokio::test]
async fn airalo_rejects_bad_credentials_and_missing_tokens() {
    let (sim, client) = start().await;

    let token = client
        .post(format!("{}/v2/token", sim.airalo_url()))
        .json(&json!({"client_id": "x", "client_secret": "y", "grant_type": "client_credentials"}))
        .send()
        .await
        .expect("token request");
    let packages = client
        .get(format!("{}/v2/packages", sim.airalo_url()))
        .send()
        .await
        .expect("packages request");

    assert_eq!(token.status(), 401);
    assert_eq!(packages.status(), 401);
}

#[tokio::test]
async fn airalo_packages_are_paginated_and_filtered() {
    let (sim, client) = start().await;
    let token = airalo_token(&sim, &client).await;

    let all: Value = client
        .get(format!("{}/v2/packages?limit=10&page=2", sim.airalo_url()))
        .bearer_auth(&token)
        .send()
        .await
        .expect("packages")
        .json()
        .await
        .expect("json");
    let japan: Value = client
        .get(format!(
            "{}/v2/packages?filter[country]=JP",
            sim.airalo_url()
        ))
        .bearer_auth(&token)
        .send()
        .await
        .expect("packages")
        .json()
        .await
        .expect("json");

    assert_eq!(all["meta"]["current_page"], 2);
    assert_eq!(all["data"].as_array().map(Vec::len), Some(10));
    let slugs: Vec<&str> = japan["data"]
        .as_array()
        .expect("data")
        .iter()
        .filter_map(|l| l["slug"].as_str())
        .collect();
    assert_eq!(slugs, ["japan", "asia"]);
    let package = &japan["data"][0]["operators"][0]["packages"][0];
    assert_eq!(package["type"], "sim");
    assert!(package["net_price"].as_f64().is_some());
}

#[tokio::test]
async fn airalo_sync_order_returns_sims_and_lookup_finds_it() {
    let (sim, client) = start().await;
    let token = airalo_token(&sim, &client).await;
    let package = first_package(&sim, "FR");

    let response = airalo_order(
        &sim,
        &client,
        &token,
        "orders",
        json!({"package_id": package, "quantity": 1, "type": "sim", "description": "ord_1"}),
    )
    .await;
    let body: Value = response.json().await.expect("order body");
    let iccid = body["data"]["sims"][0]["iccid"]
        .as_str()
        .expect("iccid")
        .to_owned();
    let lookup: Value = client
        .get(format!(
            "{}/v2/orders?filter[description]=ord_1",
            sim.airalo_url()
        ))
        .bearer_auth(&token)
        .send()
        .await
        .expect("lookup")
        .json()
        .await
        .expect("json");
    let usage: Value = client
        .get(format!("{}/v2/sims/{iccid}/usage", sim.airalo_url()))
        .bearer_auth(&token)
        .send()
        .await
        .expect("usage")
        .json()
        .await
        .expect("json");

    assert!(
        body["data"]["sims"][0]["qrcode"]
            .as_str()
            .is_some_and(|q| q.starts_with("LPA:1$"))
    );
    assert_eq!(lookup["data"][0]["sims"][0]["iccid"], iccid.as_str());
    assert_eq!(usage["data"]["status"], "NOT_ACTIVE");
}

#[tokio::test]
async fn airalo_lost_response_still_commits_the_order() {
    let (sim, client) = start().await;
    let token = airalo_token(&sim, &client).await;
    let package = first_package(&sim, "DE");

    for mode in ["bad_gateway", "drop_connection"] {
        sim.set_knobs(
            Provider::Airalo,
            &json!({"lose_response_after_commit": true, "lose_response_mode": mode}),
        )
        .expect("knobs");
        let reference = format!("lost_{mode}");

        let result = client
            .post(format!("{}/v2/orders", sim.airalo_url()))
            .bearer_auth(&token)
            .json(&json!({"package_id": package, "quantity": 1, "description": reference}))
            .send()
            .await;
        let completed = match result {
            Ok(response) if response.status().is_success() => response.bytes().await.is_ok(),
            _ => false,
        };

        assert!(!completed, "{mode}: response should be lost");
        let orders = sim.provider_snapshot(Provider::Airalo).orders;
        assert!(
            orders
                .iter()
                .any(|o| o.reference.as_deref() == Some(reference.as_str()))
        );
    }
}

#[tokio::test]
async fn airalo_injected_errors_use_documented_codes() {
    let (sim, client) = start().await;
    let token = airalo_token(&sim, &client).await;
    let package = first_package(&sim, "ES");

    for (kind, status, code) in [
        ("out_of_stock", 422, 33),
        ("maintenance", 422, 13),
        ("insufficient_credit", 422, 11),
        ("unavailable", 503, 503),
        ("rate_limited", 429, 429),
        ("invalid", 422, 422),
    ] {
        sim.set_knobs(
            Provider::Airalo,
            &json!({"error_rate": 1.0, "error_kind": kind, "error_operations": ["orders"]}),
        )
        .expect("knobs");

        let response = airalo_order(
            &sim,
            &client,
            &token,
            "orders",
            json!({"package_id": package}),
        )
        .await;

        assert_eq!(response.status(), status, "{kind}");
        let retry_after = response.headers().get("retry-after").cloned();
        let body: Value = response.json().await.expect("error body");
        assert_eq!(body["code"], code, "{kind}");
        assert_eq!(retry_after.is_some(), kind == "rate_limited");
    }
}

#[tokio::test]
async fn airalo_async_order_result_arrives_signed_by_webhook() {
    let (sim, client) = start().await;
    let (url, received) = receiver().await;
    sim.set_knobs(
        Provider::Airalo,
        &json!({"webhook_url": format!("{url}/hooks/airalo"), "provisioning_delay_s": 0}),
    )
    .expect("knobs");
    let token = airalo_token(&sim, &client).await;
    let package = first_package(&sim, "IT");

    let response = airalo_order(
        &sim,
        &client,
        &token,
        "orders-async",
        json!({"package_id": package, "quantity": 2, "description": "ord_async"}),
    )
    .await;
    let accepted: Value = response.json().await.expect("accepted body");
    let hooks = wait_for(&received, 1).await;

    let request_id = accepted["data"]["request_id"].as_str().expect("request id");
    let (headers, body) = &hooks[0];
    let payload: Value = serde_json::from_slice(body).expect("webhook json");
    assert_eq!(payload["request_id"], request_id);
    assert_eq!(payload["data"]["sims"].as_array().map(Vec::len), Some(2));
    let expected = airalo_webhook_signature(&sim.config().airalo.client_secret, body);
    assert_eq!(
        headers
            .get("airalo-signature")
            .and_then(|v| v.to_str().ok()),
        Some(expected.as_str())
    );
}

#[tokio::test]
async fn airalo_async_mode_refuses_the_sync_endpoint() {
    let (sim, client) = start().await;
    sim.set_knobs(Provider::Airalo, &json!({"mode": "async"}))
        .expect("knobs");
    let token = airalo_token(&sim, &client).await;
    let package = first_package(&sim, "IT");

    let response = airalo_order(
        &sim,
        &client,
        &token,
        "orders",
        json!({"package_id": package}),
    )
    .await;

    assert_eq!(response.status(), 422);
}

#[tokio::test]
async fn esim_access_rejects_a_bad_signature() {
    let (sim, client) = start().await;

    let response = esim_access(&sim, &client, "package/list", &json!({}), "wrong-secret").await;

    let body: Value = response.json().await.expect("body");
    assert_eq!(body["success"], false);
    assert_eq!(body["errorCode"], "101003");
}

#[tokio::test]
async fn esim_access_order_is_idempotent_and_profiles_arrive_later() {
    let (sim, client) = start().await;
    let (url, received) = receiver().await;
    sim.set_knobs(
        Provider::EsimAccess,
        &json!({
            "webhook_url": format!("{url}/hooks/esimaccess/s3cret"),
            "provisioning_delay_s": 60,
        }),
    )
    .expect("knobs");
    let secret = sim.config().esim_access.secret_key.clone();
    let list: Value = esim_access(
        &sim,
        &client,
        "package/list",
        &json!({"locationCode": "JP"}),
        &secret,
    )
    .await
    .json()
    .await
    .expect("list");
    let code = list["obj"]["packageList"][0]["packageCode"]
        .as_str()
        .expect("code")
        .to_owned();
    let order_body =
        json!({"transactionId": "txn_1", "packageInfoList": [{"packageCode": code, "count": 1}]});

    let first: Value = esim_access(&sim, &client, "esim/order", &order_body, &secret)
        .await
        .json()
        .await
        .expect("order");
    let second: Value = esim_access(&sim, &client, "esim/order", &order_body, &secret)
        .await
        .json()
        .await
        .expect("order");
    let order_no = first["obj"]["orderNo"]
        .as_str()
        .expect("orderNo")
        .to_owned();
    let early: Value = esim_access(
        &sim,
        &client,
        "esim/query",
        &json!({"orderNo": order_no}),
        &secret,
    )
    .await
    .json()
    .await
    .expect("query");
    sim.advance(61.0);
    let later: Value = esim_access(
        &sim,
        &client,
        "esim/query",
        &json!({"orderNo": order_no}),
        &secret,
    )
    .await
    .json()
    .await
    .expect("query");
    let hooks = wait_for(&received, 1).await;

    assert_eq!(second["obj"]["orderNo"], first["obj"]["orderNo"]);
    assert_eq!(sim.provider_snapshot(Provider::EsimAccess).orders.len(), 1);
    assert_eq!(early["errorCode"], "200010");
    assert_eq!(later["obj"]["esimList"][0]["esimStatus"], "GOT_RESOURCE");
    assert!(
        later["obj"]["esimList"][0]["ac"]
            .as_str()
            .is_some_and(|a| a.starts_with("LPA:1$"))
    );
    let envelope: Value = serde_json::from_slice(&hooks[0].1).expect("webhook json");
    assert_eq!(envelope["notifyType"], "ORDER_STATUS");
    assert!(envelope["notifyId"].as_str().is_some());
}

#[tokio::test]
async fn esim_access_lifecycle_sends_smdp_events_in_order() {
    let (sim, client) = start().await;
    let (url, received) = receiver().await;
    sim.set_knobs(
        Provider::EsimAccess,
        &json!({"webhook_url": format!("{url}/hooks/s"), "provisioning_delay_s": 0}),
    )
    .expect("knobs");
    let secret = sim.config().esim_access.secret_key.clone();
    let code = sim.sim().lock().catalogue.esim_access[0].code.clone();
    let order_body = json!({
        "transactionId": "txn_life",
        "packageInfoList": [{"packageCode": code, "count": 1}],
    });
    esim_access(&sim, &client, "esim/order", &order_body, &secret).await;

    sim.advance(1.0);
    sim.advance(120.0);
    let hooks = wait_for(&received, 5).await;

    let kinds: Vec<String> = hooks
        .iter()
        .map(|(_, body)| {
            let v: Value = serde_json::from_slice(body).expect("json");
            format!(
                "{}:{}",
                v["notifyType"].as_str().unwrap_or(""),
                v["content"]["smdpStatus"].as_str().unwrap_or("")
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "ORDER_STATUS:",
            "SMDP_EVENT:DOWNLOAD",
            "SMDP_EVENT:INSTALLATION",
            "SMDP_EVENT:ENABLED",
            "ESIM_STATUS:ENABLED"
        ]
    );
}

#[tokio::test]
async fn control_api_reads_lists_and_rejects_bad_knobs() {
    let (sim, client) = start().await;

    let knobs = client
        .post(format!("{}/_sim/knobs/airalo", sim.base_url()))
        .json(&json!({"latency_ms": 5}))
        .send()
        .await
        .expect("knobs");
    let bad = client
        .post(format!("{}/_sim/knobs", sim.base_url()))
        .json(&json!({"provider": "esimaccess", "error_rate": 2}))
        .send()
        .await
        .expect("knobs");
    let requests = client
        .get(format!("{}/_sim/airalo/requests", sim.base_url()))
        .send()
        .await
        .expect("requests");
    let catalogue: Value = client
        .get(format!("{}/_sim/catalogue", sim.base_url()))
        .send()
        .await
        .expect("catalogue")
        .json()
        .await
        .expect("json");

    assert_eq!(knobs.status(), 200);
    assert_eq!(bad.status(), 400);
    assert_eq!(requests.status(), 200);
    assert!(
        catalogue
            .as_array()
            .is_some_and(|offers| offers.len() > 100)
    );
}
