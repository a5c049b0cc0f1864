//! The one domain crate of the eSIM backend: pure domain types, the ports the domain talks
//! through, the AWS and provider adapters behind those ports, and the HTTP layer that every
//! HTTP function shares.
//!
//! Layout:
//! - [`domain`]: ids, money, plans, orders, eSIMs, tenants, the profile lifecycle and the error
//!   taxonomy. No AWS, no HTTP.
//! - [`ports`]: traits for stores, queue, event bus, clock, id generator and providers.
//! - [`aws`]: DynamoDB, SQS and EventBridge adapters of those ports.
//! - [`providers`]: one module per wholesale provider API.
//! - [`http`]: request parsing, tenant authentication and the one error-to-response mapping.
//! - [`config`]: typed configuration read once from the environment.
//! - [`tenancy`]: tenant and API key management on top of the tenant store.
//! - [`orders`]: taking orders idempotently and queueing them for provisioning.
//! - [`provisioning`]: turning accepted orders into eSIMs at providers, with failover.
//! - [`runtime`]: entry points for SQS consumers and scheduled jobs.
//! - [`catalogue`]: the cached, normalised plan catalogue and per-tenant pricing.
//! - [`webhooks`]: verifying, deduplicating and applying provider webhooks.
//! - [`esims`]: eSIM views: state, next step, activation details and the QR code.
//! - [`usage`]: usage polling, merging, and exactly-once low-balance and expiry alerts.

pub mod aws;
pub mod catalogue;
pub mod config;
pub mod domain;
pub mod esims;
pub mod http;
pub mod orders;
pub mod ports;
pub mod providers;
pub mod provisioning;
pub mod runtime;
pub mod tenancy;
pub mod usage;
pub mod webhooks;

#[cfg(any(test, feature = "test-support"))]
pub mod testing;
