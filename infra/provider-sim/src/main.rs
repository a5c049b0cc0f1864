//! Runs the provider simulator standalone on 127.0.0.1:4010 (or `--port` / `SIM_PORT`) until
//! Ctrl-C.

use std::process::ExitCode;

use clap::Parser;
use provider_sim::{SimConfig, spawn};
use tracing_subscriber::EnvFilter;

/// Provider simulator: Airalo and eSIM Access API shapes on loopback.
#[derive(Debug, Parser)]
struct Args {
    /// Port on 127.0.0.1 (0 picks a free one).
    #[arg(long, env = "SIM_PORT", default_value_t = 4010)]
    port: u16,
    /// Seed of the catalogue and of every random decision.
    #[arg(long, env = "SIM_SEED", default_value_t = 42)]
    seed: u64,
    /// Simulated seconds per real second.
    #[arg(long, env = "SIM_TIME_SCALE", default_value_t = 1.0)]
    time_scale: f64,
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    let args = Args::parse();
    let config = SimConfig::default()
        .with_port(args.port)
        .with_seed(args.seed)
        .with_time_scale(args.time_scale);

    let handle = match spawn(config).await {
        Ok(handle) => handle,
        Err(error) => {
            tracing::error!(
                error = %error,
                source = ?std::error::Error::source(&error),
                "provider simulator failed to start"
            );
            return ExitCode::FAILURE;
        }
    };
    println!("provider simulator listening on {}", handle.base_url());
    if let Err(error) = tokio::signal::ctrl_c().await {
        tracing::error!(%error, "failed to wait for Ctrl-C");
    }
    handle.shutdown().await;
    ExitCode::SUCCESS
}
