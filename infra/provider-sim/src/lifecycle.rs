//! Background progression of the simulated world: asynchronous orders become ready, profiles
//! are downloaded, installed and activated, data is consumed, plans run out or expire, and
//! every step raises the webhook the real provider would send.

use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;

use crate::catalogue::BYTES_PER_MB;
use crate::clock::plus_seconds;
use crate::state::{
    OrderFailure, OrderStatus, Provider, ProviderState, Sim, SimState, SmdpStatus, UsageState,
};
use crate::{airalo, esim_access};

/// How often the background task looks at the world, in real time.
const TICK: Duration = Duration::from_millis(20);

/// Usage thresholds (percent of the allowance used) that raise an event once each.
pub const USAGE_THRESHOLDS: [u64; 4] = [50, 75, 80, 90];

/// Something that happened to an order or a profile; each provider decides whether and how it
/// tells the partner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    OrderCompleted {
        order_index: usize,
    },
    OrderFailed {
        order_index: usize,
    },
    /// The profile's SM-DP+ status changed; the statuses are those right after the change, so
    /// that several steps taken in one tick are reported one by one.
    Smdp {
        iccid: String,
        smdp: SmdpStatus,
        usage: UsageState,
    },
    /// The profile's plan status changed.
    EsimStatus {
        iccid: String,
        smdp: SmdpStatus,
        usage: UsageState,
    },
    UsageThreshold {
        iccid: String,
        percent_used: u64,
    },
    ExpiryReminder {
        iccid: String,
        level: &'static str,
    },
}

/// Runs the lifecycle until the task is aborted.
pub async fn run(sim: Arc<Sim>) {
    let mut interval = tokio::time::interval(TICK);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        interval.tick().await;
        let mut state = sim.lock();
        tick(&mut state, &sim.base_url);
    }
}

/// Advances every order and profile of both providers to the current simulated time.
pub fn tick(state: &mut SimState, base_url: &str) {
    let now = state.clock.now();
    for provider in Provider::ALL {
        let account = state.provider_mut(provider);
        let mut events = Vec::new();
        complete_orders(account, now, &mut events);
        advance_profiles(account, now, &mut events);
        for event in events {
            emit(account, &event, base_url, now);
        }
    }
}

/// Renders an event in the provider's webhook shape and queues it.
pub fn emit(account: &mut ProviderState, event: &Event, base_url: &str, now: OffsetDateTime) {
    let rendered = match account.provider {
        Provider::Airalo => airalo::webhook_for(account, event, base_url),
        Provider::EsimAccess => esim_access::webhook_for(account, event, now),
    };
    if let Some(webhook) = rendered {
        account.enqueue_webhook(
            &webhook.kind,
            webhook.notify_id,
            &webhook.body,
            webhook.url.as_deref(),
        );
    }
}

/// A webhook rendered for one provider.
#[derive(Debug, Clone)]
pub struct RenderedWebhook {
    pub kind: String,
    pub notify_id: Option<String>,
    pub body: serde_json::Value,
    pub url: Option<String>,
}

fn complete_orders(account: &mut ProviderState, now: OffsetDateTime, events: &mut Vec<Event>) {
    for index in 0..account.orders.len() {
        let order = &account.orders[index];
        if order.status != OrderStatus::Pending || order.ready_at > now {
            continue;
        }
        if let Some(kind) = order.planned_failure {
            let refund = order.cost_cents;
            let (code, reason) = match account.provider {
                Provider::Airalo => airalo::fault_code(kind),
                Provider::EsimAccess => esim_access::fault_code(kind),
            };
            let order = &mut account.orders[index];
            order.status = OrderStatus::Failed;
            order.failure = Some(OrderFailure {
                code: code.to_owned(),
                reason: reason.to_owned(),
            });
            account.balance_cents += i64::try_from(refund).unwrap_or(i64::MAX);
            events.push(Event::OrderFailed { order_index: index });
            continue;
        }
        let order_id = order.id.clone();
        let lines = order.lines.clone();
        let mut iccids = Vec::new();
        for (plan, count) in &lines {
            for _ in 0..*count {
                iccids.push(account.create_profile(&order_id, plan, now));
            }
        }
        let order = &mut account.orders[index];
        order.iccids = iccids;
        order.status = OrderStatus::Completed;
        events.push(Event::OrderCompleted { order_index: index });
    }
}

