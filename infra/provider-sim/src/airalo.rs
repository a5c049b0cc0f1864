//! The Airalo Partner API v2 subset our adapter uses, served under `/airalo/v2`: OAuth token,
//! package catalogue nested by country and operator, synchronous and asynchronous orders,
//! order lookup by description, SIM details, usage, top-ups and refund requests.
//!
//! Errors use Airalo's `{"code": n, "reason": "..."}` body: 11 insufficient credit,
//! 13 operator maintenance, 23 top-up not allowed, 33 out of stock, 422 validation,
//! 401 bad or missing token, 404 unknown SIM.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::catalogue::{AiraloListing, AiraloOperator, AiraloPackage, BYTES_PER_MB, Catalogue};
use crate::clock::plus_seconds;
use crate::knobs::{ErrorKind, Operation, OrderMode};
use crate::lifecycle::{Event, RenderedWebhook};
use crate::signing::constant_time_eq;
use crate::state::{
    IssuedToken, OrderRecord, OrderStatus, PlanTerms, Profile, Provider, ProviderState,
    RefundRecord, Sim, TopupRecord, UsageState, qr_url,
};
use crate::wire::{Flexible, airalo_time, dollars, form_or_json, lost_response, with_retry_after};

/// Page size of `GET /v2/packages` and `GET /v2/orders` when the request sets no `limit`.
const DEFAULT_PAGE_SIZE: usize = 25;
/// Largest accepted order quantity.
const MAX_QUANTITY: u64 = 50;

/// Routes of the Airalo shape, to be nested under `/airalo`.
pub fn router() -> Router<Arc<Sim>> {
    Router::new()
        .route("/v2/token", post(token))
        .route("/v2/packages", get(packages))
        .route("/v2/orders", post(order).get(orders_lookup))
        .route("/v2/orders-async", post(order_async))
        .route("/v2/orders/topups", post(topup))
        .route("/v2/sims/{iccid}", get(sim_details))
        .route("/v2/sims/{iccid}/usage", get(usage))
        .route("/v2/sims/{iccid}/topups", get(topup_packages))
        .route("/v2/refund", post(refund))
}

fn error(status: StatusCode, code: u32, reason: &str) -> Response {
    (status, Json(json!({"code": code, "reason": reason}))).into_response()
}

fn invalid(reason: &str) -> Response {
    error(StatusCode::UNPROCESSABLE_ENTITY, 422, reason)
}

fn not_found(reason: &str) -> Response {
    error(StatusCode::NOT_FOUND, 404, reason)
}

/// Airalo's error code and reason for an injected business error (also used in the failure
/// webhook of an asynchronous order).
pub fn fault_code(kind: ErrorKind) -> (&'static str, &'static str) {
    match kind {
        ErrorKind::OutOfStock => ("33", "The requested package is out of stock."),
        ErrorKind::Maintenance => (
            "13",
            "The operator is under maintenance, please try again later.",
        ),
        ErrorKind::InsufficientCredit => ("11", "Insufficient Airalo credit."),
        ErrorKind::Unavailable => ("503", "Service temporarily unavailable."),
        ErrorKind::RateLimited => ("429", "Too Many Attempts."),
        ErrorKind::Invalid => ("422", "The given data was invalid."),
    }
}

fn fault_response(kind: ErrorKind, retry_after_s: u64) -> Response {
    let (code, reason) = fault_code(kind);
    let code: u32 = code.parse().unwrap_or(422);
    match kind {
        ErrorKind::Unavailable => error(StatusCode::SERVICE_UNAVAILABLE, code, reason),
        ErrorKind::RateLimited => with_retry_after(
            error(StatusCode::TOO_MANY_REQUESTS, code, reason),
            retry_after_s,
        ),
        ErrorKind::OutOfStock
        | ErrorKind::Maintenance
        | ErrorKind::InsufficientCredit
        | ErrorKind::Invalid => error(StatusCode::UNPROCESSABLE_ENTITY, code, reason),
    }
}

/// Counts the request, applies latency, answers edge errors, and checks the bearer token.
/// Returns the business error to inject, if any.
async fn admit(
    sim: &Sim,
    operation: Operation,
    headers: &HeaderMap,
) -> Result<Option<ErrorKind>, Response> {
    let fault = sim.enter(Provider::Airalo, operation).await;
    let mut state = sim.lock();
    let account = &mut state.airalo;
    if let Some(kind) = fault.filter(|kind| kind.is_edge()) {
        return Err(fault_response(kind, account.knobs.retry_after_s));
    }
    if operation != Operation::AiraloToken {
        authorize(account, headers)?;
    }
    Ok(fault)
}

