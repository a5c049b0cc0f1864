//! The catalogue service: resolves each (scope, provider) entry from memory, DynamoDB or the
//! provider, prices plans per tenant, and implements the order flow's [`PlanCatalogue`].
//!
//! How one scope is read:
//! 1. A warm container answers from memory for `memory_ttl`, with no DynamoDB call.
//! 2. Otherwise one Query reads every provider's entry for the scope.
//! 3. A fresh entry is used as is. A stale one (past `cache_ttl`, or invalidated) is used as
//!    is unless this caller wins the entry's lease, in which case it refreshes it inline; when
//!    the provider is down the stale entry is served with its age. Lambda freezes a container
//!    between invocations, so a refresh cannot run after the response; the one caller that
//!    holds the lease pays the provider's latency and every other caller gets the stale
//!    entry at once.
//! 4. A missing entry (the scope's first request) is fetched by the lease winner; concurrent
//!    callers wait for its answer instead of calling the provider themselves.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use time::OffsetDateTime;

use super::CatalogueConfig;
use super::pricing::PricingRules;
use super::store::{CacheEntry, CatalogueStore, Invalidation, Scope};
use super::view::{CountryListing, CountrySummary, Freshness, PlanFilter, PlanListing, RetailPlan};
use crate::aws::Table;
use crate::aws::catalogue_store::DynamoCatalogueStore;
use crate::domain::ids::{PlanId, ProviderId, TenantId};
use crate::domain::plan::{CountryCode, ProviderPlan};
use crate::domain::routing::RoutingRules;
use crate::domain::{DomainError, ErrorCode};
use crate::ports::{Clock, PlanCatalogue, PricedPlan, ProviderApi, ProviderError};

/// How often a caller waiting for another caller's first fetch looks again.
const WAIT_POLL: std::time::Duration = std::time::Duration::from_millis(100);

/// The catalogue. Build one per container; it keeps the in-memory cache.
#[derive(Debug, Clone)]
pub struct CatalogueService {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: Arc<dyn CatalogueStore>,
    providers: Vec<Arc<dyn ProviderApi>>,
    clock: Arc<dyn Clock>,
    config: CatalogueConfig,
    /// Names this container's leases. Random per container: no test needs to predict it.
    lease_owner: String,
    scopes: Mutex<HashMap<Scope, Remembered<ScopeData>>>,
    pricing: Mutex<HashMap<TenantId, Remembered<PricingRules>>>,
    plan_countries: Mutex<HashMap<PlanId, CountryCode>>,
}

#[derive(Debug)]
struct Remembered<T> {
    at: OffsetDateTime,
    value: Arc<T>,
}

/// Every provider's usable entry for a scope.
#[derive(Debug)]
struct ScopeData {
    entries: Vec<CacheEntry>,
    freshness: Freshness,
    /// Some provider had nothing to serve (down on its first fetch).
    incomplete: bool,
}

/// How one provider's entry was resolved.
#[derive(Debug)]
enum Resolved {
    Fresh(CacheEntry),
    Stale(CacheEntry),
    Missing(DomainError),
}

impl CatalogueService {
    /// A catalogue cached in `table`, fetching from `providers`.
    pub fn new(
        table: Table,
        providers: Vec<Arc<dyn ProviderApi>>,
        clock: Arc<dyn Clock>,
        config: CatalogueConfig,
    ) -> Self {
        Self::with_store(
            Arc::new(DynamoCatalogueStore::new(table)),
            providers,
            clock,
            config,
        )
    }

