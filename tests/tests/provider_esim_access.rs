//! Contract tests of the eSIM Access adapter against the provider simulator, in-process on a
//! free port: every operation, every error kind, lost answers and their reconciliation, and
//! webhooks the simulator recorded fed back through `verify_webhook`.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use esim_shared::domain::esim::ActivationCode;
use esim_shared::domain::ids::{Iccid, ProviderId};
use esim_shared::domain::lifecycle::ProfileState;
use esim_shared::domain::plan::{CountryCode, DataAllowance};
use esim_shared::domain::{Currency, ErrorCode, Money};
use esim_shared::ports::ProviderApi;
use esim_shared::ports::provider::{
    OrderOutcome, ProviderError, ProviderOrderRequest, WebhookError, WebhookEvent, WebhookFact,
    WebhookRequest,
};
use esim_shared::providers::esim_access::{EsimAccessConfig, EsimAccessProvider};
use esim_shared::providers::http::HttpSettings;
use provider_sim::catalogue::{EsimAccessPackage, Region};
use provider_sim::state::WebhookRecord;
use provider_sim::{Provider, SimConfig, SimHandle, spawn};
use serde_json::json;

const PATH_SECRET: &str = "path-secret-current";
const ROTATED_PATH_SECRET: &str = "path-secret-next";

async fn start() -> SimHandle {
    spawn(SimConfig::default()).await.expect("simulator starts")
}

/// Fast retries and no throttling, so that retry counts are exact and tests stay quick.
fn fast_http() -> HttpSettings {
    HttpSettings {
        max_attempts: 2,
        base_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(5),
        max_retry_after: Duration::from_secs(2),
        requests_per_second: 1000.0,
        burst: 100,
        ..HttpSettings::default()
    }
}

fn config(sim: &SimHandle, secret_key: &str) -> EsimAccessConfig {
    let access_code = sim.config().esim_access.access_code.clone();
    let mut config = EsimAccessConfig::new(sim.esim_access_url(), access_code, secret_key);
    config.webhook_path_secrets = vec![PATH_SECRET.to_owned(), ROTATED_PATH_SECRET.to_owned()];
    config.http = fast_http();
    config
}

fn adapter(sim: &SimHandle) -> EsimAccessProvider {
    let secret = sim.config().esim_access.secret_key.clone();
    build(config(sim, &secret))
}

fn build(config: EsimAccessConfig) -> EsimAccessProvider {
    let id = ProviderId::parse("esimaccess").expect("provider id");
    EsimAccessProvider::new(id, config).expect("adapter builds")
}

fn packages(sim: &SimHandle) -> Vec<EsimAccessPackage> {
    sim.sim().lock().catalogue.esim_access.clone()
}

/// The Asia regional 1 GB / 7 day package: sold whatever the seed, and always rechargeable.
fn asia_package(sim: &SimHandle) -> EsimAccessPackage {
    packages(sim)
        .into_iter()
        .find(|p| {
            p.region == Some(Region::Asia) && p.shape.data_mb == Some(1024) && p.shape.days == 7
        })
        .expect("asia 1 GB package")
}

fn order(reference: &str, plan_code: &str) -> ProviderOrderRequest {
    ProviderOrderRequest {
        our_reference: reference.to_owned(),
        plan_code: plan_code.to_owned(),
        quantity: 1,
        prefer_synchronous: false,
    }
}

fn fail_with(sim: &SimHandle, kind: &str, operation: &str) {
    sim.set_knobs(
        Provider::EsimAccess,
        &json!({"error_rate": 1.0, "error_kind": kind, "error_operations": [operation]}),
    )
    .expect("knobs");
}

fn requests(sim: &SimHandle, operation: &str) -> u64 {
    sim.provider_snapshot(Provider::EsimAccess)
        .requests
        .get(operation)
        .copied()
        .unwrap_or(0)
}

/// Places an order and lets the simulator allocate it; returns the profile's ICCID.
async fn provisioned(sim: &SimHandle, provider: &EsimAccessProvider, reference: &str) -> Iccid {
    let code = asia_package(sim).code;
    provider
        .place_order(&order(reference, &code))
        .await
        .expect("order accepted");
    sim.advance(5.0);
    let snapshot = sim.provider_snapshot(Provider::EsimAccess);
    let record = snapshot
        .orders
        .iter()
        .find(|o| o.reference.as_deref() == Some(reference))
        .expect("order recorded");
    Iccid::parse(record.iccids[0].clone()).expect("iccid")
}

