//! The fixture data the conformance suites look for: tool definitions, fixed tool
//! results, resources, resource templates and prompts, with the names, texts and URIs
//! of the suites' reference "everything server" (mirrored from
//! `/work/notes/conformance-ref/fixtures.mjs`).
//!
//! Data is written as JSON and parsed into rmcp types, so it reads like the suites'
//! own fixtures and any drift from them shows in a diff.

use rmcp::model::{
    CallToolResult, GetPromptResult, Prompt, Resource, ResourceContents, ResourceTemplate, Tool,
};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

/// A 1x1 red PNG.
pub const IMG: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==";
/// A minimal WAV file.
pub const WAV: &str = "UklGRiYAAABXQVZFZm10IBAAAAABAAEAQB8AAAB9AAACABAAZGF0YQIAAAA=";

/// Which protocol era a fixture belongs to: the suites list 2025-only tools (server to
/// client requests, stream resumption) and 2026-only ones (input-required results).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Era {
    Both,
    /// 2024-11-05 .. 2025-11-25: sessions, server-to-client requests.
    Legacy,
    /// 2026-07-28: stateless, input-required results instead of server requests.
    Modern,
}

impl Era {
    pub fn includes(self, modern: bool) -> bool {
        match self {
            Era::Both => true,
            Era::Legacy => !modern,
            Era::Modern => modern,
        }
    }
}

/// Parse fixture JSON into an rmcp type. The data is static, so a failure is a bug here.
pub fn parse<T: DeserializeOwned>(value: Value) -> T {
    serde_json::from_value(value).unwrap_or_else(|error| panic!("bad fixture JSON: {error}"))
}

/// A result as a handler hands it to rmcp: with `resultType: "complete"`, which the
/// 2026-07-28 schema requires. rmcp strips it for older peers but does not add it when
/// it is missing, so results parsed from JSON must carry it.
fn complete(mut result: Value) -> Value {
    result["resultType"] = json!("complete");
    result
}

/// The input schema of `json_schema_2020_12_tool`, listed verbatim.
fn json_schema_2020_12() -> Value {
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "$defs": { "address": { "$anchor": "addressDef", "type": "object",
            "properties": { "street": { "type": "string" }, "city": { "type": "string" } } } },
        "properties": {
            "name": { "type": "string" },
            "address": { "$ref": "#/$defs/address" },
            "contactMethod": { "type": "string", "enum": ["phone", "email"] },
            "phone": { "type": "string" },
            "email": { "type": "string" }
        },
        "allOf": [{ "anyOf": [{ "required": ["phone"] }, { "required": ["email"] }] }],
        "if": { "properties": { "contactMethod": { "const": "phone" } }, "required": ["contactMethod"] },
        "then": { "required": ["phone"] },
        "else": { "required": ["email"] },
        "additionalProperties": false
    })
}

/// `(era, name, description)` of every fixture tool, in listing order.
#[rustfmt::skip]
const TOOLS: &[(Era, &str, &str)] = &[
    (Era::Both, "test_simple_text", "Tests simple text content response"),
    (Era::Both, "test_image_content", "Tests image content response"),
    (Era::Both, "test_audio_content", "Tests audio content response"),
    (Era::Both, "test_embedded_resource", "Tests embedded resource content response"),
    (Era::Both, "test_multiple_content_types", "Tests text, image and resource content"),
    (Era::Both, "test_tool_with_logging", "Tests tool that emits log messages"),
    (Era::Both, "test_tool_with_progress", "Tests tool that reports progress notifications"),
    (Era::Both, "test_error_handling", "Tests error response handling"),
    (Era::Legacy, "test_reconnection", "Closes its SSE stream mid-call (SEP-1699)"),
    (Era::Legacy, "test_sampling", "Tests server-initiated sampling"),
    (Era::Legacy, "test_elicitation", "Tests server-initiated elicitation"),
    (Era::Legacy, "test_elicitation_sep1034_defaults", "Tests elicitation defaults (SEP-1034)"),
    (Era::Legacy, "test_elicitation_sep1330_enums", "Tests elicitation enums (SEP-1330)"),
    (Era::Both, "json_schema_2020_12_tool", "Tool with JSON Schema 2020-12 features"),
    (Era::Modern, "test_missing_capability", "Needs the client sampling capability (-32021)"),
    (Era::Modern, "test_streaming_elicitation", "Returns an input-required result"),
    (Era::Modern, "test_logging_tool", "Logs only when _meta logLevel is set"),
    (Era::Modern, "test_trigger_tool_change", "Announces a tool list change"),
    (Era::Modern, "test_trigger_prompt_change", "Announces a prompt list change"),
    (Era::Modern, "test_input_required_result_elicitation", "MRTR: elicitation"),
    (Era::Modern, "test_input_required_result_sampling", "MRTR: sampling"),
    (Era::Modern, "test_input_required_result_list_roots", "MRTR: roots/list"),
    (Era::Modern, "test_input_required_result_request_state", "MRTR: requestState"),
    (Era::Modern, "test_input_required_result_multiple_inputs", "MRTR: several inputs"),
    (Era::Modern, "test_input_required_result_multi_round", "MRTR: several rounds"),
    (Era::Modern, "test_input_required_result_tampered_state", "MRTR: protected state"),
    (Era::Modern, "test_input_required_result_capabilities", "MRTR: declared capabilities"),
    (Era::Modern, "test_custom_header", "SEP-2243 x-mcp-header: Mcp-Param-Region"),
];

