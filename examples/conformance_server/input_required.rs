//! The 2026-07-28 multi round-trip fixtures (SEP-2322): tools and a prompt that answer
//! with an input-required result, then complete once the client retries with the
//! `inputResponses` (and the echoed `requestState`) they asked for.
//!
//! Every round is decided from the retry alone (stateless): what was answered, and
//! the sealed state of the previous round.

#![allow(deprecated)] // Sampling and roots requests are SEP-2577-deprecated in rmcp.

use rmcp::{
    ErrorData as McpError,
    model::{
        CallToolRequestParams, CallToolResponse, CallToolResult, ClientCapabilities, ContentBlock,
        CreateMessageRequest, CreateMessageRequestParams, ElicitRequest, ElicitRequestParams,
        GetPromptRequestParams, GetPromptResponse, GetPromptResult, InputRequest, InputRequests,
        InputRequiredResult, InputResponses, ListRootsRequest, PromptMessage, Role,
        SamplingMessage,
    },
};
use serde_json::{Value, json};

use super::{fixtures::parse, request_state::StateSealer};

/// The name of the only input-required prompt.
pub const PROMPT: &str = "test_input_required_result_prompt";

/// The client's answers to the previous round, checked to be objects.
struct Answers<'a>(Option<&'a InputResponses>);

impl<'a> Answers<'a> {
    fn parse(responses: Option<&'a InputResponses>) -> Result<Self, McpError> {
        if let Some((key, _)) = responses
            .into_iter()
            .flatten()
            .find(|(_, value)| !value.is_object())
        {
            return Err(McpError::invalid_params(
                format!("invalid params: inputResponses.{key} must be an object"),
                None,
            ));
        }
        Ok(Self(responses))
    }

    fn get(&self, key: &str) -> Option<&'a Value> {
        self.0.and_then(|responses| responses.get(key))
    }

    fn is_empty(&self) -> bool {
        self.0.is_none_or(|responses| responses.is_empty())
    }

    /// The content of an accepted elicitation answer.
    fn accepted(&self, key: &str) -> Option<&'a Value> {
        let answer = self.get(key)?;
        (answer["action"] == "accept" && answer["content"].is_object()).then(|| &answer["content"])
    }

    /// A string field of an accepted elicitation answer.
    fn accepted_text(&self, key: &str, field: &str) -> Option<&'a str> {
        self.accepted(key)?.get(field)?.as_str()
    }
}

fn elicit(message: &str, property: &str, kind: &str) -> InputRequest {
    InputRequest::Elicitation(ElicitRequest::new(
        ElicitRequestParams::FormElicitationParams {
            meta: None,
            message: message.into(),
            requested_schema: parse(json!({ "type": "object", "required": [property],
            "properties": { property: { "type": kind } } })),
        },
    ))
}

fn sample(text: &str, max_tokens: u32) -> InputRequest {
    InputRequest::CreateMessage(CreateMessageRequest::new(CreateMessageRequestParams::new(
        vec![SamplingMessage::user_text(text)],
        max_tokens,
    )))
}

fn list_roots() -> InputRequest {
    InputRequest::ListRoots(ListRootsRequest::default())
}

