//! Control API under `/_sim`: read the state, change knobs, move the clock, reset, and a few
//! shortcuts that tests use to steer a profile (consume data, revoke tokens, set a balance).

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::catalogue::BYTES_PER_MB;
use crate::state::{Provider, Sim, UsageState};

/// Routes of the control API, to be nested under `/_sim`.
pub fn router() -> Router<Arc<Sim>> {
    Router::new()
        .route("/health", get(|| async { "ok" }))
        .route("/state", get(state))
        .route("/catalogue", get(catalogue))
        .route("/knobs", get(all_knobs).post(post_knobs))
        .route(
            "/knobs/{provider}",
            get(provider_knobs).post(post_provider_knobs),
        )
        .route("/reset", post(reset))
        .route("/clock", get(clock).post(set_clock))
        .route("/qr/{iccid}", get(qr))
        .route("/{provider}/balance", post(set_balance))
        .route("/{provider}/tokens/revoke", post(revoke_tokens))
        .route("/{provider}/sims/{iccid}/consume", post(consume))
        .route("/{provider}/{list}", get(list))
}

fn bad_request(message: &str) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({"error": message}))).into_response()
}

fn not_found(message: &str) -> Response {
    (StatusCode::NOT_FOUND, Json(json!({"error": message}))).into_response()
}

fn parse_provider(name: &str) -> Result<Provider, Response> {
    Provider::parse(name).ok_or_else(|| not_found("unknown provider: use airalo or esimaccess"))
}

/// Parses an optional JSON body: empty means `{}`.
fn optional_json(body: &Bytes) -> Result<Value, Response> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(json!({}));
    }
    serde_json::from_slice(body).map_err(|error| bad_request(&format!("body is not JSON: {error}")))
}

async fn state(State(sim): State<Arc<Sim>>) -> Response {
    Json(sim.lock().snapshot()).into_response()
}

async fn catalogue(State(sim): State<Arc<Sim>>) -> Response {
    Json(sim.lock().catalogue.offers()).into_response()
}

async fn all_knobs(State(sim): State<Arc<Sim>>) -> Response {
    let state = sim.lock();
    Json(json!({
        "airalo": state.airalo.knobs,
        "esimaccess": state.esim_access.knobs,
        "time_scale": state.clock.scale(),
        "seed": state.seed,
    }))
    .into_response()
}

async fn provider_knobs(State(sim): State<Arc<Sim>>, Path(provider): Path<String>) -> Response {
    match parse_provider(&provider) {
        Ok(provider) => Json(sim.lock().provider(provider).knobs.clone()).into_response(),
        Err(response) => response,
    }
}

/// `POST /_sim/knobs` with `{"provider": "airalo", ...knobs}`.
async fn post_knobs(State(sim): State<Arc<Sim>>, body: Bytes) -> Response {
    let mut patch = match optional_json(&body) {
        Ok(patch) => patch,
        Err(response) => return response,
    };
    let provider = match patch.as_object_mut().and_then(|map| map.remove("provider")) {
        Some(Value::String(name)) => name,
        _ => return bad_request("the body needs \"provider\": \"airalo\" or \"esimaccess\""),
    };
    apply_knobs(&sim, &provider, &patch)
}

async fn post_provider_knobs(
    State(sim): State<Arc<Sim>>,
    Path(provider): Path<String>,
    body: Bytes,
) -> Response {
    match optional_json(&body) {
        Ok(patch) => apply_knobs(&sim, &provider, &patch),
        Err(response) => response,
    }
}

