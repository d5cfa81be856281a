//! `hostmcp serve`: resolve the configuration, set up authentication, bind, announce
//! how to connect, and serve HTTP until SIGINT or SIGTERM. SIGHUP reloads the tokens
//! (revoking the ones dropped) and the TLS certificate; tokens also expire on their own.

use std::{io::Write, net::SocketAddr, sync::Arc};

use tokio_util::sync::CancellationToken;

use super::{CommandError, reload::Reload, runtime};
use crate::{
    auth::{
        Role, Secret, TokenDigest, TokenEntry, TokenSet,
        authenticator::{Authenticator, OutsideCredentials},
        jwt::Issuers,
        revocation::Revoker,
        token::load_or_create_token,
    },
    cli::ServeArgs,
    config::{self, AuthSetting, Config, ConnectionSettings, EnvSnapshot, MetricsSettings},
    exec::BaseEnv,
    hardening,
    metrics::{Metrics, ScrapeToken, Sources},
    oauth::OAuthServer,
    tools::{HostTools, ToolsState},
    transport::{
        host_guard::HostGuard,
        http::{self, ConnectionLimits, HttpServerParts},
        metrics_route::MetricsRoute,
        tls::ReloadableTls,
    },
};

pub fn run(args: ServeArgs) -> Result<(), CommandError> {
    run_serving(args, async |tools, _audit, _shutdown| {
        Ok(HostTools::new(tools))
    })
}

