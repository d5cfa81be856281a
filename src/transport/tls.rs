//! HTTPS configuration: the certificate and key are PEM files, read at start and again on
//! SIGHUP (a failed reload keeps the current certificate), or a fixed configuration whose
//! certificate resolver swaps certificates itself (ACME, [`super::acme`]). The accept loop
//! ([`super::listener`]) takes the current [`TlsAcceptor`] for each connection and bounds
//! its handshake.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
};

use arc_swap::ArcSwap;
use rustls::{
    ServerConfig,
    pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject},
};
use tokio_rustls::TlsAcceptor;

/// A certificate chain and key that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read TLS certificate {path}: {message}")]
    Certificate { path: PathBuf, message: String },
    #[error("cannot read TLS key {path}: {message}")]
    Key { path: PathBuf, message: String },
    #[error("TLS certificate {cert} and key {key} do not work together: {message}")]
    Config {
        cert: PathBuf,
        key: PathBuf,
        message: String,
    },
}

impl TlsError {
    pub fn hint(&self) -> &'static str {
        "give --tls-cert a PEM certificate chain (leaf first) and --tls-key its PEM private key"
    }
}

/// The server's TLS configuration, replaceable while it runs.
#[derive(Debug)]
pub struct ReloadableTls {
    /// The certificate and key files; none for a configuration that renews itself.
    files: Option<(PathBuf, PathBuf)>,
    current: ArcSwap<ServerConfig>,
}

impl ReloadableTls {
    /// Read `cert` and `key`; fails if they cannot serve.
    pub fn load(cert: &Path, key: &Path) -> Result<Arc<Self>, TlsError> {
        let config = server_config(cert, key)?;
        Ok(Arc::new(Self {
            files: Some((cert.to_owned(), key.to_owned())),
            current: ArcSwap::from_pointee(config),
        }))
    }

    /// A configuration with nothing to re-read: its certificate resolver keeps the
    /// certificate current (ACME); a reload serves it unchanged.
    pub fn fixed(config: ServerConfig) -> Arc<Self> {
        Arc::new(Self {
            files: None,
            current: ArcSwap::from_pointee(config),
        })
    }

    /// Read the files again; on error the current configuration stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        self.install(self.read()?);
        Ok(())
    }

    /// Read the files again without serving them yet (a reload checks everything first).
    pub fn read(&self) -> Result<Arc<ServerConfig>, TlsError> {
        match &self.files {
            Some((cert, key)) => server_config(cert, key).map(Arc::new),
            None => Ok(self.current.load_full()),
        }
    }

    /// Serve `config`, read by [`Self::read`], to the next connections.
    pub fn install(&self, config: Arc<ServerConfig>) {
        self.current.store(config);
    }

    pub(super) fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(self.current.load_full())
    }
}

fn server_config(cert: &Path, key: &Path) -> Result<ServerConfig, TlsError> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect())
        .map_err(|error| TlsError::Certificate {
            path: cert.to_owned(),
            message: error.to_string(),
        })?;
    if chain.is_empty() {
        return Err(TlsError::Certificate {
            path: cert.to_owned(),
            message: "no certificate in the file".to_owned(),
        });
    }
    let private_key = PrivateKeyDer::from_pem_file(key).map_err(|error| TlsError::Key {
        path: key.to_owned(),
        message: error.to_string(),
    })?;
    let mut config =
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .and_then(|builder| {
                builder
                    .with_no_client_auth()
                    .with_single_cert(chain, private_key)
            })
            .map_err(|error| TlsError::Config {
                cert: cert.to_owned(),
                key: key.to_owned(),
                message: error.to_string(),
            })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}
