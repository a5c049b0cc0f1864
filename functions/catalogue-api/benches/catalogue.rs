//! The catalogue's request budget, measured in one run against moto and the provider
//! simulator: DynamoDB calls (counted by an SDK interceptor, by operation) and provider
//! catalogue calls (counted by a wrapper around each adapter) per request, for a warm hit, a
//! read that misses memory on a warm container, a brand-new container and an empty cache;
//! then the handler's CPU time per warm request as a ratio to a hello-world `lambda_http`
//! handler measured the same way (thread CPU time, same runtime, same request shape).
//!
//! Run with a moto server: `MOTO_ENDPOINT=http://127.0.0.1:4571 cargo bench -p catalogue-api
//! --bench catalogue`. Without `--bench` on the command line (as under `cargo test
//! --all-targets`) it only says how to run it.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType,
};
use catalogue_api::CatalogueApi;
use esim_shared::aws::{DynamoTenantStore, Table};
use esim_shared::domain::ids::{Iccid, ProviderId};
use esim_shared::domain::plan::{CountryCode, ProviderPlan};
use esim_shared::http::HttpHandler;
use esim_shared::ports::provider::{
    OrderOutcome, ProfileDetails, ProviderCapabilities, ProviderOrderRequest, TopUpOutcome,
    UsageReport, WebhookError, WebhookEvent, WebhookRequest,
};
use esim_shared::ports::{ProviderApi, ProviderError, SystemClock, UlidGenerator};
use esim_shared::providers::env;
use esim_shared::tenancy::TenantAdmin;
use lambda_http::{Body, Request, Response};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Counts DynamoDB calls by operation, from the `x-amz-target` header of each request sent.
#[derive(Debug, Clone, Default)]
struct DynamoCounter(Arc<Mutex<BTreeMap<String, u64>>>);

impl Intercept for DynamoCounter {
    fn name(&self) -> &'static str {
        "DynamoCounter"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let operation = context
            .request()
            .headers()
            .get("x-amz-target")
            .and_then(|t| t.split('.').nth(1))
            .unwrap_or("unknown")
            .to_owned();
        let mut counts = self.0.lock().unwrap_or_else(|p| p.into_inner());
        *counts.entry(operation).or_default() += 1;
        Ok(())
    }
}

