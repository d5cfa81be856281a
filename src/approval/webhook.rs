//! The optional approval webhook: `[approval] webhook_url` gets an HTTP POST of each
//! request as JSON, with the page link that approves or denies it (carrying the webhook's
//! own one-time secret, so a decision through it is recorded as `via webhook`), over the
//! server's outbound TLS (`crate::outbound_tls`). Fire and forget: a webhook that fails
//! is logged; the request stays open on the other paths until its timeout.

use std::{sync::Arc, time::Duration, time::UNIX_EPOCH};

use serde::Serialize;

use super::{
    ApprovalSettings,
    broker::{ApprovalRequest, StdinShown},
};

/// How long one POST may take.
const POST_TIMEOUT: Duration = Duration::from_secs(10);

/// What the webhook receives.
#[derive(Debug, Serialize)]
pub struct WebhookBody {
    pub approval_id: String,
    pub principal: String,
    /// The tool that asked: `run_command`, `job_start` or `terminal_open`.
    pub tool: Option<String>,
    /// What the command is given on stdin; `null`: nothing.
    pub stdin: Option<StdinShown>,
    pub command: String,
    pub program: String,
    pub working_dir: Option<String>,
    pub run_as: Option<String>,
    pub rule: String,
    pub reason: Option<String>,
    /// Unix seconds when the timeout denies it.
    pub deadline: u64,
    /// The page that decides it (an approver's token is asked there).
    pub url: Option<String>,
    /// The same page, preselecting nothing: both links lead to the form.
    pub approve_url: Option<String>,
    pub deny_url: Option<String>,
}

/// A configured webhook.
#[derive(Debug, Clone)]
pub struct Webhook {
    url: String,
    ca_file: Option<std::path::PathBuf>,
}

impl Webhook {
    /// The webhook `settings` configure, if any.
    pub fn of(settings: &ApprovalSettings) -> Option<Self> {
        Some(Self {
            url: settings.webhook_url.clone()?,
            ca_file: settings.webhook_ca_file.clone(),
        })
    }

    /// POST `request` with its page link `page` (logged: the id and the outcome, never
    /// the link).
    pub async fn send(self, request: Arc<ApprovalRequest>, page: Option<String>) {
        let body = WebhookBody {
            approval_id: request.id.clone(),
            principal: request.principal.clone(),
            tool: request.tool.clone(),
            stdin: request.stdin.clone(),
            command: request.command.describe(),
            program: request.program.clone(),
            working_dir: request.working_dir.clone(),
            run_as: request.run_as.clone(),
            rule: request.rule.clone(),
            reason: request.reason.clone(),
            deadline: request
                .deadline
                .duration_since(UNIX_EPOCH)
                .map_or(0, |since| since.as_secs()),
            approve_url: page.as_ref().map(|url| format!("{url}&decision=approve")),
            deny_url: page.as_ref().map(|url| format!("{url}&decision=deny")),
            url: page,
        };
        match self.post(&body).await {
            Ok(status) => {
                tracing::info!(approval_id = %request.id, status, "approval webhook sent");
            }
            Err(error) => {
                tracing::warn!(approval_id = %request.id, %error, "approval webhook failed");
            }
        }
    }

    async fn post(&self, body: &WebhookBody) -> Result<u16, String> {
        let tls = crate::outbound_tls::client_config(self.ca_file.as_deref())
            .map_err(|error| error.to_string())?;
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .timeout(POST_TIMEOUT)
            .http1_only()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|error| error.to_string())?;
        let json = serde_json::to_vec(body).map_err(|error| error.to_string())?;
        let response = http
            .post(&self.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(json)
            .send()
            .await
            .map_err(|error| error.without_url().to_string())?;
        Ok(response.status().as_u16())
    }
}
