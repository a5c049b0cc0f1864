//! The eSIM Access API v1 subset our adapter uses, served under `/esimaccess/api/v1/open`:
//! signed POST requests with JSON bodies, package list, asynchronous orders made idempotent by
//! the partner's `transactionId`, profile query, usage query, top-up and cancel.
//!
//! Every answer to a well-formed HTTP request is HTTP 200 with
//! `{"success", "errorCode", "errorMsg", "obj"}`, except injected edge errors (503, and 429
//! with `Retry-After`). Error codes: 000101 header missing, 000104 body is not JSON, 000105
//! parameter missing or invalid, 101001 timestamp outside five minutes, 101003 signature or
//! access code wrong, 200002 operation not allowed in the profile's state (cancel after
//! download, top-up of a plan without top-ups), 200005 price mismatch, 200006 total amount
//! mismatch, 200007 insufficient balance, 200010 profiles not allocated yet, 200011 no
//! profiles left, 310241 unknown package code, 310272 unknown order, 310403 unknown profile,
//! 900001 system busy (maintenance).

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::post;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::catalogue::{EsimAccessPackage, find_country};
use crate::clock::plus_seconds;
use crate::knobs::{ErrorKind, Operation};
use crate::lifecycle::{Event, RenderedWebhook, emit};
use crate::signing::{constant_time_eq, esim_access_signature};
use crate::state::{
    OrderRecord, OrderStatus, PlanTerms, Profile, Provider, ProviderState, RefundRecord, Sim,
    SmdpStatus, TopupRecord, UsageQueryRecord, UsageState, qr_url,
};
use crate::wire::{esim_access_time, lost_response, with_retry_after};

/// Accepted distance between `RT-Timestamp` and the simulator's clock, in milliseconds.
const TIMESTAMP_WINDOW_MS: u128 = 5 * 60 * 1000;
/// Largest accepted count per package line.
const MAX_COUNT: u32 = 50;
/// Page size of `esim/query` when the request has no pager.
const DEFAULT_PAGE_SIZE: usize = 20;

/// Routes of the eSIM Access shape, to be nested under `/esimaccess`.
pub fn router() -> Router<Arc<Sim>> {
    Router::new()
        .route("/api/v1/open/package/list", post(package_list))
        .route("/api/v1/open/esim/order", post(order))
        .route("/api/v1/open/esim/query", post(query))
        .route("/api/v1/open/esim/usage/query", post(usage))
        .route("/api/v1/open/esim/topup", post(topup))
        .route("/api/v1/open/esim/cancel", post(cancel))
}

fn ok(obj: Value) -> Response {
    Json(json!({"success": true, "errorCode": "0", "errorMsg": null, "obj": obj})).into_response()
}

fn fail(code: &str, message: &str) -> Response {
    fail_with(StatusCode::OK, code, message)
}

fn fail_with(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(json!({"success": false, "errorCode": code, "errorMsg": message, "obj": null})),
    )
        .into_response()
}

/// eSIM Access's error code and message for an injected error.
pub fn fault_code(kind: ErrorKind) -> (&'static str, &'static str) {
    match kind {
        ErrorKind::OutOfStock => ("200011", "Insufficient profiles in stock for this package."),
        ErrorKind::Maintenance => ("900001", "System busy: the service is under maintenance."),
        ErrorKind::InsufficientCredit => ("200007", "Insufficient account balance."),
        ErrorKind::Unavailable => ("000001", "Service unavailable."),
        ErrorKind::RateLimited => ("000429", "Too many requests."),
        ErrorKind::Invalid => ("000105", "A required parameter is missing or invalid."),
    }
}