impl DynamoCounter {
    fn take(&self) -> BTreeMap<String, u64> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// Counts catalogue calls through a provider adapter.
#[derive(Debug)]
struct CountingProvider {
    inner: Arc<dyn ProviderApi>,
    list_calls: Arc<AtomicU64>,
}

#[async_trait]
impl ProviderApi for CountingProvider {
    fn id(&self) -> &ProviderId {
        self.inner.id()
    }
    fn capabilities(&self) -> ProviderCapabilities {
        self.inner.capabilities()
    }
    async fn list_plans(
        &self,
        country: Option<&CountryCode>,
    ) -> Result<Vec<ProviderPlan>, ProviderError> {
        self.list_calls.fetch_add(1, Ordering::SeqCst);
        self.inner.list_plans(country).await
    }
    async fn place_order(&self, r: &ProviderOrderRequest) -> Result<OrderOutcome, ProviderError> {
        self.inner.place_order(r).await
    }
    async fn find_order(&self, r: &str) -> Result<Option<OrderOutcome>, ProviderError> {
        self.inner.find_order(r).await
    }
    async fn profile(&self, iccid: &Iccid) -> Result<ProfileDetails, ProviderError> {
        self.inner.profile(iccid).await
    }
    async fn usage(&self, iccid: &Iccid) -> Result<UsageReport, ProviderError> {
        self.inner.usage(iccid).await
    }
    async fn top_up(&self, i: &Iccid, p: &str, r: &str) -> Result<TopUpOutcome, ProviderError> {
        self.inner.top_up(i, p, r).await
    }
    async fn cancel(&self, iccid: &Iccid) -> Result<(), ProviderError> {
        self.inner.cancel(iccid).await
    }
    fn verify_webhook(&self, request: WebhookRequest<'_>) -> Result<WebhookEvent, WebhookError> {
        self.inner.verify_webhook(request)
    }
}

/// This thread's CPU time so far, from the scheduler's own accounting.
fn thread_cpu() -> std::time::Duration {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
    let nanos = text
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    std::time::Duration::from_nanos(nanos)
}

fn request(key: &str, path: &str) -> Request {
    lambda_http::http::Request::builder()
        .method("GET")
        .uri(path)
        .header("authorization", format!("Bearer {key}"))
        .body(Body::Empty)
        .unwrap_or_default()
}

async fn hello(_request: Request) -> Response<Body> {
    let mut response = Response::new(Body::Text(r#"{"message":"hello"}"#.to_owned()));
    response.headers_mut().insert(
        lambda_http::http::header::CONTENT_TYPE,
        lambda_http::http::HeaderValue::from_static("application/json"),
    );
    response
}

async fn create_table(dynamodb: &aws_sdk_dynamodb::Client, name: &str) -> Result<(), BoxError> {
    let key = |name: &str, kind| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build()
    };
    let attribute = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
    };
    let index = GlobalSecondaryIndex::builder()
        .index_name("gsi1")
        .key_schema(key("gsi1pk", KeyType::Hash)?)
        .key_schema(key("gsi1sk", KeyType::Range)?)
        .projection(
            Projection::builder()
                .projection_type(ProjectionType::All)
                .build(),
        )
        .build()?;
    dynamodb
        .create_table()
        .table_name(name)
        .billing_mode(aws_sdk_dynamodb::types::BillingMode::PayPerRequest)
        .key_schema(key("pk", KeyType::Hash)?)
        .key_schema(key("sk", KeyType::Range)?)
        .attribute_definitions(attribute("pk")?)
        .attribute_definitions(attribute("sk")?)
        .attribute_definitions(attribute("gsi1pk")?)
        .attribute_definitions(attribute("gsi1sk")?)
        .global_secondary_indexes(index)
        .send()
        .await?;
    Ok(())
}

struct Bench {
    dynamodb: aws_sdk_dynamodb::Client,
    counter: DynamoCounter,
    adapters: Vec<Arc<dyn ProviderApi>>,
    provider_calls: Arc<AtomicU64>,
    env: HashMap<String, String>,
}

impl Bench {
    fn container(&self) -> Result<CatalogueApi, BoxError> {
        let providers = self
            .adapters
            .iter()
            .map(|inner| {
                Arc::new(CountingProvider {
                    inner: inner.clone(),
                    list_calls: self.provider_calls.clone(),
                }) as Arc<dyn ProviderApi>
            })
            .collect();
        Ok(CatalogueApi::with_clients(
            self.dynamodb.clone(),
            providers,
            &self.env,
        )?)
    }

