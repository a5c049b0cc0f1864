//! Knobs that shape how one simulated provider behaves: latency, injected errors, lost
//! responses, order mode, webhook delivery and lifecycle timing. Changed at run time through
//! `POST /_sim/knobs/{provider}` with a partial JSON object.

use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The error a knob injects into a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The plan has no stock left (Airalo code 33, eSIM Access 200011).
    #[default]
    OutOfStock,
    /// The operator is under maintenance (Airalo code 13, eSIM Access 900001).
    Maintenance,
    /// The partner balance is too low (Airalo code 11, eSIM Access 200007).
    InsufficientCredit,
    /// HTTP 503 from the provider's edge.
    Unavailable,
    /// HTTP 429 with a `Retry-After` header.
    RateLimited,
    /// A validation error (Airalo 422, eSIM Access 000105).
    Invalid,
}

impl ErrorKind {
    /// Whether this kind of error can happen on an operation: business errors only where money
    /// moves, validation errors anywhere but the token call, edge errors anywhere.
    pub fn applies_to(self, operation: Operation) -> bool {
        match self {
            Self::OutOfStock | Self::Maintenance | Self::InsufficientCredit => {
                operation.is_purchase()
            }
            Self::Invalid => operation != Operation::AiraloToken,
            Self::Unavailable | Self::RateLimited => true,
        }
    }

    /// Errors raised by the provider's edge before authentication is even checked.
    pub fn is_edge(self) -> bool {
        matches!(self, Self::Unavailable | Self::RateLimited)
    }
}

/// Which Airalo order endpoint the simulated partner account may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum OrderMode {
    /// Both `/v2/orders` and `/v2/orders-async` are accepted.
    #[default]
    Sync,
    /// `/v2/orders` is refused (422) and only `/v2/orders-async` works.
    Async,
}

/// How a response is lost after the order was committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum LoseMode {
    /// A gateway in front of the provider answers 502 with an HTML body.
    #[default]
    BadGateway,
    /// The connection breaks before a complete response arrives.
    DropConnection,
}

/// Every knob of one simulated provider. Time knobs ending in `_s` are simulated seconds
/// (see `time_scale`); knobs ending in `_ms` are real milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Knobs {
    /// Added to every request before it is answered.
    pub latency_ms: u64,
    /// Probability (0..=1) that a request fails with `error_kind`.
    pub error_rate: f64,
    pub error_kind: ErrorKind,
    /// When set, errors are injected only into these operations (names as in the request
    /// counts, e.g. `orders`, `order`, `usage`).
    pub error_operations: Option<Vec<String>>,
    /// Seconds sent in `Retry-After` with injected 429 answers.
    pub retry_after_s: u64,
    /// Airalo only: which order endpoint is allowed.
    pub mode: OrderMode,
    /// Commit orders and top-ups, then lose the response.
    pub lose_response_after_commit: bool,
    pub lose_response_mode: LoseMode,
    /// How many responses to lose before the knob switches itself off; `None` loses all.
    pub lose_response_limit: Option<u32>,
    /// Time from an asynchronous order to its profiles being ready.
    pub provisioning_delay_s: f64,
    /// Time from provisioning to the profile download; `None` means the user never downloads.
    pub download_after_s: Option<f64>,
    /// Time from provisioning to installation on the device.
    pub install_after_s: Option<f64>,
    /// Time from provisioning to activation (first attach to the network).
    pub activation_after_s: Option<f64>,
    /// Probability (0..=1) that an installed profile never activates.
    pub activation_failure_rate: f64,
    /// Data consumed by an active profile, in MB per simulated minute.
    pub data_mb_per_minute: f64,
    /// Days after which a profile that was never activated expires.
    pub unused_expiry_days: u32,
    /// Where webhooks are posted; none are sent while unset.
    pub webhook_url: Option<String>,
    /// Airalo: key of the `airalo-signature` HMAC (defaults to the client secret). eSIM Access
    /// sends no signature; its secret belongs in the webhook URL path.
    pub webhook_secret: Option<String>,
    /// Extra copies of every webhook (same body, same id, same signature).
    pub webhook_duplicates: u32,
    /// Real delay before a webhook is posted.
    pub webhook_delay_ms: u64,
    /// Deliver webhooks pairwise swapped: the later one of each pair first.
    pub webhook_reorder: bool,
    /// How long a webhook waits for a partner to swap with before it goes alone.
    pub webhook_reorder_window_ms: u64,
    /// Further attempts after a failed delivery (any status but 200 fails).
    pub webhook_retries: u32,
    pub webhook_retry_delay_ms: u64,
    /// Airalo only: lifetime of issued access tokens, in real seconds.
    pub token_ttl_s: u64,
}

