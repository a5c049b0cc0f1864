//! `esimctl`: the operator's command line. Creates tenants, issues, lists and revokes their
//! API keys, against the same table the functions use, and checks the configured providers.
//!
//! AWS settings come from the usual AWS environment (profile, region, credentials);
//! `--endpoint-url` (or `AWS_ENDPOINT_URL`) points it at the local stack.

use std::collections::BTreeSet;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use esim_shared::aws::{DynamoTenantStore, Table};
use esim_shared::config::ProcessEnv;
use esim_shared::domain::ids::{ApiKeyId, TenantId};
use esim_shared::domain::plan::CountryCode;
use esim_shared::ports::{SystemClock, UlidGenerator};
use esim_shared::tenancy::TenantAdmin;

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
    let admin = TenantAdmin::new(
        Arc::new(DynamoTenantStore::new(table)),
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
        Command::Providers { .. } => {}
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
