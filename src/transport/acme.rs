//! HTTPS with certificates from an ACME CA (`[tls.acme]`, checked by
//! `crate::config::acme`, handed over as an [`AcmeOrder`]): `rustls-acme` orders them by TLS-ALPN-01 on the server's own
//! listener, keeps the account key and certificates in the cache directory, renews each
//! certificate when two thirds of its lifetime have passed, and hot-swaps it: its
//! certificate resolver sits in the one [`ServerConfig`] the accept loop serves, so a
//! renewed certificate is used by the next handshake, with nothing restarted.
//!
//! Why `rustls-acme` and not `instant-acme`: the listener is already rustls
//! (tokio-rustls); `rustls-acme` plugs in as a `ResolvesServerCert` and drives ordering,
//! validation, caching and renewal as one stream of events ([`AcmeDriver`]), where
//! `instant-acme` is a protocol client only, leaving the challenge server, the cache and
//! the renewal timer to be written here.
//!
//! Before the first certificate, the listener completes no handshake but the CA's
//! validation ones (nothing is ever served in plain text): a first order that fails
//! [`FIRST_ORDER_ATTEMPTS`] times (a wrong `ca_file`, an unreachable directory, a refused
//! domain) ends the server with the CA's error. Once a certificate is served, failed
//! renewals are logged and retried with back-off while the current one stays in use.

use std::{os::unix::fs::DirBuilderExt, path::Path, sync::Arc};

use futures::StreamExt;
use rustls::ServerConfig;
use rustls_acme::{AcmeConfig, AcmeState, EventOk, caches::DirCache};
use tokio_util::sync::CancellationToken;

use super::tls::ReloadableTls;

/// What to order and where to keep it: the checked `[tls.acme]` table (`commands::serve`
/// fills it from `crate::config::acme::AcmeSettings`).
#[derive(Debug, Clone, Copy)]
pub struct AcmeOrder<'a> {
    pub domains: &'a [String],
    /// `mailto:` URLs.
    pub contact: &'a [String],
    pub directory_url: &'a str,
    /// Account key and certificates (private: made 0700).
    pub cache_dir: &'a Path,
    /// CA certificates for the directory's HTTPS; the host's trust store without.
    pub ca_file: Option<&'a Path>,
}

/// Failed orders, before any certificate is served, that end the server.
pub const FIRST_ORDER_ATTEMPTS: u32 = 3;

/// Why ACME certificates cannot be had.
#[derive(Debug, thiserror::Error)]
pub enum AcmeError {
    #[error("cannot prepare the ACME cache directory {path}: {source}", path = path.display())]
    CacheDir {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("[tls.acme] ca_file: {0}")]
    ClientTls(#[from] crate::outbound_tls::OutboundTlsError),
    #[error("TLS setup failed: {0}")]
    ServerTls(String),
    #[error("no certificate from the ACME directory {directory} after {attempts} attempts: {last}")]
    FirstCertificate {
        directory: String,
        attempts: u32,
        last: String,
    },
}

impl AcmeError {
    pub fn hint(&self) -> &'static str {
        match self {
            Self::CacheDir { .. } => "set [tls.acme] cache_dir to a directory this user may write",
            Self::ClientTls(_) => {
                "give ca_file a PEM file of the CA certificates that sign the directory's HTTPS"
            }
            Self::ServerTls(_) => "report this: the ring provider refused the default TLS versions",
            Self::FirstCertificate { .. } => {
                "check directory_url and ca_file, that the domains resolve to this host, and that the CA reaches this listener on port 443 (TLS-ALPN-01)"
            }
        }
    }
}

/// Is this the handshake of a TLS-ALPN-01 validation (ALPN `acme-tls/1`)? Such a
/// connection carries no HTTP: the accept loop closes it.
pub fn is_challenge<IO>(stream: &tokio_rustls::server::TlsStream<IO>) -> bool {
    stream.get_ref().1.alpn_protocol() == Some(rustls_acme::acme::ACME_TLS_ALPN_NAME)
}

/// Orders, caches and renews the certificates; run [`Self::run`] as a task.
pub struct AcmeDriver {
    state: AcmeState<std::io::Error>,
    directory: String,
}

