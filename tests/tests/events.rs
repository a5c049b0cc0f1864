//! The sample events in `events/<function>/` stay usable with `cargo lambda invoke
//! --data-file`: each one is read as its trigger's event type and answered by its function,
//! built by the local stack exactly as the Lambda binary builds it.

use std::path::PathBuf;

use esim_shared::runtime::MessageOutcome;
use integration_tests::stack;
use lambda_http::aws_lambda_events::event::eventbridge::EventBridgeEvent;
use lambda_http::aws_lambda_events::event::sqs::SqsEvent;
use local_stack::functions::LocalFunction;
use local_stack::repository_root;

fn samples() -> Vec<(String, PathBuf)> {
    let root = repository_root().join("events");
    let mut found = Vec::new();
    for folder in std::fs::read_dir(&root).expect("events/ is readable") {
        let folder = folder.expect("entry").path();
        let binary = folder
            .file_name()
            .and_then(|n| n.to_str())
            .expect("folder name")
            .to_owned();
        for file in std::fs::read_dir(&folder).expect("folder is readable") {
            let file = file.expect("entry").path();
            if file.extension().is_some_and(|e| e == "json") {
                found.push((binary.clone(), file));
            }
        }
    }
    found.sort();
    found
}

#[tokio::test]
async fn every_sample_event_is_answered_by_its_function() {
    let (stack, _aws) = stack(|o| {
        o.background = false;
        o.simulator = Some(provider_sim::SimConfig::default());
    })
    .await;
    let samples = samples();

    let mut answered = Vec::new();
    for (binary, path) in &samples {
        let text = std::fs::read_to_string(path).expect("sample is readable");
        let function = stack
            .spec
            .functions
            .iter()
            .find(|f| &f.binary == binary)
            .and_then(|f| stack.functions.get(&f.logical_id))
            .unwrap_or_else(|| panic!("events/{binary} names no function of template.yaml"));
        let outcome = match function {
            LocalFunction::Http(handler) => {
                let request = lambda_http::request::from_str(&text)
                    .unwrap_or_else(|e| panic!("{}: not an HTTP API event: {e}", path.display()));
                let status = handler.handle(request).await.status();
                // The samples carry a placeholder key, so a routed /v1 request answers 401;
                // 404 would mean no route matched and 5xx that the function failed.
                assert!(
                    status.as_u16() < 500 && status.as_u16() != 404,
                    "{}: answered {status}",
                    path.display()
                );
                format!("HTTP {status}")
            }
            LocalFunction::Sqs(consumer) => {
                let event: SqsEvent = serde_json::from_str(&text)
                    .unwrap_or_else(|e| panic!("{}: not an SQS event: {e}", path.display()));
                assert!(!event.records.is_empty(), "{}: no records", path.display());
                let mut outcomes = Vec::new();
                for message in &event.records {
                    outcomes.push(match consumer.handle_message(message).await {
                        MessageOutcome::Done => "done".to_owned(),
                        MessageOutcome::Retry(reason) => format!("retry ({reason})"),
                    });
                }
                format!("SQS {outcomes:?}")
            }
            LocalFunction::Scheduled(job) => {
                let event: EventBridgeEvent<serde_json::Value> = serde_json::from_str(&text)
                    .unwrap_or_else(|e| panic!("{}: not a scheduled event: {e}", path.display()));
                let summary = job
                    .run_once(event)
                    .await
                    .unwrap_or_else(|e| panic!("{}: the run failed: {e}", path.display()));
                format!("schedule {summary}")
            }
        };
        println!("{}: {outcome}", path.display());
        answered.push(path);
    }

    assert_eq!(answered.len(), samples.len());
    assert!(samples.len() >= 10, "samples: {samples:?}");
}
