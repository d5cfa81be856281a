//! The `[approval]` table: how long a command waits for a person, how many may wait per
//! principal, which tokens may approve on the page, where the page is reached and the
//! optional webhook. Parsing and defaults only.

use std::time::Duration;

use serde::Deserialize;

/// The `[approval]` table as written.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileApproval {
    /// Seconds a command waits for a decision before the timeout denies it (default 300).
    pub timeout_secs: Option<u64>,
    /// Commands of one principal waiting at once (default 4).
    pub max_pending_per_principal: Option<usize>,
    /// Token names that may approve on the page. Default: every token of role `admin`.
    /// The requesting token never approves its own command.
    pub approvers: Option<Vec<String>>,
    /// `https://host[:port]` the approval page is reached at. Default: the public URL
    /// (`public_url`, `[oauth]`), else the first listen address.
    pub page_url: Option<String>,
    /// Where to POST each request (JSON with approve/deny links).
    pub webhook_url: Option<String>,
    /// A CA file for the webhook's TLS (default: the host's trust store).
    pub webhook_ca_file: Option<std::path::PathBuf>,
    /// Failed page submissions (a token that is not an approver's) per client address and
    /// per approval in one window before both get 429 (default 5).
    pub page_failures: Option<u32>,
    /// That window, in seconds (default 60).
    pub page_failure_window_secs: Option<u64>,
    /// Token names whose own waiting commands the person at an MCP Apps client may approve
    /// or deny in the confirmation view `ui://hostmcp/approval` (`crate::approval::app_view`).
    /// Default: none.
    pub app_view_tokens: Option<Vec<String>>,
    /// Token names whose own waiting commands their client may approve by form
    /// elicitation (`elicitation/create`, or in band on the 2026-07-28 wire). The client
    /// answers, so whoever holds the token can answer yes: name only tokens a person uses
    /// through a client that shows the form. Default: every token; `[]`: none.
    pub elicitation_tokens: Option<Vec<String>>,
}

/// The `[approval]` settings in effect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalSettings {
    pub timeout: Duration,
    pub max_pending_per_principal: usize,
    /// `None`: tokens of role `admin`.
    pub approvers: Option<Vec<String>>,
    pub page_url: Option<String>,
    pub webhook_url: Option<String>,
    pub webhook_ca_file: Option<std::path::PathBuf>,
    pub page_failures: u32,
    pub page_failure_window: Duration,
    /// Tokens whose own requests the MCP Apps view may decide; empty: the view decides none.
    pub app_view_tokens: Vec<String>,
    /// Tokens whose client may be asked by form elicitation; `None`: every token.
    pub elicitation_tokens: Option<Vec<String>>,
}

impl Default for ApprovalSettings {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(300),
            max_pending_per_principal: 4,
            approvers: None,
            page_url: None,
            webhook_url: None,
            webhook_ca_file: None,
            page_failures: super::budget::DEFAULT_FAILURES,
            page_failure_window: super::budget::DEFAULT_WINDOW,
            app_view_tokens: Vec::new(),
            elicitation_tokens: None,
        }
    }
}

impl ApprovalSettings {
    /// The settings `file` gives, defaults where it says nothing.
    pub fn resolve(file: &FileApproval) -> Result<Self, &'static str> {
        let defaults = Self::default();
        if file.timeout_secs == Some(0) {
            return Err("approval: timeout_secs must be at least 1");
        }
        if file.max_pending_per_principal == Some(0) {
            return Err("approval: max_pending_per_principal must be at least 1");
        }
        if file.approvers.as_ref().is_some_and(Vec::is_empty) {
            return Err(
                "approval: an empty approvers list lets nobody approve on the page; remove it for admin tokens",
            );
        }
        if file.page_failures == Some(0) {
            return Err("approval: page_failures must be at least 1");
        }
        if file.page_failure_window_secs == Some(0) {
            return Err("approval: page_failure_window_secs must be at least 1");
        }
        for url in [&file.page_url, &file.webhook_url].into_iter().flatten() {
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                return Err("approval: page_url and webhook_url must be http:// or https:// URLs");
            }
        }
        Ok(Self {
            timeout: file
                .timeout_secs
                .map_or(defaults.timeout, Duration::from_secs),
            max_pending_per_principal: file
                .max_pending_per_principal
                .unwrap_or(defaults.max_pending_per_principal),
            approvers: file.approvers.clone(),
            page_url: file
                .page_url
                .as_ref()
                .map(|url| url.trim_end_matches('/').to_owned()),
            webhook_url: file.webhook_url.clone(),
            webhook_ca_file: file.webhook_ca_file.clone(),
            page_failures: file.page_failures.unwrap_or(defaults.page_failures),
            page_failure_window: file
                .page_failure_window_secs
                .map_or(defaults.page_failure_window, Duration::from_secs),
            app_view_tokens: file.app_view_tokens.clone().unwrap_or_default(),
            elicitation_tokens: file.elicitation_tokens.clone(),
        })
    }

    /// Whether `principal`'s own client may approve its requests by form elicitation.
    pub fn client_may_approve(&self, principal: &str) -> bool {
        self.elicitation_tokens
            .as_ref()
            .is_none_or(|names| names.iter().any(|name| name == principal))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_client_may_approve_unless_elicitation_tokens_names_some() {
        let every = ApprovalSettings::resolve(&FileApproval::default()).unwrap();
        assert!(every.client_may_approve("alice") && every.client_may_approve("bob"));
        let file = FileApproval {
            elicitation_tokens: Some(vec!["alice".to_owned()]),
            ..FileApproval::default()
        };
        let some = ApprovalSettings::resolve(&file).unwrap();
        assert!(some.client_may_approve("alice"));
        assert!(!some.client_may_approve("bob"));
        assert!(!some.client_may_approve("alic"), "whole names only");
        let file = FileApproval {
            elicitation_tokens: Some(Vec::new()),
            ..FileApproval::default()
        };
        assert!(
            !ApprovalSettings::resolve(&file)
                .unwrap()
                .client_may_approve("alice")
        );
    }

    #[test]
    fn defaults_and_refusals() {
        let settings = ApprovalSettings::resolve(&FileApproval::default()).unwrap();
        assert_eq!(settings.timeout, Duration::from_secs(300));
        assert_eq!(settings.max_pending_per_principal, 4);
        let file = FileApproval {
            timeout_secs: Some(3),
            page_url: Some("http://127.0.0.1:8080/".to_owned()),
            ..FileApproval::default()
        };
        let settings = ApprovalSettings::resolve(&file).unwrap();
        assert_eq!(settings.timeout, Duration::from_secs(3));
        assert_eq!(settings.page_url.as_deref(), Some("http://127.0.0.1:8080"));
        for bad in [
            FileApproval {
                timeout_secs: Some(0),
                ..FileApproval::default()
            },
            FileApproval {
                approvers: Some(Vec::new()),
                ..FileApproval::default()
            },
            FileApproval {
                webhook_url: Some("ftp://x".to_owned()),
                ..FileApproval::default()
            },
            FileApproval {
                page_failures: Some(0),
                ..FileApproval::default()
            },
            FileApproval {
                page_failure_window_secs: Some(0),
                ..FileApproval::default()
            },
        ] {
            assert!(ApprovalSettings::resolve(&bad).is_err(), "{bad:?}");
        }
    }
}
