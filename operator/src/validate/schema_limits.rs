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

fn walk(value: &Value, schema: &Value, path: &str, problems: &mut Problems) {
    if schema.is_null() {
        return;
    }
    let mut out_of_range = |limit: String| {
        problems.add(
            path,
            "OutOfRange",
            format!("{limit} (the CRD schema's limit)"),
        );
    };
    match value {
        Value::Number(number) => {
            let Some(n) = number.as_f64() else {
                return;
            };
            if let Some(min) = schema["minimum"].as_f64()
                && n < min
            {
                out_of_range(format!("{number} is below the minimum {min}"));
            }
            if let Some(max) = schema["maximum"].as_f64()
                && n > max
            {
                out_of_range(format!("{number} is above the maximum {max}"));
            }
        }
        Value::String(text) => {
            let length = text.chars().count() as u64;
            if let Some(min) = schema["minLength"].as_u64()
                && length < min
            {
                out_of_range(format!("{length} characters, at least {min} needed"));
            }
            if let Some(max) = schema["maxLength"].as_u64()
                && length > max
            {
                out_of_range(format!("{length} characters, at most {max} allowed"));
            }
        }
        Value::Array(items) => {
            let count = items.len() as u64;
            if let Some(min) = schema["minItems"].as_u64()
                && count < min
            {
                out_of_range(format!("{count} items, at least {min} needed"));
            }
            if let Some(max) = schema["maxItems"].as_u64()
                && count > max
            {
                out_of_range(format!("{count} items, at most {max} allowed"));
            }
            for (index, item) in items.iter().enumerate() {
                walk(
                    item,
                    &schema["items"],
                    &format!("{path}[{index}]"),
                    problems,
                );
            }
        }
        Value::Object(fields) => {
            for (name, field) in fields {
                let field_schema = schema["properties"]
                    .get(name)
                    .or_else(|| schema.get("additionalProperties").filter(|s| s.is_object()))
                    .unwrap_or(&Value::Null);
                walk(field, field_schema, &format!("{path}.{name}"), problems);
            }
        }
        Value::Bool(_) | Value::Null => {}
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