/// `hostmcp serve` with the MCP handler `handler` makes (inside the runtime, from the
/// tool state, the audit log and the shutdown token): the product's tools for `serve`,
/// the fleet's for `hostmcp gateway`. Everything else (configuration, authentication,
/// OAuth, audit, TLS, transports, signals) is the same for both.
pub fn run_serving<H>(
    args: ServeArgs,
    handler: impl AsyncFnOnce(
        Arc<ToolsState>,
        crate::audit::AuditLog,
        CancellationToken,
    ) -> Result<H, CommandError>,
) -> Result<(), CommandError>
where
    H: rmcp::ServerHandler + crate::handler_link::PeerUse + Clone + Send + Sync + 'static,
{
    // First: no same-uid process may read this one's environment or memory.
    hardening::make_non_dumpable().map_err(CommandError::new)?;
    let env = EnvSnapshot::capture();
    let source = config::discover_here(args.config.as_deref(), &env);
    let config = Config::resolve(&args, &env, source.load()?)?;
    super::logging::set_format(config.log_format);
    tracing::info!("{}", source.describe());
    let state_dir = env.state_dir().ok();
    let (authenticator, generated) = authenticator(&config.auth)?;
    let authenticator = Arc::new(authenticator.with_outside(outside_credentials(&config)?));
    let audit_log = super::audit::open(config.audit.as_ref())?;
    let policy = super::resolve_policy(config.policy.clone())?;
    let (tls, acme) = match (&config.tls, &config.acme) {
        (Some(files), _) => (
            Some(
                ReloadableTls::load(&files.cert, &files.key)
                    .map_err(|error| CommandError::new(&error).with_hint(error.hint()))?,
            ),
            None,
        ),
        (None, Some(acme)) => {
            let (tls, driver) = crate::transport::acme::start(acme_order(acme))
                .map_err(|error| CommandError::new(&error).with_hint(error.hint()))?;
            (Some(tls), Some(driver))
        }
        (None, None) => (None, None),
    };
    let revoker = Revoker::new(config.on_revoke, audit_log.clone());
    let shutdown = CancellationToken::new();
    let exposure = exposure_check(&config, source.path(), state_dir, generated.as_ref());
    super::confinement::check_at_start(
        &config.token_reach,
        &policy,
        &exposure.files,
        config.confinement_degrade,
    )?;
    super::confinement::cgroups_at_start(&config, &policy)?;
    let tools = ToolsState::new(
        super::tool_settings(
            &config,
            policy,
            config.run_as.clone(),
            (config.files.clone())
                .with_protected(crate::files::ProtectedFiles::of_server(&exposure.files)),
        ),
        BaseEnv::from_server_env(),
        audit_log.clone(),
        &shutdown,
    );
    tools
        .identities
        .set_token_limits(config.token_limits.clone());
    tools.identities.set_token_reach(config.token_reach.clone());
    tools.identities.check_default().map_err(|error| {
        CommandError::new(format!("--run-as: {error}"))
            .with_hint("name a user that exists on this host")
    })?;
    if nix::unistd::Uid::effective().is_root() && config.run_as.is_none() {
        tracing::warn!(
            "hostmcp runs as root: commands of tokens without run_as are refused; set --run-as USER (or --run-as root)"
        );
    }
    let approvals = super::approval_server::ApprovalServer::new(
        &config,
        &env,
        &tools,
        &authenticator,
        &audit_log,
    );
    exposure.run(&hardening::principals_of(&config.auth));
    let reloads_tokens = matches!(config.auth, AuthSetting::Tokens(_));
    let expiring = reloads_tokens.then(|| {
        crate::auth::authenticator::expire_tokens(Arc::downgrade(&authenticator), revoker.clone())
    });
    let metrics = metrics_route(config.metrics.as_ref(), &tools, &audit_log)?;
    let oauth = match &config.oauth {
        None => None,
        Some(settings) => Some(
            OAuthServer::start(
                settings.clone(),
                authenticator.clone(),
                audit_log.clone(),
                config.trusted_proxies.clone(),
                revoker.on_revoke(),
            )
            .map_err(|error| {
                CommandError::new(&error)
                    .with_hint("docs/oauth.md: OAuth needs [[tokens]] and a writable store")
            })?,
        ),
    };
    let mut allowed_hosts = config.allowed_hosts.clone();
    // The names an ACME certificate is for are this server's names.
    if let Some(acme) = &config.acme {
        allowed_hosts.extend(acme.domains.iter().cloned());
    }
    if let Some(settings) = &config.oauth {
        // The public URL's host is this server's name.
        allowed_hosts.push(settings.public_host().to_owned());
    } else if let Some(public_url) = &config.outside_auth.public_url {
        allowed_hosts.push(crate::oauth::settings::host_of(public_url).to_owned());
    }
    let host_guard = Arc::new(HostGuard::new(
        &config.listen,
        &allowed_hosts,
        &config.allowed_origins,
    ));
    let reload = Reload {
        config_path: source.path().map(std::path::Path::to_path_buf),
        args,
        env,
        authenticator: authenticator.clone(),
        revoker,
        reloads_tokens,
        tls: tls.clone(),
        audit: audit_log.clone(),
        tools: tools.clone(),
        exposure: Some(exposure),
    };
    let fleet = fleet_settings(&config)?;
    let fleet_handler = HostTools::new(tools.clone());
    let parts = {
        let (audit, host_guard, shutdown) =
            (audit_log.clone(), host_guard.clone(), shutdown.clone());
        let (trusted_proxies, abuse, connections) = (
            config.trusted_proxies.clone(),
            config.abuse,
            config.connections,
        );
        move |handler: H| HttpServerParts {
            handler,
            authenticator,
            audit,
            auth_failures_per_minute: abuse.auth_failures_per_minute,
            trusted_proxies,
            host_guard,
            max_streams_per_principal: connections.max_streams_per_principal,
            max_sessions_per_principal: connections.max_sessions_per_principal,
            shutdown,
            metrics,
        }
    };
    runtime()?.block_on(async move {
        crate::exec::reaper::start(Some(audit_log.clone()));
        let parts = parts(handler(tools, audit_log.clone(), shutdown.clone()).await?);
        let fleet_agent = match fleet {
            None => None,
            Some(settings) => Some(
                crate::fleet::host::FleetAgent::start(
                    settings,
                    fleet_handler,
                    audit_log.clone(),
                    shutdown.clone(),
                )
                .await
                .map_err(|error| {
                    CommandError::new(&error).with_hint("docs/fleet.md: the host side")
                })?,
            ),
        };
        if !config.fleet.as_ref().is_none_or(|fleet| fleet.http) {
            tokio::spawn(handle_signals(shutdown.clone(), reload));
            shutdown.cancelled().await;
            if let Some(agent) = fleet_agent {
                agent.finished().await;
            }
            tracing::info!("stopped");
            return Ok(());
        }
        let listeners = http::bind(&config.listen).await.map_err(|error| {
            CommandError::new(error).with_hint("choose another port with --listen 127.0.0.1:PORT")
        })?;
        let bound: Vec<SocketAddr> = listeners
            .iter()
            .filter_map(|listener| listener.local_addr().ok())
            .collect();
        announce(&bound, &config, generated.as_ref());
        if let Some(expiring) = expiring {
            tokio::spawn(expiring);
        }
        tokio::spawn(handle_signals(shutdown.clone(), reload));
        let mut router = http::router(parts);
        router = router.merge(approvals.start(&config, &bound, host_guard.clone(), &shutdown));
        let outside_issuers: Vec<&str> = (config.outside_auth.issuers.iter())
            .map(|issuer| issuer.issuer.as_str())
            .collect();
        // Behind the host guard, outside the bearer authentication.
        let guarded = |routes: axum::Router| {
            routes.layer(axum::middleware::from_fn_with_state(
                host_guard,
                crate::transport::host_guard::enforce_host_guard,
            ))
        };
        if let Some(oauth) = oauth {
            tracing::info!(
                issuer = %oauth.settings.issuer(),
                "OAuth authorization server on"
            );
            tokio::spawn(oauth.clone().maintain(shutdown.clone()));
            router = router.merge(guarded(oauth.routes_beside(&outside_issuers)));
        } else if let Some(public_url) = &config.outside_auth.public_url {
            // Outside issuers only: the protected-resource metadata names them.
            let document = crate::oauth::metadata::protected_resource_document(
                public_url,
                None,
                &outside_issuers,
            );
            router = router.merge(guarded(crate::oauth::metadata::resource_routes(document)));
        } else if !outside_issuers.is_empty() {
            // Outside issuers, no public URL: the resource is named at the request's origin
            // (the Host, or a trusted proxy's Forwarded / X-Forwarded-* headers).
            let issuers = outside_issuers
                .iter()
                .map(|url| (*url).to_owned())
                .collect();
            router = router.merge(guarded(crate::oauth::metadata::origin_resource_routes(
                issuers,
                config.trusted_proxies.clone(),
            )));
        }
        // A first ACME certificate that cannot be had stops the server (with its error).
        let acme = acme.map(|driver| {
            let shutdown = shutdown.clone();
            tokio::spawn(async move {
                let result = driver.run(shutdown.clone()).await;
                if result.is_err() {
                    shutdown.cancel();
                }
                result
            })
        });
        http::serve(
            listeners,
            router,
            shutdown,
            tls,
            connection_limits(&config.connections),
        )
        .await;
        if let Some(acme) = acme
            && let Ok(Err(error)) = acme.await
        {
            return Err(CommandError::new(&error).with_hint(error.hint()));
        }
        if let Some(agent) = fleet_agent {
            agent.finished().await;
        }
        tracing::info!("stopped");
        Ok(())
    })
}