fn authorize(account: &mut ProviderState, headers: &HeaderMap) -> Result<(), Response> {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::trim);
    let now = Instant::now();
    account.tokens.retain(|issued| issued.expires > now);
    let valid = presented.is_some_and(|token| {
        account
            .tokens
            .iter()
            .any(|issued| constant_time_eq(issued.token.as_bytes(), token.as_bytes()))
    });
    if valid {
        Ok(())
    } else {
        Err(error(StatusCode::UNAUTHORIZED, 401, "Unauthenticated."))
    }
}

#[derive(Debug, Deserialize)]
struct TokenRequest {
    client_id: Option<String>,
    client_secret: Option<String>,
    grant_type: Option<String>,
}

async fn token(State(sim): State<Arc<Sim>>, request: Request) -> Response {
    if let Err(response) = admit(&sim, Operation::AiraloToken, request.headers()).await {
        return response;
    }
    let body: TokenRequest = match form_or_json(request).await {
        Ok(body) => body,
        Err(reason) => return invalid(&reason),
    };
    if body.grant_type.as_deref() != Some("client_credentials") {
        return invalid("The grant type must be client_credentials.");
    }
    let credentials = &sim.config.airalo;
    let id_ok = body
        .client_id
        .as_deref()
        .is_some_and(|id| constant_time_eq(id.as_bytes(), credentials.client_id.as_bytes()));
    let secret_ok = body.client_secret.as_deref().is_some_and(|secret| {
        constant_time_eq(secret.as_bytes(), credentials.client_secret.as_bytes())
    });
    if !(id_ok && secret_ok) {
        return error(StatusCode::UNAUTHORIZED, 401, "Invalid client credentials.");
    }

    let mut state = sim.lock();
    let account = &mut state.airalo;
    let token = account.random_hex(64);
    let ttl = account.knobs.token_ttl_s;
    account.tokens.push(IssuedToken {
        token: token.clone(),
        expires: Instant::now() + Duration::from_secs(ttl),
    });
    Json(json!({
        "data": {"token_type": "Bearer", "expires_in": ttl, "access_token": token},
        "meta": {"message": "success"},
    }))
    .into_response()
}

async fn packages(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    if let Err(response) = admit(&sim, Operation::AiraloPackages, &headers).await {
        return response;
    }
    let country = query.get("filter[country]").map(|c| c.to_uppercase());
    let kind = query.get("filter[type]").cloned();
    let state = sim.lock();
    let listings: Vec<Value> = state
        .catalogue
        .airalo
        .iter()
        .filter(|listing| match kind.as_deref() {
            Some("local") => listing.country_code.is_some(),
            Some("global") => listing.country_code.is_none(),
            _ => true,
        })
        .filter(|listing| {
            country.as_deref().is_none_or(|code| {
                listing.country_code == Some(code)
                    || listing
                        .operators
                        .iter()
                        .any(|operator| operator.countries.contains(&code))
            })
        })
        .map(render_listing)
        .collect();
    paginate(listings, &query)
}