fn fault_response(kind: ErrorKind, retry_after_s: u64) -> Response {
    let (code, message) = fault_code(kind);
    match kind {
        ErrorKind::Unavailable => fail_with(StatusCode::SERVICE_UNAVAILABLE, code, message),
        ErrorKind::RateLimited => with_retry_after(
            fail_with(StatusCode::TOO_MANY_REQUESTS, code, message),
            retry_after_s,
        ),
        ErrorKind::OutOfStock
        | ErrorKind::Maintenance
        | ErrorKind::InsufficientCredit
        | ErrorKind::Invalid => fail(code, message),
    }
}

/// Counts the request, applies latency, answers edge errors, verifies the signature and parses
/// the body. Returns the parsed body and the business error to inject, if any.
async fn admit<T: DeserializeOwned>(
    sim: &Sim,
    operation: Operation,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<(T, Option<ErrorKind>), Response> {
    let fault = sim.enter(Provider::EsimAccess, operation).await;
    if let Some(kind) = fault.filter(|kind| kind.is_edge()) {
        let retry_after = sim.lock().esim_access.knobs.retry_after_s;
        return Err(fault_response(kind, retry_after));
    }
    verify(sim, headers, body)?;
    let parsed = serde_json::from_slice(body)
        .map_err(|_| fail("000104", "The request body is not valid JSON."))?;
    Ok((parsed, fault))
}

/// [`admit`] for operations that check nothing before an injected fault: any fault is
/// answered at once.
async fn admit_unless_fault<T: DeserializeOwned>(
    sim: &Sim,
    operation: Operation,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<T, Response> {
    let (parsed, fault) = admit(sim, operation, headers, body).await?;
    match fault {
        Some(kind) => Err(fault_response(
            kind,
            sim.lock().esim_access.knobs.retry_after_s,
        )),
        None => Ok(parsed),
    }
}

fn verify(sim: &Sim, headers: &HeaderMap, body: &[u8]) -> Result<(), Response> {
    let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
    let (Some(access_code), Some(timestamp), Some(request_id), Some(signature)) = (
        header("RT-AccessCode"),
        header("RT-Timestamp"),
        header("RT-RequestID"),
        header("RT-Signature"),
    ) else {
        return Err(fail(
            "000101",
            concat!(
                "Request headers RT-AccessCode, RT-Timestamp, RT-RequestID and RT-Signature ",
                "are required."
            ),
        ));
    };
    let credentials = &sim.config.esim_access;
    if !constant_time_eq(access_code.as_bytes(), credentials.access_code.as_bytes()) {
        return Err(fail(
            "101003",
            "Signature verification failed: unknown access code.",
        ));
    }
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    let in_window = timestamp
        .parse::<u128>()
        .is_ok_and(|ts| ts.abs_diff(now_ms) <= TIMESTAMP_WINDOW_MS);
    if !in_window {
        return Err(fail(
            "101001",
            "The request timestamp is missing or expired.",
        ));
    }
    let expected = esim_access_signature(
        &credentials.secret_key,
        timestamp,
        request_id,
        access_code,
        body,
    );
    if !constant_time_eq(expected.as_bytes(), signature.as_bytes()) {
        return Err(fail("101003", "Signature verification failed."));
    }
    Ok(())
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct PackageListRequest {
    location_code: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    package_code: Option<String>,
    slug: Option<String>,
    iccid: Option<String>,
}

async fn package_list(State(sim): State<Arc<Sim>>, headers: HeaderMap, body: Bytes) -> Response {
    let request: PackageListRequest =
        match admit_unless_fault(&sim, Operation::EsimAccessPackageList, &headers, &body).await {
            Ok(admitted) => admitted,
            Err(response) => return response,
        };
    let state = sim.lock();
    let nonempty = |value: &Option<String>| value.clone().filter(|v| !v.is_empty());
    let location = nonempty(&request.location_code).map(|l| l.to_uppercase());
    let code = nonempty(&request.package_code);
    let slug = nonempty(&request.slug);
    let topup = match request.kind.as_deref() {
        None | Some("") | Some("BASE") => false,
        Some("TOPUP") => true,
        Some(_) => return fail("000105", "type must be BASE or TOPUP."),
    };
    let profile_location = match nonempty(&request.iccid) {
        Some(iccid) => match state.esim_access.profile(&iccid) {
            Some(profile) => Some(profile.plan.location.clone()),
            None => return fail("310403", "No eSIM with this ICCID."),
        },
        None => None,
    };

    let packages: Vec<Value> = state
        .catalogue
        .esim_access
        .iter()
        .filter(|p| !topup || p.topup_supported)
        .filter(|p| match location.as_deref() {
            None => true,
            Some("!RG") => p.region.is_some(),
            Some(code) => p.location.contains(&code),
        })
        .filter(|p| {
            code.as_deref().is_none_or(|c| {
                if topup {
                    p.code == c || p.topup_code() == c
                } else {
                    p.code == c
                }
            })
        })
        .filter(|p| slug.as_deref().is_none_or(|s| p.slug == s))
        .filter(|p| profile_location.as_ref().is_none_or(|l| &p.location == l))
        .map(|p| render_package(p, topup))
        .collect();
    ok(json!({"packageList": packages}))
}

fn render_package(package: &EsimAccessPackage, topup: bool) -> Value {
    let (code, slug, name) = if topup {
        (
            package.topup_code(),
            format!("{}_TOPUP", package.slug),
            format!("{} Top-up", package.name),
        )
    } else {
        (
            package.code.clone(),
            package.slug.clone(),
            package.name.clone(),
        )
    };
    json!({
        "packageCode": code,
        "slug": slug,
        "name": name,
        "price": package.price_x10000,
        "currencyCode": "USD",
        "volume": package.volume_bytes(),
        "smsStatus": 0,
        "dataType": 1,
        "unusedValidTime": 180,
        "duration": package.shape.days,
        "durationUnit": "DAY",
        "location": package.location.join(","),
        "description": name,
        "activeType": 2,
        "favorite": false,
        "retailPrice": package.retail_x10000,
        "speed": package.speed,
        "supportTopUpType": if package.topup_supported { 2 } else { 1 },
        "locationNetworkList": package.location.iter().map(|code| json!({
            "locationName": find_country(code).map_or(*code, |c| c.name),
            "locationCode": code,
            "operatorList": [{"operatorName": "Partner network", "networkType": package.speed}],
        })).collect::<Vec<_>>(),
    })
}

fn plan_terms(package: &EsimAccessPackage) -> PlanTerms {
    PlanTerms {
        package_id: package.code.clone(),
        title: package.name.clone(),
        data_mb: package.shape.data_mb,
        days: package.shape.days,
        rechargeable: package.topup_supported,
        cost_cents: package.price_x10000 / 100,
        apn_value: "internet".to_owned(),
        location: package.location.clone(),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct PackageLine {
    package_code: Option<String>,
    count: Option<u32>,
    price: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct OrderRequest {
    transaction_id: Option<String>,
    amount: Option<u64>,
    package_info_list: Vec<PackageLine>,
}

async fn order(State(sim): State<Arc<Sim>>, headers: HeaderMap, body: Bytes) -> Response {
    let (request, fault): (OrderRequest, _) =
        match admit(&sim, Operation::EsimAccessOrder, &headers, &body).await {
            Ok(admitted) => admitted,
            Err(response) => return response,
        };
    let mut state = sim.lock();
    let now = state.clock.now();
    let Some(transaction_id) = request.transaction_id.filter(|t| !t.is_empty()) else {
        return fail("000105", "transactionId is required.");
    };
    if let Some(existing) = state
        .esim_access
        .orders
        .iter()
        .find(|o| o.reference.as_deref() == Some(transaction_id.as_str()))
    {
        // The partner's transactionId makes the order idempotent: a repeat gets the same order
        // number and orders nothing.
        tracing::info!(
            order_no = %existing.id,
            "esim access order replayed for a known transactionId"
        );
        return ok(json!({"orderNo": existing.id, "transactionId": transaction_id}));
    }
    if request.package_info_list.is_empty() {
        return fail("000105", "packageInfoList is required.");
    }
    let mut lines = Vec::new();
    let mut total_x10000 = 0;
    for line in &request.package_info_list {
        let Some(package) = line
            .package_code
            .as_deref()
            .and_then(|code| state.catalogue.esim_access_package(code))
        else {
            return fail("310241", "The package code does not exist.");
        };
        let count = line.count.unwrap_or(1);
        if !(1..=MAX_COUNT).contains(&count) {
            return fail("000105", "count must be between 1 and 50.");
        }
        if line
            .price
            .is_some_and(|price| price != package.price_x10000)
        {
            return fail("200005", "The package price does not match.");
        }
        total_x10000 += package.price_x10000 * u64::from(count);
        lines.push((plan_terms(package), count));
    }
    if request.amount.is_some_and(|amount| amount != total_x10000) {
        return fail(
            "200006",
            "The total amount does not match the packages ordered.",
        );
    }
    let account = &mut state.esim_access;
    if let Some(kind) = fault {
        return fault_response(kind, account.knobs.retry_after_s);
    }
    let cost = total_x10000 / 100;
    if account.balance_cents < i64::try_from(cost).unwrap_or(i64::MAX) {
        let (code, message) = fault_code(ErrorKind::InsufficientCredit);
        return fail(code, message);
    }

    let seq = account.next_seq();
    let order_no = format!(
        "B{:02}{:02}{:02}{:08}",
        now.year() % 100,
        u8::from(now.month()),
        now.day(),
        seq
    );
    let Some((first, _)) = lines.first().cloned() else {
        return fail("000105", "packageInfoList is required.");
    };
    let quantity = lines.iter().map(|(_, count)| count).sum();
    account.balance_cents -= i64::try_from(cost).unwrap_or(0);
    let lost = account.take_lost_response();
    account.orders.push(OrderRecord {
        id: order_no.clone(),
        code: order_no.clone(),
        reference: Some(transaction_id.clone()),
        package_id: first.package_id.clone(),
        quantity,
        iccids: Vec::new(),
        status: OrderStatus::Pending,
        failure: None,
        request_id: None,
        asynchronous: true,
        cost_cents: cost,
        created_at: now,
        ready_at: plus_seconds(now, account.knobs.provisioning_delay_s),
        webhook_url: None,
        response_lost: lost.is_some(),
        plan: first,
        lines,
        planned_failure: None,
    });
    tracing::info!(order_no = %order_no, "esim access order committed");
    if let Some(mode) = lost {
        return lost_response(mode);
    }
    ok(json!({"orderNo": order_no, "transactionId": transaction_id}))
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct Pager {
    page_num: Option<usize>,
    page_size: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct QueryRequest {
    order_no: Option<String>,
    iccid: Option<String>,
    esim_tran_no: Option<String>,
    start_time: Option<String>,
    end_time: Option<String>,
    pager: Option<Pager>,
}

/// Reads the UTC times `esim/query` takes for a date range: `2024-05-13T10:20:30+0000`, or
/// with `Z` or `+00:00`.
fn parse_query_time(text: &str) -> Option<time::OffsetDateTime> {
    let compact = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second][offset_hour sign:mandatory][offset_minute]"
    );
    time::OffsetDateTime::parse(text, compact)
        .or_else(|_| {
            time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        })
        .ok()
}

async fn query(State(sim): State<Arc<Sim>>, headers: HeaderMap, body: Bytes) -> Response {
    let request: QueryRequest =
        match admit_unless_fault(&sim, Operation::EsimAccessQuery, &headers, &body).await {
            Ok(admitted) => admitted,
            Err(response) => return response,
        };
    let state = sim.lock();
    let account = &state.esim_access;
    let nonempty = |value: Option<String>| value.filter(|v| !v.is_empty());
    let profiles: Vec<&Profile> = if let Some(order_no) = nonempty(request.order_no) {
        let Some(order) = account.orders.iter().find(|o| o.id == order_no) else {
            return fail("310272", "The order number does not exist.");
        };
        if order.status == OrderStatus::Pending {
            return fail(
                "200010",
                "Profiles of this order are still being allocated.",
            );
        }
        order
            .iccids
            .iter()
            .filter_map(|iccid| account.profile(iccid))
            .collect()
    } else if let Some(iccid) = nonempty(request.iccid) {
        match account.profile(&iccid) {
            Some(profile) => vec![profile],
            None => return fail("310403", "No eSIM with this ICCID."),
        }
    } else if let Some(tran_no) = nonempty(request.esim_tran_no) {
        match account.profiles.iter().find(|p| p.esim_tran_no == tran_no) {
            Some(profile) => vec![profile],
            None => return fail("310403", "No eSIM with this esimTranNo."),
        }
    } else if let (Some(start), Some(end)) =
        (nonempty(request.start_time), nonempty(request.end_time))
    {
        // The real API also lists profiles by date range; partners use it to find the profiles
        // of an order whose answer was lost, by the transactionId each profile carries.
        let (Some(start), Some(end)) = (parse_query_time(&start), parse_query_time(&end)) else {
            return fail("000105", "startTime and endTime must be UTC times.");
        };
        account
            .profiles
            .iter()
            .filter(|p| p.provisioned_at >= start && p.provisioned_at <= end)
            .collect()
    } else {
        return fail(
            "000105",
            "One of orderNo, iccid, esimTranNo or startTime and endTime is required.",
        );
    };

    let pager = request.pager.unwrap_or_default();
    let page_num = pager.page_num.filter(|n| *n > 0).unwrap_or(1);
    let page_size = pager
        .page_size
        .filter(|n| *n > 0)
        .unwrap_or(DEFAULT_PAGE_SIZE);
    let total = profiles.len();
    let list: Vec<Value> = profiles
        .into_iter()
        .skip((page_num - 1) * page_size)
        .take(page_size)
        .map(|profile| render_esim(&sim.base_url, account, profile))
        .collect();
    ok(json!({
        "esimList": list,
        "pager": {"pageNum": page_num, "pageSize": page_size, "total": total},
    }))
}

/// eSIM Access's `esimStatus` word.
fn esim_status(state: UsageState) -> &'static str {
    match state {
        UsageState::NotActive => "GOT_RESOURCE",
        UsageState::Active => "IN_USE",
        UsageState::Finished => "USED_UP",
        UsageState::Expired => "USED_EXPIRED",
        UsageState::UnusedExpired => "UNUSED_EXPIRED",
        UsageState::Cancelled => "CANCEL",
    }
}

fn transaction_of<'a>(account: &'a ProviderState, profile: &Profile) -> Option<&'a str> {
    account
        .orders
        .iter()
        .find(|o| o.id == profile.order_id)
        .and_then(|o| o.reference.as_deref())
}

fn render_esim(base_url: &str, account: &ProviderState, profile: &Profile) -> Value {
    let unused_expiry =
        profile.provisioned_at + time::Duration::days(i64::from(account.knobs.unused_expiry_days));
    json!({
        "esimTranNo": profile.esim_tran_no,
        "orderNo": profile.order_id,
        "transactionId": transaction_of(account, profile),
        "imsi": "",
        "iccid": profile.iccid,
        "smsStatus": 0,
        "msisdn": "",
        "ac": profile.lpa(),
        "qrCodeUrl": qr_url(base_url, &profile.iccid),
        "shortUrl": qr_url(base_url, &profile.iccid),
        "smdpStatus": profile.smdp_status.word(),
        "eid": profile.eid.clone().unwrap_or_default(),
        "activeType": 2,
        "dataType": 1,
        "activateTime": profile.activated_at.map(esim_access_time),
        "installationTime": profile.installed_at.map(esim_access_time),
        "expiredTime": esim_access_time(profile.expires_at.unwrap_or(unused_expiry)),
        "totalVolume": profile.total_bytes,
        "totalDuration": profile.plan.days,
        "durationUnit": "DAY",
        "orderUsage": profile.used_bytes,
        "esimStatus": esim_status(profile.usage_state),
        "pin": "",
        "puk": "",
        "apn": profile.plan.apn_value,
        "ipExport": "",
        "supportTopUpType": if profile.plan.rechargeable { 2 } else { 1 },
        "packageList": [{
            "packageName": profile.plan.title,
            "packageCode": profile.plan.package_id,
            "duration": profile.plan.days,
            "volume": profile.plan.data_mb.unwrap_or(0) * crate::catalogue::BYTES_PER_MB,
            "locationCode": profile.plan.location.join(","),
            "createTime": esim_access_time(profile.provisioned_at),
        }],
    })
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct UsageRequest {
    esim_tran_no_list: Vec<String>,
}

async fn usage(State(sim): State<Arc<Sim>>, headers: HeaderMap, body: Bytes) -> Response {
    let request: UsageRequest =
        match admit_unless_fault(&sim, Operation::EsimAccessUsage, &headers, &body).await {
            Ok(admitted) => admitted,
            Err(response) => return response,
        };
    let mut state = sim.lock();
    let now = state.clock.now();
    let account = &mut state.esim_access;
    if request.esim_tran_no_list.is_empty() {
        return fail("000105", "esimTranNoList is required.");
    }
    let found: Vec<&Profile> = request
        .esim_tran_no_list
        .iter()
        .filter_map(|tran_no| account.profiles.iter().find(|p| &p.esim_tran_no == tran_no))
        .collect();
    if found.is_empty() {
        return fail("310403", "None of the esimTranNo values exists.");
    }
    let list: Vec<Value> = found
        .iter()
        .map(|p| {
            json!({
                "esimTranNo": p.esim_tran_no,
                "dataUsage": p.used_bytes,
                "totalData": p.total_bytes,
                "lastUpdateTime": esim_access_time(p.last_usage_at),
            })
        })
        .collect();
    let iccids = found.iter().map(|p| p.iccid.clone()).collect();
    account
        .usage_queries
        .push(UsageQueryRecord { iccids, at: now });
    ok(json!({"esimUsageList": list}))
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct TopupRequest {
    esim_tran_no: Option<String>,
    iccid: Option<String>,
    package_code: Option<String>,
    transaction_id: Option<String>,
    amount: Option<u64>,
}

fn find_profile<'a>(
    account: &'a ProviderState,
    tran_no: &Option<String>,
    iccid: &Option<String>,
) -> Option<&'a Profile> {
    let tran_no = tran_no.as_deref().filter(|t| !t.is_empty());
    let iccid = iccid.as_deref().filter(|i| !i.is_empty());
    account.profiles.iter().find(|p| {
        tran_no.is_some_and(|t| p.esim_tran_no == t) || iccid.is_some_and(|i| p.iccid == i)
    })
}

fn topup_result(transaction_id: &str, profile: &Profile, account: &ProviderState) -> Value {
    let unused_expiry =
        profile.provisioned_at + time::Duration::days(i64::from(account.knobs.unused_expiry_days));
    json!({
        "transactionId": transaction_id,
        "iccid": profile.iccid,
        "esimTranNo": profile.esim_tran_no,
        "expiredTime": esim_access_time(profile.expires_at.unwrap_or(unused_expiry)),
        "totalVolume": profile.total_bytes,
        "totalDuration": profile.plan.days,
        "orderUsage": profile.used_bytes,
    })
}

async fn topup(State(sim): State<Arc<Sim>>, headers: HeaderMap, body: Bytes) -> Response {
    let (request, fault): (TopupRequest, _) =
        match admit(&sim, Operation::EsimAccessTopup, &headers, &body).await {
            Ok(admitted) => admitted,
            Err(response) => return response,
        };
    let mut state = sim.lock();
    let now = state.clock.now();
    let Some(transaction_id) = request.transaction_id.clone().filter(|t| !t.is_empty()) else {
        return fail("000105", "transactionId is required.");
    };
    let Some(profile) =
        find_profile(&state.esim_access, &request.esim_tran_no, &request.iccid).cloned()
    else {
        return fail("310403", "No eSIM with this esimTranNo or ICCID.");
    };
    if state
        .esim_access
        .topups
        .iter()
        .any(|t| t.reference.as_deref() == Some(transaction_id.as_str()))
    {
        return ok(topup_result(&transaction_id, &profile, &state.esim_access));
    }
    let Some(code) = request.package_code.clone().filter(|c| !c.is_empty()) else {
        return fail("000105", "packageCode is required.");
    };
    if !profile.plan.rechargeable {
        return fail("200002", "Top-up is not supported for this eSIM.");
    }
    let Some(package) = state.catalogue.esim_access_topup(&code) else {
        return fail("310241", "The package code does not exist.");
    };
    if package.location != profile.plan.location {
        return fail(
            "000105",
            "The top-up package does not cover this eSIM's location.",
        );
    }
    if request
        .amount
        .is_some_and(|amount| amount != package.price_x10000)
    {
        return fail("200006", "The amount does not match the package price.");
    }
    if matches!(
        profile.usage_state,
        UsageState::Cancelled | UsageState::UnusedExpired
    ) {
        return fail("200002", "The eSIM's status does not allow a top-up.");
    }
    let (added_mb, added_days, cost) = (
        package.shape.data_mb,
        package.shape.days,
        package.price_x10000 / 100,
    );
    let account = &mut state.esim_access;
    if let Some(kind) = fault {
        return fault_response(kind, account.knobs.retry_after_s);
    }
    if account.balance_cents < i64::try_from(cost).unwrap_or(i64::MAX) {
        let (code, message) = fault_code(ErrorKind::InsufficientCredit);
        return fail(code, message);
    }

    account.balance_cents -= i64::try_from(cost).unwrap_or(0);
    account.apply_topup(&profile.iccid, added_mb, added_days, now);
    let seq = account.next_seq();
    let lost = account.take_lost_response();
    account.topups.push(TopupRecord {
        id: format!("TU{seq:010}"),
        reference: Some(transaction_id.clone()),
        iccid: profile.iccid.clone(),
        package_id: code,
        cost_cents: cost,
        created_at: now,
        response_lost: lost.is_some(),
    });
    tracing::info!(iccid = %profile.iccid, "esim access top-up committed");
    if let Some(mode) = lost {
        return lost_response(mode);
    }
    let Some(updated) = account.profile(&profile.iccid) else {
        return fail("310403", "No eSIM with this esimTranNo or ICCID.");
    };
    ok(topup_result(&transaction_id, updated, account))
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct CancelRequest {
    esim_tran_no: Option<String>,
    iccid: Option<String>,
}

async fn cancel(State(sim): State<Arc<Sim>>, headers: HeaderMap, body: Bytes) -> Response {
    let request: CancelRequest =
        match admit_unless_fault(&sim, Operation::EsimAccessCancel, &headers, &body).await {
            Ok(admitted) => admitted,
            Err(response) => return response,
        };
    let mut state = sim.lock();
    let now = state.clock.now();
    let account = &mut state.esim_access;
    let Some(profile) = find_profile(account, &request.esim_tran_no, &request.iccid) else {
        return fail("310403", "No eSIM with this esimTranNo or ICCID.");
    };
    let cancellable =
        profile.usage_state == UsageState::NotActive && profile.smdp_status == SmdpStatus::Released;
    if !cancellable {
        return fail(
            "200002",
            "The eSIM was downloaded, used or closed and can no longer be cancelled.",
        );
    }
    let iccid = profile.iccid.clone();
    let credit = profile.plan.cost_cents;
    if let Some(profile) = account.profile_mut(&iccid) {
        profile.usage_state = UsageState::Cancelled;
    }
    account.balance_cents += i64::try_from(credit).unwrap_or(0);
    let seq = account.next_seq();
    account.refunds.push(RefundRecord {
        id: format!("CN{seq:010}"),
        iccid: iccid.clone(),
        reason: None,
        status: "refunded".to_owned(),
        credited_cents: credit,
        created_at: now,
    });
    tracing::info!(iccid = %iccid, "esim access profile cancelled");
    let event = Event::EsimStatus {
        iccid,
        smdp: SmdpStatus::Released,
        usage: UsageState::Cancelled,
    };
    emit(account, &event, &sim.base_url, now);
    ok(Value::Null)
}

/// The webhook eSIM Access sends for an event: `ORDER_STATUS` when profiles are allocated,
/// `SMDP_EVENT` on each SM-DP+ step, `ESIM_STATUS` on activation, use-up, expiry and
/// cancellation, `DATA_USAGE` at 50, 80 and 90 % used. Envelope:
/// `{notifyType, eventGenerateTime, notifyId, content}`; no signature.
pub fn webhook_for(
    account: &mut ProviderState,
    event: &Event,
    now: time::OffsetDateTime,
) -> Option<RenderedWebhook> {
    let (kind, content) = match event {
        Event::OrderCompleted { order_index } => {
            let order = account.orders.get(*order_index)?;
            (
                "ORDER_STATUS",
                json!({
                    "orderNo": order.id,
                    "transactionId": order.reference,
                    "orderStatus": "GOT_RESOURCE",
                }),
            )
        }
        Event::Smdp { iccid, smdp, usage } => {
            let profile = account.profile(iccid)?;
            (
                "SMDP_EVENT",
                json!({
                    "eid": profile.eid.clone().unwrap_or_default(),
                    "iccid": profile.iccid,
                    "esimStatus": esim_status(*usage),
                    "smdpStatus": smdp.word(),
                    "orderNo": profile.order_id,
                    "esimTranNo": profile.esim_tran_no,
                    "transactionId": transaction_of(account, profile),
                }),
            )
        }
        Event::EsimStatus { iccid, smdp, usage } => {
            let profile = account.profile(iccid)?;
            (
                "ESIM_STATUS",
                json!({
                    "orderNo": profile.order_id,
                    "esimTranNo": profile.esim_tran_no,
                    "transactionId": transaction_of(account, profile),
                    "iccid": profile.iccid,
                    "esimStatus": esim_status(*usage),
                    "smdpStatus": smdp.word(),
                }),
            )
        }
        Event::UsageThreshold {
            iccid,
            percent_used,
        } if matches!(percent_used, 50 | 80 | 90) => {
            let profile = account.profile(iccid)?;
            (
                "DATA_USAGE",
                json!({
                    "orderNo": profile.order_id,
                    "esimTranNo": profile.esim_tran_no,
                    "transactionId": transaction_of(account, profile),
                    "iccid": profile.iccid,
                    "totalVolume": profile.total_bytes,
                    "orderUsage": profile.used_bytes,
                    "remain": profile.remaining_bytes(),
                    "remainThreshold": 100 - percent_used,
                    "lastUpdateTime": esim_access_time(profile.last_usage_at),
                }),
            )
        }
        Event::OrderFailed { .. } | Event::UsageThreshold { .. } | Event::ExpiryReminder { .. } => {
            return None;
        }
    };
    let notify_id = account.random_hex(32);
    Some(RenderedWebhook {
        kind: kind.to_owned(),
        notify_id: Some(notify_id.clone()),
        body: json!({
            "notifyType": kind,
            "eventGenerateTime": esim_access_time(now),
            "notifyId": notify_id,
            "content": content,
        }),
        url: None,
    })
}
