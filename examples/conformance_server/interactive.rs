//! Fixture tools that talk to the client while they run: log and progress
//! notifications (both eras), and on the 2025 wire, sampling and elicitation requests
//! sent back to the client on the tool call's own stream.

#![allow(deprecated)] // Logging and sampling are SEP-2577-deprecated in rmcp.

use std::time::Duration;

use rmcp::{
    ErrorData as McpError, RoleServer,
    model::{
        CallToolResult, ClientResult, ContentBlock, CreateMessageRequestParams, ElicitRequest,
        ElicitRequestParams, JsonObject, LoggingLevel, LoggingMessageNotificationParam,
        NumberOrString, ProgressNotificationParam, SamplingMessage, ServerRequest,
    },
    service::RequestContext,
};
use serde_json::{Value, json};

use super::fixtures::parse;

/// Pause between notifications, so they visibly arrive while the call is in flight.
const STEP: Duration = Duration::from_millis(50);

fn text(text: impl Into<String>) -> CallToolResult {
    CallToolResult::success(vec![ContentBlock::text(text)])
}

fn peer_error(what: &str) -> impl FnOnce(rmcp::ServiceError) -> McpError {
    let what = what.to_owned();
    move |error| McpError::internal_error(format!("{what} failed: {error}"), None)
}

async fn log(context: &RequestContext<RoleServer>, message: &str) -> Result<(), McpError> {
    let params = LoggingMessageNotificationParam::new(LoggingLevel::Info, json!(message));
    context
        .peer
        .notify_logging_message(params)
        .await
        .map_err(peer_error("logging notification"))
}

/// `test_tool_with_logging` (2025): three log messages, 50 ms apart.
pub async fn log_three_messages(
    context: &RequestContext<RoleServer>,
) -> Result<CallToolResult, McpError> {
    let messages = [
        "Tool execution started",
        "Tool processing data",
        "Tool execution completed",
    ];
    for (index, message) in messages.into_iter().enumerate() {
        if index > 0 {
            tokio::time::sleep(STEP).await;
        }
        log(context, message).await?;
    }
    Ok(text("Tool with logging executed successfully"))
}

/// `test_logging_tool` (2026): logs only when the request's `_meta` asked for a log level.
pub async fn log_if_requested(
    context: &RequestContext<RoleServer>,
) -> Result<CallToolResult, McpError> {
    if context.meta.log_level().is_none() {
        return Ok(text("no log level requested; no logs sent"));
    }
    log(context, "test_logging_tool log").await?;
    Ok(text("logged"))
}

/// `test_tool_with_progress`: progress 0, 50, 100 of 100 on the caller's token; the
/// result is the token itself.
pub async fn report_progress(
    context: &RequestContext<RoleServer>,
) -> Result<CallToolResult, McpError> {
    let Some(token) = context.meta.get_progress_token() else {
        return Ok(text("no progress token"));
    };
    for progress in [0u32, 50, 100] {
        if progress > 0 {
            tokio::time::sleep(STEP).await;
        }
        let mut params = ProgressNotificationParam::new(token.clone(), progress.into());
        params.total = Some(100.0);
        params.message = Some(format!("Completed step {progress} of 100"));
        context
            .peer
            .notify_progress(params)
            .await
            .map_err(peer_error("progress notification"))?;
    }
    Ok(text(match &token.0 {
        NumberOrString::Number(number) => number.to_string(),
        NumberOrString::String(string) => string.to_string(),
    }))
}

fn string_argument<'a>(arguments: Option<&'a JsonObject>, name: &str) -> Result<&'a str, McpError> {
    arguments
        .and_then(|arguments| arguments.get(name))
        .and_then(Value::as_str)
        .ok_or_else(|| McpError::invalid_params(format!("missing string argument {name:?}"), None))
}

/// `test_sampling` (2025): ask the client's LLM, return what it said.
pub async fn sample(
    arguments: Option<&JsonObject>,
    context: &RequestContext<RoleServer>,
) -> Result<CallToolResult, McpError> {
    let prompt = string_argument(arguments, "prompt")?;
    let params = CreateMessageRequestParams::new(vec![SamplingMessage::user_text(prompt)], 100);
    let result = context
        .peer
        .create_message(params)
        .await
        .map_err(peer_error("sampling/createMessage"))?;
    let result = serde_json::to_value(result).unwrap_or_default();
    let answer = result["content"]["text"].as_str().unwrap_or("No response");
    Ok(text(format!("LLM response: {answer}")))
}

/// Which of the 2025 elicitation fixtures to run.
#[derive(Debug, Clone, Copy)]
pub enum Elicitation {
    /// `test_elicitation`: a username and an email, with the caller's message.
    UserInfo,
    /// `test_elicitation_sep1034_defaults`: one property of each type, with defaults.
    Defaults,
    /// `test_elicitation_sep1330_enums`: the five enum shapes of SEP-1330.
    Enums,
}

