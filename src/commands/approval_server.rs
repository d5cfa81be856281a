//! What `hostmcp serve` starts for approvals: the `[approval]` settings applied, the page
//! routes, where the page is reached (the public URL, else the first bound address), and
//! the approvals socket in the state directory.

use std::{net::SocketAddr, path::PathBuf, sync::Arc};

use tokio_util::sync::CancellationToken;

use crate::{
    approval::{
        Approvals,
        page::{self, PageState},
        socket,
    },
    audit::AuditLog,
    auth::authenticator::Authenticator,
    config::{Config, EnvSnapshot},
    tools::ToolsState,
    transport::host_guard::HostGuard,
};

/// The approval parts of a server, before it listens.
pub struct ApprovalServer {
    pages: PageState,
    socket: Option<PathBuf>,
}

impl ApprovalServer {
    /// Apply `config`'s `[approval]` table to `tools` and gather what the page needs.
    pub fn new(
        config: &Config,
        env: &EnvSnapshot,
        tools: &Arc<ToolsState>,
        authenticator: &Arc<Authenticator>,
        audit: &AuditLog,
    ) -> Self {
        tools.approvals.configure(config.approval.clone());
        Self {
            pages: PageState {
                approvals: tools.approvals.clone(),
                authenticator: authenticator.clone(),
                audit: audit.clone(),
                trusted_proxies: config.trusted_proxies.clone(),
            },
            socket: env.state_dir().ok().map(|dir| socket::path_in(&dir)),
        }
    }

    /// Bind the socket (a failure is logged: the other paths still work), set the page's
    /// default address from `bound`, and return the page routes behind the host guard.
    pub fn start(
        self,
        config: &Config,
        bound: &[SocketAddr],
        host_guard: Arc<HostGuard>,
        shutdown: &CancellationToken,
    ) -> axum::Router {
        let approvals: Arc<Approvals> = self.pages.approvals.clone();
        let scheme = if config.tls.is_some() {
            "https"
        } else {
            "http"
        };
        let public = match &config.oauth {
            Some(settings) => Some(settings.issuer()),
            None => config.outside_auth.public_url.clone(),
        };
        if let Some(base) =
            public.or_else(|| bound.first().map(|address| format!("{scheme}://{address}")))
        {
            approvals.set_default_page_base(base);
        }
        if let Some(path) = self.socket {
            match socket::bind(&path) {
                Ok(listener) => {
                    tracing::info!(path = %path.display(), "approvals socket for `hostmcp approvals`");
                    tokio::spawn(socket::serve(
                        listener,
                        path,
                        approvals,
                        shutdown.child_token(),
                    ));
                }
                Err(error) => {
                    tracing::warn!(path = %path.display(), %error, "cannot open the approvals socket; `hostmcp approvals` will not reach this server");
                }
            }
        }
        page::routes(self.pages).layer(axum::middleware::from_fn_with_state(
            host_guard,
            crate::transport::host_guard::enforce_host_guard,
        ))
    }
}
