//! Creates the template's table, queues, bus and rules on the local AWS endpoint, named after
//! a stack name so that several stacks (one per test) can share one moto server.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, TimeToLiveSpecification,
};
use aws_sdk_sqs::types::QueueAttributeName;
use esim_shared::aws::AwsClients;

use crate::template::{Reference, StackSpec};

/// Creating a resource failed.
#[derive(Debug, thiserror::Error)]
#[error("failed to create {resource}")]
pub struct ProvisionError {
    /// Which resource.
    pub resource: String,
    /// Why.
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync + 'static>,
}

fn failed(
    resource: &str,
) -> impl FnOnce(Box<dyn std::error::Error + Send + Sync>) -> ProvisionError {
    let resource = resource.to_owned();
    move |source| ProvisionError { resource, source }
}

/// A created queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalQueue {
    /// Its URL.
    pub url: String,
    /// Its ARN.
    pub arn: String,
}

/// The names of what was created.
#[derive(Debug, Clone)]
pub struct Resources {
    /// The stack name everything is named after.
    pub stack_name: String,
    /// The table name.
    pub table_name: String,
    /// The bus name.
    pub bus_name: String,
    /// Queues by logical id.
    pub queues: BTreeMap<String, LocalQueue>,
}

impl Resources {
    /// Resolves a template value to what it means locally: `Ref` of the table, bus or a
    /// queue gives its name or URL, `Fn::GetAtt [Queue, Arn]` its ARN, and `Fn::Sub` with
    /// `${AWS::StackName}` the stack name.
    pub fn resolve(&self, spec: &StackSpec, value: &Reference) -> Option<String> {
        match value {
            Reference::Literal(text) => Some(text.clone()),
            Reference::Ref(id) if *id == spec.table.logical_id => Some(self.table_name.clone()),
            Reference::Ref(id) if *id == spec.bus => Some(self.bus_name.clone()),
            Reference::Ref(id) => self.queues.get(id).map(|q| q.url.clone()),
            Reference::GetAtt(id, attribute) if attribute == "Arn" => {
                self.queues.get(id).map(|q| q.arn.clone())
            }
            Reference::GetAtt(..) => None,
            Reference::Sub(text) if !text.contains("${") || text.contains("${AWS::StackName}") => {
                let replaced = text.replace("${AWS::StackName}", &self.stack_name);
                (!replaced.contains("${")).then_some(replaced)
            }
            Reference::Sub(_) => None,
        }
    }

    /// A function's environment, every variable resolved; variables that only make sense in
    /// AWS are left out.
    pub fn environment(&self, spec: &StackSpec, function: &str) -> HashMap<String, String> {
        spec.functions
            .iter()
            .filter(|f| f.logical_id == function || f.binary == function)
            .flat_map(|f| f.environment.iter())
            .filter_map(|(name, value)| self.resolve(spec, value).map(|v| (name.clone(), v)))
            .collect()
    }
}

