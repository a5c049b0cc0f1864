//! `template.yaml` is the one source of the deployment and of the local stack: these tests
//! check the rules it must keep and that what the local stack creates matches it.

use aws_sdk_sqs::types::QueueAttributeName;
use esim_shared::aws::AwsClients;
use integration_tests::stack;
use local_stack::repository_root;
use local_stack::template::{StackSpec, Trigger};

fn raw_template() -> serde_yaml::Value {
    let text = std::fs::read_to_string(repository_root().join("template.yaml")).expect("readable");
    serde_yaml::from_str(&text).expect("yaml")
}

#[test]
fn every_queue_consumer_has_visibility_six_times_its_timeout_and_a_dead_letter_queue() {
    let spec = StackSpec::load(&repository_root()).expect("template loads");
    let template = raw_template();
    let global_timeout = template["Globals"]["Function"]["Timeout"]
        .as_u64()
        .unwrap_or(3);
    let mut consumers = 0;

    for function in &spec.functions {
        for trigger in &function.triggers {
            let Trigger::Sqs { queue, .. } = trigger else {
                continue;
            };
            consumers += 1;
            let resource = &template["Resources"][&function.logical_id]["Properties"];
            let timeout = resource["Timeout"].as_u64().unwrap_or(global_timeout);
            let queue = spec
                .queues
                .iter()
                .find(|q| &q.logical_id == queue)
                .expect("queue exists");

            let visibility = u64::from(queue.visibility_timeout.unwrap_or(30));
            assert!(
                visibility >= 6 * timeout,
                "{}: {visibility} < 6 x {timeout}",
                queue.logical_id
            );
            let (_, max_receive) = queue.redrive.clone().expect("has a dead-letter queue");
            assert!(max_receive >= 5, "{}", queue.logical_id);
        }
    }
    assert!(consumers >= 1);
}

#[test]
fn every_function_runs_on_arm64_provided_al2023_with_json_logs_and_its_own_policy() {
    let template = raw_template();
    let globals = &template["Globals"]["Function"];
    assert_eq!(globals["Runtime"], "provided.al2023");
    assert_eq!(globals["Architectures"][0], "arm64");
    assert_eq!(globals["LoggingConfig"]["LogFormat"], "JSON");
    let spec = StackSpec::load(&repository_root()).expect("template loads");

    for function in &spec.functions {
        let resource = &template["Resources"][&function.logical_id];
        assert_eq!(
            resource["Metadata"]["BuildMethod"], "rust-cargolambda",
            "{}",
            function.logical_id
        );
        assert!(
            resource["Properties"]["Policies"]
                .as_sequence()
                .is_some_and(|p| !p.is_empty())
        );
        let manifest = repository_root()
            .join("functions")
            .join(&function.binary)
            .join("Cargo.toml");
        assert!(
            manifest.exists(),
            "{} has no crate at {manifest:?}",
            function.binary
        );
    }
    assert_eq!(spec.functions.len(), 7);
}

#[test]
fn every_route_of_the_contract_integrates_with_a_function_of_the_template() {
    let spec = StackSpec::load(&repository_root()).expect("template loads");

    for route in &spec.routes {
        assert!(
            spec.functions
                .iter()
                .any(|f| f.logical_id == route.function),
            "{} {} names {}",
            route.method,
            route.path,
            route.function
        );
    }
    assert!(spec.routes.iter().any(|r| r.path == "/webhooks/{provider}"));
}

#[tokio::test]
async fn the_local_stack_creates_what_the_template_declares() {
    let (stack, aws) = stack(|o| o.background = false).await;
    let clients = AwsClients::new(&aws);

    let table = clients
        .dynamodb
        .describe_table()
        .table_name(&stack.resources.table_name)
        .send()
        .await
        .expect("table exists")
        .table
        .expect("description");
    let ttl = clients
        .dynamodb
        .describe_time_to_live()
        .table_name(&stack.resources.table_name)
        .send()
        .await
        .expect("ttl");

    let mut indexes: Vec<String> = table
        .global_secondary_indexes()
        .iter()
        .filter_map(|i| i.index_name().map(str::to_owned))
        .collect();
    indexes.sort();
    let mut declared: Vec<String> = stack
        .spec
        .table
        .indexes
        .iter()
        .map(|i| i.name.clone())
        .collect();
    declared.sort();
    assert_eq!(indexes, declared);
    assert_eq!(
        ttl.time_to_live_description
            .and_then(|d| d.attribute_name)
            .as_deref(),
        stack.spec.table.ttl_attribute.as_deref()
    );
    for queue in &stack.spec.queues {
        let url = &stack.resources.queues[&queue.logical_id].url;
        let attributes = clients
            .sqs
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::All)
            .send()
            .await
            .expect("attributes")
            .attributes
            .unwrap_or_default();
        if let Some(timeout) = queue.visibility_timeout {
            assert_eq!(
                attributes[&QueueAttributeName::VisibilityTimeout],
                timeout.to_string()
            );
        }
        if let Some((dlq, max_receive)) = &queue.redrive {
            let policy: serde_json::Value =
                serde_json::from_str(&attributes[&QueueAttributeName::RedrivePolicy])
                    .expect("json");
            assert_eq!(
                policy["deadLetterTargetArn"],
                stack.resources.queues[dlq].arn
            );
            assert_eq!(
                policy["maxReceiveCount"].to_string().trim_matches('"'),
                max_receive.to_string()
            );
        }
    }
}
