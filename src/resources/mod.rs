//! MCP resources: `host://info` and `host://load` (JSON), `host://os-release` (text), and
//! the template `file:///{path}` for files under the configured file roots. This module
//! owns the URIs, their MIME types and the host resources' contents; a `file://` read goes
//! through the same containment, identity gate and audit as `file_read` (the handler in
//! `crate::tools` routes it there). `host://load` can be subscribed to
//! ([`subscriptions`]). The MCP Apps views `ui://hostmcp/dashboard` and `ui://hostmcp/approval`
//! are listed and read here too; [`crate::apps`] owns them.

mod host_facts;
pub mod subscriptions;

use rmcp::model::{ReadResourceResult, Resource, ResourceContents, ResourceTemplate};

pub const INFO: &str = "host://info";
pub const LOAD: &str = "host://load";
pub const OS_RELEASE: &str = "host://os-release";
/// The template of files under the roots: the path without its leading `/`.
pub const FILE_TEMPLATE: &str = "file:///{path}";
const JSON: &str = "application/json";
const TEXT: &str = "text/plain";

/// Why a resource could not be read or subscribed to.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ResourceError {
    #[error("no resource {0:?}; resources/list and resources/templates/list name them")]
    Unknown(String),
    #[error("{0:?} cannot be read on this host")]
    Unavailable(&'static str),
    #[error("{0:?} cannot be subscribed to; only host://load can")]
    NotSubscribable(String),
    #[error("{0:?} is not a valid file URI: {1}")]
    BadFileUri(String, &'static str),
}

/// The fixed resources, as `resources/list` shows them.
pub fn list() -> Vec<Resource> {
    vec![
        Resource::new(INFO, "host-info")
            .with_title("Host info")
            .with_description(
                "What host_info reports, as JSON: OS, kernel, uptime, CPU, load, pressure, \
                 memory, root disk, virtualisation, users, process count.",
            )
            .with_mime_type(JSON),
        Resource::new(LOAD, "host-load")
            .with_title("Host load")
            .with_description(
                "Load averages (1, 5, 15 min) and runnable/total threads, as JSON; subscribe \
                 for an update notice every 2 s.",
            )
            .with_mime_type(JSON),
        Resource::new(OS_RELEASE, "os-release")
            .with_title("os-release")
            .with_description("The host's /etc/os-release, as written.")
            .with_mime_type(TEXT),
        crate::apps::dashboard::resource(),
        crate::apps::approval::resource(),
    ]
}

/// The templates, as `resources/templates/list` shows them.
pub fn templates() -> Vec<ResourceTemplate> {
    vec![
        ResourceTemplate::new(FILE_TEMPLATE, "file")
            .with_title("File under the file roots")
            .with_description(
                "A file under the configured file roots, e.g. file:///etc/hostname (the same \
                 containment and limits as file_read: the first 256 KiB, text only).",
            )
            .with_mime_type(TEXT),
    ]
}

/// Read one of the `host://` resources.
pub fn read_host(uri: &str) -> Result<ReadResourceResult, ResourceError> {
    let (text, mime) = match uri {
        INFO => (
            json(&host_facts::info().map_err(|error| unavailable(INFO, &error))?),
            JSON,
        ),
        LOAD => (
            json(&host_facts::load().map_err(|error| unavailable(LOAD, &error))?),
            JSON,
        ),
        OS_RELEASE => (
            host_facts::os_release().ok_or(ResourceError::Unavailable(OS_RELEASE))?,
            TEXT,
        ),
        crate::apps::dashboard::URI => return Ok(crate::apps::dashboard::read()),
        crate::apps::approval::URI => return Ok(crate::apps::approval::read()),
        _ => return Err(ResourceError::Unknown(uri.to_owned())),
    };
    Ok(ReadResourceResult::new(vec![
        ResourceContents::text(text, uri).with_mime_type(mime),
    ]))
}

/// `uri` could not be read: the detail to the log, a plain refusal to the client.
fn unavailable(uri: &'static str, error: &crate::host::HostError) -> ResourceError {
    tracing::warn!(uri, %error, "host resource unreadable");
    ResourceError::Unavailable(uri)
}

/// Whether `uri` may be subscribed to.
pub fn check_subscribable(uri: &str) -> Result<(), ResourceError> {
    if uri == LOAD {
        Ok(())
    } else {
        Err(ResourceError::NotSubscribable(uri.to_owned()))
    }
}

/// The absolute path a `file:///…` URI names (percent-decoded), or `None` when `uri` is
/// not a file URI.
pub fn file_path(uri: &str) -> Option<Result<String, ResourceError>> {
    let rest = uri.strip_prefix("file://")?;
    let bad = |why| Some(Err(ResourceError::BadFileUri(uri.to_owned(), why)));
    // Only the local host: `file:///path` or `file://localhost/path`.
    let path = match rest.strip_prefix("localhost") {
        Some(path) => path,
        None => rest,
    };
    if !path.starts_with('/') {
        return bad("it names another host; write file:///path");
    }
    if path.contains(['?', '#']) {
        return bad("a query or fragment is not part of a file path");
    }
    match percent_decode(path) {
        Some(decoded) => Some(Ok(decoded)),
        None => bad("it has a malformed %-escape or is not UTF-8 once decoded"),
    }
}

/// `%2F` -> `/`; `None` on a malformed escape, a NUL, or bytes that are not UTF-8.
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%' {
            let hex = text.get(index + 1..index + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            index += 3;
        } else {
            out.push(bytes[index]);
            index += 1;
        }
    }
    if out.contains(&0) {
        return None;
    }
    String::from_utf8(out).ok()
}

