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
//! leaving it out says "none"; hostmcp still accepts an explicit `null`). Output schemas keep
//! `null` in their types: structured results carry real nulls and clients validate them. An
//! `Option` of a named type (`anyOf: [T, {"type": "null"}]`) is folded the same way into `T`.
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
    merge_optional(schema, direction);
    if direction == Direction::Input
        && let Some(Value::Array(types)) = schema.get("type")
    {
        let not_null: Vec<&Value> = types.iter().filter(|kind| *kind != "null").collect();
        if let [only] = not_null.as_slice() {
            let only = (*only).clone();
            schema.insert("type".to_owned(), only);
        }
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

/// schemars writes an `Option` of a named type as `anyOf: [T, {"type": "null"}]`: fold it
/// into `T` itself with `"null"` added to its type (an output schema) or left out (an input
/// schema, where an absent argument already says "none"), so every subschema keeps one
/// `type` a client can read.
fn merge_optional(schema: &mut JsonObject, direction: Direction) {
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
    let kind = match direction {
        Direction::Input => Value::String(kind),
        Direction::Output => Value::Array(vec![Value::String(kind), Value::from("null")]),
    };
    schema.insert("type".to_owned(), kind);
}

fn rewrite_value(value: &mut Value, direction: Direction) {
    if let Value::Object(schema) = value {
        rewrite_object(schema, direction);
    }
}

#[cfg(test)]
mod tests;