/// Waits until the simulator has tried to deliver a webhook of this kind.
async fn recorded_webhook(sim: &SimHandle, kind: &str, nth: usize) -> WebhookRecord {
    for _ in 0..300 {
        let sent = sim.provider_snapshot(Provider::EsimAccess).webhooks_sent;
        if let Some(record) = sent.into_iter().filter(|w| w.kind == kind).nth(nth) {
            return record;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the simulator sent no {kind} webhook");
}

fn webhook_to_us(sim: &SimHandle) {
    sim.set_knobs(
        Provider::EsimAccess,
        &json!({
            "webhook_url": format!("{}/_sim/hooks/{PATH_SECRET}", sim.base_url()),
            "webhook_retries": 0,
        }),
    )
    .expect("knobs");
}

fn delivered<'a>(
    headers: &'a reqwest::header::HeaderMap,
    body: &'a [u8],
    secret: Option<&'a str>,
    source_ip: IpAddr,
) -> WebhookRequest<'a> {
    WebhookRequest {
        headers,
        path_secret: secret,
        body,
        source_ip: Some(source_ip),
    }
}

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

#[tokio::test]
async fn lists_a_countrys_plans_with_exact_figures() {
    let sim = start().await;
    let provider = adapter(&sim);
    let japan = CountryCode::parse("JP").expect("country");
    let expected: Vec<EsimAccessPackage> = packages(&sim)
        .into_iter()
        .filter(|p| p.location.contains(&"JP"))
        .collect();

    let plans = provider.list_plans(Some(&japan)).await.expect("plans");

    assert_eq!(plans.len(), expected.len());
    for package in &expected {
        let plan = plans
            .iter()
            .find(|p| p.provider_plan_code == package.code)
            .expect("package listed");
        assert_eq!(
            plan.plan_id.as_str(),
            format!("esimaccess:{}", package.code)
        );
        assert_eq!(
            plan.data,
            DataAllowance::Limited {
                mb: package.shape.data_mb.expect("limited")
            }
        );
        assert_eq!(plan.validity_days, package.shape.days);
        let cents = i64::try_from(package.price_x10000 / 100).expect("fits");
        assert_eq!(plan.wholesale_price, Money::new(cents, Currency::USD));
        assert_eq!(plan.supports_top_up, package.topup_supported);
        assert_eq!(plan.network_speed.as_deref(), Some(package.speed));
        let countries: Vec<&str> = plan.coverage.countries.iter().map(|c| c.as_str()).collect();
        assert_eq!(countries, package.location);
        let region = package.region.map(|r| match r {
            Region::Asia => "Asia",
            Region::Europe => "Europe",
            _ => "other",
        });
        assert_eq!(plan.coverage.region.as_deref(), region);
    }
    assert!(plans.iter().any(|p| p.coverage.region.is_none()));
    assert!(
        plans
            .iter()
            .any(|p| p.coverage.region.as_deref() == Some("Asia"))
    );
}

#[tokio::test]
async fn lists_every_plan_without_a_country() {
    let sim = start().await;
    let provider = adapter(&sim);

    let plans = provider.list_plans(None).await.expect("plans");

    assert_eq!(plans.len(), packages(&sim).len());
}