fn advance_profiles(account: &mut ProviderState, now: OffsetDateTime, events: &mut Vec<Event>) {
    let knobs = account.knobs.clone();
    for profile in &mut account.profiles {
        if matches!(
            profile.usage_state,
            UsageState::Cancelled | UsageState::Expired | UsageState::UnusedExpired
        ) {
            continue;
        }
        let base = profile.provisioned_at;
        let due = |after: Option<f64>| after.is_some_and(|s| now >= plus_seconds(base, s));
        let iccid = profile.iccid.clone();

        if profile.smdp_status == SmdpStatus::Released && due(knobs.download_after_s) {
            profile.smdp_status = SmdpStatus::Download;
            profile.downloaded_at = Some(now);
            profile.eid = Some(eid_for(&profile.iccid));
            events.push(Event::Smdp {
                iccid: iccid.clone(),
                smdp: profile.smdp_status,
                usage: profile.usage_state,
            });
        }
        if profile.smdp_status == SmdpStatus::Download && due(knobs.install_after_s) {
            profile.smdp_status = SmdpStatus::Installation;
            profile.installed_at = Some(now);
            events.push(Event::Smdp {
                iccid: iccid.clone(),
                smdp: profile.smdp_status,
                usage: profile.usage_state,
            });
        }
        if profile.smdp_status == SmdpStatus::Installation
            && !profile.activation_fails
            && due(knobs.activation_after_s)
        {
            profile.smdp_status = SmdpStatus::Enabled;
            profile.activated_at = Some(now);
            profile.usage_state = UsageState::Active;
            profile.last_usage_at = now;
            profile.expires_at = Some(now + time::Duration::days(i64::from(profile.plan.days)));
            events.push(Event::Smdp {
                iccid: iccid.clone(),
                smdp: profile.smdp_status,
                usage: profile.usage_state,
            });
            events.push(Event::EsimStatus {
                iccid: iccid.clone(),
                smdp: profile.smdp_status,
                usage: profile.usage_state,
            });
        }

        if profile.usage_state == UsageState::Active {
            let minutes = (now - profile.last_usage_at).as_seconds_f64().max(0.0) / 60.0;
            let consumed = (knobs.data_mb_per_minute * minutes * BYTES_PER_MB as f64) as u64;
            profile.used_bytes = profile.used_bytes.saturating_add(consumed);
            if !profile.unlimited {
                profile.used_bytes = profile.used_bytes.min(profile.total_bytes);
            }
            profile.last_usage_at = now;
            let percent = profile.percent_used();
            for threshold in USAGE_THRESHOLDS {
                let mark = format!("usage:{threshold}");
                if percent >= threshold && !profile.notified.contains(&mark) {
                    profile.notified.push(mark);
                    events.push(Event::UsageThreshold {
                        iccid: iccid.clone(),
                        percent_used: threshold,
                    });
                }
            }
            if !profile.unlimited && profile.used_bytes >= profile.total_bytes {
                profile.usage_state = UsageState::Finished;
                events.push(Event::EsimStatus {
                    iccid: iccid.clone(),
                    smdp: profile.smdp_status,
                    usage: profile.usage_state,
                });
            }
        }

        if let Some(expires_at) = profile.expires_at {
            if matches!(
                profile.usage_state,
                UsageState::Active | UsageState::Finished
            ) {
                for (days, level) in [(3, "3 days"), (1, "1 day")] {
                    let mark = format!("expiry:{level}");
                    if now >= expires_at - time::Duration::days(days)
                        && now < expires_at
                        && !profile.notified.contains(&mark)
                    {
                        profile.notified.push(mark);
                        events.push(Event::ExpiryReminder {
                            iccid: iccid.clone(),
                            level,
                        });
                    }
                }
                if now >= expires_at {
                    profile.usage_state = UsageState::Expired;
                    events.push(Event::EsimStatus {
                        iccid: iccid.clone(),
                        smdp: profile.smdp_status,
                        usage: profile.usage_state,
                    });
                }
            }
        } else if profile.usage_state == UsageState::NotActive
            && now >= base + time::Duration::days(i64::from(knobs.unused_expiry_days))
        {
            profile.usage_state = UsageState::UnusedExpired;
            events.push(Event::EsimStatus {
                iccid,
                smdp: profile.smdp_status,
                usage: profile.usage_state,
            });
        }
    }
}