fn paginate(items: Vec<Value>, query: &HashMap<String, String>) -> Response {
    let per_page = query
        .get("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .filter(|l| *l > 0)
        .unwrap_or(DEFAULT_PAGE_SIZE);
    let page = query
        .get("page")
        .and_then(|p| p.parse::<usize>().ok())
        .filter(|p| *p > 0)
        .unwrap_or(1);
    let total = items.len();
    let last_page = total.div_ceil(per_page).max(1);
    let data: Vec<Value> = items
        .into_iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .collect();
    Json(json!({
        "data": data,
        "links": {"next": (page < last_page).then(|| format!("?page={}", page + 1))},
        "meta": {
            "message": "success",
            "current_page": page,
            "last_page": last_page,
            "per_page": per_page,
            "total": total,
        },
    }))
    .into_response()
}

fn render_listing(listing: &AiraloListing) -> Value {
    json!({
        "slug": listing.slug,
        "country_code": listing.country_code,
        "title": listing.title,
        "operators": listing.operators.iter().map(render_operator).collect::<Vec<_>>(),
    })
}

fn render_operator(operator: &AiraloOperator) -> Value {
    json!({
        "id": operator.id,
        "title": operator.title,
        "type": if operator.local { "local" } else { "global" },
        "is_prepaid": true,
        "esim_type": "Prepaid",
        "apn_type": "automatic",
        "apn_value": operator.apn_value,
        "is_roaming": true,
        "rechargeability": operator.rechargeable,
        "plan_type": "data",
        "activation_policy": "first-usage",
        "countries": operator.countries.iter().map(|code| json!({
            "country_code": code,
            "title": crate::catalogue::find_country(code).map_or(*code, |c| c.name),
        })).collect::<Vec<_>>(),
        "packages": operator
            .packages
            .iter()
            .map(|p| render_package(p, "sim", &p.id))
            .collect::<Vec<_>>(),
    })
}

fn render_package(package: &AiraloPackage, kind: &str, id: &str) -> Value {
    json!({
        "id": id,
        "type": kind,
        "price": dollars(package.price_cents),
        "net_price": dollars(package.net_price_cents),
        "amount": package.shape.data_mb.unwrap_or(0),
        "day": package.shape.days,
        "is_unlimited": package.shape.data_mb.is_none(),
        "title": package.title(),
        "data": package.shape.data_label(),
        "short_info": null,
        "voice": null,
        "text": null,
    })
}

#[derive(Debug, Deserialize)]
struct OrderRequest {
    package_id: Option<String>,
    quantity: Option<Flexible>,
    description: Option<String>,
    webhook_url: Option<String>,
}

fn plan_terms(
    operator: &AiraloOperator,
    package: &AiraloPackage,
    listing: &AiraloListing,
) -> PlanTerms {
    PlanTerms {
        package_id: package.id.clone(),
        title: package.title(),
        data_mb: package.shape.data_mb,
        days: package.shape.days,
        rechargeable: operator.rechargeable,
        cost_cents: package.net_price_cents,
        apn_value: operator.apn_value.clone(),
        location: listing
            .country_code
            .map_or_else(|| operator.countries.clone(), |code| vec![code]),
    }
}

/// Validates an order body against the catalogue: the plan and the quantity.
fn validate_order(
    catalogue: &Catalogue,
    body: &OrderRequest,
) -> Result<(PlanTerms, u32), Response> {
    let Some(package_id) = body.package_id.as_deref().filter(|id| !id.is_empty()) else {
        return Err(invalid("The package id field is required."));
    };
    let Some((listing, operator, package)) = catalogue.airalo_package(package_id) else {
        return Err(invalid("The selected package id is invalid."));
    };
    let quantity = match &body.quantity {
        None => 1,
        Some(value) => match value.as_u64() {
            Some(q) if (1..=MAX_QUANTITY).contains(&q) => q,
            _ => return Err(invalid("The quantity must be between 1 and 50.")),
        },
    };
    let quantity = u32::try_from(quantity).unwrap_or(1);
    Ok((plan_terms(operator, package, listing), quantity))
}

async fn order(State(sim): State<Arc<Sim>>, request: Request) -> Response {
    let fault = match admit(&sim, Operation::AiraloOrder, request.headers()).await {
        Ok(fault) => fault,
        Err(response) => return response,
    };
    let body: OrderRequest = match form_or_json(request).await {
        Ok(body) => body,
        Err(reason) => return invalid(&reason),
    };

    let mut state = sim.lock();
    let now = state.clock.now();
    if state.airalo.knobs.mode == OrderMode::Async {
        return invalid("Synchronous orders are disabled for this account; use /v2/orders-async.");
    }
    let (plan, quantity) = match validate_order(&state.catalogue, &body) {
        Ok(valid) => valid,
        Err(response) => return response,
    };
    let account = &mut state.airalo;
    if let Some(kind) = fault {
        return fault_response(kind, account.knobs.retry_after_s);
    }
    let cost = plan.cost_cents * u64::from(quantity);
    if account.balance_cents < i64::try_from(cost).unwrap_or(i64::MAX) {
        let (_, reason) = fault_code(ErrorKind::InsufficientCredit);
        return error(StatusCode::UNPROCESSABLE_ENTITY, 11, reason);
    }

    let mut record = new_order(account, &plan, quantity, body.description, now);
    for _ in 0..quantity {
        let iccid = account.create_profile(&record.id, &plan, now);
        record.iccids.push(iccid);
    }
    record.status = OrderStatus::Completed;
    account.balance_cents -= i64::try_from(cost).unwrap_or(0);
    tracing::info!(
        order_id = %record.id,
        package_id = %record.package_id,
        quantity,
        "airalo order committed"
    );
    let lost = account.take_lost_response();
    record.response_lost = lost.is_some();
    account.orders.push(record);
    if let Some(mode) = lost {
        return lost_response(mode);
    }
    let Some(record) = account.orders.last() else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    Json(json!({
        "data": render_order(&sim.base_url, account, record),
        "meta": {"message": "success"},
    }))
    .into_response()
}

fn new_order(
    account: &mut ProviderState,
    plan: &PlanTerms,
    quantity: u32,
    description: Option<String>,
    now: time::OffsetDateTime,
) -> OrderRecord {
    let seq = account.next_seq();
    let code = format!(
        "{:04}{:02}{:02}-{}",
        now.year(),
        u8::from(now.month()),
        now.day(),
        account.random_hex(6)
    );
    OrderRecord {
        id: (100_000 + seq).to_string(),
        code,
        reference: description,
        package_id: plan.package_id.clone(),
        quantity,
        iccids: Vec::new(),
        status: OrderStatus::Pending,
        failure: None,
        request_id: None,
        asynchronous: false,
        cost_cents: plan.cost_cents * u64::from(quantity),
        created_at: now,
        ready_at: now,
        webhook_url: None,
        response_lost: false,
        plan: plan.clone(),
        lines: vec![(plan.clone(), quantity)],
        planned_failure: None,
    }
}

async fn order_async(State(sim): State<Arc<Sim>>, request: Request) -> Response {
    let fault = match admit(&sim, Operation::AiraloOrderAsync, request.headers()).await {
        Ok(fault) => fault,
        Err(response) => return response,
    };
    let body: OrderRequest = match form_or_json(request).await {
        Ok(body) => body,
        Err(reason) => return invalid(&reason),
    };

    let mut state = sim.lock();
    let now = state.clock.now();
    let (plan, quantity) = match validate_order(&state.catalogue, &body) {
        Ok(valid) => valid,
        Err(response) => return response,
    };
    let account = &mut state.airalo;
    // Stock and maintenance are only known once the order is processed, so they arrive in the
    // result webhook; credit and validation are checked on acceptance.
    let planned_failure = match fault {
        Some(kind @ (ErrorKind::OutOfStock | ErrorKind::Maintenance)) => Some(kind),
        Some(kind) => return fault_response(kind, account.knobs.retry_after_s),
        None => None,
    };
    let cost = plan.cost_cents * u64::from(quantity);
    if account.balance_cents < i64::try_from(cost).unwrap_or(i64::MAX) {
        let (_, reason) = fault_code(ErrorKind::InsufficientCredit);
        return error(StatusCode::UNPROCESSABLE_ENTITY, 11, reason);
    }

    let mut record = new_order(account, &plan, quantity, body.description, now);
    let request_id = account.random_hex(20);
    record.request_id = Some(request_id.clone());
    record.asynchronous = true;
    record.ready_at = plus_seconds(now, account.knobs.provisioning_delay_s);
    record.webhook_url = body.webhook_url.filter(|url| !url.is_empty());
    record.planned_failure = planned_failure;
    account.balance_cents -= i64::try_from(cost).unwrap_or(0);
    tracing::info!(order_id = %record.id, request_id = %request_id, "airalo async order accepted");
    let lost = account.take_lost_response();
    record.response_lost = lost.is_some();
    account.orders.push(record);
    if let Some(mode) = lost {
        return lost_response(mode);
    }
    (
        StatusCode::ACCEPTED,
        Json(json!({
            "data": {"request_id": request_id, "accepted_at": airalo_time(now)},
            "meta": {"message": "success"},
        })),
    )
        .into_response()
}

async fn orders_lookup(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    if let Err(response) = admit(&sim, Operation::AiraloOrderLookup, &headers).await {
        return response;
    }
    let state = sim.lock();
    let account = &state.airalo;
    let description = query.get("filter[description]");
    let code = query.get("filter[code]");
    let iccid = query.get("filter[iccid]");
    let orders: Vec<Value> = account
        .orders
        .iter()
        .filter(|o| o.status == OrderStatus::Completed)
        .filter(|o| description.is_none_or(|d| o.reference.as_ref() == Some(d)))
        .filter(|o| code.is_none_or(|c| &o.code == c))
        .filter(|o| iccid.is_none_or(|i| o.iccids.contains(i)))
        .rev()
        .map(|o| render_order(&sim.base_url, account, o))
        .collect();
    paginate(orders, &query)
}

/// The order body Airalo returns from `POST /v2/orders` (and inside the async result webhook).
fn render_order(base_url: &str, account: &ProviderState, order: &OrderRecord) -> Value {
    let sims: Vec<Value> = order
        .iccids
        .iter()
        .filter_map(|iccid| account.profile(iccid))
        .map(|profile| render_sim(base_url, profile))
        .collect();
    let mut body = order_summary(order);
    if let Value::Object(map) = &mut body {
        map.insert("sims".to_owned(), Value::Array(sims));
    }
    body
}

fn order_summary(order: &OrderRecord) -> Value {
    json!({
        "id": order.id.parse::<u64>().ok(),
        "code": order.code,
        "currency": "USD",
        "package_id": order.package_id,
        "quantity": order.quantity,
        "type": "sim",
        "description": order.reference,
        "esim_type": "Prepaid",
        "validity": order.plan.days,
        "package": order.plan.title,
        "data": data_label(order.plan.data_mb),
        "price": dollars(order.cost_cents),
        "net_price": dollars(order.cost_cents),
        "created_at": airalo_time(order.created_at),
        "manual_installation":
            "Open Settings, add an eSIM and enter the SM-DP+ address and activation code.",
        "qrcode_installation": "Open Settings, add an eSIM and scan the QR code.",
    })
}

fn data_label(data_mb: Option<u64>) -> String {
    crate::catalogue::PlanShape { data_mb, days: 0 }.data_label()
}

fn render_sim(base_url: &str, profile: &Profile) -> Value {
    let lpa = profile.lpa();
    json!({
        "id": profile
            .iccid
            .get(profile.iccid.len().saturating_sub(6)..)
            .and_then(|s| s.parse::<u64>().ok()),
        "created_at": airalo_time(profile.provisioned_at),
        "iccid": profile.iccid,
        "lpa": profile.smdp_address,
        "imsis": null,
        "matching_id": profile.matching_id,
        "qrcode": lpa,
        "qrcode_url": qr_url(base_url, &profile.iccid),
        "airalo_code": null,
        "apn_type": "automatic",
        "apn_value": profile.plan.apn_value,
        "is_roaming": true,
        "confirmation_code": null,
        "direct_apple_installation_url": format!(
            "https://esimsetup.apple.com/esim_qrcode_provisioning?carddata={lpa}"
        ),
    })
}

async fn sim_details(
    State(sim): State<Arc<Sim>>,
    Path(iccid): Path<String>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    if let Err(response) = admit(&sim, Operation::AiraloSim, &headers).await {
        return response;
    }
    let state = sim.lock();
    let account = &state.airalo;
    let Some(profile) = account.profile(&iccid) else {
        return not_found("The requested SIM could not be found.");
    };
    let mut body = render_sim(&sim.base_url, profile);
    let include_order = query
        .get("include")
        .is_some_and(|include| include.split(',').any(|part| part.trim() == "order"));
    if include_order {
        let order = account.orders.iter().find(|o| o.id == profile.order_id);
        if let (Value::Object(map), Some(order)) = (&mut body, order) {
            map.insert("simable".to_owned(), order_summary(order));
        }
    }
    Json(json!({"data": body, "meta": {"message": "success"}})).into_response()
}

/// Airalo's usage status word.
fn usage_status(state: UsageState) -> &'static str {
    match state {
        UsageState::NotActive => "NOT_ACTIVE",
        UsageState::Active => "ACTIVE",
        UsageState::Finished => "FINISHED",
        UsageState::Expired | UsageState::UnusedExpired => "EXPIRED",
        UsageState::Cancelled => "UNKNOWN",
    }
}