impl Elicitation {
    pub fn of_tool(name: &str) -> Option<Self> {
        match name {
            "test_elicitation" => Some(Self::UserInfo),
            "test_elicitation_sep1034_defaults" => Some(Self::Defaults),
            "test_elicitation_sep1330_enums" => Some(Self::Enums),
            _ => None,
        }
    }

    /// `(message, properties, result prefix)`.
    fn form(
        self,
        arguments: Option<&JsonObject>,
    ) -> Result<(String, Value, &'static str), McpError> {
        Ok(match self {
            Self::UserInfo => (
                string_argument(arguments, "message")?.to_owned(),
                json!({
                    "username": { "type": "string", "description": "User's response" },
                    "email": { "type": "string", "description": "User's email address" }
                }),
                "User response",
            ),
            Self::Defaults => (
                "Please review and update the form fields with defaults".to_owned(),
                json!({
                    "name": { "type": "string", "description": "User name", "default": "John Doe" },
                    "age": { "type": "integer", "description": "User age", "default": 30 },
                    "score": { "type": "number", "description": "User score", "default": 95.5 },
                    "status": { "type": "string", "description": "User status",
                        "enum": ["active", "inactive", "pending"], "default": "active" },
                    "verified": { "type": "boolean", "description": "Verification status", "default": true }
                }),
                "Elicitation completed",
            ),
            Self::Enums => (
                "Please select options from the enum fields".to_owned(),
                sep1330_enum_properties(),
                "Elicitation completed",
            ),
        })
    }

    fn required(self) -> Value {
        match self {
            Self::UserInfo => json!(["username", "email"]),
            Self::Defaults | Self::Enums => json!([]),
        }
    }

    /// Send the form to the client and report its answer.
    pub async fn run(
        self,
        arguments: Option<&JsonObject>,
        context: &RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let (message, properties, prefix) = self.form(arguments)?;
        let params = ElicitRequestParams::FormElicitationParams {
            meta: None,
            message,
            requested_schema: parse(json!({ "type": "object", "properties": properties,
                "required": self.required() })),
        };
        let request = ServerRequest::ElicitRequest(ElicitRequest::new(params));
        let response = context
            .peer
            .send_request(request)
            .await
            .map_err(peer_error("elicitation/create"))?;
        let ClientResult::ElicitResult(answer) = response else {
            return Err(McpError::internal_error(
                "elicitation/create: unexpected answer",
                None,
            ));
        };
        let answer = serde_json::to_value(answer).unwrap_or_default();
        let content = answer.get("content").cloned().unwrap_or_else(|| json!({}));
        Ok(text(format!(
            "{prefix}: action={}, content={content}",
            answer["action"].as_str().unwrap_or_default()
        )))
    }
}

fn sep1330_enum_properties() -> Value {
    let titled = |prefix: &str, titles: [&str; 3]| -> Value {
        titles
            .iter()
            .enumerate()
            .map(|(index, title)| json!({ "const": format!("{prefix}{}", index + 1), "title": title }))
            .collect()
    };
    json!({
        "untitledSingle": { "type": "string", "description": "Select one option",
            "enum": ["option1", "option2", "option3"] },
        "titledSingle": { "type": "string", "description": "Select one option with titles",
            "oneOf": titled("value", ["First Option", "Second Option", "Third Option"]) },
        "legacyEnum": { "type": "string", "description": "Select one option (legacy)",
            "enum": ["opt1", "opt2", "opt3"], "enumNames": ["Option One", "Option Two", "Option Three"] },
        "untitledMulti": { "type": "array", "description": "Select multiple options",
            "minItems": 1, "maxItems": 3, "items": { "type": "string", "enum": ["option1", "option2", "option3"] } },
        "titledMulti": { "type": "array", "description": "Select multiple options with titles",
            "minItems": 1, "maxItems": 3,
            "items": { "anyOf": titled("value", ["First Choice", "Second Choice", "Third Choice"]) } }
    })
}

#[cfg(test)]
mod tests {
    use rmcp::model::ElicitationSchema;

    use super::*;

    /// rmcp's typed schema must keep every keyword the SEP-1034/1330 checks read.
    #[test]
    fn elicitation_schemas_survive_rmcp_types() {
        for (kind, properties) in [
            (
                Elicitation::Defaults,
                Elicitation::Defaults.form(None).unwrap().1,
            ),
            (Elicitation::Enums, sep1330_enum_properties()),
        ] {
            let schema =
                json!({ "type": "object", "properties": properties, "required": kind.required() });
            let typed: ElicitationSchema = parse(schema.clone());
            assert_eq!(serde_json::to_value(typed).unwrap(), schema, "{kind:?}");
        }
    }
}