#[tokio::test]
async fn an_order_is_pending_until_its_profiles_are_allocated() {
    let sim = start().await;
    let provider = adapter(&sim);
    let code = asia_package(&sim).code;

    let placed = provider
        .place_order(&order("att_pending", &code))
        .await
        .expect("order accepted");
    let early = provider.find_order("att_pending").await.expect("lookup");
    sim.advance(5.0);
    let later = provider.find_order("att_pending").await.expect("lookup");

    let snapshot = sim.provider_snapshot(Provider::EsimAccess);
    let record = &snapshot.orders[0];
    let profile = &snapshot.sims[0];
    assert_eq!(
        placed,
        OrderOutcome::Pending {
            provider_order_ref: record.id.clone()
        }
    );
    assert_eq!(
        early,
        Some(OrderOutcome::Pending {
            provider_order_ref: record.id.clone()
        })
    );
    let Some(OrderOutcome::Provisioned {
        provider_order_ref,
        profiles,
    }) = later
    else {
        panic!("expected a provisioned order, got {later:?}");
    };
    assert_eq!(provider_order_ref, record.id);
    assert_eq!(profiles.len(), 1);
    assert_eq!(profiles[0].iccid.as_str(), profile.iccid);
    assert_eq!(
        profiles[0].provider_profile_ref.as_deref(),
        Some(profile.esim_tran_no.as_str())
    );
    assert_eq!(
        profiles[0].activation,
        ActivationCode {
            smdp_address: "smdp-plus.esimaccess.test".to_owned(),
            matching_id: profile.matching_id.clone(),
        }
    );
    assert_eq!(
        profiles[0].qr_code_url.as_deref(),
        Some(format!("{}/_sim/qr/{}", sim.base_url(), profile.iccid).as_str())
    );
    assert_eq!(profiles[0].apn.as_deref(), Some("internet"));
    assert_eq!(record.reference.as_deref(), Some("att_pending"));
    assert_eq!(record.package_id, code);
}

#[tokio::test]
async fn an_order_never_placed_is_not_found() {
    let sim = start().await;
    let provider = adapter(&sim);
    provisioned(&sim, &provider, "att_other").await;

    let found = provider
        .find_order("att_never_placed")
        .await
        .expect("lookup");

    assert_eq!(found, None);
}

#[tokio::test]
async fn a_lost_answer_is_outcome_unknown_and_reconciles_without_a_second_order() {
    let sim = start().await;
    let provider = adapter(&sim);
    let code = asia_package(&sim).code;
    sim.set_knobs(
        Provider::EsimAccess,
        &json!({"lose_response_after_commit": true, "lose_response_limit": 1}),
    )
    .expect("knobs");

    let lost = provider.place_order(&order("att_lost", &code)).await;
    let before_allocation = provider.find_order("att_lost").await.expect("lookup");
    sim.advance(5.0);
    let found = provider.find_order("att_lost").await.expect("lookup");
    let replayed = provider
        .place_order(&order("att_lost", &code))
        .await
        .expect("replay answered");

    let snapshot = sim.provider_snapshot(Provider::EsimAccess);
    assert!(matches!(
        lost,
        Err(ProviderError::OutcomeUnknown { ref our_reference, .. }) if our_reference == "att_lost"
    ));
    assert_eq!(snapshot.orders.len(), 1);
    assert!(snapshot.orders[0].response_lost);
    let order_no = snapshot.orders[0].id.clone();
    assert_eq!(before_allocation, None);
    let Some(OrderOutcome::Provisioned {
        provider_order_ref,
        profiles,
    }) = found
    else {
        panic!("expected the committed order, got {found:?}");
    };
    assert_eq!(provider_order_ref, order_no);
    assert_eq!(profiles.len(), 1);
    assert_eq!(profiles[0].iccid.as_str(), snapshot.orders[0].iccids[0]);
    assert_eq!(
        replayed,
        OrderOutcome::Pending {
            provider_order_ref: order_no
        }
    );
    assert_eq!(requests(&sim, "order"), 2);
}

#[tokio::test]
async fn a_dropped_connection_after_commit_is_outcome_unknown() {
    let sim = start().await;
    let provider = adapter(&sim);
    let code = asia_package(&sim).code;
    sim.set_knobs(
        Provider::EsimAccess,
        &json!({"lose_response_after_commit": true, "lose_response_mode": "drop_connection"}),
    )
    .expect("knobs");

    let lost = provider.place_order(&order("att_dropped", &code)).await;

    assert!(matches!(
        lost,
        Err(ProviderError::OutcomeUnknown { ref our_reference, .. })
            if our_reference == "att_dropped"
    ));
    assert_eq!(sim.provider_snapshot(Provider::EsimAccess).orders.len(), 1);
    assert_eq!(requests(&sim, "order"), 1);
}

