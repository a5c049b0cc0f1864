//! Provider simulator: an HTTP server on loopback that speaks the subset of the Airalo Partner
//! API v2 and eSIM Access API v1 shapes our adapters use, with knobs for latency, injected
//! errors, lost responses, webhook duplication and reordering, and lifecycle timing.
//!
//! # Layout
//!
//! - [`airalo`]: `/airalo/v2/...` (bearer token, form or JSON bodies, `{"code", "reason"}` errors).
//! - [`esim_access`]: `/esimaccess/api/v1/open/...` (signed JSON POSTs, `errorCode` envelope).
//! - [`control`]: `/_sim/...` (state, knobs, clock, reset, test shortcuts).
//! - [`catalogue`]: the seeded plan catalogue both providers sell from.
//! - [`state`], [`lifecycle`], [`webhooks`]: what happened, what happens next, who is told.
//! - [`knobs`], [`signing`], [`clock`], [`wire`]: behaviour switches, HMACs, simulated time,
//!   wire formats.
//!
//! Integration tests start it in-process with [`spawn`] on a free port and point the adapters
//! at [`SimHandle::airalo_url`] and [`SimHandle::esim_access_url`]; `main.rs` runs it standalone.

// Handlers return a ready `Response` as their early-exit error; boxing it would only add an
// allocation to every rejected request of a test server.
#![allow(clippy::result_large_err)]

pub mod airalo;
pub mod catalogue;
pub mod clock;
pub mod config;
pub mod control;
pub mod esim_access;
pub mod knobs;
pub mod lifecycle;
pub mod signing;
pub mod state;
pub mod webhooks;
pub mod wire;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use config::{AiraloCredentials, EsimAccessCredentials, SimConfig};
pub use knobs::{ErrorKind, KnobError, Knobs, LoseMode, OrderMode};
pub use state::{Provider, ProviderSnapshot, StateSnapshot};

/// Time allowed for in-flight requests to finish when the simulator shuts down.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// Why the simulator could not start.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("failed to bind 127.0.0.1:{port}; choose another port with --port or SIM_PORT")]
    Bind {
        port: u16,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to read the bound address")]
    LocalAddr(#[source] std::io::Error),
    #[error("failed to build the webhook HTTP client")]
    HttpClient(#[source] reqwest::Error),
}

/// The full router: provider shapes and the control API.
pub fn router(sim: Arc<Sim>) -> Router {
    Router::new()
        .nest("/airalo", airalo::router())
        .nest("/esimaccess", esim_access::router())
        .nest("/_sim", control::router())
        .with_state(sim)
}

pub use state::Sim;

/// Starts the simulator on 127.0.0.1 (on `config.port`, or a free port when it is 0) with its
/// lifecycle and webhook tasks, and returns a handle that knows the base URL and stops it.
pub async fn spawn(config: SimConfig) -> Result<SimHandle, SimError> {
    let port = config.port;
    let listener = TcpListener::bind(("127.0.0.1", port))
        .await
        .map_err(|source| SimError::Bind { port, source })?;
    let addr = listener.local_addr().map_err(SimError::LocalAddr)?;
    let base_url = format!("http://{addr}");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .map_err(SimError::HttpClient)?;
    let sim = Arc::new(Sim::new(config, base_url.clone()));

    let (stop, stopped) = oneshot::channel::<()>();
    let app = router(sim.clone());
    let server = tokio::spawn(async move {
        let shutdown = async {
            let _ = stopped.await;
        };
        if let Err(error) = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::error!(%error, "provider simulator server failed");
        }
    });
    let background = vec![
        tokio::spawn(lifecycle::run(sim.clone())),
        tokio::spawn(webhooks::run(sim.clone(), client)),
    ];
    tracing::info!(%base_url, "provider simulator listening");
    Ok(SimHandle {
        addr,
        base_url,
        sim,
        stop: Some(stop),
        server: Some(server),
        background,
    })
}

/// A running simulator. Dropping it stops the server and its background tasks.
#[derive(Debug)]
pub struct SimHandle {
    addr: SocketAddr,
    base_url: String,
    sim: Arc<Sim>,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<()>>,
    background: Vec<JoinHandle<()>>,
}

impl SimHandle {
    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Base URL of the Airalo shape (append `/v2/...`).
    pub fn airalo_url(&self) -> String {
        format!("{}/airalo", self.base_url)
    }

    /// Base URL of the eSIM Access shape (append `/api/v1/open/...`).
    pub fn esim_access_url(&self) -> String {
        format!("{}/esimaccess", self.base_url)
    }

    /// The configuration it runs with (credentials included).
    pub fn config(&self) -> &SimConfig {
        &self.sim.config
    }

    /// Direct access to the simulator, for tests that steer it without HTTP.
    pub fn sim(&self) -> &Arc<Sim> {
        &self.sim
    }

    /// Applies a partial knob update, as `POST /_sim/knobs/{provider}` does.
    pub fn set_knobs(
        &self,
        provider: Provider,
        patch: &serde_json::Value,
    ) -> Result<Knobs, KnobError> {
        self.sim.set_knobs(provider, patch)
    }

    /// A copy of everything, as `GET /_sim/state` serves it.
    pub fn snapshot(&self) -> StateSnapshot {
        self.sim.lock().snapshot()
    }

    /// A copy of one provider's state.
    pub fn provider_snapshot(&self, provider: Provider) -> ProviderSnapshot {
        self.sim.lock().provider(provider).snapshot()
    }

    /// Moves simulated time forward and runs the lifecycle once, so that due steps happen now.
    pub fn advance(&self, seconds: f64) {
        let mut state = self.sim.lock();
        state.clock.advance(seconds);
        lifecycle::tick(&mut state, &self.base_url);
    }

    /// Forgets all orders, profiles and knobs, as `POST /_sim/reset` does.
    pub fn reset(&self, seed: Option<u64>) {
        self.sim.reset(seed, None);
    }

    /// Stops accepting requests, lets in-flight ones finish (for at most two seconds) and stops
    /// the background tasks.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(mut server) = self.server.take()
            && tokio::time::timeout(SHUTDOWN_GRACE, &mut server)
                .await
                .is_err()
        {
            server.abort();
        }
        for task in self.background.drain(..) {
            task.abort();
        }
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            server.abort();
        }
        for task in self.background.drain(..) {
            task.abort();
        }
    }
}
