//! `local-stack`: runs the whole system on loopback until Ctrl-C.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use local_stack::{LocalStack, StackOptions, repository_root};

#[derive(Debug, Parser)]
#[command(
    name = "local-stack",
    about = "Run the eSIM backend locally against a moto server"
)]
struct Args {
    /// The moto server (DynamoDB, SQS, EventBridge).
    #[arg(long, env = "MOTO_ENDPOINT", default_value = "http://127.0.0.1:4566")]
    moto_endpoint: String,
    /// The port every HTTP route is served on.
    #[arg(long, env = "HTTP_PORT", default_value_t = 3000)]
    http_port: u16,
    /// The port of the provider simulator.
    #[arg(long, env = "SIM_PORT", default_value_t = 4010)]
    sim_port: u16,
    /// Simulated seconds per real second in the provider simulator.
    #[arg(long, env = "SIM_TIME_SCALE", default_value_t = 1.0)]
    sim_time_scale: f64,
    /// The name resources are created under.
    #[arg(long, env = "STACK_NAME", default_value = "esim-local")]
    stack_name: String,
    /// Fire every schedule this often instead of the template's rate.
    #[arg(long, env = "SCHEDULE_SECONDS", default_value_t = 60)]
    schedule_seconds: u64,
    /// Seconds before a failed queue message is delivered again.
    #[arg(long, env = "RETRY_SECONDS", default_value_t = 5)]
    retry_seconds: u64,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let args = Args::parse();
    let aws = esim_shared::aws::local_config(&args.moto_endpoint).await;
    let mut options = StackOptions::new(repository_root(), &args.stack_name);
    options.http_address = SocketAddr::from(([127, 0, 0, 1], args.http_port));
    options.schedule_every = Some(Duration::from_secs(args.schedule_seconds.max(1)));
    options.retry_after = Some(Duration::from_secs(args.retry_seconds));
    options.simulator = Some(
        provider_sim::SimConfig::default()
            .with_port(args.sim_port)
            .with_time_scale(args.sim_time_scale),
    );
    let stack = LocalStack::start(&aws, options).await?;

    println!("eSIM backend running at {}", stack.base_url);
    println!(
        "  table {}, bus {}",
        stack.resources.table_name, stack.resources.bus_name
    );
    for (id, queue) in &stack.resources.queues {
        println!("  queue {id}: {}", queue.url);
    }
    if let Some(sim) = &stack.simulator {
        println!(
            "  provider simulator {} (Airalo {}, eSIM Access {}, control {}/_sim)",
            sim.base_url(),
            sim.airalo_url(),
            sim.esim_access_url(),
            sim.base_url()
        );
    }
    let env_file = repository_root().join(".local/local-stack.env");
    write_env_file(&env_file, &stack, &args.moto_endpoint)?;
    println!("  settings for esimctl: {}", env_file.display());
    println!("Create a tenant:  make esimctl ARGS='tenant create \"Acme Travel\"'");
    println!(
        "Then:             curl -H \"Authorization: Bearer <key>\" {}/v1/tenant",
        stack.base_url
    );
    println!("Ctrl-C stops everything.");

    tokio::signal::ctrl_c().await?;
    drop(stack);
    Ok(())
}

/// Writes what `make esimctl` needs to reach this stack: the table, the endpoint and the
/// provider settings the functions were given, one `NAME=value` a line.
fn write_env_file(
    path: &std::path::Path,
    stack: &LocalStack,
    moto_endpoint: &str,
) -> std::io::Result<()> {
    let mut lines = vec![
        format!("TABLE_NAME={}", stack.resources.table_name),
        format!("AWS_ENDPOINT_URL={moto_endpoint}"),
    ];
    if let Some(sim) = &stack.simulator {
        let mut provider_env: Vec<_> = local_stack::simulator_environment(sim)
            .into_iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect();
        provider_env.sort();
        lines.extend(provider_env);
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(path, lines.join("\n") + "\n")
}
