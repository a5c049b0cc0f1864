//! Reads `template.yaml` and `infra/openapi.yaml` into the parts the local stack needs, so
//! the local resources, environment, routes, queue mappings and schedules come from the same
//! source as the deployment and cannot drift from it.
//!
//! The template writes every intrinsic function in long form (`Ref:`, `Fn::GetAtt:`,
//! `Fn::Sub:`), which is what lets a plain YAML parser read it.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde_yaml::Value;

/// The template could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    /// A file could not be read.
    #[error("failed to read {path}")]
    Read {
        /// Which file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A file is not valid YAML.
    #[error("failed to parse {path}")]
    Parse {
        /// Which file.
        path: String,
        /// Why.
        #[source]
        source: serde_yaml::Error,
    },
    /// Something the local stack relies on is missing or has an unexpected shape.
    #[error("{0}")]
    Shape(String),
}

fn shape(message: impl Into<String>) -> TemplateError {
    TemplateError::Shape(message.into())
}

/// A value in the template that names another resource or is a literal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    /// A literal string.
    Literal(String),
    /// `Ref: X`.
    Ref(String),
    /// `Fn::GetAtt: [X, Attr]`.
    GetAtt(String, String),
    /// `Fn::Sub: "..."`.
    Sub(String),
}

impl Reference {
    fn parse(value: &Value) -> Result<Self, TemplateError> {
        if let Some(text) = value.as_str() {
            return Ok(Reference::Literal(text.to_owned()));
        }
        if let Some(number) = value.as_i64() {
            return Ok(Reference::Literal(number.to_string()));
        }
        if let Some(target) = value.get("Ref").and_then(Value::as_str) {
            return Ok(Reference::Ref(target.to_owned()));
        }
        if let Some(list) = value.get("Fn::GetAtt").and_then(Value::as_sequence)
            && let [Value::String(resource), Value::String(attribute)] = list.as_slice()
        {
            return Ok(Reference::GetAtt(resource.clone(), attribute.clone()));
        }
        if let Some(text) = value.get("Fn::Sub").and_then(Value::as_str) {
            return Ok(Reference::Sub(text.to_owned()));
        }
        Err(shape(format!(
            "unsupported value {value:?}; write intrinsics in long form"
        )))
    }
}

/// One global secondary index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexSpec {
    /// Its name.
    pub name: String,
    /// Partition key attribute.
    pub hash_key: String,
    /// Sort key attribute.
    pub range_key: Option<String>,
    /// ALL, KEYS_ONLY or INCLUDE.
    pub projection: String,
}

/// The table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSpec {
    /// Its logical id.
    pub logical_id: String,
    /// Attribute name to type (S, N, B).
    pub attributes: BTreeMap<String, String>,
    /// Partition key attribute.
    pub hash_key: String,
    /// Sort key attribute.
    pub range_key: Option<String>,
    /// The GSIs.
    pub indexes: Vec<IndexSpec>,
    /// The TTL attribute, when TTL is on.
    pub ttl_attribute: Option<String>,
}

/// A queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueSpec {
    /// Its logical id.
    pub logical_id: String,
    /// Seconds a received message stays invisible.
    pub visibility_timeout: Option<u32>,
    /// Dead-letter queue logical id and maxReceiveCount.
    pub redrive: Option<(String, u32)>,
}

/// A rule on the bus with queue targets.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleSpec {
    /// Its logical id.
    pub logical_id: String,
    /// The event pattern, as JSON.
    pub pattern: serde_json::Value,
    /// Logical ids of the queues it targets.
    pub queue_targets: Vec<String>,
}

/// What triggers a function besides HTTP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trigger {
    /// An SQS event source mapping.
    Sqs {
        /// The queue's logical id.
        queue: String,
        /// Messages per batch.
        batch_size: u32,
    },
    /// An EventBridge schedule.
    Schedule {
        /// How often.
        every: Duration,
    },
}

/// A function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionSpec {
    /// Its logical id.
    pub logical_id: String,
    /// The cargo binary it is built from.
    pub binary: String,
    /// Environment variables, globals merged with its own.
    pub environment: BTreeMap<String, Reference>,
    /// Its non-HTTP triggers.
    pub triggers: Vec<Trigger>,
}