async fn usage(
    State(sim): State<Arc<Sim>>,
    Path(iccid): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Err(response) = admit(&sim, Operation::AiraloUsage, &headers).await {
        return response;
    }
    let mut state = sim.lock();
    let now = state.clock.now();
    let account = &mut state.airalo;
    account.usage_queries.push(crate::state::UsageQueryRecord {
        iccids: vec![iccid.clone()],
        at: now,
    });
    let Some(profile) = account.profile(&iccid) else {
        return not_found("The requested SIM could not be found.");
    };
    let (remaining, total) = if profile.unlimited {
        (Value::Null, Value::Null)
    } else {
        (
            json!(profile.remaining_bytes() / BYTES_PER_MB),
            json!(profile.total_bytes / BYTES_PER_MB),
        )
    };
    Json(json!({
        "data": {
            "remaining": remaining,
            "total": total,
            "expired_at": profile.expires_at.map(airalo_time),
            "is_unlimited": profile.unlimited,
            "status": usage_status(profile.usage_state),
            "remaining_voice": 0,
            "remaining_text": 0,
            "total_voice": 0,
            "total_text": 0,
        },
        "meta": {"message": "success"},
    }))
    .into_response()
}

async fn topup_packages(
    State(sim): State<Arc<Sim>>,
    Path(iccid): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Err(response) = admit(&sim, Operation::AiraloTopupPackages, &headers).await {
        return response;
    }
    let state = sim.lock();
    let Some(profile) = state.airalo.profile(&iccid) else {
        return not_found("The requested SIM could not be found.");
    };
    let packages: Vec<Value> = match state.catalogue.airalo_package(&profile.plan.package_id) {
        Some((_, operator, _)) if operator.rechargeable => operator
            .packages
            .iter()
            .map(|p| render_package(p, "topup", &format!("{}-topup", p.id)))
            .collect(),
        _ => Vec::new(),
    };
    Json(json!({"data": packages, "meta": {"message": "success"}})).into_response()
}