/// Creates every resource of the template under `stack_name`.
pub async fn provision(
    clients: &AwsClients,
    spec: &StackSpec,
    stack_name: &str,
) -> Result<Resources, ProvisionError> {
    let table_name = stack_name.to_owned();
    create_table(clients, spec, &table_name).await?;
    let mut queues = BTreeMap::new();
    for queue in &spec.queues {
        let name = format!("{stack_name}-{}", queue.logical_id);
        let mut request = clients.sqs.create_queue().queue_name(&name);
        if let Some(timeout) = queue.visibility_timeout {
            request =
                request.attributes(QueueAttributeName::VisibilityTimeout, timeout.to_string());
        }
        if let Some((dlq, max_receive)) = &queue.redrive {
            let dlq: &LocalQueue = queues.get(dlq).ok_or_else(|| ProvisionError {
                resource: name.clone(),
                source: format!("dead-letter queue {dlq} is not defined").into(),
            })?;
            let policy = serde_json::json!({
                "deadLetterTargetArn": dlq.arn,
                "maxReceiveCount": max_receive.to_string(),
            });
            request = request.attributes(QueueAttributeName::RedrivePolicy, policy.to_string());
        }
        let url = request
            .send()
            .await
            .map_err(|e| failed(&name)(Box::new(e)))?
            .queue_url
            .unwrap_or_default();
        let attributes = clients
            .sqs
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .map_err(|e| failed(&name)(Box::new(e)))?;
        let arn = attributes
            .attributes
            .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
            .unwrap_or_default();
        queues.insert(queue.logical_id.clone(), LocalQueue { url, arn });
    }
    let bus_name = format!("{stack_name}-events");
    let created = clients
        .eventbridge
        .create_event_bus()
        .name(&bus_name)
        .send()
        .await;
    if let Err(error) = created
        && !already_exists(&error)
    {
        return Err(failed(&bus_name)(Box::new(error)));
    }
    for rule in &spec.rules {
        let name = format!("{stack_name}-{}", rule.logical_id);
        clients
            .eventbridge
            .put_rule()
            .name(&name)
            .event_bus_name(&bus_name)
            .event_pattern(rule.pattern.to_string())
            .send()
            .await
            .map_err(|e| failed(&name)(Box::new(e)))?;
        let mut targets = clients
            .eventbridge
            .put_targets()
            .rule(&name)
            .event_bus_name(&bus_name);
        for queue in &rule.queue_targets {
            let arn = queues.get(queue).map(|q| q.arn.clone()).unwrap_or_default();
            let target = aws_sdk_eventbridge::types::Target::builder()
                .id(queue)
                .arn(arn)
                .build()
                .map_err(|e| failed(&name)(Box::new(e)))?;
            targets = targets.targets(target);
        }
        targets
            .send()
            .await
            .map_err(|e| failed(&name)(Box::new(e)))?;
    }
    Ok(Resources {
        stack_name: stack_name.to_owned(),
        table_name,
        bus_name,
        queues,
    })
}

/// True when a create call failed only because the resource is there already, which happens
/// when the local stack restarts against a moto server that kept its state.
fn already_exists<E: aws_sdk_dynamodb::error::ProvideErrorMetadata>(error: &E) -> bool {
    matches!(
        error.code(),
        Some("ResourceInUseException" | "ResourceAlreadyExistsException")
    )
}

fn key_element(name: &str, key_type: KeyType) -> Result<KeySchemaElement, ProvisionError> {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(key_type)
        .build()
        .map_err(|e| failed(name)(Box::new(e)))
}

fn key_elements(hash: &str, range: Option<&str>) -> Result<Vec<KeySchemaElement>, ProvisionError> {
    let mut keys = vec![key_element(hash, KeyType::Hash)?];
    if let Some(range) = range {
        keys.push(key_element(range, KeyType::Range)?);
    }
    Ok(keys)
}

async fn create_table(
    clients: &AwsClients,
    spec: &StackSpec,
    name: &str,
) -> Result<(), ProvisionError> {
    let table = &spec.table;
    let mut request = clients
        .dynamodb
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .set_key_schema(Some(key_elements(
            &table.hash_key,
            table.range_key.as_deref(),
        )?));
    for (attribute, kind) in &table.attributes {
        let definition = AttributeDefinition::builder()
            .attribute_name(attribute)
            .attribute_type(ScalarAttributeType::from(kind.as_str()))
            .build()
            .map_err(|e| failed(name)(Box::new(e)))?;
        request = request.attribute_definitions(definition);
    }
    for index in &table.indexes {
        let projection = Projection::builder()
            .projection_type(ProjectionType::from(index.projection.as_str()))
            .build();
        let gsi = GlobalSecondaryIndex::builder()
            .index_name(&index.name)
            .set_key_schema(Some(key_elements(
                &index.hash_key,
                index.range_key.as_deref(),
            )?))
            .projection(projection)
            .build()
            .map_err(|e| failed(name)(Box::new(e)))?;
        request = request.global_secondary_indexes(gsi);
    }
    if let Err(error) = request.send().await {
        if !already_exists(&error) {
            return Err(failed(name)(Box::new(error)));
        }
        // A stack restarted against a moto server that kept its state: reuse the table.
        return Ok(());
    }
    if let Some(attribute) = &table.ttl_attribute {
        let ttl = TimeToLiveSpecification::builder()
            .attribute_name(attribute)
            .enabled(true)
            .build()
            .map_err(|e| failed(name)(Box::new(e)))?;
        clients
            .dynamodb
            .update_time_to_live()
            .table_name(name)
            .time_to_live_specification(ttl)
            .send()
            .await
            .map_err(|e| failed(name)(Box::new(e)))?;
    }
    Ok(())
}