/// One HTTP route from the OpenAPI definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteSpec {
    /// Upper-case method.
    pub method: String,
    /// Path template, for example `/v1/plans/{plan_id}`.
    pub path: String,
    /// The logical id of the function it integrates with.
    pub function: String,
}

/// Everything the local stack takes from the template and the OpenAPI file.
#[derive(Debug, Clone)]
pub struct StackSpec {
    /// The table.
    pub table: TableSpec,
    /// Queues, dead-letter queues first.
    pub queues: Vec<QueueSpec>,
    /// The custom bus's logical id.
    pub bus: String,
    /// Rules without a condition (conditional ones need parameters the local stack lacks).
    pub rules: Vec<RuleSpec>,
    /// Functions.
    pub functions: Vec<FunctionSpec>,
    /// HTTP routes.
    pub routes: Vec<RouteSpec>,
}

fn read_yaml(path: &Path) -> Result<Value, TemplateError> {
    let display = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| TemplateError::Read {
        path: display.clone(),
        source,
    })?;
    serde_yaml::from_str(&text).map_err(|source| TemplateError::Parse {
        path: display,
        source,
    })
}

fn text<'a>(value: &'a Value, key: &str, context: &str) -> Result<&'a str, TemplateError> {
    value
        .get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| shape(format!("{context}: {key} missing")))
}

fn key_schema(
    schema: Option<&Value>,
    context: &str,
) -> Result<(String, Option<String>), TemplateError> {
    let entries = schema
        .and_then(Value::as_sequence)
        .ok_or_else(|| shape(format!("{context}: KeySchema missing")))?;
    let mut hash = None;
    let mut range = None;
    for entry in entries {
        let name = text(entry, "AttributeName", context)?.to_owned();
        match text(entry, "KeyType", context)? {
            "HASH" => hash = Some(name),
            _ => range = Some(name),
        }
    }
    Ok((
        hash.ok_or_else(|| shape(format!("{context}: no HASH key")))?,
        range,
    ))
}

impl StackSpec {
    /// Reads `template.yaml` and the OpenAPI file it includes, from the repository root.
    pub fn load(root: &Path) -> Result<Self, TemplateError> {
        let template = read_yaml(&root.join("template.yaml"))?;
        let resources = template
            .get("Resources")
            .and_then(Value::as_mapping)
            .ok_or_else(|| shape("template.yaml: Resources missing"))?;
        let globals = template.get("Globals").and_then(|g| g.get("Function"));
        let mut table = None;
        let mut queues = Vec::new();
        let mut bus = None;
        let mut rules = Vec::new();
        let mut functions = Vec::new();
        let mut openapi_location = None;
        for (id, resource) in resources {
            let id = id
                .as_str()
                .ok_or_else(|| shape("non-string logical id"))?
                .to_owned();
            let kind = text(resource, "Type", &id)?;
            let empty = Value::Null;
            let properties = resource.get("Properties").unwrap_or(&empty);
            let conditional = resource.get("Condition").is_some();
            match kind {
                "AWS::DynamoDB::Table" => table = Some(parse_table(&id, properties)?),
                "AWS::SQS::Queue" => queues.push(parse_queue(&id, properties)?),
                "AWS::Events::EventBus" => bus = Some(id),
                "AWS::Events::Rule" if !conditional => rules.push(parse_rule(&id, properties)?),
                "AWS::Serverless::Function" => {
                    functions.push(parse_function(&id, resource, properties, globals)?);
                }
                "AWS::Serverless::HttpApi" => {
                    openapi_location = properties
                        .get("DefinitionBody")
                        .and_then(|b| b.get("Fn::Transform"))
                        .and_then(|t| t.get("Parameters"))
                        .and_then(|p| p.get("Location"))
                        .and_then(Value::as_str)
                        .map(str::to_owned);
                }
                _ => {}
            }
        }
        // Dead-letter queues must exist before the queues that redrive into them.
        queues.sort_by_key(|q| q.redrive.is_some());
        let location = openapi_location
            .ok_or_else(|| shape("HttpApi has no DefinitionBody AWS::Include Location"))?;
        let routes = parse_routes(&read_yaml(&root.join(location))?)?;
        Ok(Self {
            table: table.ok_or_else(|| shape("template.yaml has no DynamoDB table"))?,
            queues,
            bus: bus.ok_or_else(|| shape("template.yaml has no event bus"))?,
            rules,
            functions,
            routes,
        })
    }
}

