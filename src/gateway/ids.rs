//! Ids that name their host. A job or terminal a host starts through the gateway gets an
//! id `<host>:<id>` in what the client sees (text and structured content), so any gateway
//! can route a later `job_output` or `terminal_send` for it; the host sees its own id.

use rmcp::model::{CallToolResult, ContentBlock, JsonObject};
use serde_json::Value;

/// Arguments and result fields that carry a host-side id.
const ID_FIELDS: [&str; 2] = ["job_id", "terminal_id"];

/// An id argument names another host than the call's `host`.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{field} {id:?} belongs to host {named:?}, not {host:?}")]
pub struct ForeignId {
    pub field: &'static str,
    pub id: String,
    pub named: String,
    pub host: String,
}

/// The host an id argument names (`web1` of `web1:abc`), if any: used when a call names
/// no `host` of its own.
pub fn host_named_by(arguments: &JsonObject) -> Option<String> {
    ID_FIELDS.iter().find_map(|field| {
        let id = arguments.get(*field)?.as_str()?;
        id.split_once(':').map(|(host, _)| host.to_owned())
    })
}

/// `arguments` as the host `host` must see them: each id field's `<host>:` prefix taken
/// off (one naming another host is refused); ids without a prefix pass as they are.
pub fn to_host(arguments: &mut JsonObject, host: &str) -> Result<(), ForeignId> {
    for field in ID_FIELDS {
        let Some(Value::String(id)) = arguments.get_mut(field) else {
            continue;
        };
        if let Some((named, local)) = id.split_once(':') {
            if named != host {
                return Err(ForeignId {
                    field,
                    id: id.clone(),
                    named: named.to_owned(),
                    host: host.to_owned(),
                });
            }
            *id = local.to_owned();
        }
    }
    Ok(())
}

/// `result` as the client must see it: every id field in its structured content (at any
/// depth) named `<host>:<id>`, and each such id in its text blocks too.
pub fn to_client(result: &mut CallToolResult, host: &str) {
    let mut ids = Vec::new();
    if let Some(structured) = result.structured_content.as_mut() {
        qualify(structured, host, &mut ids);
    }
    if ids.is_empty() {
        return;
    }
    ids.sort_by_key(|id| std::cmp::Reverse(id.len()));
    ids.dedup();
    for block in &mut result.content {
        if let ContentBlock::Text(text) = block {
            for id in &ids {
                text.text = replace_whole(&text.text, id, &format!("{host}:{id}"));
            }
        }
    }
}

fn qualify(value: &mut Value, host: &str, ids: &mut Vec<String>) {
    match value {
        Value::Object(object) => {
            for (key, value) in object.iter_mut() {
                if ID_FIELDS.contains(&key.as_str())
                    && let Value::String(id) = value
                {
                    if !id.is_empty() && !id.contains(':') {
                        ids.push(id.clone());
                        *id = format!("{host}:{id}");
                    }
                } else {
                    qualify(value, host, ids);
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                qualify(item, host, ids);
            }
        }
        _ => {}
    }
}

/// `text` with each occurrence of `id` that is not part of a longer word replaced.
fn replace_whole(text: &str, id: &str, with: &str) -> String {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == ':';
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut before: Option<char> = None;
    while let Some(at) = rest.find(id) {
        let prior = rest[..at].chars().next_back().or(before);
        let after = rest[at + id.len()..].chars().next();
        out.push_str(&rest[..at]);
        if prior.is_some_and(word) || after.is_some_and(word) {
            out.push_str(id);
        } else {
            out.push_str(with);
        }
        before = id.chars().next_back();
        rest = &rest[at + id.len()..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(value: Value) -> JsonObject {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn an_id_for_this_host_loses_its_prefix_and_a_plain_one_stays() {
        let mut arguments = object(json!({"host": "web1", "job_id": "web1:j42"}));
        to_host(&mut arguments, "web1").unwrap();
        assert_eq!(arguments["job_id"], "j42");
        let mut plain = object(json!({"job_id": "j42"}));
        to_host(&mut plain, "web1").unwrap();
        assert_eq!(plain["job_id"], "j42");
    }

    #[test]
    fn an_id_of_another_host_is_refused() {
        let mut arguments = object(json!({"terminal_id": "db1:t1"}));
        let error = to_host(&mut arguments, "web1").unwrap_err();
        assert_eq!(error.named, "db1");
        assert_eq!(arguments["terminal_id"], "db1:t1");
    }

    #[test]
    fn the_host_of_an_id_is_read_when_the_call_names_none() {
        assert_eq!(
            host_named_by(&object(json!({"job_id": "web2:abc"}))).as_deref(),
            Some("web2")
        );
        assert_eq!(host_named_by(&object(json!({"job_id": "abc"}))), None);
    }

    #[test]
    fn result_ids_are_named_with_their_host_in_structure_and_text() {
        let mut result = CallToolResult::success(vec![ContentBlock::text(
            "started job ab12 (ab123 is another)",
        )]);
        result.structured_content = Some(json!({
            "job_id": "ab12",
            "jobs": [{"job_id": "cd34", "state": "running"}],
            "command": "ab12"
        }));
        to_client(&mut result, "web1");
        let structured = result.structured_content.as_ref().unwrap();
        assert_eq!(structured["job_id"], "web1:ab12");
        assert_eq!(structured["jobs"][0]["job_id"], "web1:cd34");
        assert_eq!(structured["command"], "ab12");
        let ContentBlock::Text(text) = &result.content[0] else {
            panic!()
        };
        assert_eq!(text.text, "started job web1:ab12 (ab123 is another)");
    }
}
