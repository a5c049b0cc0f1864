//! The local stack: the whole system on loopback, built from `template.yaml`.
//!
//! [`LocalStack::start`] reads the template and its OpenAPI definition, creates the table,
//! queues, bus and rules on a moto server, builds every function in-process from its
//! resolved environment, serves every HTTP route behind one base URL, pumps each SQS event
//! source into its consumer and fires each schedule. With [`StackOptions::simulator`] set it also
//! starts the provider simulator and points every function at it, exactly as a deployment
//! points them at the real provider APIs. `make run` runs it standalone; the integration tests
//! start one per test, each under its own stack name.

pub mod functions;
pub mod provision;
pub mod pump;
pub mod server;
pub mod template;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use aws_config::SdkConfig;
use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use esim_shared::aws::AwsClients;
use esim_shared::http::HttpHandler;
use tokio::task::JoinHandle;

use crate::functions::LocalFunction;
use crate::provision::Resources;
use crate::pump::QueuePump;
use crate::template::{StackSpec, Trigger};

/// Why the stack could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The template could not be read.
    #[error(transparent)]
    Template(#[from] template::TemplateError),
    /// A resource could not be created.
    #[error(transparent)]
    Provision(#[from] provision::ProvisionError),
    /// A function could not be built.
    #[error(transparent)]
    Build(#[from] functions::BuildError),
    /// The provider simulator could not start.
    #[error("failed to start the provider simulator")]
    Simulator(#[from] provider_sim::SimError),
    /// The HTTP port could not be bound.
    #[error("failed to listen on {address}")]
    Bind {
        /// The address.
        address: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// How to start a stack.
#[derive(Debug, Clone)]
pub struct StackOptions {
    /// The repository root, where `template.yaml` is.
    pub root: PathBuf,
    /// The stack name resources are named after.
    pub stack_name: String,
    /// Where to serve HTTP; port 0 picks a free one.
    pub http_address: SocketAddr,
    /// Extra environment for every function (provider endpoints, for example).
    pub extra_environment: HashMap<String, String>,
    /// Whether to run the queue pumps and schedules in the background.
    pub background: bool,
    /// Overrides every schedule's rate, so local runs need not wait minutes.
    pub schedule_every: Option<Duration>,
    /// Failed messages become visible again after this long instead of the queue's timeout.
    pub retry_after: Option<Duration>,
    /// Starts the provider simulator with this configuration and gives every function its
    /// providers' base URLs and credentials; `None` leaves providers unconfigured.
    pub simulator: Option<provider_sim::SimConfig>,
}

impl StackOptions {
    /// Options for the repository at `root`, serving on a free loopback port.
    pub fn new(root: impl Into<PathBuf>, stack_name: impl Into<String>) -> Self {
        Self {
            root: root.into(),
            stack_name: stack_name.into(),
            http_address: SocketAddr::from(([127, 0, 0, 1], 0)),
            extra_environment: HashMap::new(),
            background: true,
            schedule_every: None,
            retry_after: None,
            simulator: None,
        }
    }
}

/// A running stack. Dropping it stops its server, pumps and schedules.
#[derive(Debug)]
pub struct LocalStack {
    /// What the template says.
    pub spec: StackSpec,
    /// What was created.
    pub resources: Resources,
    /// The base URL every route is served under.
    pub base_url: String,
    /// The functions by logical id.
    pub functions: HashMap<String, LocalFunction>,
    /// The queue pumps by queue logical id.
    pub pumps: HashMap<String, QueuePump>,
    /// The provider simulator, when the options asked for one.
    pub simulator: Option<provider_sim::SimHandle>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for LocalStack {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// The repository root, found from this crate's location at build time.
pub fn repository_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

impl LocalStack {
    /// Creates the resources, builds the functions and starts serving.
    pub async fn start(aws: &SdkConfig, options: StackOptions) -> Result<Self, StartError> {
        let spec = StackSpec::load(&options.root)?;
        let clients = AwsClients::new(aws);
        let resources = provision::provision(&clients, &spec, &options.stack_name).await?;
        let simulator = match options.simulator.clone() {
            Some(config) => Some(provider_sim::spawn(config).await?),
            None => None,
        };
        let provider_env = simulator
            .as_ref()
            .map(simulator_environment)
            .unwrap_or_default();
        let mut functions = HashMap::new();
        for function in &spec.functions {
            let mut env = resources.environment(&spec, &function.logical_id);
            env.extend(provider_env.clone());
            env.extend(options.extra_environment.clone());
            let built = functions::build(&function.binary, aws, &env)?;
            functions.insert(function.logical_id.clone(), built);
        }
        let handlers: HashMap<String, Arc<dyn HttpHandler>> = functions
            .iter()
            .filter_map(|(id, f)| match f {
                LocalFunction::Http(handler) => Some((id.clone(), handler.clone())),
                _ => None,
            })
            .collect();
        let listener = tokio::net::TcpListener::bind(options.http_address)
            .await
            .map_err(|source| StartError::Bind {
                address: options.http_address,
                source,
            })?;
        let address = listener.local_addr().map_err(|source| StartError::Bind {
            address: options.http_address,
            source,
        })?;
        let app = server::Router::new(spec.routes.clone(), handlers).into_app();
        let mut tasks = vec![tokio::spawn(async move {
            let service = app.into_make_service_with_connect_info::<SocketAddr>();
            if let Err(error) = axum::serve(listener, service).await {
                tracing::error!(%error, "HTTP server stopped");
            }
        })];
        if let Some(sim) = &simulator {
            register_webhook_urls(sim, &format!("http://{address}"));
        }
        let mut pumps = HashMap::new();
        for function in &spec.functions {
            for trigger in &function.triggers {
                let built = functions.get(&function.logical_id).cloned();
                match (trigger, built) {
                    (Trigger::Sqs { queue, batch_size }, Some(LocalFunction::Sqs(consumer))) => {
                        let Some(local) = resources.queues.get(queue) else {
                            continue;
                        };
                        let pump = QueuePump {
                            sqs: clients.sqs.clone(),
                            queue_url: local.url.clone(),
                            queue_arn: local.arn.clone(),
                            batch_size: *batch_size,
                            consumer,
                            retry_after: options.retry_after,
                        };
                        if options.background {
                            tasks.push(tokio::spawn(pump.clone().run()));
                        }
                        pumps.insert(queue.clone(), pump);
                    }
                    (Trigger::Schedule { every }, Some(LocalFunction::Scheduled(job))) => {
                        let every = options.schedule_every.unwrap_or(*every);
                        if options.background {
                            tasks.push(tokio::spawn(run_schedule(job, every)));
                        }
                    }
                    _ => {}
                }
            }
        }
        Ok(Self {
            spec,
            resources,
            base_url: format!("http://{address}"),
            functions,
            pumps,
            simulator,
            tasks,
        })
    }
}

/// The provider settings a deployment gives its functions, pointing at the simulator: base
/// URLs, the simulator's partner credentials, and webhook secrets.
pub fn simulator_environment(sim: &provider_sim::SimHandle) -> HashMap<String, String> {
    use esim_shared::providers::env;

    let config = sim.config();
    [
        (env::AIRALO_BASE_URL, sim.airalo_url()),
        (env::AIRALO_CLIENT_ID, config.airalo.client_id.clone()),
        (
            env::AIRALO_CLIENT_SECRET,
            config.airalo.client_secret.clone(),
        ),
        // The simulator signs Airalo webhooks with the client secret unless told otherwise.
        (
            env::AIRALO_WEBHOOK_SECRETS,
            config.airalo.client_secret.clone(),
        ),
        (env::ESIM_ACCESS_BASE_URL, sim.esim_access_url()),
        (
            env::ESIM_ACCESS_ACCESS_CODE,
            config.esim_access.access_code.clone(),
        ),
        (
            env::ESIM_ACCESS_SECRET_KEY,
            config.esim_access.secret_key.clone(),
        ),
        (
            env::ESIM_ACCESS_WEBHOOK_SECRETS,
            LOCAL_ESIM_ACCESS_WEBHOOK_SECRET.to_owned(),
        ),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_owned(), value))
    .collect()
}

/// Registers the intake's URLs as the simulated providers' webhook URLs, as a partner
/// registers them with a real provider, so that simulated webhooks reach the webhook intake.
fn register_webhook_urls(sim: &provider_sim::SimHandle, base_url: &str) {
    let targets = [
        (
            provider_sim::Provider::Airalo,
            format!("{base_url}/webhooks/airalo"),
        ),
        (
            provider_sim::Provider::EsimAccess,
            format!("{base_url}/webhooks/esim-access/{LOCAL_ESIM_ACCESS_WEBHOOK_SECRET}"),
        ),
    ];
    for (provider, url) in targets {
        let patch = serde_json::json!({ "webhook_url": url });
        if let Err(error) = sim.set_knobs(provider, &patch) {
            tracing::warn!(%error, "failed to register a webhook URL with the simulator");
        }
    }
}

/// The secret path segment of eSIM Access webhooks on the local stack.
pub const LOCAL_ESIM_ACCESS_WEBHOOK_SECRET: &str = "local-esim-access-webhook-secret";

/// A scheduled event as EventBridge Scheduler delivers it.
pub fn scheduled_event() -> EventBridgeEvent<serde_json::Value> {
    let event = serde_json::json!({
        "version": "0",
        "id": ulid::Ulid::new().to_string(),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "000000000000",
        "time": time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
        "region": "us-east-1",
        "resources": [],
        "detail": {},
    });
    serde_json::from_value(event).unwrap_or_default()
}

async fn run_schedule(job: Arc<dyn esim_shared::runtime::ScheduledJob>, every: Duration) {
    let mut ticker = tokio::time::interval(every);
    ticker.tick().await;
    loop {
        ticker.tick().await;
        match job.run_once(scheduled_event()).await {
            Ok(summary) => tracing::info!(%summary, "scheduled run finished"),
            Err(error) => tracing::error!(%error, "scheduled run failed"),
        }
    }
}
