//! The CRD schema's limits (minimum, maximum, lengths, item counts), checked on a spec outside
//! the API server: `validate -f`, `render` and `simulate` read files the API server never saw,
//! and a value it would refuse must not be acted on. The limits are read from the schema the
//! types generate, so the check never drifts from the CRD.

use std::sync::OnceLock;

use kube::CustomResourceExt;
use serde_json::Value;

use crate::crd::{ElasticNodePool, ElasticNodePoolSpec};

use super::Problems;

/// The `spec` schema of the ElasticNodePool CRD, generated once.
fn spec_schema() -> &'static Value {
    static SCHEMA: OnceLock<Value> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        let crd = ElasticNodePool::crd();
        crd.spec
            .versions
            .first()
            .and_then(|v| v.schema.as_ref())
            .and_then(|s| s.open_api_v3_schema.as_ref())
            .and_then(|s| serde_json::to_value(s).ok())
            .map(|root| root["properties"]["spec"].clone())
            .unwrap_or(Value::Null)
    })
}

/// Adds a problem for every value of `spec` outside the schema's limits.
pub(super) fn check(spec: &ElasticNodePoolSpec, problems: &mut Problems) {
    let Ok(value) = serde_json::to_value(spec) else {
        return;
    };
    walk(&value, spec_schema(), "spec", problems);
}

/// The schema's lower and upper limit under `keys` that `amount` breaks, in words.
fn broken_limit(schema: &Value, keys: (&str, &str), amount: f64, unit: &str) -> Option<String> {
    let (min_key, max_key) = keys;
    if let Some(min) = schema[min_key].as_f64()
        && amount < min
    {
        return Some(format!("{amount}{unit}, at least {min} allowed"));
    }
    if let Some(max) = schema[max_key].as_f64()
        && amount > max
    {
        return Some(format!("{amount}{unit}, at most {max} allowed"));
    }
    None
}

fn walk(value: &Value, schema: &Value, path: &str, problems: &mut Problems) {
    if schema.is_null() {
        return;
    }
    let broken = match value {
        Value::Number(number) => number
            .as_f64()
            .and_then(|n| broken_limit(schema, ("minimum", "maximum"), n, "")),
        Value::String(text) => broken_limit(
            schema,
            ("minLength", "maxLength"),
            text.chars().count() as f64,
            " characters",
        ),
        Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                walk(
                    item,
                    &schema["items"],
                    &format!("{path}[{index}]"),
                    problems,
                );
            }
            broken_limit(
                schema,
                ("minItems", "maxItems"),
                items.len() as f64,
                "items",
            )
        }
        Value::Object(fields) => {
            for (name, field) in fields {
                let field_schema = schema["properties"]
                    .get(name)
                    .or_else(|| schema.get("additionalProperties").filter(|s| s.is_object()))
                    .unwrap_or(&Value::Null);
                walk(field, field_schema, &format!("{path}.{name}"), problems);
            }
            None
        }
        Value::Bool(_) | Value::Null => None,
    };
    if let Some(limit) = broken {
        problems.add(
            path,
            "OutOfRange",
            format!("{limit} (the CRD schema's limit)"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schema_has_the_limits_the_types_declare() {
        let grace = &spec_schema()["properties"]["guarder"]["properties"]["gracePeriodSeconds"];
        assert_eq!(grace["minimum"].as_f64(), Some(1.0));
        assert_eq!(grace["maximum"].as_f64(), Some(86_400.0));
    }
}
