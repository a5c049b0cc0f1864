//! Contract tests of the Airalo adapter against the provider simulator started in-process:
//! every operation of the port, each error the API documents, the token cache, a lost order
//! answer reconciled by reference, asynchronous orders completed by signed webhooks, and the
//! webhook signature checks.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use esim_shared::domain::ids::{Iccid, ProviderId};
use esim_shared::domain::plan::{CountryCode, DataAllowance};
use esim_shared::domain::{Currency, ErrorCode, Money, ProfileState};
use esim_shared::ports::provider::{
    OrderOutcome, ProviderApi, ProviderError, ProviderOrderRequest, ProvisionedProfile,
    WebhookError, WebhookFact, WebhookRequest,
};
use esim_shared::providers::airalo::{AiraloConfig, AiraloProvider};
use esim_shared::providers::http::HttpSettings;
use provider_sim::catalogue::BYTES_PER_MB;
use provider_sim::{Provider, SimConfig, SimHandle, spawn};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};

/// HTTP settings that keep retries fast and never throttle the tests themselves.
fn fast_http() -> HttpSettings {
    HttpSettings {
        connect_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_secs(5),
        max_attempts: 3,
        base_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(20),
        max_retry_after: Duration::from_secs(2),
        requests_per_second: 1000.0,
        burst: 1000,
    }
}

fn config(sim: &SimHandle, webhook_secrets: &[&str], webhook_url: Option<String>) -> AiraloConfig {
    AiraloConfig {
        base_url: sim.airalo_url(),
        client_id: sim.config().airalo.client_id.clone(),
        client_secret: sim.config().airalo.client_secret.clone(),
        webhook_secrets: webhook_secrets.iter().map(|s| (*s).to_owned()).collect(),
        async_order_webhook_url: webhook_url,
        http: fast_http(),
    }
}

fn adapter(config: AiraloConfig) -> AiraloProvider {
    AiraloProvider::new(ProviderId::parse("airalo").expect("provider id"), config)
        .expect("adapter builds")
}

/// A simulator and an adapter that trusts the simulator's default signing key.
async fn start() -> (SimHandle, AiraloProvider) {
    let sim = spawn(SimConfig::default()).await.expect("simulator starts");
    let secret = sim.config().airalo.client_secret.clone();
    let provider = adapter(config(&sim, &[&secret], None));
    (sim, provider)
}

fn knobs(sim: &SimHandle, patch: serde_json::Value) {
    sim.set_knobs(Provider::Airalo, &patch)
        .expect("valid knobs");
}

fn requests(sim: &SimHandle, operation: &str) -> u64 {
    sim.provider_snapshot(Provider::Airalo)
        .requests
        .get(operation)
        .copied()
        .unwrap_or(0)
}

/// A reference unique to this run, as the backend would mint for an order attempt.
fn reference(tag: &str) -> String {
    format!(
        "ord_{tag}_{}",
        ulid::Ulid::new().to_string().to_ascii_lowercase()
    )
}

fn order_request(plan_code: &str, our_reference: &str, synchronous: bool) -> ProviderOrderRequest {
    ProviderOrderRequest {
        our_reference: our_reference.to_owned(),
        plan_code: plan_code.to_owned(),
        quantity: 1,
        prefer_synchronous: synchronous,
    }
}

/// A package of the simulated catalogue: its id, data in MB, days and net price in cents.
#[derive(Debug, Clone)]
struct Package {
    id: String,
    data_mb: Option<u64>,
    days: u32,
    net_cents: u64,
}

/// The first package of a local listing whose operator's top-up flag is `rechargeable` and
/// whose data is limited.
fn local_package(sim: &SimHandle, rechargeable: bool) -> Option<Package> {
    let state = sim.sim().lock();
    state
        .catalogue
        .airalo
        .iter()
        .filter(|listing| listing.country_code.is_some())
        .flat_map(|listing| &listing.operators)
        .filter(|operator| operator.rechargeable == rechargeable)
        .flat_map(|operator| &operator.packages)
        .find(|package| package.shape.data_mb.is_some())
        .map(|package| Package {
            id: package.id.clone(),
            data_mb: package.shape.data_mb,
            days: package.shape.days,
            net_cents: package.net_price_cents,
        })
}