fn json(value: &impl serde::Serialize) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_resources_read_with_their_mime_types_and_others_are_unknown() {
        for resource in list() {
            let result = read_host(&resource.uri).unwrap();
            let value = serde_json::to_value(&result.contents[0]).unwrap();
            assert_eq!(value["uri"], resource.uri.as_str());
            assert_eq!(
                value["mimeType"],
                resource.mime_type.clone().unwrap().as_str()
            );
            let text = value["text"].as_str().unwrap();
            if resource.mime_type.as_deref() == Some(JSON) {
                serde_json::from_str::<serde_json::Value>(text).unwrap();
            }
        }
        let load: serde_json::Value = serde_json::from_str(&read_text(LOAD)).unwrap();
        assert!(load["load1"].is_number() && load["threads"].as_u64().unwrap() > 0);
        assert!(read_text(OS_RELEASE).contains("ID="));
        assert_eq!(
            read_host("host://nope").unwrap_err(),
            ResourceError::Unknown("host://nope".to_owned())
        );
    }

    fn read_text(uri: &str) -> String {
        let result = read_host(uri).unwrap();
        serde_json::to_value(&result.contents[0]).unwrap()["text"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    #[test]
    fn only_host_load_is_subscribable() {
        assert_eq!(check_subscribable(LOAD), Ok(()));
        assert!(check_subscribable(INFO).is_err());
        assert!(check_subscribable("file:///etc/hostname").is_err());
    }

    #[test]
    fn file_uris_name_local_absolute_paths() {
        let path = |uri| file_path(uri).unwrap();
        assert_eq!(path("file:///etc/hostname"), Ok("/etc/hostname".to_owned()));
        assert_eq!(
            path("file://localhost/srv/a%20b"),
            Ok("/srv/a b".to_owned())
        );
        assert_eq!(path("file:///srv%2Fapp/x"), Ok("/srv/app/x".to_owned()));
        // `..` is decoded, not resolved: containment is the file roots' (crate::files).
        assert_eq!(path("file:///srv/%2E%2E/etc"), Ok("/srv/../etc".to_owned()));
        assert!(path("file://evil.example/etc/passwd").is_err());
        assert!(path("file:///etc/passwd%00.txt").is_err());
        assert!(path("file:///etc/%zz").is_err());
        assert!(path("file:///etc/x?y").is_err());
        assert!(file_path("host://info").is_none());
    }
}
