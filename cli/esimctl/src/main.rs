//! `esimctl`: the operator's command line. Creates tenants, issues, lists and revokes their
//! API keys, manages each tenant's retail pricing and provider routing rules, marks catalogue
//! entries stale, against the same table the functions use, and checks the configured
//! providers.
//!
//! AWS settings come from the usual AWS environment (profile, region, credentials);
//! `--endpoint-url` (or `AWS_ENDPOINT_URL`) points it at the local stack.

use std::collections::BTreeSet;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};
use esim_shared::aws::{DynamoCatalogueStore, DynamoTenantStore, DynamoUsageStore, Table};
use esim_shared::catalogue::{CatalogueStore, Invalidation, PricePoint, PriceRule, PricingRules};
use esim_shared::config::ProcessEnv;
use esim_shared::domain::ids::{ApiKeyId, PlanId, ProviderId, TenantId};
use esim_shared::domain::plan::CountryCode;
use esim_shared::domain::routing::RoutingRules;
use esim_shared::ports::usage::UsageStore;
use esim_shared::ports::{StoreError, SystemClock, TenantStore, UlidGenerator};
use esim_shared::tenancy::TenantAdmin;
use esim_shared::usage::AlertSettings;

#[derive(Debug, Parser)]
#[command(
    name = "esimctl",
    about = "Administer an eSIM backend deployment",
    version
)]
struct Cli {
    /// The DynamoDB table of the deployment (the stack's TableName output).
    #[arg(long, env = "TABLE_NAME", global = true, default_value = "")]
    table: String,

    /// Talk to this endpoint instead of AWS, for example the local stack's moto server.
    #[arg(long, env = "AWS_ENDPOINT_URL", global = true)]
    endpoint_url: Option<String>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Tenants: the platforms using this deployment.
    Tenant {
        #[command(subcommand)]
        action: TenantAction,
    },
    /// API keys of a tenant.
    Key {
        #[command(subcommand)]
        action: KeyAction,
    },
    /// The providers configured in the environment (AIRALO_*, ESIM_ACCESS_*), as the
    /// functions see them.
    Providers {
        #[command(subcommand)]
        action: ProvidersAction,
    },
    /// A tenant's retail pricing: a default rule and overrides per country or plan.
    Pricing {
        #[command(subcommand)]
        action: PricingAction,
    },
    /// A tenant's provider routing and failover rules.
    Routing {
        #[command(subcommand)]
        action: RoutingAction,
    },
    /// A tenant's low-balance and expiry alert thresholds.
    Alerts {
        #[command(subcommand)]
        action: AlertsAction,
    },
    /// The cached catalogue.
    Catalogue {
        #[command(subcommand)]
        action: CatalogueAction,
    },
}

#[derive(Debug, Subcommand)]
enum PricingAction {
    /// Prints a tenant's pricing rules as JSON (the defaults when none were set).
    Show {
        /// The tenant id (ten_...).
        #[arg(long)]
        tenant: String,
    },
    /// Sets the default rule, or with --country or --plan an override, to the given values;
    /// values not given take the rule's defaults (no margin, no fixed amount, no price
    /// point), so a rule is always exactly what the command line says.
    Set {
        /// The tenant id (ten_...).
        #[arg(long)]
        tenant: String,
        #[command(flatten)]
        target: PricingTarget,
        /// Margin on the wholesale price in basis points (2500 = 25%).
        #[arg(long, default_value_t = 0)]
        margin_bp: u32,
        /// Fixed amount added after the margin, in minor units (cents).
        #[arg(long, default_value_t = 0)]
        fixed_minor: i64,
        /// Round up to a price point, as STEP:ENDING in minor units (100:99 gives x.99).
        #[arg(long, value_parser = parse_price_point)]
        price_point: Option<PricePoint>,
        /// A set retail price in minor units instead of the computation.
        #[arg(long)]
        price_minor: Option<i64>,
    },
    /// Removes a country or plan override.
    Clear {
        /// The tenant id (ten_...).
        #[arg(long)]
        tenant: String,
        #[command(flatten)]
        target: PricingTarget,
    },
}