    /// A catalogue over any [`CatalogueStore`], for unit tests over the in-memory one.
    pub fn with_store(
        store: Arc<dyn CatalogueStore>,
        providers: Vec<Arc<dyn ProviderApi>>,
        clock: Arc<dyn Clock>,
        config: CatalogueConfig,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                providers,
                clock,
                config,
                lease_owner: ulid::Ulid::new().to_string(),
                scopes: Mutex::new(HashMap::new()),
                pricing: Mutex::new(HashMap::new()),
                plan_countries: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// The configuration this catalogue runs with.
    pub fn config(&self) -> &CatalogueConfig {
        &self.inner.config
    }

    /// The countries any provider sells plans for.
    pub async fn countries(&self) -> Result<CountryListing, DomainError> {
        let data = self.inner.load_scope(&Scope::Countries).await?;

        let mut counts: BTreeMap<CountryCode, u32> = BTreeMap::new();
        for summary in data.entries.iter().flat_map(|entry| &entry.countries) {
            *counts.entry(summary.code.clone()).or_default() += summary.plan_count;
        }
        let countries = counts
            .into_iter()
            .map(|(code, plan_count)| CountrySummary { code, plan_count })
            .collect();
        Ok(CountryListing {
            countries,
            freshness: data.freshness,
        })
    }

    /// The plans covering `country` that pass `filter`, at `tenant_id`'s prices, cheapest
    /// first. `NotFound` when no provider sells anything there.
    pub async fn plans(
        &self,
        tenant_id: &TenantId,
        country: &CountryCode,
        filter: &PlanFilter,
    ) -> Result<PlanListing, DomainError> {
        let data = self
            .inner
            .load_scope(&Scope::Country(country.clone()))
            .await?;
        if data.entries.iter().all(|entry| entry.plans.is_empty()) {
            if data.incomplete {
                return Err(DomainError::new(ErrorCode::ProviderUnavailable));
            }
            return Err(DomainError::with_message(
                ErrorCode::NotFound,
                format!(
                    "No plans cover country {}. GET /v1/countries lists the countries with \
                     plans.",
                    country.as_str()
                ),
            ));
        }
        let rules = self.inner.pricing_rules(tenant_id).await?;

        let mut plans = Vec::new();
        for plan in data.entries.iter().flat_map(|entry| &entry.plans) {
            if filter.accepts(plan) {
                plans.push(RetailPlan::new(plan, retail_price(&rules, plan)?));
            }
        }
        plans.sort_by(|a, b| {
            (a.price.amount_minor, &a.plan_id).cmp(&(b.price.amount_minor, &b.plan_id))
        });
        Ok(PlanListing {
            country: country.clone(),
            plans,
            freshness: data.freshness,
        })
    }

    /// One plan at `tenant_id`'s price; `None` when no provider sells it.
    pub async fn plan(
        &self,
        tenant_id: &TenantId,
        plan_id: &PlanId,
    ) -> Result<Option<(RetailPlan, Freshness)>, DomainError> {
        let Some((plan, freshness)) = self.inner.find_plan(plan_id).await? else {
            return Ok(None);
        };
        let rules = self.inner.pricing_rules(tenant_id).await?;

        let price = retail_price(&rules, &plan)?;
        Ok(Some((RetailPlan::new(&plan, price), freshness)))
    }

    /// Marks entries stale so that their next read refreshes them, and forgets what this
    /// container remembers. Other warm containers notice within `memory_ttl`.
    pub async fn invalidate(&self, target: &Invalidation) -> Result<u32, DomainError> {
        let marked = self.inner.store.mark_stale(target).await?;
        self.inner.forget();
        tracing::info!(%target, marked, "catalogue entries marked stale");
        Ok(marked)
    }

    /// Fetches the whole catalogue of every provider listed in the configuration's
    /// `full_refresh_providers` and rewrites all its entries; returns how many entries were
    /// written. A provider that fails is logged and skipped, so the others still refresh.
    pub async fn refresh_full(&self) -> Result<u32, DomainError> {
        let mut written = 0;
        for provider in &self.inner.providers {
            if !self
                .inner
                .config
                .full_refresh_providers
                .contains(provider.id())
            {
                continue;
            }
            match self.inner.refresh_provider(provider.as_ref()).await {
                Ok(count) => written += count,
                Err(error) => tracing::warn!(
                    provider = %provider.id(),
                    error = %error,
                    "full catalogue refresh failed"
                ),
            }
        }
        self.inner.forget();
        Ok(written)
    }
}

fn retail_price(
    rules: &PricingRules,
    plan: &ProviderPlan,
) -> Result<crate::domain::Money, DomainError> {
    rules.retail(plan).map_err(DomainError::internal)
}

/// Each country the plans cover, with how many of them cover it.
fn summarise(plans: &[ProviderPlan]) -> Vec<CountrySummary> {
    let mut counts: BTreeMap<CountryCode, u32> = BTreeMap::new();
    for country in plans.iter().flat_map(|p| &p.coverage.countries) {
        *counts.entry(country.clone()).or_default() += 1;
    }
    counts
        .into_iter()
        .map(|(code, plan_count)| CountrySummary { code, plan_count })
        .collect()
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn provider_error(provider: &ProviderId, error: ProviderError) -> DomainError {
    tracing::warn!(provider = %provider, error = %error, "provider catalogue fetch failed");
    DomainError::new(ErrorCode::ProviderUnavailable).caused_by(error)
}

fn as_time(duration: std::time::Duration) -> time::Duration {
    time::Duration::try_from(duration).unwrap_or(time::Duration::MAX)
}

impl Inner {
    fn forget(&self) {
        lock(&self.scopes).clear();
        lock(&self.pricing).clear();
    }

    fn remembered<K, T>(&self, map: &Mutex<HashMap<K, Remembered<T>>>, key: &K) -> Option<Arc<T>>
    where
        K: std::hash::Hash + Eq,
    {
        let now = self.clock.now();
        let ttl = as_time(self.config.memory_ttl);
        lock(map)
            .get(key)
            .filter(|hit| now - hit.at < ttl)
            .map(|hit| hit.value.clone())
    }

    async fn pricing_rules(&self, tenant_id: &TenantId) -> Result<Arc<PricingRules>, DomainError> {
        if let Some(rules) = self.remembered(&self.pricing, tenant_id) {
            return Ok(rules);
        }
        let rules = Arc::new(self.store.pricing(tenant_id).await?.unwrap_or_default());
        let remembered = Remembered {
            at: self.clock.now(),
            value: rules.clone(),
        };
        lock(&self.pricing).insert(tenant_id.clone(), remembered);
        Ok(rules)
    }

    fn is_fresh(&self, entry: &CacheEntry, now: OffsetDateTime) -> bool {
        !entry.stale
            && entry
                .fetched_at
                .is_some_and(|at| now - at < as_time(self.config.cache_ttl))
    }

    async fn load_scope(self: &Arc<Self>, scope: &Scope) -> Result<Arc<ScopeData>, DomainError> {
        if let Some(data) = self.remembered(&self.scopes, scope) {
            return Ok(data);
        }
        let stored = self.store.entries(scope).await?;

        let mut tasks = tokio::task::JoinSet::new();
        for provider in &self.providers {
            let existing = stored
                .iter()
                .find(|e| &e.provider == provider.id())
                .cloned();
            let (inner, provider, scope) = (self.clone(), provider.clone(), scope.clone());
            tasks.spawn(async move { inner.resolve(&scope, provider.as_ref(), existing).await });
        }
        let mut resolved = Vec::new();
        while let Some(outcome) = tasks.join_next().await {
            resolved.push(outcome.map_err(DomainError::internal)?);
        }

        let now = self.clock.now();
        let mut entries = Vec::new();
        let mut stale = false;
        let mut failure = None;
        for outcome in resolved {
            match outcome {
                Resolved::Fresh(entry) => entries.push(entry),
                Resolved::Stale(entry) => {
                    stale = true;
                    entries.push(entry);
                }
                Resolved::Missing(error) => failure = Some(error),
            }
        }
        if entries.is_empty() {
            return Err(failure.unwrap_or_else(|| {
                DomainError::with_message(
                    ErrorCode::ProviderUnavailable,
                    "No eSIM provider is configured for this deployment.",
                )
            }));
        }
        entries.sort_by(|a, b| a.provider.cmp(&b.provider));
        let age_seconds = entries
            .iter()
            .filter_map(|e| e.fetched_at)
            .map(|at| u64::try_from((now - at).whole_seconds()).unwrap_or(0))
            .max()
            .unwrap_or(0);
        if let Scope::Country(country) = scope {
            let mut index = lock(&self.plan_countries);
            for plan in entries.iter().flat_map(|e| &e.plans) {
                index.insert(plan.plan_id.clone(), country.clone());
            }
        }
        let data = Arc::new(ScopeData {
            entries,
            freshness: Freshness { stale, age_seconds },
            incomplete: failure.is_some(),
        });
        // A partial answer (a provider with nothing to serve) is not remembered, so the next
        // request tries that provider again once its failure backoff has passed.
        if !data.incomplete {
            let remembered = Remembered {
                at: now,
                value: data.clone(),
            };
            lock(&self.scopes).insert(scope.clone(), remembered);
        }
        Ok(data)
    }

    async fn resolve(
        &self,
        scope: &Scope,
        provider: &dyn ProviderApi,
        existing: Option<CacheEntry>,
    ) -> Resolved {
        match self.try_resolve(scope, provider, existing).await {
            Ok(resolved) => resolved,
            Err(error) => Resolved::Missing(error),
        }
    }

    async fn try_resolve(
        &self,
        scope: &Scope,
        provider: &dyn ProviderApi,
        existing: Option<CacheEntry>,
    ) -> Result<Resolved, DomainError> {
        let now = self.clock.now();
        if let Some(entry) = existing.filter(|e| e.fetched_at.is_some()) {
            if self.is_fresh(&entry, now) {
                return Ok(Resolved::Fresh(entry));
            }
            let lease_free = entry.lease_until.is_none_or(|until| until < now);
            if !lease_free
                || !self
                    .take_lease(scope, provider.id(), entry.fetched_at, now)
                    .await?
            {
                return Ok(Resolved::Stale(entry));
            }
            return Ok(match self.fetch(scope, provider).await {
                Ok(fresh) => Resolved::Fresh(fresh),
                Err(error) => {
                    self.fail(scope, provider.id(), now).await?;
                    tracing::info!(provider = %provider.id(), %scope, cause = %error,
                        "serving stale catalogue entry");
                    Resolved::Stale(entry)
                }
            });
        }
        self.first_fetch(scope, provider).await
    }

    /// The first fetch of an entry: this caller fetches if it wins the lease, otherwise it
    /// waits for the winner's answer (or failure) for at most one lease length.
    async fn first_fetch(
        &self,
        scope: &Scope,
        provider: &dyn ProviderApi,
    ) -> Result<Resolved, DomainError> {
        let deadline = tokio::time::Instant::now() + self.config.lease;
        loop {
            let now = self.clock.now();
            if self.take_lease(scope, provider.id(), None, now).await? {
                return match self.fetch(scope, provider).await {
                    Ok(entry) => Ok(Resolved::Fresh(entry)),
                    Err(error) => {
                        self.fail(scope, provider.id(), now).await?;
                        Ok(Resolved::Missing(error))
                    }
                };
            }
            let mut first_look = true;
            loop {
                if tokio::time::Instant::now() >= deadline {
                    return Ok(Resolved::Missing(DomainError::new(
                        ErrorCode::ProviderUnavailable,
                    )));
                }
                if !first_look {
                    tokio::time::sleep(WAIT_POLL).await;
                }
                first_look = false;
                let Some(entry) = self.store.entry(scope, provider.id()).await? else {
                    break;
                };
                if entry.fetched_at.is_some() {
                    let now = self.clock.now();
                    return Ok(if self.is_fresh(&entry, now) {
                        Resolved::Fresh(entry)
                    } else {
                        Resolved::Stale(entry)
                    });
                }
                // The latest attempt failed and its owner holds the lease through the
                // failure backoff: nobody is fetching, so waiting would not help.
                if entry.failed_at.is_some() {
                    return Ok(Resolved::Missing(DomainError::new(
                        ErrorCode::ProviderUnavailable,
                    )));
                }
                if entry
                    .lease_until
                    .is_none_or(|until| until < self.clock.now())
                {
                    break;
                }
            }
        }
    }

    async fn take_lease(
        &self,
        scope: &Scope,
        provider: &ProviderId,
        seen_fetched_at: Option<OffsetDateTime>,
        now: OffsetDateTime,
    ) -> Result<bool, DomainError> {
        let until = now + as_time(self.config.lease);
        let won = self
            .store
            .acquire_lease(
                scope,
                provider,
                &self.lease_owner,
                seen_fetched_at,
                now,
                until,
            )
            .await?;
        tracing::debug!(%provider, %scope, won, "catalogue refresh lease");
        Ok(won)
    }

    async fn fail(
        &self,
        scope: &Scope,
        provider: &ProviderId,
        now: OffsetDateTime,
    ) -> Result<(), DomainError> {
        let retry_at = now + as_time(self.config.failure_backoff);
        self.store
            .record_failure(scope, provider, &self.lease_owner, now, retry_at)
            .await?;
        Ok(())
    }

    fn delete_at(&self, now: OffsetDateTime) -> OffsetDateTime {
        now + as_time(self.config.retention)
    }

    /// Asks the provider and stores its answer, with the plan-id index.
    async fn fetch(
        &self,
        scope: &Scope,
        provider: &dyn ProviderApi,
    ) -> Result<CacheEntry, DomainError> {
        let country = match scope {
            Scope::Country(country) => Some(country),
            Scope::Countries => None,
        };
        let plans = provider
            .list_plans(country)
            .await
            .map_err(|e| provider_error(provider.id(), e))?;
        let now = self.clock.now();
        let mut entry = CacheEntry::fetched(scope.clone(), provider.id().clone(), now);
        let index: Vec<(PlanId, CountryCode)> = match country {
            Some(country) => {
                entry.plans = plans
                    .into_iter()
                    .filter(|p| p.coverage.countries.contains(country))
                    .collect();
                entry
                    .plans
                    .iter()
                    .map(|p| (p.plan_id.clone(), country.clone()))
                    .collect()
            }
            None => {
                entry.countries = summarise(&plans);
                plans
                    .iter()
                    .filter_map(|p| {
                        let first = p.coverage.countries.first()?;
                        Some((p.plan_id.clone(), first.clone()))
                    })
                    .collect()
            }
        };
        let delete_at = self.delete_at(now);
        // The provider answered: serve its answer even when caching it fails.
        let cached = match self.store.index_plans(&index, delete_at).await {
            Ok(()) => self.store.save_entry(&entry, delete_at).await,
            Err(error) => Err(error),
        };
        if let Err(error) = cached {
            tracing::warn!(provider = %provider.id(), %scope, error = %error,
                "catalogue entry could not be cached");
        }
        tracing::info!(
            provider = %provider.id(),
            %scope,
            plans = entry.plans.len(),
            countries = entry.countries.len(),
            "catalogue entry refreshed"
        );
        Ok(entry)
    }

    /// Rewrites every entry of one provider from its whole catalogue.
    async fn refresh_provider(&self, provider: &dyn ProviderApi) -> Result<u32, DomainError> {
        let plans = provider
            .list_plans(None)
            .await
            .map_err(|e| provider_error(provider.id(), e))?;
        let now = self.clock.now();
        let delete_at = self.delete_at(now);
        let mut by_country: BTreeMap<CountryCode, Vec<ProviderPlan>> = BTreeMap::new();
        for plan in &plans {
            for country in &plan.coverage.countries {
                by_country
                    .entry(country.clone())
                    .or_default()
                    .push(plan.clone());
            }
        }
        let mut index = Vec::new();
        let mut written = 0;
        for (country, plans) in &by_country {
            index.extend(plans.iter().map(|p| (p.plan_id.clone(), country.clone())));
            let mut entry =
                CacheEntry::fetched(Scope::Country(country.clone()), provider.id().clone(), now);
            entry.plans = plans.clone();
            self.store.save_entry(&entry, delete_at).await?;
            written += 1;
        }
        let mut summary = CacheEntry::fetched(Scope::Countries, provider.id().clone(), now);
        summary.countries = summarise(&plans);
        self.store.save_entry(&summary, delete_at).await?;
        self.store.index_plans(&index, delete_at).await?;
        tracing::info!(provider = %provider.id(), entries = written + 1, "full catalogue refresh");
        Ok(written + 1)
    }

    /// Finds a plan by id: from its country's entry, found through the plan-id index, or
    /// (for an id never listed) through the provider's whole catalogue.
    async fn find_plan(
        self: &Arc<Self>,
        plan_id: &PlanId,
    ) -> Result<Option<(ProviderPlan, Freshness)>, DomainError> {
        let Some(provider) = plan_id
            .as_str()
            .split_once(':')
            .and_then(|(prefix, _)| self.providers.iter().find(|p| p.id().as_str() == prefix))
        else {
            return Ok(None);
        };
        let known = lock(&self.plan_countries).get(plan_id).cloned();
        let country = match known {
            Some(country) => Some(country),
            None => match self.store.plan_country(plan_id).await? {
                Some(country) => Some(country),
                None => {
                    let listed = self.load_scope(&Scope::Countries).await?;
                    let provider_listed =
                        listed.entries.iter().any(|e| &e.provider == provider.id());
                    if provider_listed {
                        self.store.plan_country(plan_id).await?
                    } else {
                        None
                    }
                }
            },
        };
        let Some(country) = country else {
            return Ok(None);
        };
        let data = self.load_scope(&Scope::Country(country)).await?;
        let plan = data
            .entries
            .iter()
            .flat_map(|e| &e.plans)
            .find(|p| &p.plan_id == plan_id)
            .cloned();
        Ok(plan.map(|plan| (plan, data.freshness)))
    }
}

#[async_trait]
impl PlanCatalogue for CatalogueService {
    async fn priced_plan(
        &self,
        tenant_id: &TenantId,
        plan_id: &PlanId,
    ) -> Result<Option<PricedPlan>, DomainError> {
        let Some((plan, _)) = self.inner.find_plan(plan_id).await? else {
            return Ok(None);
        };
        let rules = self.inner.pricing_rules(tenant_id).await?;

        let retail = retail_price(&rules, &plan)?;
        Ok(Some(PricedPlan { plan, retail }))
    }

    async fn candidates(&self, plan: &ProviderPlan) -> Result<Vec<ProviderPlan>, DomainError> {
        let Some(country) = plan.coverage.countries.first() else {
            return Ok(Vec::new());
        };
        let data = self
            .inner
            .load_scope(&Scope::Country(country.clone()))
            .await?;

        Ok(data
            .entries
            .iter()
            .filter(|e| e.provider != plan.provider)
            .flat_map(|e| &e.plans)
            .filter(|c| {
                plan.coverage
                    .countries
                    .iter()
                    .all(|country| c.coverage.countries.contains(country))
            })
            .cloned()
            .collect())
    }

    async fn routing(&self, tenant_id: &TenantId) -> Result<RoutingRules, DomainError> {
        Ok(self
            .inner
            .store
            .routing(tenant_id)
            .await?
            .unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use super::*;
    use crate::catalogue::memory::{FixedPlansProvider, InMemoryCatalogueStore};
    use crate::domain::money::{Currency, Money};
    use crate::domain::plan::{Coverage, DataAllowance};
    use crate::testing::FixedClock;

    fn provider_id(name: &str) -> ProviderId {
        ProviderId::parse(name).expect("provider id")
    }

    fn cc(code: &str) -> CountryCode {
        CountryCode::parse(code).expect("country")
    }

    fn plan(provider: &str, code: &str, countries: &[&str], mb: u64, cents: i64) -> ProviderPlan {
        ProviderPlan {
            plan_id: PlanId::parse(format!("{provider}:{code}")).expect("plan id"),
            provider: provider_id(provider),
            provider_plan_code: code.to_owned(),
            name: code.to_owned(),
            coverage: Coverage {
                countries: countries.iter().map(|c| cc(c)).collect(),
                region: (countries.len() > 1).then(|| "Asia".to_owned()),
            },
            data: DataAllowance::Limited { mb },
            validity_days: 7,
            wholesale_price: Money::new(cents, Currency::USD),
            supports_top_up: true,
            network_speed: Some("4G".to_owned()),
        }
    }

    struct Fixture {
        store: Arc<InMemoryCatalogueStore>,
        airalo: Arc<FixedPlansProvider>,
        other: Arc<FixedPlansProvider>,
        clock: Arc<FixedClock>,
        config: CatalogueConfig,
    }

    impl Fixture {
        fn new(memory_ttl_seconds: u64) -> Self {
            let airalo = FixedPlansProvider::new(
                &provider_id("airalo"),
                vec![
                    plan("airalo", "jp-1gb", &["JP"], 1024, 450),
                    plan("airalo", "asia-3gb", &["JP", "KR"], 3072, 1200),
                    plan("airalo", "fr-1gb", &["FR"], 1024, 300),
                ],
            );
            let other = FixedPlansProvider::new(
                &provider_id("esim-access"),
                vec![plan("esim-access", "JP_1G", &["JP"], 1024, 470)],
            );
            Self {
                store: Arc::new(InMemoryCatalogueStore::default()),
                airalo: Arc::new(airalo),
                other: Arc::new(other),
                clock: Arc::new(FixedClock::default()),
                config: CatalogueConfig {
                    memory_ttl: std::time::Duration::from_secs(memory_ttl_seconds),
                    cache_ttl: std::time::Duration::from_secs(600),
                    lease: std::time::Duration::from_secs(5),
                    ..CatalogueConfig::default()
                },
            }
        }

        fn service(&self) -> CatalogueService {
            CatalogueService::with_store(
                self.store.clone(),
                vec![self.airalo.clone(), self.other.clone()],
                self.clock.clone(),
                self.config.clone(),
            )
        }
    }

    fn tenant() -> TenantId {
        TenantId::parse("ten_1").expect("tenant id")
    }

    #[tokio::test]
    async fn a_country_is_fetched_on_its_first_request_and_then_served_from_memory() {
        let fixture = Fixture::new(30);
        let service = fixture.service();

        let first = service
            .plans(&tenant(), &cc("jp"), &PlanFilter::default())
            .await
            .expect("listed");
        let calls_after_first = fixture.store.call_count();
        let second = service
            .plans(&tenant(), &cc("JP"), &PlanFilter::default())
            .await
            .expect("listed");

        let ids: Vec<_> = first.plans.iter().map(|p| p.plan_id.to_string()).collect();
        assert_eq!(
            ids,
            ["airalo:jp-1gb", "esim-access:JP_1G", "airalo:asia-3gb"]
        );
        assert_eq!(first.plans[0].price, Money::new(599, Currency::USD));
        assert!(!first.freshness.stale);
        assert_eq!(second, first);
        assert_eq!(fixture.airalo.list_count(), 1);
        assert_eq!(fixture.other.list_count(), 1);
        assert_eq!(
            fixture.store.call_count(),
            calls_after_first,
            "no store call when warm"
        );
    }

    #[tokio::test]
    async fn an_entry_past_its_ttl_is_fetched_again() {
        let fixture = Fixture::new(0);
        let service = fixture.service();
        service
            .plans(&tenant(), &cc("JP"), &PlanFilter::default())
            .await
            .expect("listed");

        fixture.clock.advance(time::Duration::seconds(599));
        service
            .plans(&tenant(), &cc("JP"), &PlanFilter::default())
            .await
            .expect("listed");
        let before_expiry = fixture.airalo.list_count();
        fixture.clock.advance(time::Duration::seconds(2));
        let after = service
            .plans(&tenant(), &cc("JP"), &PlanFilter::default())
            .await
            .expect("listed");

        assert_eq!(before_expiry, 1);
        assert_eq!(fixture.airalo.list_count(), 2);
        assert!(!after.freshness.stale);
        assert_eq!(after.freshness.age_seconds, 0);
    }

    #[tokio::test]
    async fn a_stale_entry_is_served_with_its_age_while_the_provider_is_down() {
        let fixture = Fixture::new(0);
        let service = fixture.service();
        service
            .plans(&tenant(), &cc("JP"), &PlanFilter::default())
            .await
            .expect("listed");
        fixture.airalo.down.store(true, Ordering::SeqCst);
        fixture.other.down.store(true, Ordering::SeqCst);
        fixture.clock.advance(time::Duration::seconds(700));

        let listing = service
            .plans(&tenant(), &cc("JP"), &PlanFilter::default())
            .await
            .expect("stale is served");
        let again = service
            .plans(&tenant(), &cc("JP"), &PlanFilter::default())
            .await
            .expect("stale is served");

        assert!(listing.freshness.stale);
        assert_eq!(listing.freshness.age_seconds, 700);
        assert_eq!(listing.plans.len(), 3);
        assert_eq!(again.plans.len(), 3);
        assert_eq!(
            fixture.airalo.list_count(),
            2,
            "the failure backoff keeps the lease: the second read does not ask again"
        );
    }

    #[tokio::test]
    async fn concurrent_cold_requests_cause_one_fetch_per_provider() {
        let mut fixture = Fixture::new(30);
        let slow = FixedPlansProvider::new(
            &provider_id("airalo"),
            vec![plan("airalo", "jp-1gb", &["JP"], 1024, 450)],
        )
        .with_delay(std::time::Duration::from_millis(300));
        fixture.airalo = Arc::new(slow);
        let containers: Vec<CatalogueService> = (0..6).map(|_| fixture.service()).collect();

        let mut tasks = tokio::task::JoinSet::new();
        for service in containers {
            tasks.spawn(async move {
                service
                    .plans(&tenant(), &cc("JP"), &PlanFilter::default())
                    .await
            });
        }
        let mut listings = Vec::new();
        while let Some(done) = tasks.join_next().await {
            listings.push(done.expect("joined").expect("listed"));
        }

        assert_eq!(fixture.airalo.list_count(), 1);
        assert_eq!(fixture.other.list_count(), 1);
        assert!(listings.iter().all(|l| l.plans.len() == 2), "{listings:?}");
    }

    #[tokio::test]
    async fn an_invalidated_country_is_fetched_again_on_its_next_read() {
        let fixture = Fixture::new(30);
        let service = fixture.service();
        service
            .plans(&tenant(), &cc("JP"), &PlanFilter::default())
            .await
            .expect("listed");
        fixture.airalo.plans.lock().expect("lock").push(plan(
            "airalo",
            "jp-5gb",
            &["JP"],
            5120,
            900,
        ));

        let marked = service
            .invalidate(&Invalidation::Country(cc("JP")))
            .await
            .expect("invalidated");
        let listing = service
            .plans(&tenant(), &cc("JP"), &PlanFilter::default())
            .await
            .expect("listed");

        assert_eq!(marked, 2);
        assert_eq!(fixture.airalo.list_count(), 2);
        assert!(
            listing
                .plans
                .iter()
                .any(|p| p.plan_id.as_str() == "airalo:jp-5gb")
        );
    }

    #[tokio::test]
    async fn a_country_nobody_sells_is_not_found_and_a_cold_outage_is_unavailable() {
        let fixture = Fixture::new(30);
        let service = fixture.service();

        let nowhere = service
            .plans(&tenant(), &cc("ZZ"), &PlanFilter::default())
            .await
            .expect_err("no plans");
        fixture.airalo.down.store(true, Ordering::SeqCst);
        fixture.other.down.store(true, Ordering::SeqCst);
        let down = service
            .plans(&tenant(), &cc("KR"), &PlanFilter::default())
            .await
            .expect_err("nothing to serve");

        assert_eq!(nowhere.code, ErrorCode::NotFound);
        assert!(nowhere.message.contains("ZZ"));
        assert_eq!(down.code, ErrorCode::ProviderUnavailable);
    }

    #[tokio::test]
    async fn filters_select_by_data_validity_unlimited_and_region() {
        let fixture = Fixture::new(30);
        let service = fixture.service();
        let filter = |min_data_mb, region: Option<&str>| PlanFilter {
            min_data_mb,
            region: region.map(str::to_owned),
            ..PlanFilter::default()
        };

        let big = service
            .plans(&tenant(), &cc("JP"), &filter(Some(2048), None))
            .await
            .expect("listed");
        let asia = service
            .plans(&tenant(), &cc("JP"), &filter(None, Some("asia")))
            .await
            .expect("listed");
        let unlimited = service
            .plans(
                &tenant(),
                &cc("JP"),
                &PlanFilter {
                    unlimited: Some(true),
                    ..PlanFilter::default()
                },
            )
            .await
            .expect("listed");

        assert_eq!(big.plans.len(), 1);
        assert_eq!(big.plans[0].plan_id.as_str(), "airalo:asia-3gb");
        assert_eq!(asia.plans.len(), 1);
        assert!(unlimited.plans.is_empty());
    }

    #[tokio::test]
    async fn a_plan_never_listed_is_found_with_the_tenants_price() {
        let fixture = Fixture::new(30);
        let service = fixture.service();
        let mut rules = PricingRules::default();
        rules.plans.insert(
            PlanId::parse("airalo:fr-1gb").expect("id"),
            crate::catalogue::PriceRule {
                price_minor: Some(777),
                ..Default::default()
            },
        );
        fixture
            .store
            .save_pricing(&tenant(), &rules)
            .await
            .expect("saved");
        let other_tenant = TenantId::parse("ten_2").expect("tenant id");

        let priced = service
            .priced_plan(&tenant(), &PlanId::parse("airalo:fr-1gb").expect("id"))
            .await
            .expect("looked up")
            .expect("found");
        let default_priced = service
            .priced_plan(&other_tenant, &PlanId::parse("airalo:fr-1gb").expect("id"))
            .await
            .expect("looked up")
            .expect("found");
        let missing = service
            .priced_plan(&tenant(), &PlanId::parse("airalo:nope").expect("id"))
            .await
            .expect("looked up");
        let foreign = service
            .priced_plan(&tenant(), &PlanId::parse("acme:x").expect("id"))
            .await
            .expect("looked up");

        assert_eq!(priced.retail, Money::new(777, Currency::USD));
        assert_eq!(priced.plan.wholesale_price, Money::new(300, Currency::USD));
        assert_eq!(default_priced.retail, Money::new(399, Currency::USD));
        assert!(missing.is_none());
        assert!(foreign.is_none());
        assert_eq!(
            fixture.airalo.list_count(),
            2,
            "one full listing, then the plan's country; the unknown id asks nobody again"
        );
    }

    #[tokio::test]
    async fn candidates_are_other_providers_plans_covering_the_countries() {
        let fixture = Fixture::new(30);
        let service = fixture.service();
        let original = plan("airalo", "jp-1gb", &["JP"], 1024, 450);

        let candidates = service.candidates(&original).await.expect("listed");
        let routing = service.routing(&tenant()).await.expect("read");

        let ids: Vec<_> = candidates.iter().map(|p| p.plan_id.to_string()).collect();
        assert_eq!(ids, ["esim-access:JP_1G"]);
        assert_eq!(routing, RoutingRules::default());
        assert_eq!(routing.failover_order(&original, &candidates).len(), 1);
    }

    #[tokio::test]
    async fn countries_sum_plan_counts_across_providers() {
        let fixture = Fixture::new(30);
        let service = fixture.service();

        let listing = service.countries().await.expect("listed");

        let counts: Vec<_> = listing
            .countries
            .iter()
            .map(|c| (c.code.as_str().to_owned(), c.plan_count))
            .collect();
        assert_eq!(
            counts,
            [
                ("FR".to_owned(), 1),
                ("JP".to_owned(), 3),
                ("KR".to_owned(), 1)
            ]
        );
    }

    #[test]
    fn a_retail_plan_carries_no_wholesale_cost() {
        let plan = plan("airalo", "jp-1gb", &["JP"], 1024, 451);

        let text = serde_json::to_string(&RetailPlan::new(&plan, Money::new(599, Currency::USD)))
            .expect("json");

        assert!(!text.contains("wholesale"), "{text}");
        assert!(!text.contains("451"), "{text}");
        assert!(!text.contains("provider_plan_code"), "{text}");
    }
}