#[derive(Debug, Deserialize)]
struct TopupRequest {
    package_id: Option<String>,
    iccid: Option<String>,
    description: Option<String>,
}

async fn topup(State(sim): State<Arc<Sim>>, request: Request) -> Response {
    let fault = match admit(&sim, Operation::AiraloTopup, request.headers()).await {
        Ok(fault) => fault,
        Err(response) => return response,
    };
    let body: TopupRequest = match form_or_json(request).await {
        Ok(body) => body,
        Err(reason) => return invalid(&reason),
    };

    let mut state = sim.lock();
    let now = state.clock.now();
    let Some(iccid) = body.iccid.filter(|i| !i.is_empty()) else {
        return invalid("The iccid field is required.");
    };
    let Some(profile) = state.airalo.profile(&iccid).cloned() else {
        return invalid("The selected iccid is invalid.");
    };
    let Some(package_id) = body.package_id.filter(|p| !p.is_empty()) else {
        return invalid("The package id field is required.");
    };
    let Some((_, operator, package)) = state.catalogue.airalo_topup(&package_id) else {
        return invalid("The selected package id is invalid.");
    };
    let same_operator = state
        .catalogue
        .airalo_package(&profile.plan.package_id)
        .is_some_and(|(_, own, _)| own.id == operator.id);
    if !same_operator {
        return invalid("The selected package is not a top-up of this eSIM.");
    }
    if !operator.rechargeable {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            23,
            "Top-up is not available for this eSIM: the operator does not allow it.",
        );
    }
    let (added_mb, added_days, cost) = (
        package.shape.data_mb,
        package.shape.days,
        package.net_price_cents,
    );
    let account = &mut state.airalo;
    if let Some(kind) = fault {
        return fault_response(kind, account.knobs.retry_after_s);
    }
    if account.balance_cents < i64::try_from(cost).unwrap_or(i64::MAX) {
        let (_, reason) = fault_code(ErrorKind::InsufficientCredit);
        return error(StatusCode::UNPROCESSABLE_ENTITY, 11, reason);
    }

    account.balance_cents -= i64::try_from(cost).unwrap_or(0);
    account.apply_topup(&iccid, added_mb, added_days, now);
    let seq = account.next_seq();
    let code = format!(
        "{}-{}",
        airalo_time(now)
            .get(..10)
            .unwrap_or_default()
            .replace('-', ""),
        account.random_hex(6)
    );
    let lost = account.take_lost_response();
    let record = TopupRecord {
        id: (200_000 + seq).to_string(),
        reference: body.description.clone(),
        iccid: iccid.clone(),
        package_id: package_id.clone(),
        cost_cents: cost,
        created_at: now,
        response_lost: lost.is_some(),
    };
    tracing::info!(topup_id = %record.id, iccid = %iccid, "airalo top-up committed");
    account.topups.push(record.clone());
    if let Some(mode) = lost {
        return lost_response(mode);
    }
    Json(json!({
        "data": {
            "id": record.id.parse::<u64>().ok(),
            "code": code,
            "package_id": package_id,
            "quantity": 1,
            "type": "topup",
            "description": body.description,
            "esim_type": "Prepaid",
            "validity": added_days,
            "package": format!("{} - {} Days", data_label(added_mb), added_days),
            "data": data_label(added_mb),
            "price": dollars(cost),
            "net_price": dollars(cost),
            "currency": "USD",
            "created_at": airalo_time(now),
        },
        "meta": {"message": "success"},
    }))
    .into_response()
}

