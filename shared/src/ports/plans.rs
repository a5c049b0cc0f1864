//! What orders need from the catalogue: a plan with the tenant's retail price, the plans that
//! could stand in for it, and the tenant's routing rules.

use async_trait::async_trait;

use crate::domain::DomainError;
use crate::domain::ids::{PlanId, TenantId};
use crate::domain::money::Money;
use crate::domain::plan::ProviderPlan;
use crate::domain::routing::RoutingRules;

/// A plan and what one tenant's customers pay for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PricedPlan {
    /// The plan, with its wholesale facts.
    pub plan: ProviderPlan,
    /// The tenant's retail price.
    pub retail: Money,
}

/// Plans as the order flow sees them.
#[async_trait]
pub trait PlanCatalogue: Send + Sync + std::fmt::Debug {
    /// A plan with the tenant's price; `None` when there is no such plan.
    async fn priced_plan(
        &self,
        tenant_id: &TenantId,
        plan_id: &PlanId,
    ) -> Result<Option<PricedPlan>, DomainError>;

    /// Plans of other providers covering the plan's countries, for failover; the routing
    /// rules decide which of them are equivalent.
    async fn candidates(&self, plan: &ProviderPlan) -> Result<Vec<ProviderPlan>, DomainError>;

    /// The tenant's routing rules, or the defaults.
    async fn routing(&self, tenant_id: &TenantId) -> Result<RoutingRules, DomainError>;
}
