//! The pure domain: types, money, the profile lifecycle, events and errors.

pub mod error;
pub mod esim;
pub mod events;
pub mod ids;
pub mod lifecycle;
pub mod money;
pub mod order;
pub mod plan;
pub mod routing;
pub mod tenant;

pub use error::{DomainError, ErrorCode};
pub use ids::{ApiKeyId, CustomerId, EsimId, Iccid, OrderId, PlanId, ProviderId, TenantId};
pub use lifecycle::{ProfileEvent, ProfileState, Transition};
pub use money::{Currency, Money};
