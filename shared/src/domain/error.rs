//! The error taxonomy: one stable code per failure a caller can tell apart, a sentence a
//! person can act on, and whether trying again can help.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A stable machine word for a kind of failure. Clients switch on these; never rename one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The request is malformed or a field is invalid.
    InvalidRequest,
    /// No API key, a malformed key, or a revoked key.
    Unauthorized,
    /// The object does not exist, or belongs to another tenant.
    NotFound,
    /// A request with this idempotency key is still being processed.
    IdempotencyKeyInFlight,
    /// The idempotency key was used before with a different request body.
    IdempotencyKeyReused,
    /// Another writer changed the object first.
    Conflict,
    /// Too many requests; slow down.
    Throttled,
    /// The provider has no stock for this plan.
    OutOfStock,
    /// The mobile operator is in maintenance.
    OperatorMaintenance,
    /// Our wholesale balance at the provider is too low.
    InsufficientCredit,
    /// The device cannot use this eSIM.
    DeviceIncompatible,
    /// The provider could not be reached or answered with a server error.
    ProviderUnavailable,
    /// The provider may or may not have committed the request; reconcile before retrying.
    OutcomeUnknown,
    /// The route exists in the contract but this deployment does not serve it yet.
    NotImplemented,
    /// Our fault.
    Internal,
}