#[derive(Debug, Args)]
#[group(multiple = false)]
struct PricingTarget {
    /// Override for single-country plans of this country (ISO 3166-1 alpha-2).
    #[arg(long)]
    country: Option<String>,
    /// Override for this plan id (for example airalo:tokyo-7days-1gb).
    #[arg(long)]
    plan: Option<String>,
}

#[derive(Debug, Subcommand)]
enum AlertsAction {
    /// Prints a tenant's alert thresholds as JSON (the defaults when none were set).
    Show {
        /// The tenant id (ten_...).
        #[arg(long)]
        tenant: String,
    },
    /// Changes the given thresholds of a tenant, keeping the others.
    Set {
        /// The tenant id (ten_...).
        #[arg(long)]
        tenant: String,
        /// Remaining-data percentages that alert, comma-separated (1 to 99), e.g. 20,10.
        #[arg(long, value_delimiter = ',')]
        percent: Option<Vec<u8>>,
        /// Days before the plan ends that alert, comma-separated (1 to 365), e.g. 3,1.
        #[arg(long, value_delimiter = ',')]
        days: Option<Vec<u32>>,
    },
}

#[derive(Debug, Subcommand)]
enum RoutingAction {
    /// Prints a tenant's routing rules as JSON (the defaults when none were set).
    Show {
        /// The tenant id (ten_...).
        #[arg(long)]
        tenant: String,
    },
    /// Changes the given settings of a tenant's routing rules, keeping the others.
    Set {
        /// The tenant id (ten_...).
        #[arg(long)]
        tenant: String,
        /// Providers in order of preference for failover, comma-separated.
        #[arg(long, value_delimiter = ',')]
        prefer: Option<Vec<String>>,
        /// Providers never used for this tenant, comma-separated (empty for none).
        #[arg(long, value_delimiter = ',')]
        exclude: Option<Vec<String>>,
        /// How much more a failover plan may cost wholesale, in basis points.
        #[arg(long)]
        cost_tolerance_bp: Option<u32>,
        /// Whether orders fail over to another provider at all.
        #[arg(long)]
        failover: Option<bool>,
    },
}

#[derive(Debug, Subcommand)]
enum CatalogueAction {
    /// Marks a provider's or a country's cached entries stale: their next read fetches them
    /// again. Warm containers notice within CATALOGUE_MEMORY_TTL_SECONDS.
    Invalidate {
        /// Every entry of this provider (airalo, esim-access).
        #[arg(long, required_unless_present = "country")]
        provider: Option<String>,
        /// Every provider's entry for this country (ISO 3166-1 alpha-2).
        #[arg(long)]
        country: Option<String>,
    },
}

fn parse_price_point(text: &str) -> Result<PricePoint, String> {
    let (step, ending) = text
        .split_once(':')
        .ok_or_else(|| format!("expected STEP:ENDING such as 100:99, got {text:?}"))?;
    let point = PricePoint {
        step_minor: step
            .trim()
            .parse()
            .map_err(|_| format!("bad step {step:?}"))?,
        ending_minor: ending
            .trim()
            .parse()
            .map_err(|_| format!("bad ending {ending:?}"))?,
    };
    if point.step_minor <= 0 || !(0..point.step_minor).contains(&point.ending_minor) {
        return Err(format!(
            "the ending must be at least 0 and below the step, got {text:?}"
        ));
    }
    Ok(point)
}