/// The input schema of a fixture tool; most take no arguments.
fn input_schema(tool: &str) -> Value {
    let one_string = |name: &str, description: &str| {
        json!({ "type": "object", "required": [name],
            "properties": { name: { "type": "string", "description": description } } })
    };
    match tool {
        "test_sampling" => one_string("prompt", "The prompt to send to the LLM"),
        "test_elicitation" => one_string("message", "The message to show the user"),
        "json_schema_2020_12_tool" => json_schema_2020_12(),
        "test_custom_header" => json!({ "type": "object", "required": ["region"], "properties": {
            "region": { "type": "string", "description": "Region", "x-mcp-header": "Region" } } }),
        _ => json!({ "type": "object", "properties": {} }),
    }
}

/// The `echo` tool of the benchmark suite: read-only, returns its text.
pub fn echo_tool() -> Tool {
    static ECHO: std::sync::LazyLock<Tool> = std::sync::LazyLock::new(build_echo_tool);
    ECHO.clone()
}

fn build_echo_tool() -> Tool {
    parse(json!({
        "name": "echo",
        "description": "Return the given text unchanged.",
        "inputSchema": { "type": "object", "required": ["text"],
            "properties": { "text": { "type": "string", "description": "The text to return" } } },
        "annotations": { "readOnlyHint": true, "destructiveHint": false, "idempotentHint": true, "openWorldHint": false }
    }))
}

/// The fixture tools of one era, in a stable order.
pub fn tools(modern: bool) -> Vec<Tool> {
    TOOLS
        .iter()
        .filter(|(era, ..)| era.includes(modern))
        .map(|(_, name, description)| {
            let schema = input_schema(name);
            parse(json!({ "name": name, "description": description, "inputSchema": schema }))
        })
        .collect()
}

/// Any fixture tool by name, whatever its era (for SEP-2243 header validation).
pub fn tool(name: &str) -> Option<Tool> {
    // rmcp looks a tool up on every call: build the fixtures (and their schemas) once.
    static ALL: std::sync::LazyLock<Vec<Tool>> =
        std::sync::LazyLock::new(|| tools(false).into_iter().chain(tools(true)).collect());
    ALL.iter().find(|tool| tool.name == name).cloned()
}