/// What `[tls.acme]` asks the transport to order.
fn acme_order(settings: &config::acme::AcmeSettings) -> crate::transport::acme::AcmeOrder<'_> {
    crate::transport::acme::AcmeOrder {
        domains: &settings.domains,
        contact: &settings.contact,
        directory_url: &settings.directory_url,
        cache_dir: &settings.cache_dir,
        ca_file: settings.ca_file.as_deref(),
    }
}

/// The fleet settings, their credential and CA files read now (a missing file is an
/// error before anything starts).
fn fleet_settings(
    config: &Config,
) -> Result<Option<crate::fleet::settings::FleetSettings>, CommandError> {
    let Some(settings) = &config.fleet else {
        return Ok(None);
    };
    settings
        .check_files()
        .map_err(|error| CommandError::new(&error).with_hint(error.hint()))?;
    Ok(Some(settings.clone()))
}

/// `/metrics` when configured: the scrape token loaded, the series made for the product's
/// tools, sampling what `tools` and `audit` count, and installed for the counting sites.
fn metrics_route(
    settings: Option<&MetricsSettings>,
    tools: &Arc<ToolsState>,
    audit: &crate::audit::AuditLog,
) -> Result<Option<MetricsRoute>, CommandError> {
    let Some(settings) = settings else {
        return Ok(None);
    };
    let token = match &settings.token_file {
        None => None,
        Some(path) => {
            let token = ScrapeToken::load(path)
                .map_err(|error| CommandError::new(&error).with_hint(error.hint()))?;
            if let Ok(metadata) = std::fs::metadata(path) {
                use std::os::unix::fs::PermissionsExt;
                if metadata.permissions().mode() & 0o077 != 0 {
                    tracing::warn!(path = %path.display(), "the metrics token file is readable by other users; chmod 600 it");
                }
            }
            Some(token)
        }
    };
    let names: Vec<String> = crate::tools::TOOLS
        .iter()
        .map(|entry| (entry.definition)().name.into_owned())
        .collect();
    let (slots, jobs, audit) = (tools.slots.clone(), tools.jobs.clone(), audit.clone());
    let metrics = Arc::new(Metrics::new(
        names.iter().map(String::as_str),
        Sources {
            commands_running: Box::new(move || slots.running()),
            jobs_running: Box::new(move || jobs.running()),
            audit_queue_depth: Box::new(move || audit.queue_depth()),
        },
    ));
    if crate::metrics::install(metrics.clone()).is_err() {
        tracing::warn!("metrics were installed already; /metrics serves a second set");
    }
    tracing::info!(
        from = if token.is_some() {
            "loopback, or anywhere with the scrape token"
        } else {
            "loopback only"
        },
        "serving Prometheus metrics at /metrics"
    );
    Ok(Some(MetricsRoute { metrics, token }))
}

