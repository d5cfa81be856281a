//! The `[tls.acme]` table: certificates from an ACME certificate authority (Let's Encrypt,
//! or any RFC 8555 server) instead of `[tls] cert`/`key` files. Owns its schema
//! ([`FileAcme`]) and its checked form ([`AcmeSettings`]); `crate::transport::acme` runs it.
//!
//! Checked here: at least one domain, each a DNS name (no wildcard: TLS-ALPN-01 cannot
//! validate one, no IP address: public CAs do not issue for them); contacts as `mailto:`
//! URLs (a bare address gets the prefix); the directory URL `https` (Let's Encrypt's
//! production directory when absent); the cache directory defaulting to `acme/` in the
//! state directory. Not together with `cert`/`key`.

use std::path::PathBuf;

use serde::Deserialize;

/// Let's Encrypt's production directory, the default.
pub const LETS_ENCRYPT_DIRECTORY: &str = "https://acme-v02.api.letsencrypt.org/directory";

/// The `[tls.acme]` table as written.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileAcme {
    /// The names the certificate is for; clients must reach the server under one of them.
    #[serde(default)]
    pub domains: Vec<String>,
    /// Contact addresses given to the CA (`mailto:` URLs or bare e-mail addresses).
    #[serde(default)]
    pub contact: Vec<String>,
    /// The CA's ACME directory URL.
    pub directory_url: Option<String>,
    /// Where the account key and certificates are kept (the state directory's `acme/`).
    pub cache_dir: Option<PathBuf>,
    /// A PEM file of CA certificates to trust for the directory's HTTPS (a test CA such as
    /// Pebble's), instead of the host's trust store.
    pub ca_file: Option<PathBuf>,
}

/// The `[tls.acme]` table, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcmeSettings {
    pub domains: Vec<String>,
    /// `mailto:` URLs.
    pub contact: Vec<String>,
    pub directory_url: String,
    pub cache_dir: PathBuf,
    pub ca_file: Option<PathBuf>,
}

/// A `[tls.acme]` table that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AcmeConfigError {
    #[error("[tls.acme] needs at least one domain")]
    NoDomain,
    #[error("[tls.acme] domain {0:?} is not a DNS name (no wildcard, no IP address)")]
    BadDomain(String),
    #[error("[tls.acme] contact {0:?} is not an e-mail address or a mailto: URL")]
    BadContact(String),
    #[error("[tls.acme] directory_url {0:?} is not an https:// URL")]
    BadDirectory(String),
    #[error("[tls.acme] needs cache_dir: there is no state directory (XDG_STATE_HOME, HOME)")]
    NoCacheDir,
    #[error("[tls] takes cert and key files or an [tls.acme] table, not both")]
    FilesAndAcme,
}

impl AcmeConfigError {
    pub fn hint(&self) -> &'static str {
        match self {
            Self::FilesAndAcme => "drop cert/key (or --tls-cert/--tls-key) to use [tls.acme]",
            Self::NoCacheDir => "set cache_dir = \"/var/lib/hostmcp/acme\" in [tls.acme]",
            _ => {
                "docs/exposing.md: [tls.acme] domains = [\"mcp.example.com\"], contact = [\"mailto:ops@example.com\"]"
            }
        }
    }
}

