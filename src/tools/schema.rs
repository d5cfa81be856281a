//! Portable tool schemas: every tool's `inputSchema` and `outputSchema` as `tools/list`
//! shows them, rewritten once (when the catalog is built) into the JSON-Schema subset that
//! every client and model we know takes.
//!
//! schemars writes what Rust knows: `format: "uint64"` (the TypeScript SDK's validator
//! warns "unknown format" for each, 20 warnings per `tools/list`), `type: ["string",
//! "null"]` for an `Option` (Gemini's function declarations take one type per schema) and a
//! `$schema` dialect URI, and `$ref`s into `$defs` for named types (Gemini resolves no
//! references). The rewrite inlines every local reference (types that contain themselves
//! are left for the tests to refuse), drops every `format` and the `$schema` key, and in
//! input schemas turns `[T, "null"]` into `T` (an `Option` argument is never required, so
//! leaving it out says "none"; hostmcp still accepts an explicit `null`); an `Option` of a
//! named type (`anyOf: [T, {"type": "null"}]`) is folded the same way into `T`. Output
//! schemas keep `null`, since structured results carry real nulls and clients validate them,
//! but as `anyOf: [{"type": T, ...}, {"type": "null"}]`, never as a type list: the Inspector
//! CLI (2.12) warns about every type list ("Schema portability: 0 errors, 78 warnings across
//! 14 tools" after each `tools/list`, all of them schemars' `[T, "null"]`), since a client
//! that maps schemas onto one `type` per schema (Gemini's dialect) may reject the tool.
//!
//! What the rewrite cannot fix is the source's to keep: no boolean schemas (`items: true`
//! crashed Open WebUI's `mcpo`), no references, a type on every schema. The tests apply
//! every rule to every tool in the catalog (see `tests.rs` for the rules and where each
//! comes from).

use rmcp::model::{JsonObject, Tool};
use serde_json::Value;

/// `tool` with its input and output schemas rewritten to the portable subset.
pub fn portable(mut tool: Tool) -> Tool {
    let mut input = (*tool.input_schema).clone();
    rewrite(&mut input, Direction::Input);
    tool.input_schema = input.into();
    if let Some(output) = tool.output_schema.as_deref() {
        let mut output = output.clone();
        rewrite(&mut output, Direction::Output);
        tool.output_schema = Some(output.into());
    }
    tool
}

/// Which way data described by a schema travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    /// Arguments a client (a model) writes.
    Input,
    /// Structured results hostmcp writes.
    Output,
}

/// Deepest nesting of inlined references: deeper means a type that contains itself.
const MAX_INLINE_DEPTH: usize = 16;

fn rewrite(schema: &mut JsonObject, direction: Direction) {
    schema.remove("$schema");
    let mut defs = JsonObject::new();
    for key in ["$defs", "definitions"] {
        if let Some(Value::Object(named)) = schema.remove(key) {
            defs.extend(named);
        }
    }
    if !defs.is_empty() {
        for value in schema.values_mut() {
            inline_refs(value, &defs, 0);
        }
    }
    rewrite_object(schema, direction);
}

/// Replace each `{"$ref": "#/$defs/Name", ...}` under `value` by the definition (its own
/// keys, such as a description, win).
fn inline_refs(value: &mut Value, defs: &JsonObject, depth: usize) {
    match value {
        Value::Object(schema) => {
            let target = schema
                .get("$ref")
                .and_then(Value::as_str)
                .and_then(|reference| {
                    reference
                        .strip_prefix("#/$defs/")
                        .or_else(|| reference.strip_prefix("#/definitions/"))
                })
                .and_then(|name| defs.get(name));
            if let (Some(Value::Object(definition)), true) = (target, depth < MAX_INLINE_DEPTH) {
                schema.remove("$ref");
                for (key, field) in definition {
                    schema.entry(key.clone()).or_insert_with(|| field.clone());
                }
                for field in schema.values_mut() {
                    inline_refs(field, defs, depth + 1);
                }
            } else {
                for field in schema.values_mut() {
                    inline_refs(field, defs, depth);
                }
            }
        }
        Value::Array(items) => items
            .iter_mut()
            .for_each(|item| inline_refs(item, defs, depth)),
        _ => {}
    }
}

