//! Tool schemas every client takes: the JSON Schema of a Rust type without schemars'
//! number `format`s (`uint64`, `uint32`, `int64`, `double`, ...), which the TypeScript
//! SDK's validator warns about and function-calling subsets refuse. The `type` and the
//! `minimum` schemars writes for unsigned integers stay.

use std::{any::Any, sync::Arc};

use rmcp::{
    handler::server::common::{schema_for_output, schema_for_type},
    model::JsonObject,
};
use schemars::JsonSchema;
use serde_json::Value;

/// The schema of the arguments a tool takes.
pub fn input<T: JsonSchema + Any>() -> Arc<JsonObject> {
    portable(&schema_for_type::<T>())
}

/// The schema of the `structuredContent` a tool returns.
pub fn output<T: JsonSchema + Any>() -> Arc<JsonObject> {
    portable(&schema_for_output::<T>())
}

const NUMBER_FORMATS: [&str; 12] = [
    "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "uint", "int",
    "float", "double",
];

fn portable(schema: &JsonObject) -> Arc<JsonObject> {
    let mut value = Value::Object(schema.clone());
    strip(&mut value);
    match value {
        Value::Object(object) => Arc::new(object),
        _ => unreachable!("an object stays an object"),
    }
}

fn strip(value: &mut Value) {
    match value {
        Value::Object(object) => {
            if object
                .get("format")
                .and_then(Value::as_str)
                .is_some_and(|format| NUMBER_FORMATS.contains(&format))
            {
                object.remove("format");
            }
            object.values_mut().for_each(strip);
        }
        Value::Array(items) => items.iter_mut().for_each(strip),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Serialize, JsonSchema)]
    struct Sample {
        count: u64,
        ratio: f64,
        nested: Vec<Inner>,
        /// A field named `format` is a property, not a keyword: it stays.
        format: String,
    }

    #[derive(serde::Serialize, JsonSchema)]
    struct Inner {
        pid: Option<u32>,
    }

    #[test]
    fn number_formats_go_and_the_rest_stays() {
        let raw = serde_json::to_string(&*schema_for_output::<Sample>()).unwrap();
        assert!(raw.contains("uint64") && raw.contains("uint32"), "{raw}");
        let schema = serde_json::to_string(&*output::<Sample>()).unwrap();
        for gone in ["uint64", "uint32", "double"] {
            assert!(!schema.contains(gone), "{gone} in {schema}");
        }
        assert!(schema.contains("\"minimum\":0"), "{schema}");
        assert!(schema.contains("\"format\":{"), "{schema}");
    }
}