impl ErrorCode {
    /// The stable word, as it appears in error bodies.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::NotFound => "not_found",
            ErrorCode::IdempotencyKeyInFlight => "idempotency_key_in_flight",
            ErrorCode::IdempotencyKeyReused => "idempotency_key_reused",
            ErrorCode::Conflict => "conflict",
            ErrorCode::Throttled => "throttled",
            ErrorCode::OutOfStock => "out_of_stock",
            ErrorCode::OperatorMaintenance => "operator_maintenance",
            ErrorCode::InsufficientCredit => "insufficient_credit",
            ErrorCode::DeviceIncompatible => "device_incompatible",
            ErrorCode::ProviderUnavailable => "provider_unavailable",
            ErrorCode::OutcomeUnknown => "outcome_unknown",
            ErrorCode::NotImplemented => "not_implemented",
            ErrorCode::Internal => "internal",
        }
    }

    /// Whether the same request may succeed if tried again later.
    pub fn retryable(self) -> bool {
        matches!(
            self,
            ErrorCode::IdempotencyKeyInFlight
                | ErrorCode::Conflict
                | ErrorCode::Throttled
                | ErrorCode::OperatorMaintenance
                | ErrorCode::ProviderUnavailable
                | ErrorCode::OutcomeUnknown
                | ErrorCode::Internal
        )
    }

    /// The HTTP status this code answers with.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::InvalidRequest => 400,
            ErrorCode::Unauthorized => 401,
            ErrorCode::NotFound => 404,
            ErrorCode::IdempotencyKeyInFlight | ErrorCode::Conflict => 409,
            ErrorCode::IdempotencyKeyReused => 422,
            ErrorCode::Throttled => 429,
            ErrorCode::OutOfStock | ErrorCode::DeviceIncompatible => 409,
            ErrorCode::OperatorMaintenance
            | ErrorCode::ProviderUnavailable
            | ErrorCode::OutcomeUnknown => 503,
            ErrorCode::InsufficientCredit => 502,
            ErrorCode::NotImplemented => 501,
            ErrorCode::Internal => 500,
        }
    }

    /// The sentence shown when the error carries no more specific one. For server-side
    /// failures this is the only sentence ever shown: details stay in the logs.
    pub fn default_message(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "The request is not valid.",
            ErrorCode::Unauthorized => {
                "Send a valid API key as 'Authorization: Bearer <key>'. Keys are issued with \
                 'esimctl tenant create' or 'esimctl key create'."
            }
            ErrorCode::NotFound => "Nothing with that id exists for your account.",
            ErrorCode::IdempotencyKeyInFlight => {
                "A request with this Idempotency-Key is still being processed. Retry in a \
                 moment to get its result."
            }
            ErrorCode::IdempotencyKeyReused => {
                "This Idempotency-Key was already used with a different request. Use a new \
                 key for a new request."
            }
            ErrorCode::Conflict => "Someone else changed this at the same time. Try again.",
            ErrorCode::Throttled => "Too many requests. Wait a moment and try again.",
            ErrorCode::OutOfStock => {
                "This plan is sold out at the moment. Choose another plan or try again later."
            }
            ErrorCode::OperatorMaintenance => {
                "The mobile network behind this plan is in maintenance. Try again in a few \
                 minutes."
            }
            ErrorCode::InsufficientCredit => {
                "This plan cannot be sold right now. Contact support, quoting the support \
                 reference."
            }
            ErrorCode::DeviceIncompatible => {
                "This device cannot use this eSIM. Check that the phone supports eSIM and is \
                 not carrier-locked."
            }
            ErrorCode::ProviderUnavailable => {
                "The eSIM provider is not answering right now. Try again in a few minutes."
            }
            ErrorCode::OutcomeUnknown => {
                "We are confirming this with the eSIM provider. Check back in a minute; you \
                 will not be charged twice."
            }
            ErrorCode::NotImplemented => "This route is not available in this deployment yet.",
            ErrorCode::Internal => {
                "Something went wrong on our side. Try again, or contact support quoting the \
                 support reference."
            }
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failure the domain reports to its callers: a code, a sentence for a person, and for
/// server-side failures the underlying error, which is logged and never shown.
#[derive(Debug, thiserror::Error)]
#[error("{code}: {message}")]
pub struct DomainError {
    /// The stable code.
    pub code: ErrorCode,
    /// A sentence a person can act on. Never carries internals for 5xx codes.
    pub message: String,
    /// What went wrong underneath, for the logs.
    #[source]
    pub source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl DomainError {
    /// An error with the code's default sentence.
    pub fn new(code: ErrorCode) -> Self {
        Self {
            code,
            message: code.default_message().to_owned(),
            source: None,
        }
    }

    /// An error with a specific sentence, for client errors that name what to fix.
    pub fn with_message(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            source: None,
        }
    }

    /// Attaches the underlying error.
    pub fn caused_by(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    /// A 400 naming what is wrong.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::with_message(ErrorCode::InvalidRequest, message)
    }

    /// A 404.
    pub fn not_found() -> Self {
        Self::new(ErrorCode::NotFound)
    }

    /// A server-side failure with its cause kept for the logs.
    pub fn internal(source: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::new(ErrorCode::Internal).caused_by(source)
    }

    /// Whether trying again may help.
    pub fn retryable(&self) -> bool {
        self.code.retryable()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [ErrorCode; 15] = [
        ErrorCode::InvalidRequest,
        ErrorCode::Unauthorized,
        ErrorCode::NotFound,
        ErrorCode::IdempotencyKeyInFlight,
        ErrorCode::IdempotencyKeyReused,
        ErrorCode::Conflict,
        ErrorCode::Throttled,
        ErrorCode::OutOfStock,
        ErrorCode::OperatorMaintenance,
        ErrorCode::InsufficientCredit,
        ErrorCode::DeviceIncompatible,
        ErrorCode::ProviderUnavailable,
        ErrorCode::OutcomeUnknown,
        ErrorCode::NotImplemented,
        ErrorCode::Internal,
    ];

    #[test]
    fn codes_serialise_as_their_stable_word() {
        for code in ALL {
            let json = serde_json::to_string(&code).expect("serialises");
            assert_eq!(json, format!("\"{}\"", code.as_str()));
        }
    }

    #[test]
    fn every_code_has_a_sentence_and_a_status() {
        for code in ALL {
            assert!(code.default_message().ends_with('.'), "{code}");
            assert!((400..600).contains(&code.http_status()), "{code}");
        }
    }

    #[test]
    fn provider_trouble_is_retryable_and_bad_input_is_not() {
        assert!(ErrorCode::ProviderUnavailable.retryable());
        assert!(ErrorCode::OperatorMaintenance.retryable());
        assert!(!ErrorCode::InvalidRequest.retryable());
        assert!(!ErrorCode::OutOfStock.retryable());
    }
}
