//! Portable JSON schemas for the host tools: schemars' numeric `format`s (`uint64`,
//! `int32`, `double`, ...) removed, which validators outside JSON Schema's own vocabulary
//! (the TypeScript SDK's ajv, Open WebUI's mcpo, function-calling subsets) reject or warn
//! about. Unsigned integers keep the `minimum: 0` schemars gives them.

use std::sync::Arc;

use rmcp::{
    handler::server::common::{schema_for_output, schema_for_type},
    model::JsonObject,
};
use schemars::JsonSchema;
use serde_json::Value;

/// The input schema of `T`, portable.
pub fn input<T: JsonSchema + std::any::Any>() -> Arc<JsonObject> {
    portable(&schema_for_type::<T>())
}

/// The output schema of `T`, portable.
pub fn output<T: JsonSchema + std::any::Any>() -> Arc<JsonObject> {
    portable(&schema_for_output::<T>())
}

fn portable(schema: &JsonObject) -> Arc<JsonObject> {
    let mut value = Value::Object(schema.clone());
    strip_numeric_formats(&mut value);
    match value {
        Value::Object(object) => Arc::new(object),
        _ => Arc::new(schema.clone()),
    }
}

fn strip_numeric_formats(value: &mut Value) {
    match value {
        Value::Object(object) => {
            let numeric = object
                .get("format")
                .and_then(Value::as_str)
                .is_some_and(|format| {
                    format.starts_with("int")
                        || format.starts_with("uint")
                        || format == "float"
                        || format == "double"
                });
            if numeric {
                object.remove("format");
            }
            object.values_mut().for_each(strip_numeric_formats);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_numeric_formats),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(JsonSchema)]
    #[allow(dead_code)]
    struct Sample {
        count: u64,
        share: f64,
        nested: Vec<Inner>,
        /// A format of JSON Schema's own vocabulary stays.
        #[schemars(url)]
        link: String,
    }

    #[derive(JsonSchema)]
    #[allow(dead_code)]
    struct Inner {
        pid: i32,
    }

    #[test]
    fn numeric_formats_go_and_minimum_zero_stays() {
        let schema = Value::Object((*output::<Sample>()).clone()).to_string();
        for format in ["uint64", "double", "int32"] {
            assert!(!schema.contains(format), "{schema}");
        }
        assert!(schema.contains("\"minimum\":0"), "{schema}");
        // Near miss: a string format is not numeric and is kept.
        assert!(schema.contains("\"format\":\"uri\""), "{schema}");
    }
}