#[tokio::test]
async fn a_profile_reports_its_state_and_cancels_for_a_refund() {
    let sim = start().await;
    let provider = adapter(&sim);
    let iccid = provisioned(&sim, &provider, "att_cancel").await;

    let fresh = provider.profile(&iccid).await.expect("profile");
    provider.cancel(&iccid).await.expect("cancelled");
    let cancelled = provider.profile(&iccid).await.expect("profile");
    let again = provider.cancel(&iccid).await;

    assert_eq!(fresh.state, Some(ProfileState::Provisioned));
    assert_eq!(fresh.provider_status, "GOT_RESOURCE/RELEASED");
    assert_eq!(cancelled.state, None);
    assert_eq!(cancelled.provider_status, "CANCEL/RELEASED");
    assert!(again.is_ok(), "a repeated cancel succeeds: {again:?}");
    let refunds = sim.provider_snapshot(Provider::EsimAccess).refunds;
    assert_eq!(refunds.len(), 1);
    assert_eq!(refunds[0].iccid, iccid.as_str());
    assert_eq!(refunds[0].status, "refunded");
}

#[tokio::test]
async fn a_downloaded_profile_cannot_be_cancelled() {
    let sim = start().await;
    let provider = adapter(&sim);
    let iccid = provisioned(&sim, &provider, "att_downloaded").await;
    sim.advance(31.0);

    let refused = provider.cancel(&iccid).await;
    let downloaded = provider.profile(&iccid).await.expect("profile");

    assert!(matches!(
        refused,
        Err(ProviderError::Rejected { code: ErrorCode::InvalidRequest, ref provider_code, .. })
            if provider_code == "200002"
    ));
    assert_eq!(downloaded.state, Some(ProfileState::Downloaded));
}

#[tokio::test]
async fn usage_and_top_up_of_an_active_profile() {
    let sim = start().await;
    sim.set_knobs(
        Provider::EsimAccess,
        &json!({
            "provisioning_delay_s": 0, "download_after_s": 0, "install_after_s": 0,
            "activation_after_s": 0, "data_mb_per_minute": 0,
        }),
    )
    .expect("knobs");
    let provider = adapter(&sim);
    let package = asia_package(&sim);
    let iccid = provisioned(&sim, &provider, "att_usage").await;
    let (expires_at, updated_at) = {
        let mut state = sim.sim().lock();
        let profile = state
            .esim_access
            .profile_mut(iccid.as_str())
            .expect("profile");
        profile.used_bytes = 300 * 1024 * 1024;
        (profile.expires_at.expect("active"), profile.last_usage_at)
    };

    let usage = provider.usage(&iccid).await.expect("usage");
    let topped_up = provider
        .top_up(&iccid, &package.code, "topup_1")
        .await
        .expect("top-up");
    let after = provider.usage(&iccid).await.expect("usage");

    let whole_seconds = |at: time::OffsetDateTime| at.replace_nanosecond(0).expect("valid");
    assert_eq!(usage.iccid, iccid);
    assert_eq!(usage.total_mb, Some(1024));
    assert_eq!(usage.remaining_mb, Some(724));
    assert_eq!(usage.state, Some(ProfileState::Activated));
    assert_eq!(usage.expires_at, Some(whole_seconds(expires_at)));
    let measured_at = usage.measured_at.expect("measured");
    assert!(measured_at >= whole_seconds(updated_at));
    assert!(measured_at <= sim.sim().lock().clock.now());
    assert_eq!(topped_up.provider_topup_ref, "topup_1");
    let topups = sim.provider_snapshot(Provider::EsimAccess).topups;
    assert_eq!(topups.len(), 1);
    assert_eq!(topups[0].reference.as_deref(), Some("topup_1"));
    assert_eq!(topups[0].package_id, format!("T{}", package.code));
    assert_eq!(after.total_mb, Some(2048));
    assert_eq!(after.remaining_mb, Some(1748));
}

#[tokio::test]
async fn purchase_refusals_map_onto_domain_codes() {
    let cases = [
        ("out_of_stock", ErrorCode::OutOfStock, "200011"),
        (
            "insufficient_credit",
            ErrorCode::InsufficientCredit,
            "200007",
        ),
        ("maintenance", ErrorCode::OperatorMaintenance, "900001"),
        ("invalid", ErrorCode::InvalidRequest, "000105"),
    ];
    for (kind, expected_code, expected_provider_code) in cases {
        let sim = start().await;
        let provider = adapter(&sim);
        let code = asia_package(&sim).code;
        fail_with(&sim, kind, "order");

        let refused = provider.place_order(&order("att_refused", &code)).await;

        let Err(ProviderError::Rejected {
            code,
            provider_code,
            ..
        }) = refused
        else {
            panic!("{kind}: expected a rejection, got {refused:?}");
        };
        assert_eq!(code, expected_code, "{kind}");
        assert_eq!(provider_code, expected_provider_code, "{kind}");
        assert!(
            sim.provider_snapshot(Provider::EsimAccess)
                .orders
                .is_empty()
        );
    }
}