fn rewrite_object(schema: &mut JsonObject, direction: Direction) {
    schema.remove("format");
    match direction {
        Direction::Input => {
            merge_optional(schema);
            if let Some(Value::Array(types)) = schema.get("type") {
                let not_null: Vec<&Value> = types.iter().filter(|kind| *kind != "null").collect();
                if let [only] = not_null.as_slice() {
                    let only = (*only).clone();
                    schema.insert("type".to_owned(), only);
                }
            }
        }
        Direction::Output => split_nullable(schema),
    }
    for (key, value) in schema.iter_mut() {
        match (key.as_str(), value) {
            // Maps of name to schema.
            ("properties" | "$defs" | "definitions", Value::Object(named)) => {
                for sub in named.values_mut() {
                    rewrite_value(sub, direction);
                }
            }
            // Lists of schemas.
            ("anyOf" | "oneOf" | "allOf" | "prefixItems", Value::Array(list)) => {
                for sub in list {
                    rewrite_value(sub, direction);
                }
            }
            // One schema.
            ("items" | "additionalProperties" | "not", sub) => rewrite_value(sub, direction),
            _ => {}
        }
    }
}

/// schemars writes an `Option` of a named type as `anyOf: [T, {"type": "null"}]`: in an
/// input schema, where an absent argument already says "none", fold it into `T` itself, so
/// every subschema keeps one `type` a client can read.
fn merge_optional(schema: &mut JsonObject) {
    let Some(Value::Array(alternatives)) = schema.get("anyOf") else {
        return;
    };
    let is_null = |value: &Value| value.get("type").and_then(Value::as_str) == Some("null");
    let [first, second] = alternatives.as_slice() else {
        return;
    };
    let some = match (is_null(first), is_null(second)) {
        (false, true) => first,
        (true, false) => second,
        _ => return,
    };
    let Value::Object(some) = some.clone() else {
        return;
    };
    let Some(Value::String(kind)) = some.get("type").cloned() else {
        return;
    };
    schema.remove("anyOf");
    for (key, value) in some {
        schema.entry(key).or_insert(value);
    }
    schema.insert("type".to_owned(), Value::String(kind));
}

/// Keywords that describe a value whatever its type: they stay beside an `anyOf`.
const ANNOTATIONS: [&str; 5] = ["title", "description", "default", "examples", "deprecated"];

/// schemars writes an `Option` of a plain type as `type: [T, "null"]`: in an output schema,
/// split it into `anyOf: [{"type": T, ...}, {"type": "null"}]`, the `T` branch taking every
/// keyword but the annotations (so `minimum`, `properties` or `items` constrain only `T`).
fn split_nullable(schema: &mut JsonObject) {
    let Some(Value::Array(types)) = schema.get("type") else {
        return;
    };
    let kind = match types.as_slice() {
        [Value::String(kind), null] | [null, Value::String(kind)]
            if null == "null" && kind != "null" =>
        {
            kind.clone()
        }
        _ => return,
    };
    let typed: Vec<String> = schema
        .keys()
        .filter(|key| !ANNOTATIONS.contains(&key.as_str()))
        .cloned()
        .collect();
    let mut some = JsonObject::new();
    for key in typed {
        if let Some(value) = schema.remove(&key) {
            some.insert(key, value);
        }
    }
    some.insert("type".to_owned(), Value::String(kind));
    let null = JsonObject::from_iter([("type".to_owned(), Value::from("null"))]);
    schema.insert(
        "anyOf".to_owned(),
        Value::Array(vec![Value::Object(some), Value::Object(null)]),
    );
}

fn rewrite_value(value: &mut Value, direction: Direction) {
    if let Value::Object(schema) = value {
        rewrite_object(schema, direction);
    }
}

#[cfg(test)]
mod tests;
