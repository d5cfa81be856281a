//! The TLS of hostmcp's outgoing HTTPS connections (the `connect` bridge's remote server,
//! an outside identity provider's JWKS): rustls on the ring provider, as the server's own
//! TLS, trusting the certificates of a CA file or the host's trust store. A ground-floor
//! module: `client` and `auth` both use it.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
};

use rustls::pki_types::{CertificateDer, pem::PemObject};

/// Why the TLS settings could not be built.
#[derive(Debug, thiserror::Error)]
pub enum OutboundTlsError {
    #[error("cannot use the CA file {path}: {reason}", path = path.display())]
    CaFile { path: PathBuf, reason: String },
    #[error("TLS setup failed: {0}")]
    Tls(String),
}

/// rustls with the ring provider (as the server's TLS): the CA file's certificates only, or
/// the host's trust store through the platform verifier.
pub fn client_config(ca_file: Option<&Path>) -> Result<rustls::ClientConfig, OutboundTlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|error| OutboundTlsError::Tls(error.to_string()))?;
    let mut config = match ca_file {
        Some(path) => builder
            .with_root_certificates(ca_roots(path)?)
            .with_no_client_auth(),
        None => {
            let verifier = rustls_platform_verifier::Verifier::new(provider)
                .map_err(|error| OutboundTlsError::Tls(error.to_string()))?;
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(verifier))
                .with_no_client_auth()
        }
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// The certificates of a PEM file as trust anchors; a file with none is an error.
fn ca_roots(path: &Path) -> Result<rustls::RootCertStore, OutboundTlsError> {
    let error = |reason: String| OutboundTlsError::CaFile {
        path: path.to_owned(),
        reason,
    };
    let certificates: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .map_err(|e| error(e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| error(e.to_string()))?;
    if certificates.is_empty() {
        return Err(error("no CERTIFICATE block in it".to_owned()));
    }
    let mut roots = rustls::RootCertStore::empty();
    for certificate in certificates {
        roots.add(certificate).map_err(|e| error(e.to_string()))?;
    }
    Ok(roots)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ca_file_without_certificates_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("ca.pem");
        std::fs::write(&file, "not a certificate\n").unwrap();
        assert!(matches!(
            ca_roots(&file),
            Err(OutboundTlsError::CaFile { .. })
        ));
        assert!(matches!(
            ca_roots(&dir.path().join("missing.pem")),
            Err(OutboundTlsError::CaFile { .. })
        ));
    }
}