#[tokio::test]
async fn an_empty_balance_is_insufficient_credit() {
    let sim = start().await;
    let provider = adapter(&sim);
    let code = asia_package(&sim).code;
    sim.sim().lock().esim_access.balance_cents = 0;

    let refused = provider.place_order(&order("att_broke", &code)).await;

    assert!(matches!(
        refused,
        Err(ProviderError::Rejected { code: ErrorCode::InsufficientCredit, ref provider_code, .. })
            if provider_code == "200007"
    ));
    assert!(!refused.is_err_and(|e| e.retryable()));
}

#[tokio::test]
async fn an_unknown_package_is_refused_as_out_of_stock() {
    let sim = start().await;
    let provider = adapter(&sim);

    let refused = provider.place_order(&order("att_unknown", "NOPE")).await;

    assert!(matches!(
        refused,
        Err(ProviderError::Rejected { code: ErrorCode::OutOfStock, ref provider_code, .. })
            if provider_code == "310241"
    ));
}

#[tokio::test]
async fn a_server_error_on_a_read_is_retried_then_unavailable() {
    let sim = start().await;
    let provider = adapter(&sim);
    fail_with(&sim, "unavailable", "package_list");

    let listed = provider.list_plans(None).await;

    assert!(matches!(listed, Err(ProviderError::Unavailable(_))));
    assert_eq!(requests(&sim, "package_list"), 2);
}

#[tokio::test]
async fn a_503_on_an_order_is_unavailable_and_not_repeated() {
    let sim = start().await;
    let provider = adapter(&sim);
    let code = asia_package(&sim).code;
    fail_with(&sim, "unavailable", "order");

    let refused = provider.place_order(&order("att_503", &code)).await;

    assert!(matches!(refused, Err(ProviderError::Unavailable(_))));
    assert_eq!(requests(&sim, "order"), 1);
    assert!(
        sim.provider_snapshot(Provider::EsimAccess)
            .orders
            .is_empty()
    );
}

#[tokio::test]
async fn a_429_hands_a_long_retry_after_to_the_caller() {
    let sim = start().await;
    let provider = adapter(&sim);
    fail_with(&sim, "rate_limited", "package_list");
    sim.set_knobs(Provider::EsimAccess, &json!({"retry_after_s": 30}))
        .expect("knobs");

    let throttled = provider.list_plans(None).await;

    assert!(matches!(
        throttled,
        Err(ProviderError::RateLimited { retry_after: Some(wait) })
            if wait == Duration::from_secs(30)
    ));
    assert_eq!(requests(&sim, "package_list"), 1);
}

#[tokio::test]
async fn a_short_retry_after_is_waited_out_on_reads() {
    let sim = start().await;
    let provider = adapter(&sim);
    fail_with(&sim, "rate_limited", "package_list");
    sim.set_knobs(Provider::EsimAccess, &json!({"retry_after_s": 1}))
        .expect("knobs");

    let throttled = provider.list_plans(None).await;

    assert!(matches!(
        throttled,
        Err(ProviderError::RateLimited { retry_after: Some(wait) })
            if wait == Duration::from_secs(1)
    ));
    assert_eq!(requests(&sim, "package_list"), 2);
}

#[tokio::test]
async fn a_wrong_secret_key_is_refused_with_a_clear_signature_error() {
    let sim = start().await;
    let provider = build(config(&sim, "not-the-secret-key"));

    let refused = provider.list_plans(None).await;

    let Err(error @ ProviderError::Rejected { .. }) = refused else {
        panic!("expected a rejection, got {refused:?}");
    };
    assert_eq!(error.code(), ErrorCode::Internal);
    assert_eq!(
        error.to_string(),
        "provider refused the request (101003): Signature verification failed."
    );
}

#[tokio::test]
async fn an_unknown_iccid_is_not_found() {
    let sim = start().await;
    let provider = adapter(&sim);
    let iccid = Iccid::parse("8985240000000000000").expect("iccid");

    let missing = provider.profile(&iccid).await;

    assert!(matches!(
        missing,
        Err(ProviderError::Rejected { code: ErrorCode::NotFound, ref provider_code, .. })
            if provider_code == "310403"
    ));
}