/// Prepare the cache directory (mode 0700: it holds the private keys), the CA client and
/// the server's TLS configuration, whose resolver the driver keeps current.
pub fn start(order: AcmeOrder<'_>) -> Result<(Arc<ReloadableTls>, AcmeDriver), AcmeError> {
    private_dir(order.cache_dir)?;
    let client = crate::outbound_tls::client_config(order.ca_file)?;
    let state = AcmeConfig::new_with_client_config(order.domains, Arc::new(client))
        .contact(order.contact)
        .directory(order.directory_url)
        .cache(DirCache::new(order.cache_dir.to_owned()))
        .state();
    let mut config =
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|error| AcmeError::ServerTls(error.to_string()))?
            .with_no_client_auth()
            .with_cert_resolver(state.resolver());
    config.alpn_protocols = vec![
        b"http/1.1".to_vec(),
        rustls_acme::acme::ACME_TLS_ALPN_NAME.to_vec(),
    ];
    let driver = AcmeDriver {
        state,
        directory: order.directory_url.to_owned(),
    };
    Ok((ReloadableTls::fixed(config), driver))
}

/// Create `dir` (and its parents) if missing; make it 0700 either way.
fn private_dir(dir: &Path) -> Result<(), AcmeError> {
    use std::os::unix::fs::PermissionsExt;
    let error = |source| AcmeError::CacheDir {
        path: dir.to_owned(),
        source,
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(error)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(error)
}

impl AcmeDriver {
    /// Drive orders and renewals until `shutdown`; the error of a first certificate that
    /// cannot be had (see the module doc).
    pub async fn run(mut self, shutdown: CancellationToken) -> Result<(), AcmeError> {
        let mut serving = false;
        let mut failures = 0u32;
        loop {
            let event = tokio::select! {
                event = self.state.next() => event,
                () = shutdown.cancelled() => return Ok(()),
            };
            match event {
                None => return Ok(()),
                Some(Ok(event)) => {
                    if matches!(
                        event,
                        EventOk::DeployedCachedCert | EventOk::DeployedNewCert
                    ) {
                        serving = true;
                    }
                    tracing::info!(directory = %self.directory, event = ?event, "ACME");
                }
                Some(Err(error)) if serving => {
                    tracing::warn!(directory = %self.directory, %error, "ACME renewal failed; the current certificate stays, retrying");
                }
                Some(Err(error)) => {
                    failures += 1;
                    tracing::warn!(directory = %self.directory, %error, attempt = failures, "ACME order failed");
                    if failures >= FIRST_ORDER_ATTEMPTS {
                        return Err(AcmeError::FirstCertificate {
                            directory: self.directory,
                            attempts: failures,
                            last: error.to_string(),
                        });
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    const DOMAINS: &[String] = &[];

    /// Nothing listens on port 9 of loopback: every order fails at once.
    fn order<'a>(cache_dir: &'a Path, ca_file: Option<&'a Path>) -> AcmeOrder<'a> {
        AcmeOrder {
            domains: DOMAINS,
            contact: &[],
            directory_url: "https://127.0.0.1:9/dir",
            cache_dir,
            ca_file,
        }
    }

    #[tokio::test]
    async fn a_directory_that_cannot_be_reached_ends_the_first_order_with_its_error() {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("acme");
        let domains = ["hostmcp.test".to_owned()];
        let (tls, driver) = start(AcmeOrder {
            domains: &domains,
            ..order(&cache, None)
        })
        .unwrap();
        // The cache directory holds private keys: 0700.
        let mode = std::fs::metadata(dir.path().join("acme"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700);
        // HTTP/1.1 for clients, acme-tls/1 for the CA's validation.
        assert_eq!(
            tls.read().unwrap().alpn_protocols,
            [b"http/1.1".to_vec(), b"acme-tls/1".to_vec()]
        );
        // Back-off between attempts is 1 s, then 2 s: bounded well under a minute.
        let result = tokio::time::timeout(
            std::time::Duration::from_secs(60),
            driver.run(CancellationToken::new()),
        )
        .await
        .expect("the driver gives up");
        let error = result.unwrap_err();
        assert!(
            matches!(error, AcmeError::FirstCertificate { attempts: FIRST_ORDER_ATTEMPTS, ref directory, .. } if directory == "https://127.0.0.1:9/dir"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn shutdown_ends_the_driver_without_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let (_, driver) = start(order(dir.path(), None)).unwrap();
        let shutdown = CancellationToken::new();
        shutdown.cancel();
        assert!(driver.run(shutdown).await.is_ok());
    }

    #[test]
    fn a_ca_file_that_is_no_certificate_is_refused_before_anything_starts() {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, "nothing\n").unwrap();
        assert!(matches!(
            start(order(dir.path(), Some(ca.as_path()))),
            Err(AcmeError::ClientTls(_))
        ));
    }
}
