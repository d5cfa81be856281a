//! The portable subset, applied to every tool's schemas as `tools/list` shows them.
//!
//! The rules and where each comes from:
//! - R1 the root is `type: "object"` with `properties`, and no `anyOf`/`oneOf`/`allOf`/
//!   `not`/`enum` at the root. MCP (2025-06-18 and later) requires an object root for both
//!   schemas; OpenAI function calling: "the root level object must not be anyOf"
//!   (platform.openai.com/docs/guides/structured-outputs, "Supported schemas"); Gemini's
//!   `FunctionDeclaration.parameters` is an OBJECT schema.
//! - R2 no `$ref`, `$defs`, `definitions`, `$dynamicRef`, `$schema`: Gemini's Schema
//!   object (ai.google.dev/api/caching#Schema, an OpenAPI 3.0 subset) has no references or
//!   dialects, and mcpo resolves only local `$ref`s.
//! - R3 no boolean schemas (`items: true`, a property `true`): mcpo calls `.get()` on every
//!   subschema and crashed on `job_list`'s `"items": true`; OpenAI requires `items` to be a
//!   schema.
//! - R4 no `format`: the TypeScript SDK's Ajv warns "unknown format" for schemars' `uint64`,
//!   `uint`, `int32`, `double`; OpenAI supports only date-time, time, date, duration, email,
//!   hostname, ipv4, ipv6, uuid and Gemini only `enum`/`date-time` for strings: none is
//!   worth a warning anywhere.
//! - R5 every subschema gives a `type`, from string, number, integer, boolean, array,
//!   object (Gemini's `Type` enum; mcpo derives its pydantic field from `type` and falls back
//!   to Any); every array gives `items`.
//! - R6 `type` is a single string, never a list (Gemini's `type` is one `Type`, OpenAPI 3.0
//!   has no type lists, and the Inspector CLI 2.12 warns about each list after every
//!   `tools/list`). Output schemas may have `{"type": "null"}` as an `anyOf` branch
//!   (structured results carry nulls, and clients validate them against the schema).

use serde_json::Value;

use super::super::CATALOG;
use super::*;

const TYPES: [&str; 6] = ["string", "number", "integer", "boolean", "array", "object"];
const FORBIDDEN_ANYWHERE: [&str; 6] = [
    "$ref",
    "$defs",
    "definitions",
    "$dynamicRef",
    "$schema",
    "format",
];

/// Every way `schema` (at `path`) breaks the rules.
fn problems(schema: &Value, path: &str, direction: Direction, out: &mut Vec<String>) {
    let Value::Object(schema) = schema else {
        out.push(format!("{path}: a boolean or non-object schema (R3)"));
        return;
    };
    for key in FORBIDDEN_ANYWHERE {
        if schema.contains_key(key) {
            out.push(format!("{path}: has {key} (R2/R4)"));
        }
    }
    // A schema made of alternatives has its types in the alternatives.
    let alternatives = ["anyOf", "oneOf", "allOf"]
        .iter()
        .any(|key| schema.contains_key(*key));
    match schema.get("type") {
        Some(Value::String(kind)) if TYPES.contains(&kind.as_str()) => {}
        Some(Value::String(kind)) if kind == "null" && direction == Direction::Output => {}
        None if alternatives => {}
        other => out.push(format!("{path}: type {other:?} (R5/R6)")),
    }
    let is_array = schema.get("type").and_then(Value::as_str) == Some("array");
    if is_array && !schema.contains_key("items") {
        out.push(format!("{path}: an array without items (R5)"));
    }
    if let Some(Value::Object(properties)) = schema.get("properties") {
        for (name, sub) in properties {
            problems(sub, &format!("{path}.{name}"), direction, out);
        }
    }
    if let Some(items) = schema.get("items") {
        problems(items, &format!("{path}[]"), direction, out);
    }
    if let Some(extra @ Value::Object(_)) = schema.get("additionalProperties") {
        problems(extra, &format!("{path}{{*}}"), direction, out);
    }
    for key in ["anyOf", "oneOf", "allOf"] {
        if let Some(Value::Array(list)) = schema.get(key) {
            for (index, sub) in list.iter().enumerate() {
                problems(sub, &format!("{path}/{key}/{index}"), direction, out);
            }
        }
    }
}

/// R1 and then every other rule, for one root schema.
fn root_problems(root: &JsonObject, name: &str, direction: Direction) -> Vec<String> {
    let mut out = Vec::new();
    if root.get("type") != Some(&Value::from("object")) {
        out.push(format!("{name}: the root is not type object (R1)"));
    }
    if !root.contains_key("properties") {
        out.push(format!("{name}: the root has no properties (R1)"));
    }
    for key in ["anyOf", "oneOf", "allOf", "not", "enum"] {
        if root.contains_key(key) {
            out.push(format!("{name}: {key} at the root (R1)"));
        }
    }
    problems(&Value::Object(root.clone()), name, direction, &mut out);
    out
}