/// The HTTP transport's connection limits, from the `[connections]` table.
pub fn connection_limits(settings: &ConnectionSettings) -> ConnectionLimits {
    ConnectionLimits {
        max_total: settings.max_total,
        max_per_address: settings.max_per_address,
        header_timeout: settings.header_timeout,
        tls_handshake_timeout: settings.tls_handshake_timeout,
    }
}

/// What to check of the server's own files and placement (see [`hardening`]), at start
/// and after each token reload.
fn exposure_check(
    config: &Config,
    config_file: Option<&std::path::Path>,
    state_dir: Option<std::path::PathBuf>,
    generated: Option<&GeneratedToken>,
) -> hardening::ExposureCheck {
    let audit = config.audit.as_ref();
    hardening::ExposureCheck {
        files: hardening::ServerFiles {
            state_dir,
            token_file: generated.map(|generated| generated.path.clone()),
            audit_log: audit.map(|audit| audit.path.clone()),
            audit_anchor: audit.map(|audit| crate::audit::anchor_path(&audit.path)),
            audit_key: audit.and_then(|audit| audit.key_file.clone()),
            tls_key: config.tls.as_ref().map(|tls| tls.key.clone()),
            config_file: config_file.map(std::path::Path::to_path_buf),
        },
        default_run_as: config.run_as.clone(),
        restrict_admin: hardening::restricts_admin(config),
        server_uid: nix::unistd::Uid::effective().as_raw(),
    }
}

/// The generated token, when the server made or loaded one.
struct GeneratedToken {
    token: Secret,
    path: std::path::PathBuf,
    created: bool,
}

fn authenticator(
    setting: &AuthSetting,
) -> Result<(Authenticator, Option<GeneratedToken>), CommandError> {
    match setting {
        AuthSetting::Disabled => Ok((Authenticator::Disabled, None)),
        AuthSetting::Tokens(entries) => {
            Ok((Authenticator::tokens(TokenSet::new(entries.clone())), None))
        }
        AuthSetting::GeneratedToken { state_dir } => {
            let stored = load_or_create_token(state_dir).map_err(|error| {
                CommandError::new(error)
                    .with_hint("set HOSTMCP_TOKEN or configure [[tokens]] to use your own token")
            })?;
            let entry = TokenEntry::new(
                "default",
                TokenDigest::of_token(stored.token.expose()),
                Role::Admin,
            );
            Ok((
                Authenticator::tokens(TokenSet::new(vec![entry])),
                Some(GeneratedToken {
                    token: stored.token,
                    path: stored.path,
                    created: stored.created,
                }),
            ))
        }
    }
}

