//! Cost of a usage round: DynamoDB requests per eSIM and per round for 1k, 10k and 100k
//! eSIMs, over the in-memory store that counts requests as DynamoDB bills them (one read per
//! Query page, one write per update). The measured round reaches every eSIM (a whole turn of
//! the wheel came round); a later 5-minute round shows the fixed cost of a tick between
//! turns. `tests/tests/usage.rs` confirms the counts at 1k over the real protocol against moto.
//!
//! Run: `cargo run -p usage-poller --example poll_cost`

use std::sync::Arc;

use esim_shared::domain::ids::{ProviderId, TenantId};
use esim_shared::domain::lifecycle::ProfileState;
use esim_shared::ports::provider::UsageReport;
use esim_shared::ports::usage::StoreCalls as UsageStoreCalls;
use esim_shared::ports::usage::UsageStore;
use esim_shared::testing::{FixedClock, InMemoryOrderStore, InMemoryPublisher};
use esim_shared::usage::memory::{InMemoryUsageStore, ScriptedUsageProvider, sample_esim};
use esim_shared::usage::{PollerSettings, UsagePollService};
use time::Duration;

const TENANTS: u64 = 10;
/// One eSIM in this many reports a changed figure in the measured round.
const CHANGED_ONE_IN: u64 = 3;

fn figure(esim: &esim_shared::domain::esim::Esim, remaining: u64) -> UsageReport {
    UsageReport {
        iccid: esim.iccid.clone(),
        remaining_mb: Some(remaining),
        total_mb: Some(10_000),
        expires_at: Some(esim.created_at + Duration::days(30)),
        measured_at: None,
        state: Some(ProfileState::Activated),
    }
}

async fn measure(count: u64) -> Result<(), Box<dyn std::error::Error>> {
    let clock = Arc::new(FixedClock::default());
    let start = esim_shared::ports::Clock::now(clock.as_ref());
    let provider_id = ProviderId::parse("airalo")?;
    let store = Arc::new(InMemoryUsageStore::default());
    let provider = Arc::new(ScriptedUsageProvider::new(provider_id.clone(), 300));
    let mut esims = Vec::new();
    for n in 0..count {
        let tenant = TenantId::parse(format!("tenant-{}", n % TENANTS))?;
        let esim = sample_esim(&tenant, &provider_id, n, start)?;
        provider.set(figure(&esim, 9_000));
        store.insert(esim.clone());
        esims.push(esim);
    }
    let poller = UsagePollService::new(
        store.clone(),
        Arc::new(InMemoryOrderStore::default()),
        vec![provider.clone()],
        Arc::new(InMemoryPublisher::default()),
        clock.clone(),
        PollerSettings {
            budget: std::time::Duration::from_secs(3600),
            ..PollerSettings::default()
        },
    );
    clock.advance(Duration::minutes(1));
    poller.run_round(None).await?;
    for (n, esim) in esims.iter().enumerate() {
        if (n as u64).is_multiple_of(CHANGED_ONE_IN) {
            provider.set(figure(esim, 8_500));
        }
    }
    clock.advance(Duration::hours(2));
    let before = store.calls();

    let round = poller.run_round(None).await?;

    let after = store.calls();
    let cost = UsageStoreCalls {
        reads: after.reads - before.reads,
        writes: after.writes - before.writes,
    };
    clock.advance(Duration::minutes(5));
    let tick_before = store.calls();
    let tick = poller.run_round(None).await?;
    let tick_reads = store.calls().reads - tick_before.reads;

    let n = count as f64;
    let leases = u64::from(2 * round.shards_polled);
    println!(
        "{count:>7} eSIMs | reads/round {:>4} = {:.2} per 100 eSIMs | writes/round {:>6}: {} eSIM \
         writes for {} changed = {:.3} per changed eSIM, {} for {} unchanged, {} shard lease \
         | next 5-minute tick: {} reads for {} eSIMs",
        cost.reads,
        cost.reads as f64 * 100.0 / n,
        cost.writes,
        round.esim_writes,
        round.changed,
        round.esim_writes as f64 / round.changed.max(1) as f64,
        round.esim_writes - round.changed.min(round.esim_writes),
        round.polled - round.changed,
        leases,
        tick_reads,
        tick.polled,
    );
    assert_eq!(round.polled, count, "the measured round reached every eSIM");
    assert_eq!(
        round.esim_writes, round.changed,
        "one write per changed eSIM"
    );
    assert_eq!(
        cost.writes,
        round.changed + leases,
        "no write for unchanged eSIMs"
    );
    assert!(cost.reads * 100 <= count, "at most one read per 100 eSIMs");
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!(
        "usage round cost, in-memory store counting DynamoDB requests \
         ({TENANTS} tenants, one eSIM in {CHANGED_ONE_IN} changed)"
    );
    for count in [1_000, 10_000, 100_000] {
        measure(count).await?;
    }
    Ok(())
}