impl FileAcme {
    /// Check the table; `state_dir` gives the default cache directory.
    pub fn resolve(&self, state_dir: Option<PathBuf>) -> Result<AcmeSettings, AcmeConfigError> {
        if self.domains.is_empty() {
            return Err(AcmeConfigError::NoDomain);
        }
        let domains = self
            .domains
            .iter()
            .map(|domain| {
                let domain = domain.trim().trim_end_matches('.').to_ascii_lowercase();
                if is_dns_name(&domain) {
                    return Ok(domain);
                }
                Err(AcmeConfigError::BadDomain(domain))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let contact = self
            .contact
            .iter()
            .map(|contact| {
                mailto(contact).ok_or_else(|| AcmeConfigError::BadContact(contact.clone()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let directory_url = match &self.directory_url {
            None => LETS_ENCRYPT_DIRECTORY.to_owned(),
            Some(url) if url.starts_with("https://") && url.len() > "https://".len() => url.clone(),
            Some(url) => return Err(AcmeConfigError::BadDirectory(url.clone())),
        };
        let cache_dir = match (&self.cache_dir, state_dir) {
            (Some(dir), _) => dir.clone(),
            (None, Some(state)) => state.join("acme"),
            (None, None) => return Err(AcmeConfigError::NoCacheDir),
        };
        Ok(AcmeSettings {
            domains,
            contact,
            directory_url,
            cache_dir,
            ca_file: self.ca_file.clone(),
        })
    }
}

/// A DNS name of at least two labels: letters, digits and inner hyphens, each label
/// 1-63 bytes, 253 in all; not all-numeric at the end (an IPv4 address is not a name).
fn is_dns_name(name: &str) -> bool {
    let labels: Vec<&str> = name.split('.').collect();
    name.len() <= 253
        && labels.len() >= 2
        && labels.iter().all(|label| {
            (1..=63).contains(&label.len())
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
        && labels
            .last()
            .is_some_and(|top| !top.bytes().all(|b| b.is_ascii_digit()))
}

/// `ops@example.com` or `mailto:ops@example.com` as a `mailto:` URL.
fn mailto(contact: &str) -> Option<String> {
    let address = contact.trim();
    let address = address.strip_prefix("mailto:").unwrap_or(address);
    let (user, host) = address.split_once('@')?;
    let plain = |text: &str| {
        !text.is_empty() && !text.bytes().any(|b| b.is_ascii_whitespace() || b == b'@')
    };
    (plain(user) && plain(host)).then(|| format!("mailto:{address}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(domains: &[&str]) -> FileAcme {
        FileAcme {
            domains: domains.iter().map(|d| (*d).to_owned()).collect(),
            ..FileAcme::default()
        }
    }

    #[test]
    fn a_dns_name_passes_and_its_near_misses_do_not() {
        let settings = table(&["MCP.Example.com."])
            .resolve(Some("/state".into()))
            .unwrap();
        assert_eq!(settings.domains, ["mcp.example.com"]);
        assert_eq!(settings.directory_url, LETS_ENCRYPT_DIRECTORY);
        assert_eq!(settings.cache_dir, PathBuf::from("/state/acme"));
        for bad in [
            "*.example.com",
            "192.0.2.1",
            "localhost",
            "-a.example.com",
            "a..example.com",
            "a_b.example.com",
        ] {
            assert_eq!(
                table(&[bad]).resolve(Some("/state".into())),
                Err(AcmeConfigError::BadDomain(bad.to_ascii_lowercase())),
                "{bad}"
            );
        }
        assert_eq!(
            table(&[]).resolve(Some("/s".into())),
            Err(AcmeConfigError::NoDomain)
        );
    }

    #[test]
    fn contacts_become_mailto_urls_and_a_non_address_is_refused() {
        let mut acme = table(&["a.example"]);
        acme.contact = vec!["ops@example.com".into(), "mailto:x@example.org".into()];
        assert_eq!(
            acme.resolve(Some("/s".into())).unwrap().contact,
            ["mailto:ops@example.com", "mailto:x@example.org"]
        );
        acme.contact = vec!["ops example.com".into()];
        assert!(matches!(
            acme.resolve(Some("/s".into())),
            Err(AcmeConfigError::BadContact(_))
        ));
    }

    #[test]
    fn the_directory_must_be_https_and_the_cache_needs_a_place() {
        let mut acme = table(&["a.example"]);
        acme.directory_url = Some("https://127.0.0.1:14000/dir".into());
        acme.cache_dir = Some("/var/lib/hostmcp/acme".into());
        let settings = acme.resolve(None).unwrap();
        assert_eq!(settings.directory_url, "https://127.0.0.1:14000/dir");
        assert_eq!(settings.cache_dir, PathBuf::from("/var/lib/hostmcp/acme"));
        acme.directory_url = Some("http://127.0.0.1:14000/dir".into());
        assert!(matches!(
            acme.resolve(None),
            Err(AcmeConfigError::BadDirectory(_))
        ));
        assert_eq!(
            table(&["a.example"]).resolve(None),
            Err(AcmeConfigError::NoCacheDir)
        );
    }
}