#[derive(Debug, Deserialize)]
struct RefundRequest {
    iccid: Option<String>,
    reason: Option<String>,
}

async fn refund(State(sim): State<Arc<Sim>>, request: Request) -> Response {
    if let Err(response) = admit(&sim, Operation::AiraloRefund, request.headers()).await {
        return response;
    }
    let body: RefundRequest = match form_or_json(request).await {
        Ok(body) => body,
        Err(reason) => return invalid(&reason),
    };
    let mut state = sim.lock();
    let now = state.clock.now();
    let account = &mut state.airalo;
    let Some(iccid) = body.iccid.filter(|i| account.profile(i).is_some()) else {
        return invalid("The selected iccid is invalid.");
    };
    let seq = account.next_seq();
    let record = RefundRecord {
        id: (300_000 + seq).to_string(),
        iccid: iccid.clone(),
        reason: body.reason,
        status: "pending".to_owned(),
        credited_cents: 0,
        created_at: now,
    };
    tracing::info!(refund_id = %record.id, iccid = %iccid, "airalo refund requested");
    account.refunds.push(record.clone());
    Json(json!({
        "data": {
            "id": record.id.parse::<u64>().ok(),
            "iccid": iccid,
            "status": "pending",
            "reason": record.reason,
        },
        "meta": {"message": "Refund request received; it is reviewed manually."},
    }))
    .into_response()
}

