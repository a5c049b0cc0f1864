//! Webhook delivery: a background task posts due webhooks from each provider's outbox in order,
//! records every attempt, and schedules retries for failed ones.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::state::{OutgoingWebhook, Provider, Sim, WebhookRecord};

/// How often the outbox is checked for due webhooks.
const POLL: Duration = Duration::from_millis(10);

/// Header carrying the Airalo webhook signature.
pub const AIRALO_SIGNATURE_HEADER: &str = "airalo-signature";

/// Delivers webhooks until the task is aborted.
pub async fn run(sim: Arc<Sim>, client: reqwest::Client) {
    loop {
        tokio::time::sleep(POLL).await;
        let due: Vec<(Provider, OutgoingWebhook)> = {
            let mut state = sim.lock();
            let now = Instant::now();
            Provider::ALL
                .into_iter()
                .flat_map(|provider| {
                    state
                        .provider_mut(provider)
                        .take_due_webhooks(now)
                        .into_iter()
                        .map(move |webhook| (provider, webhook))
                })
                .collect()
        };
        for (provider, webhook) in due {
            deliver(&sim, &client, provider, webhook).await;
        }
    }
}

/// Whether a partner's answer counts as delivered: Airalo documents that any answer other
/// than 200 is a failure; for eSIM Access any 2xx is taken as success.
fn delivered(provider: Provider, status: u16) -> bool {
    match provider {
        Provider::Airalo => status == 200,
        Provider::EsimAccess => (200..300).contains(&status),
    }
}

async fn deliver(
    sim: &Sim,
    client: &reqwest::Client,
    provider: Provider,
    webhook: OutgoingWebhook,
) {
    let mut request = client
        .post(&webhook.url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(webhook.body.clone());
    if let Some(signature) = &webhook.signature {
        request = request.header(AIRALO_SIGNATURE_HEADER, signature);
    }
    let (status, error) = match request.send().await {
        Ok(response) => (Some(response.status().as_u16()), None),
        Err(error) => (None, Some(error.to_string())),
    };
    let succeeded = status.is_some_and(|s| delivered(provider, s));
    tracing::debug!(
        provider = provider.name(),
        kind = %webhook.kind,
        event_id = webhook.event_id,
        attempt = webhook.attempt,
        status = ?status,
        "webhook delivery attempt"
    );

    let mut state = sim.lock();
    let sent_at = state.clock.now();
    let account = state.provider_mut(provider);
    account.webhooks_sent.push(WebhookRecord {
        event_id: webhook.event_id,
        notify_id: webhook.notify_id.clone(),
        kind: webhook.kind.clone(),
        url: webhook.url.clone(),
        copy: webhook.copy,
        attempt: webhook.attempt,
        status,
        error,
        body: serde_json::from_slice(&webhook.body).unwrap_or(serde_json::Value::Null),
        signature: webhook.signature.clone(),
        sent_at,
    });
    if !succeeded && webhook.attempt < webhook.max_attempts {
        let mut retry = webhook;
        retry.attempt += 1;
        retry.due = Instant::now() + retry.retry_delay;
        account.outbox.push(retry);
    }
}