fn rechargeable_package(sim: &SimHandle) -> Package {
    local_package(sim, true).expect("the catalogue sells a rechargeable package")
}

/// The profile the simulator issued for an order, as the adapter should report it.
fn issued_profile(sim: &SimHandle, our_reference: &str) -> ProvisionedProfile {
    let snapshot = sim.provider_snapshot(Provider::Airalo);
    let order = snapshot
        .orders
        .iter()
        .find(|o| o.reference.as_deref() == Some(our_reference))
        .expect("order committed at the simulator");
    let iccid = order.iccids.first().expect("order has a profile");
    let profile = snapshot
        .sims
        .iter()
        .find(|p| &p.iccid == iccid)
        .expect("profile exists");
    let lpa = profile.lpa();
    ProvisionedProfile {
        iccid: Iccid::parse(iccid.clone()).expect("iccid"),
        provider_profile_ref: None,
        activation: esim_shared::domain::esim::ActivationCode {
            smdp_address: profile.smdp_address.clone(),
            matching_id: profile.matching_id.clone(),
        },
        qr_code_url: Some(format!("{}/_sim/qr/{iccid}", sim.base_url())),
        direct_install_url: Some(format!(
            "https://esimsetup.apple.com/esim_qrcode_provisioning?carddata={lpa}"
        )),
        apn: Some(profile.plan.apn_value.clone()),
    }
}

fn order_id_of(sim: &SimHandle, our_reference: &str) -> String {
    sim.provider_snapshot(Provider::Airalo)
        .orders
        .iter()
        .find(|o| o.reference.as_deref() == Some(our_reference))
        .map(|o| o.id.clone())
        .expect("order committed at the simulator")
}

async fn provisioned(provider: &AiraloProvider, plan: &str, tag: &str) -> (String, Iccid) {
    let our_reference = reference(tag);
    let outcome = provider
        .place_order(&order_request(plan, &our_reference, true))
        .await
        .expect("order succeeds");
    let OrderOutcome::Provisioned { profiles, .. } = outcome else {
        panic!("a synchronous order is provisioned at once");
    };
    (our_reference, profiles[0].iccid.clone())
}

/// Sets how much of a simulated profile's data is used, from its total.
fn use_data(sim: &SimHandle, iccid: &Iccid, used: impl FnOnce(u64) -> u64) {
    let mut state = sim.sim().lock();
    let profile = state
        .airalo
        .profiles
        .iter_mut()
        .find(|p| p.iccid == iccid.as_str())
        .expect("profile");
    profile.used_bytes = used(profile.total_bytes);
}

fn rejected(error: ProviderError) -> (ErrorCode, String) {
    match error {
        ProviderError::Rejected {
            code,
            provider_code,
            ..
        } => (code, provider_code),
        other => panic!("expected a rejection, got {other:?}"),
    }
}

// ---- A webhook receiver on loopback -------------------------------------------------------

/// One request as the receiver got it: headers and the raw body.
#[derive(Debug, Clone)]
struct Received {
    headers: HeaderMap,
    body: Vec<u8>,
}

type Inbox = Arc<Mutex<Vec<Received>>>;

/// A minimal HTTP/1.1 receiver on a free port that records every request and answers 200.
async fn receiver() -> (String, Inbox) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!(
        "http://{}/hooks/airalo",
        listener.local_addr().expect("addr")
    );
    let inbox: Inbox = Arc::default();
    let log = inbox.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let log = log.clone();
            tokio::spawn(async move {
                if let Some(received) = read_request(&stream).await {
                    log.lock().expect("inbox").push(received);
                }
                write_all(
                    &stream,
                    b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                )
                .await;
            });
        }
    });
    (url, inbox)
}

async fn read_request(stream: &TcpStream) -> Option<Received> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buffer[..end]).into_owned();
            let mut headers = HeaderMap::new();
            for line in head.lines().skip(1) {
                let (name, value) = line.split_once(':')?;
                headers.append(
                    HeaderName::from_bytes(name.trim().to_ascii_lowercase().as_bytes()).ok()?,
                    HeaderValue::from_str(value.trim()).ok()?,
                );
            }
            let length: usize = headers
                .get("content-length")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            if buffer.len() >= end + 4 + length {
                let body = buffer[end + 4..end + 4 + length].to_vec();
                return Some(Received { headers, body });
            }
        }
        stream.readable().await.ok()?;
        match stream.try_read(&mut chunk) {
            Ok(0) => return None,
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => return None,
        }
    }
}