/// The webhook Airalo sends for an event, if it sends one: the async order result and the low
/// data notifications (75 % and 90 % used, 3 days and 1 day before expiry).
pub fn webhook_for(
    account: &mut ProviderState,
    event: &Event,
    base_url: &str,
) -> Option<RenderedWebhook> {
    match event {
        Event::OrderCompleted { order_index } => {
            let order = account.orders.get(*order_index)?;
            if !order.asynchronous {
                return None;
            }
            let data = render_order(base_url, account, order);
            Some(RenderedWebhook {
                kind: "async_order".to_owned(),
                notify_id: order.request_id.clone(),
                body: json!({
                    "request_id": order.request_id,
                    "data": data,
                    "meta": {"message": "success"},
                }),
                url: order.webhook_url.clone(),
            })
        }
        Event::OrderFailed { order_index } => {
            let order = account.orders.get(*order_index)?;
            let failure = order.failure.as_ref()?;
            Some(RenderedWebhook {
                kind: "async_order_failed".to_owned(),
                notify_id: order.request_id.clone(),
                body: json!({
                    "request_id": order.request_id,
                    "data": null,
                    "code": failure.code.parse::<u32>().ok(),
                    "reason": failure.reason,
                }),
                url: order.webhook_url.clone(),
            })
        }
        Event::UsageThreshold {
            iccid,
            percent_used,
        } if matches!(percent_used, 75 | 90) => {
            let profile = account.profile(iccid)?;
            Some(low_data(
                profile,
                &format!("{percent_used}%"),
                100 - percent_used,
            ))
        }
        Event::ExpiryReminder { iccid, level } => {
            let profile = account.profile(iccid)?;
            Some(low_data(profile, level, 100 - profile.percent_used()))
        }
        Event::UsageThreshold { .. } | Event::Smdp { .. } | Event::EsimStatus { .. } => None,
    }
}

fn low_data(profile: &Profile, level: &str, remaining_percentage: u64) -> RenderedWebhook {
    RenderedWebhook {
        kind: "low_data".to_owned(),
        notify_id: None,
        body: json!({
            "level": level,
            "package_name": profile.plan.title,
            "remaining_percentage": remaining_percentage,
            "iccid": profile.iccid,
        }),
        url: None,
    }
}
