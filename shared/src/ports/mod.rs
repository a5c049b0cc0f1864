//! Ports: the traits the domain talks through. Adapters in [`crate::aws`] and
//! [`crate::providers`] implement them; in-memory fakes in `testing` implement them for unit
//! tests.

pub mod bus;
pub mod esims;
pub mod orders;
pub mod plans;
pub mod provider;
pub mod queue;
pub mod store;
pub mod usage;
pub mod webhooks;

use time::OffsetDateTime;
use ulid::Ulid;

pub use bus::{EventPublisher, PublishError};
pub use orders::{OrderStore, VersionedOrder};
pub use plans::{PlanCatalogue, PricedPlan};
pub use provider::{ProviderApi, ProviderError};
pub use queue::{MessageQueue, QueueError};
pub use store::{StoreError, TenantStore};

/// The time, injected so that tests can pin it.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Now, in UTC.
    fn now(&self) -> OffsetDateTime;
}

/// Hands out ULIDs, injected so that tests can predict the ids a request mints.
pub trait IdGenerator: Send + Sync + std::fmt::Debug {
    /// A new, unique ULID.
    fn next_ulid(&self) -> Ulid;
}

/// The wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// ULIDs from the system clock and a random source, monotonic within one process.
#[derive(Default)]
pub struct UlidGenerator {
    last: std::sync::Mutex<ulid::Generator>,
}

impl std::fmt::Debug for UlidGenerator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UlidGenerator")
    }
}

impl IdGenerator for UlidGenerator {
    fn next_ulid(&self) -> Ulid {
        let mut generator = self
            .last
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        // The monotonic generator only fails when 2^80 ids were minted in one millisecond.
        generator.generate().unwrap_or_else(|_| Ulid::new())
    }
}