async fn write_all(stream: &TcpStream, mut bytes: &[u8]) {
    while !bytes.is_empty() {
        if stream.writable().await.is_err() {
            return;
        }
        match stream.try_write(bytes) {
            Ok(n) => bytes = &bytes[n..],
            Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => return,
        }
    }
}

async fn wait_for(inbox: &Inbox, count: usize) -> Vec<Received> {
    for _ in 0..400 {
        let received = inbox.lock().expect("inbox").clone();
        if received.len() >= count {
            return received;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("expected {count} webhooks within four seconds");
}

fn webhook<'a>(headers: &'a HeaderMap, body: &'a [u8]) -> WebhookRequest<'a> {
    WebhookRequest {
        headers,
        path_secret: None,
        body,
        source_ip: None,
    }
}

/// Places an asynchronous order whose result the simulator posts, signed, to a receiver, and
/// returns the request id, our reference and the webhook as received.
async fn async_order_result(sim: &SimHandle) -> (String, String, Received) {
    let (url, inbox) = receiver().await;
    let secret = sim.config().airalo.client_secret.clone();
    let provider = adapter(config(sim, &[&secret], Some(url)));
    knobs(sim, json!({"provisioning_delay_s": 0}));
    let plan = rechargeable_package(sim);
    let our_reference = reference("async");
    let outcome = provider
        .place_order(&order_request(&plan.id, &our_reference, false))
        .await
        .expect("async order accepted");
    let OrderOutcome::Pending { provider_order_ref } = outcome else {
        panic!("an asynchronous order is pending until its webhook");
    };
    let received = wait_for(&inbox, 1).await.remove(0);
    (provider_order_ref, our_reference, received)
}

// ---- Catalogue ----------------------------------------------------------------------------

#[tokio::test]
async fn lists_every_package_across_pages_with_exact_wholesale_prices() {
    let (sim, provider) = start().await;
    let expected_count: usize = {
        let state = sim.sim().lock();
        state
            .catalogue
            .airalo
            .iter()
            .flat_map(|l| &l.operators)
            .map(|o| o.packages.len())
            .sum()
    };
    let sample = rechargeable_package(&sim);

    let plans = provider.list_plans(None).await.expect("plans");

    assert_eq!(plans.len(), expected_count);
    assert!(requests(&sim, "packages") >= 2, "the catalogue spans pages");
    let plan = plans
        .iter()
        .find(|p| p.provider_plan_code == sample.id)
        .expect("sample package listed");
    assert_eq!(plan.plan_id.as_str(), format!("airalo:{}", sample.id));
    assert_eq!(
        plan.wholesale_price,
        Money::new(
            i64::try_from(sample.net_cents).expect("cents"),
            Currency::USD
        )
    );
    assert_eq!(
        plan.data,
        DataAllowance::Limited {
            mb: sample.data_mb.expect("limited")
        }
    );
    assert_eq!(plan.validity_days, sample.days);
    assert!(plan.supports_top_up);
    assert_eq!(plan.coverage.region, None);
    assert_eq!(plan.coverage.countries.len(), 1);
}

#[tokio::test]
async fn a_country_filter_returns_local_and_regional_plans_covering_it() {
    let (sim, provider) = start().await;
    let japan = CountryCode::parse("JP").expect("country");
    let regional_ids: Vec<String> = {
        let state = sim.sim().lock();
        state
            .catalogue
            .airalo
            .iter()
            .filter(|l| l.slug == "asia")
            .flat_map(|l| &l.operators)
            .flat_map(|o| &o.packages)
            .map(|p| p.id.clone())
            .collect()
    };

    let plans = provider.list_plans(Some(&japan)).await.expect("plans");

    assert!(plans.iter().all(|p| p.coverage.countries.contains(&japan)));
    let regional: Vec<_> = plans
        .iter()
        .filter(|p| p.coverage.region.is_some())
        .collect();
    assert_eq!(regional.len(), regional_ids.len());
    assert!(regional.iter().all(|p| {
        p.coverage.region.as_deref() == Some("Asia") && p.coverage.countries.len() == 10
    }));
    assert!(
        plans
            .iter()
            .any(|p| p.coverage.countries == vec![japan.clone()])
    );
}

// ---- Orders -------------------------------------------------------------------------------

#[tokio::test]
async fn a_synchronous_order_returns_the_issued_profile_and_carries_our_reference() {
    let (sim, provider) = start().await;
    let plan = rechargeable_package(&sim);
    let our_reference = reference("sync");

    let outcome = provider
        .place_order(&order_request(&plan.id, &our_reference, true))
        .await
        .expect("order succeeds");

    assert_eq!(
        outcome,
        OrderOutcome::Provisioned {
            provider_order_ref: order_id_of(&sim, &our_reference),
            profiles: vec![issued_profile(&sim, &our_reference)],
        }
    );
    assert_eq!(requests(&sim, "orders"), 1);
    assert_eq!(requests(&sim, "orders_async"), 0);
}

#[tokio::test]
async fn find_order_finds_a_committed_order_by_our_reference_and_nothing_for_another() {
    let (sim, provider) = start().await;
    let plan = rechargeable_package(&sim);
    let (our_reference, _) = provisioned(&provider, &plan.id, "find").await;

    let found = provider.find_order(&our_reference).await.expect("lookup");
    let missing = provider
        .find_order(&reference("never"))
        .await
        .expect("lookup");

    assert_eq!(
        found,
        Some(OrderOutcome::Provisioned {
            provider_order_ref: order_id_of(&sim, &our_reference),
            profiles: vec![issued_profile(&sim, &our_reference)],
        })
    );
    assert_eq!(missing, None);
}

#[tokio::test]
async fn a_lost_answer_is_outcome_unknown_and_the_order_is_found_by_reference() {
    for mode in ["bad_gateway", "drop_connection"] {
        let (sim, provider) = start().await;
        let plan = rechargeable_package(&sim);
        knobs(
            &sim,
            json!({"lose_response_after_commit": true, "lose_response_mode": mode,
                   "lose_response_limit": 1}),
        );
        let our_reference = reference("lost");

        let placed = provider
            .place_order(&order_request(&plan.id, &our_reference, true))
            .await;
        let found = provider.find_order(&our_reference).await.expect("lookup");

        match placed {
            Err(ProviderError::OutcomeUnknown {
                our_reference: reported,
                ..
            }) => assert_eq!(reported, our_reference, "{mode}"),
            other => panic!("{mode}: expected OutcomeUnknown, got {other:?}"),
        }
        assert_eq!(
            requests(&sim, "orders"),
            1,
            "{mode}: the order is not repeated"
        );
        assert_eq!(
            found,
            Some(OrderOutcome::Provisioned {
                provider_order_ref: order_id_of(&sim, &our_reference),
                profiles: vec![issued_profile(&sim, &our_reference)],
            }),
            "{mode}"
        );
    }
}

#[tokio::test]
async fn an_asynchronous_order_completes_by_a_signed_webhook() {
    let sim = spawn(SimConfig::default()).await.expect("simulator starts");
    let secret = sim.config().airalo.client_secret.clone();
    let provider = adapter(config(&sim, &[&secret], None));

    let (request_id, our_reference, received) = async_order_result(&sim).await;
    let event = provider
        .verify_webhook(webhook(&received.headers, &received.body))
        .expect("authentic webhook");

    assert_eq!(event.dedupe_key, request_id);
    assert_eq!(
        event.facts,
        vec![WebhookFact::OrderCompleted {
            provider_order_ref: request_id.clone(),
            our_reference: Some(our_reference.clone()),
            profiles: vec![issued_profile(&sim, &our_reference)],
        }]
    );
    assert_eq!(requests(&sim, "orders_async"), 1);
    assert_eq!(requests(&sim, "orders"), 0);
    let found = provider.find_order(&our_reference).await.expect("lookup");
    assert_eq!(
        found,
        Some(OrderOutcome::Provisioned {
            provider_order_ref: order_id_of(&sim, &our_reference),
            profiles: vec![issued_profile(&sim, &our_reference)],
        })
    );
}

#[tokio::test]
async fn an_asynchronous_order_that_fails_later_reports_the_mapped_code_by_webhook() {
    let sim = spawn(SimConfig::default()).await.expect("simulator starts");
    let (url, inbox) = receiver().await;
    let secret = sim.config().airalo.client_secret.clone();
    let provider = adapter(config(&sim, &[&secret], Some(url)));
    knobs(
        &sim,
        json!({"provisioning_delay_s": 0, "error_rate": 1.0, "error_kind": "out_of_stock",
               "error_operations": ["orders_async"]}),
    );
    let plan = rechargeable_package(&sim);

    let outcome = provider
        .place_order(&order_request(&plan.id, &reference("async-fail"), false))
        .await
        .expect("accepted");
    let received = wait_for(&inbox, 1).await.remove(0);
    let event = provider
        .verify_webhook(webhook(&received.headers, &received.body))
        .expect("authentic webhook");

    let OrderOutcome::Pending { provider_order_ref } = outcome else {
        panic!("an asynchronous order is pending until its webhook");
    };
    assert_eq!(
        event.facts,
        vec![WebhookFact::OrderFailed {
            provider_order_ref,
            code: ErrorCode::OutOfStock,
            provider_reason: "33: The requested package is out of stock.".to_owned(),
        }]
    );
}

// ---- Profiles, usage, top-ups, cancel -----------------------------------------------------

#[tokio::test]
async fn sim_details_return_the_issued_activation_details() {
    let (sim, provider) = start().await;
    let plan = rechargeable_package(&sim);
    let (our_reference, iccid) = provisioned(&provider, &plan.id, "details").await;

    let details = provider.sim(&iccid).await.expect("sim details");

    assert_eq!(details, issued_profile(&sim, &our_reference));
}

#[tokio::test]
async fn usage_and_profile_follow_the_profile_from_unused_to_active() {
    let (sim, provider) = start().await;
    knobs(&sim, json!({"data_mb_per_minute": 0.0}));
    let plan = rechargeable_package(&sim);
    let total = plan.data_mb.expect("limited plan");
    let (_, iccid) = provisioned(&provider, &plan.id, "usage").await;

    let before = provider.usage(&iccid).await.expect("usage");
    let unused = provider.profile(&iccid).await.expect("profile");
    sim.advance(61.0);
    use_data(&sim, &iccid, |_| 300 * BYTES_PER_MB);
    let after = provider.usage(&iccid).await.expect("usage");
    let active = provider.profile(&iccid).await.expect("profile");

    assert_eq!(before.remaining_mb, Some(total));
    assert_eq!(before.total_mb, Some(total));
    assert_eq!(before.expires_at, None);
    assert_eq!(before.state, Some(ProfileState::Provisioned));
    assert_eq!(unused.provider_status, "NOT_ACTIVE");
    assert_eq!(unused.state, Some(ProfileState::Provisioned));
    let expires = sim
        .provider_snapshot(Provider::Airalo)
        .sims
        .iter()
        .find(|p| p.iccid == iccid.as_str())
        .and_then(|p| p.expires_at)
        .expect("expiry set on activation");
    assert_eq!(after.remaining_mb, Some(total - 300));
    assert_eq!(after.total_mb, Some(total));
    assert_eq!(
        after.expires_at,
        Some(expires.replace_nanosecond(0).expect("valid"))
    );
    assert_eq!(after.state, Some(ProfileState::Activated));
    assert_eq!(active.provider_status, "ACTIVE");
    assert_eq!(active.state, Some(ProfileState::Activated));
}

#[tokio::test]
async fn an_unknown_iccid_is_not_found() {
    let (_sim, provider) = start().await;
    let unknown = Iccid::parse("8900000000000000000").expect("iccid");

    let usage = provider.usage(&unknown).await;
    let details = provider.sim(&unknown).await;

    assert_eq!(
        rejected(usage.expect_err("unknown")),
        (ErrorCode::NotFound, "404".to_owned())
    );
    assert_eq!(
        rejected(details.expect_err("unknown")),
        (ErrorCode::NotFound, "404".to_owned())
    );
}

#[tokio::test]
async fn a_top_up_is_committed_with_our_reference() {
    let (sim, provider) = start().await;
    let plan = rechargeable_package(&sim);
    let (_, iccid) = provisioned(&provider, &plan.id, "topup").await;
    let our_reference = reference("topup");

    let outcome = provider
        .top_up(&iccid, &format!("{}-topup", plan.id), &our_reference)
        .await
        .expect("top-up");

    let topups = sim.provider_snapshot(Provider::Airalo).topups;
    assert_eq!(topups.len(), 1);
    assert_eq!(outcome.provider_topup_ref, topups[0].id);
    assert_eq!(topups[0].reference.as_deref(), Some(our_reference.as_str()));
    assert_eq!(topups[0].iccid, iccid.as_str());
}

#[tokio::test]
async fn a_top_up_the_operator_does_not_allow_is_refused_with_code_23() {
    let (sim, provider) = start().await;
    let plan = local_package(&sim, false).expect("the catalogue has a non-rechargeable package");
    let (_, iccid) = provisioned(&provider, &plan.id, "no-topup").await;

    let result = provider
        .top_up(&iccid, &format!("{}-topup", plan.id), &reference("topup"))
        .await;

    assert_eq!(
        rejected(result.expect_err("refused")),
        (ErrorCode::InvalidRequest, "23".to_owned())
    );
    assert!(sim.provider_snapshot(Provider::Airalo).topups.is_empty());
}

#[tokio::test]
async fn a_lost_top_up_answer_is_outcome_unknown() {
    let (sim, provider) = start().await;
    let plan = rechargeable_package(&sim);
    let (_, iccid) = provisioned(&provider, &plan.id, "topup-lost").await;
    knobs(&sim, json!({"lose_response_after_commit": true}));
    let our_reference = reference("topup-lost");

    let result = provider
        .top_up(&iccid, &format!("{}-topup", plan.id), &our_reference)
        .await;

    match result {
        Err(ProviderError::OutcomeUnknown {
            our_reference: reported,
            ..
        }) => assert_eq!(reported, our_reference),
        other => panic!("expected OutcomeUnknown, got {other:?}"),
    }
    assert_eq!(requests(&sim, "topups"), 1);
    assert_eq!(sim.provider_snapshot(Provider::Airalo).topups.len(), 1);
}

#[tokio::test]
async fn cancel_is_unsupported_and_files_no_refund_request() {
    let (sim, provider) = start().await;
    let plan = rechargeable_package(&sim);
    let (_, iccid) = provisioned(&provider, &plan.id, "cancel").await;

    let result = provider.cancel(&iccid).await;

    assert!(matches!(result, Err(ProviderError::Unsupported(_))));
    assert!(!provider.capabilities().cancel_refunds_unused);
    assert_eq!(requests(&sim, "refund"), 0);
}

// ---- Errors -------------------------------------------------------------------------------

#[tokio::test]
async fn business_refusals_map_to_their_domain_codes() {
    let cases = [
        ("out_of_stock", ErrorCode::OutOfStock, "33"),
        ("maintenance", ErrorCode::OperatorMaintenance, "13"),
        ("insufficient_credit", ErrorCode::InsufficientCredit, "11"),
        ("invalid", ErrorCode::InvalidRequest, "422"),
    ];
    for (kind, code, provider_code) in cases {
        let (sim, provider) = start().await;
        let plan = rechargeable_package(&sim);
        knobs(
            &sim,
            json!({"error_rate": 1.0, "error_kind": kind, "error_operations": ["orders"]}),
        );

        let result = provider
            .place_order(&order_request(&plan.id, &reference(kind), true))
            .await;

        assert_eq!(
            rejected(result.expect_err(kind)),
            (code, provider_code.to_owned()),
            "{kind}"
        );
        assert!(sim.provider_snapshot(Provider::Airalo).orders.is_empty());
    }
}

#[tokio::test]
async fn an_empty_balance_is_insufficient_credit() {
    let (sim, provider) = start().await;
    let plan = rechargeable_package(&sim);
    sim.sim().lock().airalo.balance_cents = 0;

    let result = provider
        .place_order(&order_request(&plan.id, &reference("broke"), true))
        .await;

    let error = result.expect_err("refused");
    assert!(!error.retryable());
    assert_eq!(
        rejected(error),
        (ErrorCode::InsufficientCredit, "11".to_owned())
    );
}

#[tokio::test]
async fn an_unknown_package_is_an_invalid_request() {
    let (_sim, provider) = start().await;

    let result = provider
        .place_order(&order_request("no-such-package", &reference("bad"), true))
        .await;

    assert_eq!(
        rejected(result.expect_err("refused")),
        (ErrorCode::InvalidRequest, "422".to_owned())
    );
}

#[tokio::test]
async fn server_errors_on_reads_are_retried_then_unavailable() {
    let (sim, provider) = start().await;
    knobs(
        &sim,
        json!({"error_rate": 1.0, "error_kind": "unavailable", "error_operations": ["packages"]}),
    );

    let result = provider.list_plans(None).await;

    let error = result.expect_err("unavailable");
    assert!(matches!(error, ProviderError::Unavailable(_)), "{error:?}");
    assert_eq!(error.code(), ErrorCode::ProviderUnavailable);
    assert_eq!(requests(&sim, "packages"), 3);
}

#[tokio::test]
async fn a_503_on_an_order_is_unavailable_and_not_repeated() {
    let (sim, provider) = start().await;
    let plan = rechargeable_package(&sim);
    knobs(
        &sim,
        json!({"error_rate": 1.0, "error_kind": "unavailable", "error_operations": ["orders"]}),
    );

    let result = provider
        .place_order(&order_request(&plan.id, &reference("503"), true))
        .await;

    assert!(
        matches!(result, Err(ProviderError::Unavailable(_))),
        "{result:?}"
    );
    assert_eq!(requests(&sim, "orders"), 1);
    assert!(sim.provider_snapshot(Provider::Airalo).orders.is_empty());
}

#[tokio::test]
async fn a_429_with_a_long_retry_after_is_handed_to_the_caller() {
    let (sim, provider) = start().await;
    let plan = rechargeable_package(&sim);
    knobs(
        &sim,
        json!({"error_rate": 1.0, "error_kind": "rate_limited", "retry_after_s": 30,
               "error_operations": ["packages", "orders"]}),
    );

    let read = provider.list_plans(None).await;
    let order = provider
        .place_order(&order_request(&plan.id, &reference("429"), true))
        .await;

    for result in [read.map(|_| ()), order.map(|_| ())] {
        match result {
            Err(ProviderError::RateLimited { retry_after }) => {
                assert_eq!(retry_after, Some(Duration::from_secs(30)));
            }
            other => panic!("expected RateLimited, got {other:?}"),
        }
    }
    assert_eq!(requests(&sim, "packages"), 1);
    assert_eq!(requests(&sim, "orders"), 1);
}

// ---- Token ---------------------------------------------------------------------------------

#[tokio::test]
async fn one_token_serves_every_operation_and_concurrent_callers_share_its_fetch() {
    let (sim, provider) = start().await;
    let plan = rechargeable_package(&sim);
    let japan = CountryCode::parse("JP").expect("country");

    let (a, b, c) = tokio::join!(
        provider.list_plans(Some(&japan)),
        provider.list_plans(None),
        provider.find_order("nothing-here"),
    );
    let (_, iccid) = provisioned(&provider, &plan.id, "token").await;
    provider.usage(&iccid).await.expect("usage");
    provider.profile(&iccid).await.expect("profile");

    assert!(a.is_ok() && b.is_ok() && c.is_ok());
    assert_eq!(requests(&sim, "token"), 1);
}

#[tokio::test]
async fn a_refused_token_is_replaced_once_and_the_call_succeeds() {
    let (sim, provider) = start().await;
    let plan = rechargeable_package(&sim);
    let (_, iccid) = provisioned(&provider, &plan.id, "revoke").await;
    sim.sim().lock().airalo.tokens.clear();

    let usage = provider.usage(&iccid).await;

    assert!(usage.is_ok(), "{usage:?}");
    assert_eq!(requests(&sim, "token"), 2);
    assert_eq!(requests(&sim, "usage"), 2);
}

#[tokio::test]
async fn wrong_client_credentials_are_an_internal_fault() {
    let sim = spawn(SimConfig::default()).await.expect("simulator starts");
    let mut settings = config(&sim, &["secret"], None);
    settings.client_secret = "wrong".to_owned();
    let provider = adapter(settings);

    let result = provider.list_plans(None).await;

    assert_eq!(
        rejected(result.expect_err("refused")),
        (ErrorCode::Internal, "401".to_owned())
    );
    assert_eq!(requests(&sim, "packages"), 0);
}

// ---- Webhooks -----------------------------------------------------------------------------

#[tokio::test]
async fn webhooks_with_a_tampered_body_a_wrong_secret_or_no_signature_are_refused() {
    let sim = spawn(SimConfig::default()).await.expect("simulator starts");
    let secret = sim.config().airalo.client_secret.clone();
    let provider = adapter(config(&sim, &[&secret], None));
    let other_secret = adapter(config(&sim, &["not-the-partner-secret"], None));
    let (_, _, received) = async_order_result(&sim).await;
    let mut tampered = received.body.clone();
    let last = tampered.len() - 2;
    tampered[last] ^= 0x01;
    let mut unsigned = received.headers.clone();
    unsigned.remove("airalo-signature");

    let genuine = provider.verify_webhook(webhook(&received.headers, &received.body));
    let altered = provider.verify_webhook(webhook(&received.headers, &tampered));
    let wrong_key = other_secret.verify_webhook(webhook(&received.headers, &received.body));
    let missing = provider.verify_webhook(webhook(&unsigned, &received.body));

    assert!(genuine.is_ok(), "{genuine:?}");
    assert!(matches!(altered, Err(WebhookError::Unauthenticated(_))));
    assert!(matches!(wrong_key, Err(WebhookError::Unauthenticated(_))));
    assert!(matches!(
        missing,
        Err(WebhookError::Unauthenticated(
            "missing airalo-signature header"
        ))
    ));
}

#[tokio::test]
async fn during_rotation_a_webhook_signed_with_the_new_secret_is_accepted() {
    let sim = spawn(SimConfig::default()).await.expect("simulator starts");
    let old = sim.config().airalo.client_secret.clone();
    knobs(&sim, json!({"webhook_secret": "rotated-secret"}));
    let rotating = adapter(config(&sim, &[&old, "rotated-secret"], None));
    let old_only = adapter(config(&sim, &[&old], None));

    let (request_id, _, received) = async_order_result(&sim).await;
    let accepted = rotating.verify_webhook(webhook(&received.headers, &received.body));
    let refused = old_only.verify_webhook(webhook(&received.headers, &received.body));

    assert_eq!(accepted.expect("accepted").dedupe_key, request_id);
    assert!(matches!(refused, Err(WebhookError::Unauthenticated(_))));
}

#[tokio::test]
async fn a_low_data_notice_from_the_simulator_says_the_plan_is_running() {
    let (sim, provider) = start().await;
    let (url, inbox) = receiver().await;
    knobs(&sim, json!({"webhook_url": url, "data_mb_per_minute": 0.0}));
    let plan = rechargeable_package(&sim);
    let (_, iccid) = provisioned(&provider, &plan.id, "low-data").await;
    sim.advance(61.0);
    use_data(&sim, &iccid, |total| total * 4 / 5);
    sim.advance(1.0);

    let received = wait_for(&inbox, 1).await.remove(0);
    let event = provider
        .verify_webhook(webhook(&received.headers, &received.body))
        .expect("authentic webhook");

    let body: serde_json::Value = serde_json::from_slice(&received.body).expect("json");
    assert_eq!(body["level"], "75%");
    assert_eq!(event.facts.len(), 1);
    let WebhookFact::ProfileState {
        iccid: reported,
        state,
        ..
    } = &event.facts[0]
    else {
        panic!("expected a profile state, got {:?}", event.facts);
    };
    assert_eq!(reported, &iccid);
    assert_eq!(*state, ProfileState::Activated);
    assert_eq!(event.dedupe_key.len(), 64);
}