#[tokio::test]
async fn an_async_order_completes_by_webhook_and_lifecycle_webhooks_follow() {
    let sim = start().await;
    webhook_to_us(&sim);
    let provider = adapter(&sim);
    let iccid = provisioned(&sim, &provider, "att_hook").await;
    let order_no = sim.provider_snapshot(Provider::EsimAccess).orders[0]
        .id
        .clone();

    let completed = recorded_webhook(&sim, "ORDER_STATUS", 0).await;
    sim.advance(31.0);
    let downloaded = recorded_webhook(&sim, "SMDP_EVENT", 0).await;

    let headers = reqwest::header::HeaderMap::new();
    let secret = completed.url.rsplit('/').next();
    let body = serde_json::to_vec(&completed.body).expect("json");
    let event = provider
        .verify_webhook(delivered(&headers, &body, secret, LOOPBACK))
        .expect("authentic");
    assert_eq!(
        event,
        WebhookEvent {
            dedupe_key: completed.notify_id.clone().expect("notify id"),
            facts: vec![WebhookFact::OrderCompleted {
                provider_order_ref: order_no,
                our_reference: Some("att_hook".to_owned()),
                profiles: Vec::new(),
            }],
        }
    );
    let body = serde_json::to_vec(&downloaded.body).expect("json");
    let event = provider
        .verify_webhook(delivered(&headers, &body, secret, LOOPBACK))
        .expect("authentic");
    let [
        WebhookFact::ProfileState {
            iccid: hooked,
            state,
            ..
        },
    ] = event.facts.as_slice()
    else {
        panic!("expected one profile state, got {:?}", event.facts);
    };
    assert_eq!(hooked, &iccid);
    assert_eq!(*state, ProfileState::Downloaded);
}

#[tokio::test]
async fn recorded_webhooks_need_a_configured_secret_and_an_allowed_sender() {
    let sim = start().await;
    webhook_to_us(&sim);
    let provider = adapter(&sim);
    let mut restricted = config(&sim, &sim.config().esim_access.secret_key.clone());
    restricted.webhook_source_ips = Some(vec![LOOPBACK]);
    let restricted = build(restricted);
    provisioned(&sim, &provider, "att_auth").await;
    let record = recorded_webhook(&sim, "ORDER_STATUS", 0).await;
    let body = serde_json::to_vec(&record.body).expect("json");
    let headers = reqwest::header::HeaderMap::new();
    let elsewhere = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 9));

    let valid = provider.verify_webhook(delivered(&headers, &body, Some(PATH_SECRET), LOOPBACK));
    let rotated = provider.verify_webhook(delivered(
        &headers,
        &body,
        Some(ROTATED_PATH_SECRET),
        LOOPBACK,
    ));
    let wrong = provider.verify_webhook(delivered(&headers, &body, Some("guess"), LOOPBACK));
    let missing = provider.verify_webhook(delivered(&headers, &body, None, LOOPBACK));
    let outside =
        restricted.verify_webhook(delivered(&headers, &body, Some(PATH_SECRET), elsewhere));
    let inside = restricted.verify_webhook(delivered(&headers, &body, Some(PATH_SECRET), LOOPBACK));

    let notify_id = record.notify_id.expect("notify id");
    assert_eq!(valid.expect("current secret").dedupe_key, notify_id);
    assert_eq!(rotated.expect("rotated secret").dedupe_key, notify_id);
    assert!(matches!(wrong, Err(WebhookError::Unauthenticated(_))));
    assert!(matches!(missing, Err(WebhookError::Unauthenticated(_))));
    assert!(matches!(outside, Err(WebhookError::Unauthenticated(_))));
    assert_eq!(inside.expect("allowed sender").dedupe_key, notify_id);
}

#[tokio::test]
async fn capabilities_say_asynchronous_only_with_top_ups_and_refunds() {
    let sim = start().await;
    let provider = adapter(&sim);

    let capabilities = provider.capabilities();

    assert_eq!(
        capabilities.provisioning,
        esim_shared::ports::provider::ProvisioningMode::Asynchronous
    );
    assert!(!capabilities.synchronous_available);
    assert!(capabilities.top_up);
    assert!(capabilities.cancel_refunds_unused);
}