/// The result of a fixture tool that only returns fixed content.
pub fn fixed_tool_result(name: &str) -> Option<CallToolResult> {
    let content = match name {
        "test_simple_text" => {
            json!([{ "type": "text", "text": "This is a simple text response for testing." }])
        }
        "test_image_content" => json!([{ "type": "image", "data": IMG, "mimeType": "image/png" }]),
        "test_audio_content" => json!([{ "type": "audio", "data": WAV, "mimeType": "audio/wav" }]),
        "test_embedded_resource" => json!([{ "type": "resource", "resource": {
            "uri": "test://embedded-resource", "mimeType": "text/plain",
            "text": "This is an embedded resource content." } }]),
        "test_multiple_content_types" => json!([
            { "type": "text", "text": "Multiple content types test:" },
            { "type": "image", "data": IMG, "mimeType": "image/png" },
            { "type": "resource", "resource": { "uri": "test://mixed-content-resource",
                "mimeType": "application/json", "text": r#"{"test":"data","value":123}"# } }
        ]),
        "test_error_handling" => {
            return Some(parse(complete(
                json!({ "isError": true, "content": [{ "type": "text",
                "text": "This tool intentionally returns an error for testing" }] }),
            )));
        }
        "json_schema_2020_12_tool" => {
            json!([{ "type": "text", "text": "JSON Schema 2020-12 tool called" }])
        }
        _ => return None,
    };
    Some(parse(complete(json!({ "content": content }))))
}

pub fn resources() -> Vec<Resource> {
    parse(json!([
        { "uri": "test://static-text", "name": "static-text", "title": "Static Text Resource",
          "description": "A static text resource for testing", "mimeType": "text/plain" },
        { "uri": "test://static-binary", "name": "static-binary", "title": "Static Binary Resource",
          "description": "A static binary resource (image) for testing", "mimeType": "image/png" },
        { "uri": "test://watched-resource", "name": "watched-resource", "title": "Watched Resource",
          "description": "A resource that can be subscribed to", "mimeType": "text/plain" }
    ]))
}

pub fn resource_templates() -> Vec<ResourceTemplate> {
    parse(
        json!([{ "uriTemplate": "test://template/{id}/data", "name": "template",
        "title": "Resource Template", "description": "A resource template with parameter substitution",
        "mimeType": "application/json" }]),
    )
}

/// The contents of a resource or of an instance of the template, `None` if unknown.
pub fn read_resource(uri: &str) -> Option<Vec<ResourceContents>> {
    let text = |mime: &str, text: &str| json!([{ "uri": uri, "mimeType": mime, "text": text }]);
    let contents = match uri {
        "test://static-text" => text(
            "text/plain",
            "This is the content of the static text resource.",
        ),
        "test://static-binary" => json!([{ "uri": uri, "mimeType": "image/png", "blob": IMG }]),
        "test://watched-resource" => text("text/plain", "Watched resource content"),
        _ => {
            let id = uri
                .strip_prefix("test://template/")?
                .strip_suffix("/data")
                .filter(|id| !id.is_empty() && !id.contains('/'))?;
            let data =
                json!({ "id": id, "templateTest": true, "data": format!("Data for ID: {id}") });
            text("application/json", &data.to_string())
        }
    };
    Some(parse(contents))
}

/// The prompts of one era (the input-required prompt exists only on 2026-07-28).
pub fn prompts(modern: bool) -> Vec<Prompt> {
    let argument = |name: &str, description: &str| json!({ "name": name, "description": description, "required": true });
    let mut prompts = vec![
        json!({ "name": "test_simple_prompt", "title": "Simple Test Prompt",
            "description": "A simple prompt without arguments" }),
        json!({ "name": "test_prompt_with_arguments", "title": "Prompt With Arguments",
            "description": "A prompt with required arguments",
            "arguments": [argument("arg1", "First test argument"), argument("arg2", "Second test argument")] }),
        json!({ "name": "test_prompt_with_embedded_resource", "title": "Prompt With Embedded Resource",
            "description": "A prompt that includes an embedded resource",
            "arguments": [argument("resourceUri", "URI of the resource to embed")] }),
        json!({ "name": "test_prompt_with_image", "title": "Prompt With Image",
            "description": "A prompt that includes image content" }),
    ];
    if modern {
        prompts.push(json!({ "name": "test_input_required_result_prompt",
            "description": "MRTR on prompts/get (2026-07-28)" }));
    }
    parse(Value::Array(prompts))
}

/// A fixed prompt with its arguments filled in, `None` if unknown.
pub fn get_prompt(
    name: &str,
    arguments: &serde_json::Map<String, Value>,
) -> Option<GetPromptResult> {
    let argument = |key: &str| {
        arguments
            .get(key)
            .and_then(Value::as_str)
            .unwrap_or_default()
    };
    let user = |content: Value| json!({ "role": "user", "content": content });
    let text = |text: &str| json!({ "type": "text", "text": text });
    let messages = match name {
        "test_simple_prompt" => vec![user(text("This is a simple prompt for testing."))],
        "test_prompt_with_arguments" => vec![user(text(&format!(
            "Prompt with arguments: arg1='{}', arg2='{}'",
            argument("arg1"),
            argument("arg2")
        )))],
        "test_prompt_with_embedded_resource" => vec![
            user(
                json!({ "type": "resource", "resource": { "uri": argument("resourceUri"),
                "mimeType": "text/plain", "text": "Embedded resource content for testing." } }),
            ),
            user(text("Please process the embedded resource above.")),
        ],
        "test_prompt_with_image" => vec![
            user(json!({ "type": "image", "data": IMG, "mimeType": "image/png" })),
            user(text("Please analyze the image above.")),
        ],
        _ => return None,
    };
    Some(parse(complete(json!({ "messages": messages }))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_fixture_parses() {
        assert!(tools(false).len() > 10 && tools(true).len() > 10);
        for name in [
            "test_simple_text",
            "test_error_handling",
            "test_multiple_content_types",
        ] {
            assert!(fixed_tool_result(name).is_some(), "{name}");
        }
        assert_eq!(resources().len(), 3);
        assert_eq!(resource_templates().len(), 1);
        assert!(read_resource("test://template/123/data").is_some());
        assert!(read_resource("test://template//data").is_none());
        assert_eq!(prompts(true).len(), prompts(false).len() + 1);
        assert!(get_prompt("test_prompt_with_image", &Default::default()).is_some());
        echo_tool();
    }

    #[test]
    fn the_2020_12_schema_is_listed_verbatim() {
        let tool = tool("json_schema_2020_12_tool").unwrap();
        assert_eq!(
            Value::Object((*tool.input_schema).clone()),
            json_schema_2020_12()
        );
    }
}