/// The API-key header and outside issuers of the `[auth]` table.
fn outside_credentials(config: &Config) -> Result<OutsideCredentials, CommandError> {
    let settings = &config.outside_auth;
    let issuers = if settings.issuers.is_empty() {
        None
    } else {
        let issuers = Issuers::new(settings.issuers.clone()).map_err(|error| {
            CommandError::new(format!("[[auth.issuers]]: {error}"))
                .with_hint("check ca_file: a readable PEM file of CA certificates")
        })?;
        for url in issuers.urls() {
            tracing::info!(
                issuer = url,
                "accepting JWT access tokens of an outside issuer"
            );
        }
        Some(Arc::new(issuers))
    };
    if let Some(header) = &settings.api_key_header {
        tracing::info!(header = %header.name(), "accepting tokens in an API-key header too");
    }
    Ok(OutsideCredentials {
        api_key_header: settings.api_key_header.clone(),
        resource_metadata: (settings.public_url.as_ref())
            .map(|url| format!("{url}{}", crate::oauth::metadata::RESOURCE_METADATA_PATH)),
        // No public URL: the metadata is published at each request's own origin.
        resource_metadata_path: (settings.public_url.is_none() && !settings.issuers.is_empty())
            .then_some(crate::oauth::metadata::RESOURCE_METADATA_PATH),
        issuers,
    })
}

/// Tell the operator where the server is and how to connect (on stderr).
fn announce(bound: &[SocketAddr], config: &Config, generated: Option<&GeneratedToken>) {
    let scheme = if config.tls.is_some() || config.acme.is_some() {
        "https"
    } else {
        "http"
    };
    for address in bound {
        tracing::info!(%address, scheme, "listening: Streamable HTTP at /mcp, legacy SSE at /sse");
    }
    if config.allow_plaintext && config.tls.is_none() && config.acme.is_none() {
        tracing::warn!(
            "serving plain HTTP off loopback (--allow-plaintext): a TLS-terminating proxy must be in front"
        );
    }
    if matches!(config.auth, AuthSetting::Disabled) {
        tracing::warn!(
            "authentication is DISABLED (--no-auth): any local process can run commands"
        );
    }
    let Some(generated) = generated else { return };
    let Some(address) = bound.first() else { return };
    let host = if address.ip().is_unspecified() {
        "127.0.0.1".to_owned()
    } else {
        match address {
            SocketAddr::V4(v4) => v4.ip().to_string(),
            SocketAddr::V6(v6) => format!("[{}]", v6.ip()),
        }
    };
    let url = format!("{scheme}://{host}:{}/mcp", address.port());
    let origin = if generated.created {
        "generated a token and saved it"
    } else {
        "using the token saved"
    };
    if super::journal::stderr_is_journal() {
        // Under systemd: the journal is no place for the token; the operator reads the file.
        tracing::info!(
            path = %generated.path.display(),
            %url,
            "{origin} (mode 0600); read it as root, or configure [[tokens]] (hostmcp token create)"
        );
        return;
    }
    let token = generated.token.expose();
    // Not eprintln!, which panics when stderr's reader has gone.
    let _ = writeln!(
        std::io::stderr(),
        "\nhostmcp: {origin} in {path} (mode 0600).\n\
         \n  token: {token}\n\n{snippets}",
        path = generated.path.display(),
        snippets = super::client_snippets::client_snippets(&url, token),
    );
}

/// SIGTERM and SIGINT shut down; SIGHUP reloads.
async fn handle_signals(shutdown: CancellationToken, reload: Reload) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut terminate), Ok(mut interrupt), Ok(mut hangup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::hangup()),
    ) else {
        tracing::error!("cannot install signal handlers");
        return;
    };
    // Shutdown comes even if this task ends some other way (a panic in a reload).
    let _shutdown_on_exit = shutdown.drop_guard();
    loop {
        tokio::select! {
            _ = terminate.recv() => { tracing::info!("SIGTERM: shutting down"); break; }
            _ = interrupt.recv() => { tracing::info!("SIGINT: shutting down"); break; }
            _ = hangup.recv() => {
                reload.reopen_audit().await;
                reload.run().await;
            }
        }
    }
}