fn ask(requests: impl IntoIterator<Item = (&'static str, InputRequest)>) -> InputRequiredResult {
    let requests: InputRequests = requests
        .into_iter()
        .map(|(key, request)| (key.to_owned(), request))
        .collect();
    InputRequiredResult::from_input_requests(requests)
}

fn ask_with_state(
    requests: impl IntoIterator<Item = (&'static str, InputRequest)>,
    state: String,
) -> InputRequiredResult {
    let mut result = ask(requests);
    result.request_state = Some(state);
    result
}

fn text(text: impl Into<String>) -> CallToolResponse {
    CallToolResult::success(vec![ContentBlock::text(text)]).into()
}

/// Run an input-required fixture tool; `None` if `request` names another tool.
pub fn call_tool(
    request: &CallToolRequestParams,
    capabilities: Option<ClientCapabilities>,
    sealer: &StateSealer,
) -> Option<Result<CallToolResponse, McpError>> {
    let name = request.name.as_ref();
    let answers = match Answers::parse(request.input_responses.as_ref()) {
        Ok(answers) => answers,
        Err(error) => return is_input_required_tool(name).then_some(Err(error)),
    };
    let state = || sealer.open(request.request_state.as_deref());
    let response = match name {
        "test_streaming_elicitation" => Ok(streaming_elicitation()),
        "test_input_required_result_elicitation" => Ok(elicitation(&answers)),
        "test_input_required_result_sampling" => Ok(sampling(&answers)),
        "test_input_required_result_list_roots" => Ok(roots(&answers)),
        "test_input_required_result_request_state"
        | "test_input_required_result_tampered_state" => {
            state().map(|state| confirmation(name, state, &answers, sealer))
        }
        "test_input_required_result_multiple_inputs" => {
            state().map(|state| multiple_inputs(state, &answers, sealer))
        }
        "test_input_required_result_multi_round" => {
            state().map(|state| multi_round(state, request, &answers, sealer))
        }
        "test_input_required_result_capabilities" => {
            only_declared_capabilities(capabilities.unwrap_or_default(), &answers)
        }
        _ => return None,
    };
    Some(response)
}

fn is_input_required_tool(name: &str) -> bool {
    name.starts_with("test_input_required_result_") || name == "test_streaming_elicitation"
}

/// `test_streaming_elicitation`: asks in its result, never with a request on the stream.
fn streaming_elicitation() -> CallToolResponse {
    ask([(
        "confirm",
        elicit("Streaming elicitation", "answer", "string"),
    )])
    .into()
}

fn elicitation(answers: &Answers<'_>) -> CallToolResponse {
    match answers.accepted_text("user_name", "name") {
        Some(name) => text(format!("Hello, {name}!")),
        None => ask([("user_name", elicit("What is your name?", "name", "string"))]).into(),
    }
}

fn sampling(answers: &Answers<'_>) -> CallToolResponse {
    match answers.get("capital_question") {
        Some(answer) => text(format!(
            "Sampling response: {}",
            answer["content"]["text"].as_str().unwrap_or_default()
        )),
        None => ask([(
            "capital_question",
            sample("What is the capital of France?", 100),
        )])
        .into(),
    }
}

fn roots(answers: &Answers<'_>) -> CallToolResponse {
    let Some(roots) = answers
        .get("client_roots")
        .and_then(|answer| answer["roots"].as_array())
    else {
        return ask([("client_roots", list_roots())]).into();
    };
    let uris: Vec<&str> = roots
        .iter()
        .filter_map(|root| root["uri"].as_str())
        .collect();
    text(format!("Roots: {}", uris.join(", ")))
}

/// One confirmation round whose state must come back intact.
fn confirmation(
    tool: &str,
    state: Option<Value>,
    answers: &Answers<'_>,
    sealer: &StateSealer,
) -> CallToolResponse {
    if state.is_some() && answers.get("confirm").is_some() {
        return text("state-ok");
    }
    let state = sealer.seal(&json!({ "tool": tool }));
    ask_with_state(
        [("confirm", elicit("Please confirm", "ok", "boolean"))],
        state,
    )
    .into()
}

fn multiple_inputs(
    state: Option<Value>,
    answers: &Answers<'_>,
    sealer: &StateSealer,
) -> CallToolResponse {
    let keys = ["user_name", "greeting", "client_roots"];
    if state.is_some() && keys.iter().all(|key| answers.get(key).is_some()) {
        let greeting = answers
            .get("greeting")
            .and_then(|g| g["content"]["text"].as_str());
        let name = answers.accepted_text("user_name", "name");
        return text(format!(
            "{} {}",
            greeting.unwrap_or_default(),
            name.unwrap_or_default()
        ));
    }
    let requests = [
        ("user_name", elicit("What is your name?", "name", "string")),
        ("greeting", sample("Generate a greeting", 50)),
        ("client_roots", list_roots()),
    ];
    ask_with_state(requests, sealer.seal(&json!({ "tool": "multiple_inputs" }))).into()
}

/// Round 1 asks for a name, round 2 for a colour (with a new state), round 3 completes.
fn multi_round(
    state: Option<Value>,
    request: &CallToolRequestParams,
    answers: &Answers<'_>,
    sealer: &StateSealer,
) -> CallToolResponse {
    let step1 = || {
        (
            "step1",
            elicit("Step 1: What is your name?", "name", "string"),
        )
    };
    let step2 = || {
        (
            "step2",
            elicit("Step 2: What is your favorite color?", "color", "string"),
        )
    };
    let round = state.as_ref().and_then(|state| state["round"].as_u64());
    match round {
        None => ask_with_state([step1()], sealer.seal(&json!({ "round": 1 }))).into(),
        Some(1) => match answers.accepted_text("step1", "name") {
            Some(name) => {
                ask_with_state([step2()], sealer.seal(&json!({ "round": 2, "name": name }))).into()
            }
            None => {
                ask_with_state([step1()], request.request_state.clone().unwrap_or_default()).into()
            }
        },
        Some(_) => match answers.accepted_text("step2", "color") {
            Some(color) => {
                let name = state
                    .as_ref()
                    .and_then(|s| s["name"].as_str())
                    .unwrap_or_default();
                text(format!("{name} likes {color}"))
            }
            None => {
                ask_with_state([step2()], request.request_state.clone().unwrap_or_default()).into()
            }
        },
    }
}

/// Ask only for what the client declared it can do; -32021 if it declared nothing.
fn only_declared_capabilities(
    capabilities: ClientCapabilities,
    answers: &Answers<'_>,
) -> Result<CallToolResponse, McpError> {
    let mut requests = Vec::new();
    if capabilities.sampling.is_some() {
        requests.push(("q", sample("Capability-gated question", 50)));
    }
    if capabilities.elicitation.is_some() {
        requests.push(("e", elicit("Capability-gated question", "answer", "string")));
    }
    if capabilities.roots.is_some() {
        requests.push(("r", list_roots()));
    }
    if requests.is_empty() {
        return Err(McpError::missing_required_client_capability(parse(
            json!({ "sampling": {} }),
        )));
    }
    if !answers.is_empty() {
        return Ok(text("capabilities-ok"));
    }
    Ok(ask(requests).into())
}

/// `prompts/get` of the input-required prompt: it needs a context from the user.
pub fn get_prompt(request: &GetPromptRequestParams) -> Result<GetPromptResponse, McpError> {
    let answers = Answers::parse(request.input_responses.as_ref())?;
    let Some(context) = answers.accepted_text("user_context", "context") else {
        let question = elicit("What context should the prompt use?", "context", "string");
        return Ok(ask([("user_context", question)]).into());
    };
    let message = PromptMessage::new_text(Role::User, format!("Context: {context}"));
    Ok(GetPromptResult::new(vec![message]).into())
}