impl Default for Knobs {
    fn default() -> Self {
        Self {
            latency_ms: 0,
            error_rate: 0.0,
            error_kind: ErrorKind::default(),
            error_operations: None,
            retry_after_s: 1,
            mode: OrderMode::default(),
            lose_response_after_commit: false,
            lose_response_mode: LoseMode::default(),
            lose_response_limit: None,
            provisioning_delay_s: 3.0,
            download_after_s: Some(30.0),
            install_after_s: Some(45.0),
            activation_after_s: Some(60.0),
            activation_failure_rate: 0.0,
            data_mb_per_minute: 5.0,
            unused_expiry_days: 180,
            webhook_url: None,
            webhook_secret: None,
            webhook_duplicates: 0,
            webhook_delay_ms: 0,
            webhook_reorder: false,
            webhook_reorder_window_ms: 1000,
            webhook_retries: 2,
            webhook_retry_delay_ms: 500,
            token_ttl_s: 86_400,
        }
    }
}

/// Why a knob update was refused.
#[derive(Debug, thiserror::Error)]
pub enum KnobError {
    #[error("knob update must be a JSON object")]
    NotAnObject,
    #[error("invalid knob value")]
    Invalid(#[source] serde_json::Error),
    #[error("failed to read the current knobs")]
    Snapshot(#[source] serde_json::Error),
    #[error("{name} must be between 0 and 1, got {value}")]
    OutOfRange { name: &'static str, value: f64 },
    #[error("{name} must be a finite, non-negative number")]
    Negative { name: &'static str },
}

impl Knobs {
    /// Returns these knobs with the fields of `patch` replaced; unknown fields, wrong types and
    /// out-of-range values are refused and leave the knobs unchanged.
    pub fn patched(&self, patch: &Value) -> Result<Self, KnobError> {
        let Value::Object(changes) = patch else {
            return Err(KnobError::NotAnObject);
        };
        let Value::Object(mut current) = serde_json::to_value(self).map_err(KnobError::Snapshot)?
        else {
            return Err(KnobError::NotAnObject);
        };
        merge(&mut current, changes);
        let updated: Self =
            serde_json::from_value(Value::Object(current)).map_err(KnobError::Invalid)?;
        updated.validate()?;
        Ok(updated)
    }

    fn validate(&self) -> Result<(), KnobError> {
        for (name, value) in [
            ("error_rate", self.error_rate),
            ("activation_failure_rate", self.activation_failure_rate),
        ] {
            if !(0.0..=1.0).contains(&value) {
                return Err(KnobError::OutOfRange { name, value });
            }
        }
        let durations = [
            ("provisioning_delay_s", Some(self.provisioning_delay_s)),
            ("download_after_s", self.download_after_s),
            ("install_after_s", self.install_after_s),
            ("activation_after_s", self.activation_after_s),
            ("data_mb_per_minute", Some(self.data_mb_per_minute)),
        ];
        for (name, value) in durations {
            if value.is_some_and(|v| !v.is_finite() || v < 0.0) {
                return Err(KnobError::Negative { name });
            }
        }
        Ok(())
    }

    /// Decides whether this request fails, drawing from the seeded RNG only when an error can
    /// apply, so that runs without injected errors consume no randomness.
    pub fn roll_fault(&self, rng: &mut impl Rng, operation: Operation) -> Option<ErrorKind> {
        if self.error_rate <= 0.0 || !self.error_kind.applies_to(operation) {
            return None;
        }
        if let Some(only) = &self.error_operations
            && !only.iter().any(|name| name == operation.name())
        {
            return None;
        }
        (rng.random::<f64>() < self.error_rate).then_some(self.error_kind)
    }
}

fn merge(current: &mut Map<String, Value>, changes: &Map<String, Value>) {
    for (key, value) in changes {
        current.insert(key.clone(), value.clone());
    }
}

/// Every endpoint of both simulated APIs, named as in the request counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    AiraloToken,
    AiraloPackages,
    AiraloOrder,
    AiraloOrderAsync,
    AiraloOrderLookup,
    AiraloSim,
    AiraloUsage,
    AiraloTopupPackages,
    AiraloTopup,
    AiraloRefund,
    EsimAccessPackageList,
    EsimAccessOrder,
    EsimAccessQuery,
    EsimAccessUsage,
    EsimAccessTopup,
    EsimAccessCancel,
}

impl Operation {
    /// Name used in request counts and in the `error_operations` knob.
    pub fn name(self) -> &'static str {
        match self {
            Self::AiraloToken => "token",
            Self::AiraloPackages => "packages",
            Self::AiraloOrder => "orders",
            Self::AiraloOrderAsync => "orders_async",
            Self::AiraloOrderLookup => "orders_lookup",
            Self::AiraloSim => "sims",
            Self::AiraloUsage => "usage",
            Self::AiraloTopupPackages => "topup_packages",
            Self::AiraloTopup => "topups",
            Self::AiraloRefund => "refund",
            Self::EsimAccessPackageList => "package_list",
            Self::EsimAccessOrder => "order",
            Self::EsimAccessQuery => "query",
            Self::EsimAccessUsage => "usage",
            Self::EsimAccessTopup => "topup",
            Self::EsimAccessCancel => "cancel",
        }
    }

    /// Operations that spend the partner's balance.
    pub fn is_purchase(self) -> bool {
        matches!(
            self,
            Self::AiraloOrder
                | Self::AiraloOrderAsync
                | Self::AiraloTopup
                | Self::EsimAccessOrder
                | Self::EsimAccessTopup
        )
    }
}

#[cfg(test)]
mod tests {
    use rand::{SeedableRng, rngs::StdRng};
    use serde_json::json;

    use super::*;

    #[test]
    fn patch_changes_only_the_given_fields() {
        let knobs = Knobs::default();

        let patched = knobs.patched(&json!({"latency_ms": 250, "error_kind": "maintenance"}));

        let patched = patched.expect("valid patch");
        assert_eq!(patched.latency_ms, 250);
        assert_eq!(patched.error_kind, ErrorKind::Maintenance);
        assert_eq!(patched.webhook_retries, knobs.webhook_retries);
    }

    #[test]
    fn patch_can_clear_an_optional_knob() {
        let knobs = Knobs::default();

        let patched = knobs.patched(&json!({"download_after_s": null}));

        assert_eq!(patched.expect("valid patch").download_after_s, None);
    }

    #[test]
    fn unknown_knob_is_refused() {
        let result = Knobs::default().patched(&json!({"latency": 5}));

        assert!(matches!(result, Err(KnobError::Invalid(_))));
    }

    #[test]
    fn error_rate_above_one_is_refused() {
        let result = Knobs::default().patched(&json!({"error_rate": 1.5}));

        assert!(matches!(
            result,
            Err(KnobError::OutOfRange {
                name: "error_rate",
                ..
            })
        ));
    }

    #[test]
    fn negative_timing_is_refused() {
        let result = Knobs::default().patched(&json!({"install_after_s": -1.0}));

        assert!(matches!(
            result,
            Err(KnobError::Negative {
                name: "install_after_s"
            })
        ));
    }

    #[test]
    fn error_kind_names_match_the_documented_words() {
        for (word, kind) in [
            ("out_of_stock", ErrorKind::OutOfStock),
            ("maintenance", ErrorKind::Maintenance),
            ("insufficient_credit", ErrorKind::InsufficientCredit),
            ("unavailable", ErrorKind::Unavailable),
            ("rate_limited", ErrorKind::RateLimited),
            ("invalid", ErrorKind::Invalid),
        ] {
            let knobs = Knobs::default().patched(&json!({ "error_kind": word }));

            assert_eq!(knobs.expect("known kind").error_kind, kind);
        }
    }

    #[test]
    fn full_error_rate_always_fails_applicable_operations() {
        let knobs = Knobs {
            error_rate: 1.0,
            error_kind: ErrorKind::OutOfStock,
            ..Knobs::default()
        };
        let mut rng = StdRng::seed_from_u64(1);

        let on_order = knobs.roll_fault(&mut rng, Operation::AiraloOrder);
        let on_usage = knobs.roll_fault(&mut rng, Operation::AiraloUsage);

        assert_eq!(on_order, Some(ErrorKind::OutOfStock));
        assert_eq!(on_usage, None);
    }

    #[test]
    fn error_operations_narrow_injection() {
        let knobs = Knobs {
            error_rate: 1.0,
            error_kind: ErrorKind::Unavailable,
            error_operations: Some(vec!["usage".to_owned()]),
            ..Knobs::default()
        };
        let mut rng = StdRng::seed_from_u64(1);

        assert_eq!(knobs.roll_fault(&mut rng, Operation::AiraloToken), None);
        assert_eq!(
            knobs.roll_fault(&mut rng, Operation::AiraloUsage),
            Some(ErrorKind::Unavailable)
        );
    }

    #[test]
    fn same_seed_injects_errors_into_the_same_requests() {
        let knobs = Knobs {
            error_rate: 0.5,
            error_kind: ErrorKind::Unavailable,
            ..Knobs::default()
        };
        let run = |seed| {
            let mut rng = StdRng::seed_from_u64(seed);
            (0..64)
                .map(|_| {
                    knobs
                        .roll_fault(&mut rng, Operation::EsimAccessQuery)
                        .is_some()
                })
                .collect::<Vec<_>>()
        };

        let first = run(9);
        let second = run(9);

        assert_eq!(first, second);
        assert!(first.iter().any(|failed| *failed));
        assert!(first.iter().any(|failed| !*failed));
    }
}