fn parse_table(id: &str, properties: &Value) -> Result<TableSpec, TemplateError> {
    let attributes = properties
        .get("AttributeDefinitions")
        .and_then(Value::as_sequence)
        .ok_or_else(|| shape(format!("{id}: AttributeDefinitions missing")))?
        .iter()
        .map(|a| {
            Ok((
                text(a, "AttributeName", id)?.to_owned(),
                text(a, "AttributeType", id)?.to_owned(),
            ))
        })
        .collect::<Result<_, TemplateError>>()?;
    let (hash_key, range_key) = key_schema(properties.get("KeySchema"), id)?;
    let mut indexes = Vec::new();
    for index in properties
        .get("GlobalSecondaryIndexes")
        .and_then(Value::as_sequence)
        .into_iter()
        .flatten()
    {
        let name = text(index, "IndexName", id)?.to_owned();
        let (hash_key, range_key) = key_schema(index.get("KeySchema"), &name)?;
        let projection = index
            .get("Projection")
            .and_then(|p| p.get("ProjectionType"))
            .and_then(Value::as_str)
            .unwrap_or("ALL")
            .to_owned();
        indexes.push(IndexSpec {
            name,
            hash_key,
            range_key,
            projection,
        });
    }
    let ttl = properties.get("TimeToLiveSpecification");
    let ttl_attribute = ttl
        .filter(|t| t.get("Enabled").and_then(Value::as_bool).unwrap_or(false))
        .and_then(|t| t.get("AttributeName"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    Ok(TableSpec {
        logical_id: id.to_owned(),
        attributes,
        hash_key,
        range_key,
        indexes,
        ttl_attribute,
    })
}

fn parse_queue(id: &str, properties: &Value) -> Result<QueueSpec, TemplateError> {
    let visibility_timeout = properties
        .get("VisibilityTimeout")
        .and_then(Value::as_u64)
        .map(|v| v as u32);
    let redrive = match properties.get("RedrivePolicy") {
        None => None,
        Some(policy) => {
            let target = policy
                .get("deadLetterTargetArn")
                .ok_or_else(|| shape(format!("{id}: deadLetterTargetArn missing")))?;
            let Reference::GetAtt(dlq, _) = Reference::parse(target)? else {
                return Err(shape(format!(
                    "{id}: deadLetterTargetArn must be Fn::GetAtt"
                )));
            };
            let count = policy
                .get("maxReceiveCount")
                .and_then(Value::as_u64)
                .unwrap_or(5);
            Some((dlq, count as u32))
        }
    };
    Ok(QueueSpec {
        logical_id: id.to_owned(),
        visibility_timeout,
        redrive,
    })
}

fn parse_rule(id: &str, properties: &Value) -> Result<RuleSpec, TemplateError> {
    let pattern = properties
        .get("EventPattern")
        .ok_or_else(|| shape(format!("{id}: EventPattern missing")))?;
    let pattern = serde_json::to_value(pattern).map_err(|e| shape(format!("{id}: {e}")))?;
    let mut queue_targets = Vec::new();
    for target in properties
        .get("Targets")
        .and_then(Value::as_sequence)
        .into_iter()
        .flatten()
    {
        if let Some(arn) = target.get("Arn")
            && let Reference::GetAtt(resource, _) = Reference::parse(arn)?
        {
            queue_targets.push(resource);
        }
    }
    Ok(RuleSpec {
        logical_id: id.to_owned(),
        pattern,
        queue_targets,
    })
}

fn parse_function(
    id: &str,
    resource: &Value,
    properties: &Value,
    globals: Option<&Value>,
) -> Result<FunctionSpec, TemplateError> {
    let binary = resource
        .get("Metadata")
        .and_then(|m| m.get("BuildProperties"))
        .and_then(|b| b.get("Binary"))
        .and_then(Value::as_str)
        .ok_or_else(|| shape(format!("{id}: Metadata.BuildProperties.Binary missing")))?
        .to_owned();
    let mut environment = BTreeMap::new();
    for source in [globals, Some(properties)].into_iter().flatten() {
        let variables = source.get("Environment").and_then(|e| e.get("Variables"));
        for (name, value) in variables.and_then(Value::as_mapping).into_iter().flatten() {
            let name = name
                .as_str()
                .ok_or_else(|| shape(format!("{id}: bad variable name")))?;
            environment.insert(name.to_owned(), Reference::parse(value)?);
        }
    }
    let mut triggers = Vec::new();
    for (_, event) in properties
        .get("Events")
        .and_then(Value::as_mapping)
        .into_iter()
        .flatten()
    {
        let empty = Value::Null;
        let event_properties = event.get("Properties").unwrap_or(&empty);
        match event.get("Type").and_then(Value::as_str) {
            Some("SQS") => {
                let queue = event_properties
                    .get("Queue")
                    .ok_or_else(|| shape(format!("{id}: SQS event without Queue")))?;
                let Reference::GetAtt(queue, _) = Reference::parse(queue)? else {
                    return Err(shape(format!("{id}: SQS Queue must be Fn::GetAtt")));
                };
                let batch_size = event_properties
                    .get("BatchSize")
                    .and_then(Value::as_u64)
                    .unwrap_or(10) as u32;
                triggers.push(Trigger::Sqs { queue, batch_size });
            }
            Some("Schedule") | Some("ScheduleV2") => {
                let expression = text(event_properties, "Schedule", id)
                    .or_else(|_| text(event_properties, "ScheduleExpression", id))?;
                triggers.push(Trigger::Schedule {
                    every: parse_rate(expression)?,
                });
            }
            _ => {}
        }
    }
    Ok(FunctionSpec {
        logical_id: id.to_owned(),
        binary,
        environment,
        triggers,
    })
}

/// Parses `rate(N unit)`. Cron expressions are not run locally.
pub fn parse_rate(expression: &str) -> Result<Duration, TemplateError> {
    let inner = expression
        .strip_prefix("rate(")
        .and_then(|e| e.strip_suffix(')'))
        .ok_or_else(|| {
            shape(format!(
                "only rate(...) schedules run locally, got {expression}"
            ))
        })?;
    let (amount, unit) = inner
        .split_once(' ')
        .ok_or_else(|| shape(format!("bad rate {expression}")))?;
    let amount: u64 = amount
        .parse()
        .map_err(|_| shape(format!("bad rate {expression}")))?;
    let seconds = match unit.trim_end_matches('s') {
        "minute" => 60,
        "hour" => 3600,
        "day" => 86_400,
        _ => return Err(shape(format!("bad rate unit in {expression}"))),
    };
    Ok(Duration::from_secs(amount * seconds))
}

fn parse_routes(openapi: &Value) -> Result<Vec<RouteSpec>, TemplateError> {
    let paths = openapi
        .get("paths")
        .and_then(Value::as_mapping)
        .ok_or_else(|| shape("openapi: paths missing"))?;
    let mut routes = Vec::new();
    for (path, operations) in paths {
        let path = path
            .as_str()
            .ok_or_else(|| shape("openapi: non-string path"))?;
        for (method, operation) in operations.as_mapping().into_iter().flatten() {
            let Some(method) = method.as_str() else {
                continue;
            };
            let Some(integration) = operation.get("x-amazon-apigateway-integration") else {
                continue;
            };
            let uri = integration.get("uri").ok_or_else(|| {
                shape(format!("openapi {method} {path}: integration uri missing"))
            })?;
            let Reference::Sub(uri) = Reference::parse(uri)? else {
                return Err(shape(format!(
                    "openapi {method} {path}: uri must be Fn::Sub"
                )));
            };
            let function = uri
                .split("${")
                .filter_map(|part| part.split_once(".Arn}").map(|(id, _)| id.to_owned()))
                .next()
                .ok_or_else(|| shape(format!("openapi {method} {path}: uri names no function")))?;
            routes.push(RouteSpec {
                method: method.to_ascii_uppercase(),
                path: path.to_owned(),
                function,
            });
        }
    }
    Ok(routes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rate_expressions() {
        assert_eq!(
            parse_rate("rate(5 minutes)").expect("ok"),
            Duration::from_secs(300)
        );
        assert_eq!(
            parse_rate("rate(1 hour)").expect("ok"),
            Duration::from_secs(3600)
        );
        assert!(parse_rate("cron(0 * * * ? *)").is_err());
    }
}