fn apply_knobs(sim: &Sim, provider: &str, patch: &Value) -> Response {
    let provider = match parse_provider(provider) {
        Ok(provider) => provider,
        Err(response) => return response,
    };
    match sim.set_knobs(provider, patch) {
        Ok(knobs) => Json(knobs).into_response(),
        Err(error) => {
            let detail = std::error::Error::source(&error)
                .map_or_else(|| error.to_string(), |source| format!("{error}: {source}"));
            bad_request(&detail)
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct ResetRequest {
    seed: Option<u64>,
    time_scale: Option<f64>,
}

async fn reset(State(sim): State<Arc<Sim>>, body: Bytes) -> Response {
    let request: ResetRequest = match optional_json(&body).map(serde_json::from_value) {
        Ok(Ok(request)) => request,
        Ok(Err(error)) => return bad_request(&format!("invalid reset request: {error}")),
        Err(response) => return response,
    };
    sim.reset(request.seed, request.time_scale);
    tracing::info!(seed = ?request.seed, "simulator reset");
    clock(State(sim)).await
}

async fn clock(State(sim): State<Arc<Sim>>) -> Response {
    let state = sim.lock();
    Json(json!({
        "seed": state.seed,
        "time_scale": state.clock.scale(),
        "sim_time": crate::wire::esim_access_time(state.clock.now()),
    }))
    .into_response()
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct ClockRequest {
    time_scale: Option<f64>,
    advance_s: Option<f64>,
}

async fn set_clock(State(sim): State<Arc<Sim>>, body: Bytes) -> Response {
    let request: ClockRequest = match optional_json(&body).map(serde_json::from_value) {
        Ok(Ok(request)) => request,
        Ok(Err(error)) => return bad_request(&format!("invalid clock request: {error}")),
        Err(response) => return response,
    };
    {
        let mut state = sim.lock();
        if let Some(scale) = request.time_scale {
            state.clock.set_scale(scale);
        }
        if let Some(seconds) = request.advance_s {
            state.clock.advance(seconds);
        }
        crate::lifecycle::tick(&mut state, &sim.base_url);
    }
    clock(State(sim)).await
}

async fn qr(State(sim): State<Arc<Sim>>, Path(iccid): Path<String>) -> Response {
    let state = sim.lock();
    let found = Provider::ALL
        .into_iter()
        .find_map(|provider| state.provider(provider).profile(&iccid).map(|p| p.lpa()));
    match found {
        Some(lpa) => lpa.into_response(),
        None => not_found("no profile with this ICCID"),
    }
}

async fn list(
    State(sim): State<Arc<Sim>>,
    Path((provider, list)): Path<(String, String)>,
) -> Response {
    let provider = match parse_provider(&provider) {
        Ok(provider) => provider,
        Err(response) => return response,
    };
    let snapshot = sim.lock().provider(provider).snapshot();
    let value = match list.as_str() {
        "orders" => serde_json::to_value(snapshot.orders),
        "sims" => serde_json::to_value(snapshot.sims),
        "topups" => serde_json::to_value(snapshot.topups),
        "refunds" => serde_json::to_value(snapshot.refunds),
        "usage_queries" => serde_json::to_value(snapshot.usage_queries),
        "webhooks_sent" | "webhooks" => serde_json::to_value(snapshot.webhooks_sent),
        "requests" => serde_json::to_value(snapshot.requests),
        "knobs" => serde_json::to_value(snapshot.knobs),
        _ => {
            return not_found(
                "unknown list: orders, sims, topups, refunds, usage_queries, webhooks_sent, \
                 requests or knobs",
            );
        }
    };
    match value {
        Ok(value) => Json(value).into_response(),
        Err(error) => {
            tracing::error!(%error, "failed to serialise simulator state");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BalanceRequest {
    balance_cents: i64,
}

async fn set_balance(
    State(sim): State<Arc<Sim>>,
    Path(provider): Path<String>,
    body: Bytes,
) -> Response {
    let provider = match parse_provider(&provider) {
        Ok(provider) => provider,
        Err(response) => return response,
    };
    let request: BalanceRequest = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(error) => return bad_request(&format!("expected {{\"balance_cents\": n}}: {error}")),
    };
    sim.lock().provider_mut(provider).balance_cents = request.balance_cents;
    Json(json!({"balance_cents": request.balance_cents})).into_response()
}

async fn revoke_tokens(State(sim): State<Arc<Sim>>, Path(provider): Path<String>) -> Response {
    let provider = match parse_provider(&provider) {
        Ok(provider) => provider,
        Err(response) => return response,
    };
    let mut state = sim.lock();
    let account = state.provider_mut(provider);
    let revoked = account.tokens.len();
    account.tokens.clear();
    Json(json!({"revoked": revoked})).into_response()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConsumeRequest {
    mb: f64,
}

async fn consume(
    State(sim): State<Arc<Sim>>,
    Path((provider, iccid)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let provider = match parse_provider(&provider) {
        Ok(provider) => provider,
        Err(response) => return response,
    };
    let request = match serde_json::from_slice::<ConsumeRequest>(&body) {
        Ok(request) if request.mb.is_finite() && request.mb >= 0.0 => request,
        _ => return bad_request("expected {\"mb\": n} with n >= 0"),
    };
    let mut state = sim.lock();
    let Some(profile) = state.provider_mut(provider).profile_mut(&iccid) else {
        return not_found("no profile with this ICCID");
    };
    if profile.usage_state != UsageState::Active {
        return bad_request("the profile is not active");
    }
    let bytes = (request.mb * BYTES_PER_MB as f64) as u64;
    profile.used_bytes = profile.used_bytes.saturating_add(bytes);
    if !profile.unlimited {
        profile.used_bytes = profile.used_bytes.min(profile.total_bytes);
    }
    let used = profile.used_bytes;
    crate::lifecycle::tick(&mut state, &sim.base_url);
    Json(json!({"iccid": iccid, "used_bytes": used})).into_response()
}