    async fn measure(&self, label: &str, api: &CatalogueApi, key: &str, path: &str) -> u16 {
        self.counter.take();
        let before = self.provider_calls.load(Ordering::SeqCst);
        let response = api.handle(request(key, path)).await;
        let calls = self.counter.take();
        let provider = self.provider_calls.load(Ordering::SeqCst) - before;
        let total: u64 = calls.values().sum();
        let detail: Vec<String> = calls.iter().map(|(op, n)| format!("{op} {n}")).collect();
        println!(
            "{label:<58} status {}  DynamoDB calls {total:>2} ({})  provider calls {provider}",
            response.status().as_u16(),
            if detail.is_empty() {
                "none".to_owned()
            } else {
                detail.join(", ")
            }
        );
        response.status().as_u16()
    }
}

async fn run(moto: &str) -> Result<(), BoxError> {
    let aws = esim_shared::aws::local_config(moto).await;
    let counter = DynamoCounter::default();
    let dynamodb = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&aws)
            .interceptor(counter.clone())
            .build(),
    );
    let table_name = format!("bench-{}", ulid::Ulid::new().to_string().to_lowercase());
    create_table(&dynamodb, &table_name).await?;
    let sim = provider_sim::spawn(provider_sim::SimConfig::default()).await?;
    let config = sim.config();
    let mut vars: HashMap<String, String> = [
        (env::AIRALO_BASE_URL, sim.airalo_url()),
        (env::AIRALO_CLIENT_ID, config.airalo.client_id.clone()),
        (
            env::AIRALO_CLIENT_SECRET,
            config.airalo.client_secret.clone(),
        ),
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
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    vars.insert("TABLE_NAME".to_owned(), table_name.clone());
    vars.insert("EVENT_BUS_NAME".to_owned(), "bench".to_owned());
    let bench = Bench {
        dynamodb: dynamodb.clone(),
        counter,
        adapters: esim_shared::providers::from_env(&vars)?,
        provider_calls: Arc::new(AtomicU64::new(0)),
        env: vars,
    };
    let admin = TenantAdmin::new(
        Arc::new(DynamoTenantStore::new(Table::new(dynamodb, table_name))),
        Arc::new(SystemClock),
        Arc::new(UlidGenerator::default()),
    );
    let (_, key) = admin.create_tenant("Bench Travel").await?;
    let key = key.plaintext;

    println!("Calls per request (GET /v1/plans?country=..):");
    let first = bench.container()?;
    bench
        .measure(
            "empty cache: first request for JP ever",
            &first,
            &key,
            "/v1/plans?country=JP",
        )
        .await;
    bench
        .measure(
            "warm hit: JP again on the same container",
            &first,
            &key,
            "/v1/plans?country=JP",
        )
        .await;
    bench
        .measure(
            "empty cache: first request for KR ever",
            &first,
            &key,
            "/v1/plans?country=KR",
        )
        .await;
    let second = bench.container()?;
    bench
        .measure(
            "brand-new container, JP cached in DynamoDB",
            &second,
            &key,
            "/v1/plans?country=JP",
        )
        .await;
    bench
        .measure(
            "warm container, KR not in memory but cached in DynamoDB",
            &second,
            &key,
            "/v1/plans?country=KR",
        )
        .await;
    bench
        .measure("warm hit: KR again", &second, &key, "/v1/plans?country=KR")
        .await;

    const ROUNDS: u32 = 3000;
    let path = "/v1/plans?country=JP";
    for _ in 0..200 {
        second.handle(request(&key, path)).await;
        hello(request(&key, path)).await;
    }
    let start = thread_cpu();
    for _ in 0..ROUNDS {
        std::hint::black_box(second.handle(request(&key, path)).await);
    }
    let catalogue = (thread_cpu() - start) / ROUNDS;
    let start = thread_cpu();
    for _ in 0..ROUNDS {
        std::hint::black_box(hello(request(&key, path)).await);
    }
    let baseline = (thread_cpu() - start) / ROUNDS;
    let leaked = bench.counter.take();
    println!(
        "CPU per warm request over {ROUNDS} requests: catalogue handler {:.1} us, hello-world \
         lambda_http handler {:.1} us, ratio {:.1}x (DynamoDB calls during the loop: {})",
        catalogue.as_secs_f64() * 1e6,
        baseline.as_secs_f64() * 1e6,
        catalogue.as_secs_f64() / baseline.as_secs_f64().max(1e-9),
        leaked.values().sum::<u64>()
    );
    sim.shutdown().await;
    Ok(())
}

fn main() -> std::process::ExitCode {
    if !std::env::args().any(|a| a == "--bench") {
        println!("catalogue bench: run it with `cargo bench -p catalogue-api --bench catalogue`");
        return std::process::ExitCode::SUCCESS;
    }
    let Some(moto) = std::env::var("MOTO_ENDPOINT")
        .ok()
        .filter(|m| !m.is_empty())
    else {
        eprintln!("catalogue bench: set MOTO_ENDPOINT to a running moto server");
        return std::process::ExitCode::FAILURE;
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("catalogue bench: no runtime: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(&moto)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("catalogue bench failed: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}