#[derive(Debug, Subcommand)]
enum ProvidersAction {
    /// Fetches each provider's catalogue and prints how many plans and countries it sells.
    Plans {
        /// Only plans covering this country (ISO 3166-1 alpha-2, such as JP).
        #[arg(long)]
        country: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum TenantAction {
    /// Creates a tenant and its first API key; the key is the last line printed.
    Create {
        /// A display name.
        name: String,
    },
    /// Lists tenants.
    List,
}

#[derive(Debug, Subcommand)]
enum KeyAction {
    /// Issues another key for a tenant; the key is the last line printed.
    Create {
        /// The tenant id (ten_...).
        #[arg(long)]
        tenant: String,
    },
    /// Lists a tenant's keys (ids and status; keys themselves are never stored).
    List {
        /// The tenant id (ten_...).
        #[arg(long)]
        tenant: String,
    },
    /// Revokes a key; requests with it get 401 from then on.
    Revoke {
        /// The tenant id (ten_...).
        #[arg(long)]
        tenant: String,
        /// The key id (key_...).
        key_id: String,
    },
}

#[derive(Debug, thiserror::Error)]
enum CliError {
    #[error("no table given: pass --table or set TABLE_NAME to the stack's TableName output")]
    NoTable,
    #[error("{0}")]
    BadId(#[from] esim_shared::domain::ids::InvalidId),
    #[error("{0}")]
    Domain(#[from] esim_shared::domain::DomainError),
    #[error("{0}")]
    Config(#[from] esim_shared::config::ConfigError),
    #[error("{0}")]
    Country(#[from] esim_shared::domain::plan::InvalidCountry),
    #[error(
        "no provider is configured: set AIRALO_BASE_URL or ESIM_ACCESS_BASE_URL and their \
         credentials (make esimctl reads them from the running local stack)"
    )]
    NoProviders,
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    BadThreshold(String),
    #[error("no tenant {0}: esimctl tenant list shows the tenants")]
    NoTenant(TenantId),
    #[error("provider {provider} failed to list plans: {source}")]
    Provider {
        provider: String,
        #[source]
        source: esim_shared::ports::ProviderError,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter("warn")
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("esimctl: {error}");
            if let CliError::Domain(domain) = &error {
                let mut source = std::error::Error::source(domain);
                while let Some(cause) = source {
                    eprintln!("  caused by: {cause}");
                    source = cause.source();
                }
            }
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<(), CliError> {
    if let Command::Providers {
        action: ProvidersAction::Plans { country },
    } = &cli.command
    {
        return provider_plans(country.as_deref()).await;
    }
    if cli.table.is_empty() {
        return Err(CliError::NoTable);
    }
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    if let Some(endpoint) = &cli.endpoint_url {
        loader = loader.endpoint_url(endpoint);
    }
    let aws = loader.load().await;
    let table = Table::new(aws_sdk_dynamodb::Client::new(&aws), cli.table.clone());
    let tenants = Arc::new(DynamoTenantStore::new(table.clone()));
    let usage = DynamoUsageStore::new(table.clone());
    let catalogue = DynamoCatalogueStore::new(table);
    let admin = TenantAdmin::new(
        tenants.clone(),
        Arc::new(SystemClock),
        Arc::new(UlidGenerator::default()),
    );

    match cli.command {
        Command::Tenant {
            action: TenantAction::Create { name },
        } => {
            let (tenant, key) = admin.create_tenant(&name).await?;
            println!("tenant {} created ({})", tenant.tenant_id, tenant.name);
            println!("key {} issued; it is shown only once:", key.key_id);
            println!("{}", key.plaintext);
        }
        Command::Tenant {
            action: TenantAction::List,
        } => {
            for tenant in admin.list_tenants().await? {
                println!(
                    "{}\t{}\t{}",
                    tenant.tenant_id, tenant.created_at, tenant.name
                );
            }
        }
        Command::Key {
            action: KeyAction::Create { tenant },
        } => {
            let key = admin.create_key(&TenantId::parse(tenant)?).await?;
            println!("key {} issued; it is shown only once:", key.key_id);
            println!("{}", key.plaintext);
        }
        Command::Key {
            action: KeyAction::List { tenant },
        } => {
            for key in admin.list_keys(&TenantId::parse(tenant)?).await? {
                let status = format!("{:?}", key.status).to_lowercase();
                println!("{}\t{}\t{}", key.key_id, status, key.created_at);
            }
        }
        Command::Key {
            action: KeyAction::Revoke { tenant, key_id },
        } => {
            let tenant = TenantId::parse(tenant)?;
            let key_id = ApiKeyId::parse(key_id)?;
            admin.revoke_key(&tenant, &key_id).await?;
            println!("key {key_id} revoked");
        }
        Command::Pricing { action } => pricing(&catalogue, tenants.as_ref(), action).await?,
        Command::Routing { action } => routing(&catalogue, tenants.as_ref(), action).await?,
        Command::Alerts { action } => alerts(&usage, tenants.as_ref(), action).await?,
        Command::Catalogue {
            action: CatalogueAction::Invalidate { provider, country },
        } => {
            let mut targets = Vec::new();
            if let Some(provider) = provider {
                targets.push(Invalidation::Provider(ProviderId::parse(provider)?));
            }
            if let Some(country) = country {
                targets.push(Invalidation::Country(CountryCode::parse(&country)?));
            }
            for target in &targets {
                let marked = catalogue.mark_stale(target).await?;
                println!("{target}: {marked} catalogue entries marked stale");
            }
        }
        Command::Providers { .. } => {}
    }
    Ok(())
}

async fn existing_tenant(tenants: &dyn TenantStore, tenant: String) -> Result<TenantId, CliError> {
    let tenant_id = TenantId::parse(tenant)?;
    match tenants.get_tenant(&tenant_id).await? {
        Some(_) => Ok(tenant_id),
        None => Err(CliError::NoTenant(tenant_id)),
    }
}

fn print_json(value: &impl serde::Serialize) {
    match serde_json::to_string_pretty(value) {
        Ok(text) => println!("{text}"),
        Err(error) => eprintln!("esimctl: cannot print the rules: {error}"),
    }
}

async fn pricing(
    catalogue: &DynamoCatalogueStore,
    tenants: &dyn TenantStore,
    action: PricingAction,
) -> Result<(), CliError> {
    match action {
        PricingAction::Show { tenant } => {
            let tenant_id = existing_tenant(tenants, tenant).await?;
            let rules = catalogue.pricing(&tenant_id).await?;
            if rules.is_none() {
                eprintln!("no pricing rules set: the defaults apply");
            }
            print_json(&rules.unwrap_or_default());
        }
        PricingAction::Set {
            tenant,
            target,
            margin_bp,
            fixed_minor,
            price_point,
            price_minor,
        } => {
            let tenant_id = existing_tenant(tenants, tenant).await?;
            let mut rules = catalogue.pricing(&tenant_id).await?.unwrap_or_default();
            let rule = PriceRule {
                margin_bp,
                fixed_minor,
                price_point,
                price_minor,
            };
            match (target.country, target.plan) {
                (Some(country), _) => {
                    rules.countries.insert(CountryCode::parse(&country)?, rule);
                }
                (_, Some(plan)) => {
                    rules.plans.insert(PlanId::parse(plan)?, rule);
                }
                (None, None) => rules.default = rule,
            }
            catalogue.save_pricing(&tenant_id, &rules).await?;
            print_json(&rules);
        }
        PricingAction::Clear { tenant, target } => {
            let tenant_id = existing_tenant(tenants, tenant).await?;
            let mut rules: PricingRules = catalogue.pricing(&tenant_id).await?.unwrap_or_default();
            if let Some(country) = target.country {
                rules.countries.remove(&CountryCode::parse(&country)?);
            }
            if let Some(plan) = target.plan {
                rules.plans.remove(&PlanId::parse(plan)?);
            }
            catalogue.save_pricing(&tenant_id, &rules).await?;
            print_json(&rules);
        }
    }
    Ok(())
}

/// Shows or changes a tenant's alert thresholds; thresholds are kept sorted, highest first.
async fn alerts(
    usage: &DynamoUsageStore,
    tenants: &dyn TenantStore,
    action: AlertsAction,
) -> Result<(), CliError> {
    match action {
        AlertsAction::Show { tenant } => {
            let tenant_id = existing_tenant(tenants, tenant).await?;
            let settings = usage
                .alert_settings(std::slice::from_ref(&tenant_id))
                .await?;
            print_json(&settings.get(&tenant_id).cloned().unwrap_or_default());
        }
        AlertsAction::Set {
            tenant,
            percent,
            days,
        } => {
            let tenant_id = existing_tenant(tenants, tenant).await?;
            let current = usage
                .alert_settings(std::slice::from_ref(&tenant_id))
                .await?;
            let mut settings: AlertSettings = current.get(&tenant_id).cloned().unwrap_or_default();
            if let Some(mut percent) = percent {
                if let Some(bad) = percent.iter().find(|p| !(1..=99).contains(*p)) {
                    return Err(CliError::BadThreshold(format!(
                        "--percent {bad}: a remaining-data threshold is 1 to 99"
                    )));
                }
                percent.sort_unstable_by(|a, b| b.cmp(a));
                percent.dedup();
                settings.low_balance_percent = percent;
            }
            if let Some(mut days) = days {
                if let Some(bad) = days.iter().find(|d| !(1..=365).contains(*d)) {
                    return Err(CliError::BadThreshold(format!(
                        "--days {bad}: an expiry threshold is 1 to 365 days"
                    )));
                }
                days.sort_unstable_by(|a, b| b.cmp(a));
                days.dedup();
                settings.expiry_days = days;
            }
            usage.save_alert_settings(&tenant_id, &settings).await?;
            print_json(&settings);
        }
    }
    Ok(())
}

async fn routing(
    catalogue: &DynamoCatalogueStore,
    tenants: &dyn TenantStore,
    action: RoutingAction,
) -> Result<(), CliError> {
    let providers = |names: Vec<String>| {
        names
            .into_iter()
            .map(|name| name.trim().to_owned())
            .filter(|name| !name.is_empty())
            .map(ProviderId::parse)
            .collect::<Result<Vec<_>, _>>()
    };
    match action {
        RoutingAction::Show { tenant } => {
            let tenant_id = existing_tenant(tenants, tenant).await?;
            let rules = catalogue.routing(&tenant_id).await?;
            if rules.is_none() {
                eprintln!("no routing rules set: the defaults apply");
            }
            print_json(&rules.unwrap_or_default());
        }
        RoutingAction::Set {
            tenant,
            prefer,
            exclude,
            cost_tolerance_bp,
            failover,
        } => {
            let tenant_id = existing_tenant(tenants, tenant).await?;
            let mut rules: RoutingRules = catalogue.routing(&tenant_id).await?.unwrap_or_default();
            if let Some(prefer) = prefer {
                rules.preference = providers(prefer)?;
            }
            if let Some(exclude) = exclude {
                rules.excluded = providers(exclude)?;
            }
            if let Some(tolerance) = cost_tolerance_bp {
                rules.cost_tolerance_bp = tolerance;
            }
            if let Some(failover) = failover {
                rules.failover = failover;
            }
            catalogue.save_routing(&tenant_id, &rules).await?;
            print_json(&rules);
        }
    }
    Ok(())
}

/// One line a provider: plans on sale and the countries they cover, then the totals.
async fn provider_plans(country: Option<&str>) -> Result<(), CliError> {
    let country = country.map(CountryCode::parse).transpose()?;
    let providers = esim_shared::providers::from_env(&ProcessEnv)?;
    if providers.is_empty() {
        return Err(CliError::NoProviders);
    }
    let mut total = 0;
    for provider in &providers {
        let plans = provider
            .list_plans(country.as_ref())
            .await
            .map_err(|source| CliError::Provider {
                provider: provider.id().to_string(),
                source,
            })?;
        let countries: BTreeSet<_> = plans
            .iter()
            .flat_map(|plan| plan.coverage.countries.iter())
            .collect();
        println!(
            "{}\t{} plans\t{} countries",
            provider.id(),
            plans.len(),
            countries.len()
        );
        total += plans.len();
    }
    println!("total\t{total} plans");
    Ok(())
}