#[test]
fn every_tool_schema_is_in_the_portable_subset() {
    let mut found = Vec::new();
    for (_, tool) in CATALOG.iter() {
        let name = format!("{} input", tool.name);
        found.extend(root_problems(&tool.input_schema, &name, Direction::Input));
        if let Some(output) = &tool.output_schema {
            let name = format!("{} output", tool.name);
            found.extend(root_problems(output, &name, Direction::Output));
        }
    }
    assert!(found.is_empty(), "{}", found.join("\n"));
}

/// The near miss: the rules do catch what schemars writes and `portable` removes.
#[test]
fn the_rules_catch_what_the_rewrite_removes() {
    let raw: JsonObject = serde_json::from_value(serde_json::json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": {
            "count": {"type": ["integer", "null"], "format": "uint64", "minimum": 0},
            "list": {"type": "array", "items": {"type": "number", "format": "double"}},
        },
    }))
    .unwrap();
    let input = root_problems(&raw, "raw", Direction::Input);
    assert_eq!(input.len(), 4, "{input:?}"); // $schema, two formats, a type list
    let tool = portable(Tool::new("t", "d", raw.clone()).with_raw_output_schema(raw.into()));
    assert_eq!(
        root_problems(&tool.input_schema, "t", Direction::Input),
        Vec::<String>::new()
    );
    let output = tool.output_schema.unwrap();
    assert_eq!(
        root_problems(&output, "t", Direction::Output),
        Vec::<String>::new()
    );
    assert_eq!(
        output["properties"]["count"],
        serde_json::json!({"anyOf": [{"type": "integer", "minimum": 0}, {"type": "null"}]}),
        "an output keeps its nulls, as a branch of its own; the bound stays on the integer"
    );
}

/// An output's `[T, "null"]` becomes `anyOf` branches: the annotations stay outside, every
/// constraint goes with `T`; and the rules refuse a type list in an output too.
#[test]
fn an_output_null_is_an_any_of_branch_and_a_type_list_is_refused() {
    let raw: JsonObject = serde_json::from_value(serde_json::json!({
        "type": "object",
        "properties": {
            "disk": {
                "description": "the root disk",
                "type": ["object", "null"],
                "properties": {"free": {"type": "integer", "format": "uint64"}},
                "required": ["free"],
            },
            "names": {"type": ["array", "null"], "items": {"type": "string"}},
            "either": {"type": ["string", "integer"]},
        },
    }))
    .unwrap();
    let found = root_problems(&raw, "raw", Direction::Output);
    assert_eq!(found.len(), 4, "{found:?}"); // three type lists and a format
    let tool = portable(Tool::new("t", "d", JsonObject::new()).with_raw_output_schema(raw.into()));
    let output = tool.output_schema.unwrap();
    assert_eq!(
        output["properties"]["disk"],
        serde_json::json!({
            "description": "the root disk",
            "anyOf": [
                {"type": "object", "properties": {"free": {"type": "integer"}}, "required": ["free"]},
                {"type": "null"},
            ],
        })
    );
    assert_eq!(
        output["properties"]["names"]["anyOf"][0],
        serde_json::json!({"type": "array", "items": {"type": "string"}})
    );
    // The near miss: a list of two real types is not a nullable value; it is left for the
    // rules to refuse.
    assert_eq!(
        root_problems(&output, "t", Direction::Output),
        vec!["t.either: type Some(Array [String(\"string\"), String(\"integer\")]) (R5/R6)"]
    );
}

#[test]
fn the_rules_catch_a_boolean_items_schema_and_an_untyped_property() {
    let raw: JsonObject = serde_json::from_value(serde_json::json!({
        "type": "object",
        "properties": {"jobs": {"type": "array", "items": true}, "any": {}},
    }))
    .unwrap();
    let found = root_problems(&raw, "raw", Direction::Output);
    assert_eq!(found.len(), 2, "{found:?}");
}

#[test]
fn references_are_inlined_and_a_self_containing_type_is_left_for_the_rules() {
    let raw: JsonObject = serde_json::from_value(serde_json::json!({
        "type": "object",
        "properties": {
            "state": {"$ref": "#/$defs/State", "description": "mine"},
            "tree": {"$ref": "#/$defs/Tree"},
        },
        "$defs": {
            "State": {"type": "string", "description": "theirs", "enum": ["a", "b"]},
            "Tree": {"type": "object", "properties": {"child": {"$ref": "#/$defs/Tree"}}},
        },
    }))
    .unwrap();
    let tool = portable(Tool::new("t", "d", raw));
    let schema = &tool.input_schema;
    assert!(!schema.contains_key("$defs"));
    let state = &schema["properties"]["state"];
    assert_eq!(state["type"], "string");
    assert_eq!(
        state["description"], "mine",
        "the referring schema's own keys win"
    );
    let found = root_problems(schema, "t", Direction::Input);
    assert!(
        !found.is_empty() && found.iter().all(|problem| problem.contains(".child.child")),
        "the recursion bottoms out in a $ref the rules refuse: {found:?}"
    );
}