/// A stable 32-digit EID for the simulated device that downloads a profile.
fn eid_for(iccid: &str) -> String {
    let digits: String = iccid.chars().filter(char::is_ascii_digit).collect();
    let mut eid = format!("89049032{digits}");
    while eid.len() < 32 {
        eid.push('0');
    }
    eid.truncate(32);
    eid
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SimConfig;

    fn sim_with_profile(provider: Provider) -> (Sim, String) {
        let sim = Sim::new(SimConfig::default(), "http://127.0.0.1:1".to_owned());
        let iccid = {
            let mut state = sim.lock();
            let now = state.clock.now();
            let plan = crate::state::PlanTerms {
                package_id: "p".to_owned(),
                title: "1 GB - 7 Days".to_owned(),
                data_mb: Some(1024),
                days: 7,
                rechargeable: true,
                cost_cents: 300,
                apn_value: "internet".to_owned(),
                location: vec!["JP"],
            };
            state.provider_mut(provider).create_profile("1", &plan, now)
        };
        (sim, iccid)
    }

    #[test]
    fn profile_walks_through_download_install_activation() {
        let (sim, iccid) = sim_with_profile(Provider::EsimAccess);
        let mut state = sim.lock();

        state.clock.advance(61.0);
        tick(&mut state, "http://127.0.0.1:1");

        let profile = state.esim_access.profile(&iccid).cloned();
        let profile = profile.expect("profile exists");
        assert_eq!(profile.smdp_status, SmdpStatus::Enabled);
        assert_eq!(profile.usage_state, UsageState::Active);
        assert!(profile.expires_at.is_some());
    }

    #[test]
    fn activation_failure_stops_at_installation() {
        let (sim, iccid) = sim_with_profile(Provider::Airalo);
        let mut state = sim.lock();
        if let Some(profile) = state.airalo.profile_mut(&iccid) {
            profile.activation_fails = true;
        }

        state.clock.advance(3600.0);
        tick(&mut state, "http://127.0.0.1:1");

        let profile = state
            .airalo
            .profile(&iccid)
            .cloned()
            .expect("profile exists");
        assert_eq!(profile.smdp_status, SmdpStatus::Installation);
        assert_eq!(profile.usage_state, UsageState::NotActive);
    }

    #[test]
    fn consumption_uses_up_the_plan_and_expiry_ends_it() {
        let (sim, iccid) = sim_with_profile(Provider::EsimAccess);
        let mut state = sim.lock();
        state.esim_access.knobs.data_mb_per_minute = 10.0;
        state.clock.advance(61.0);
        tick(&mut state, "http://127.0.0.1:1");

        state.clock.advance(200.0 * 60.0);
        tick(&mut state, "http://127.0.0.1:1");
        let finished = state.esim_access.profile(&iccid).map(|p| p.usage_state);
        state.clock.advance(8.0 * 86_400.0);
        tick(&mut state, "http://127.0.0.1:1");
        let expired = state.esim_access.profile(&iccid).map(|p| p.usage_state);

        assert_eq!(finished, Some(UsageState::Finished));
        assert_eq!(expired, Some(UsageState::Expired));
    }

    #[test]
    fn eid_has_32_digits() {
        assert_eq!(eid_for("8944771000000000001").len(), 32);
    }
}
