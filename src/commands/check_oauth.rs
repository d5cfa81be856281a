//! What `hostmcp check` says of reaching the server from outside: the public URL, the
//! embedded OAuth authorization server (issuer, store and signing key readable and
//! writable), the outside issuers of `[[auth.issuers]]` (their JWKS fetched only with
//! `--fetch-jwks`: it goes out to the network), the trusted proxies, and `[tls.acme]`
//! (cache directory, CA file, the port TLS-ALPN-01 validates on). Each finding is a line
//! [`check`](super::check) prints, a problem or not; nothing here serves or writes.

use std::path::Path;

use crate::config::{AuthSetting, Config};

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    Say(String),
    Problem(String),
}

/// The findings for `config`, without the network.
pub fn findings(config: &Config) -> Vec<Finding> {
    let mut out = Vec::new();
    public_url(config, &mut out);
    if let Some(oauth) = &config.oauth {
        out.push(Finding::Say(format!(
            "oauth: authorization server on, issuer {}, resource {}, store {}",
            oauth.issuer(),
            oauth.resource(),
            oauth.store.display()
        )));
        if matches!(config.auth, AuthSetting::Disabled) {
            out.push(Finding::Problem(
                "oauth needs token authentication: the owner approves a client with a token (hint: drop --no-auth)".to_owned(),
            ));
        }
        if let Err(reason) = writable_file(&oauth.store) {
            out.push(Finding::Problem(format!(
                "oauth store {}: {reason} (hint: set [oauth] store to a file this user may write)",
                oauth.store.display()
            )));
        }
        let key = oauth.store.with_extension("signing-key.der");
        if let Err(reason) = private_file(&key) {
            out.push(Finding::Problem(format!(
                "oauth signing key {}: {reason}",
                key.display()
            )));
        }
    }
    for issuer in &config.outside_auth.issuers {
        out.push(Finding::Say(format!(
            "issuer {}: {}, audience {}, JWKS {}",
            issuer.name,
            issuer.issuer,
            issuer.audience.join(" "),
            issuer.jwks_uri.as_ref().map_or(
                "from its discovery document".to_owned(),
                ToString::to_string
            ),
        )));
    }
    if !config.trusted_proxies.is_empty() {
        out.push(Finding::Say(
            "trusted_proxies: their Forwarded / X-Forwarded-* headers are believed".to_owned(),
        ));
    }
    if let Some(acme) = &config.acme {
        acme_findings(config, acme, &mut out);
    }
    out
}

fn public_url(config: &Config, out: &mut Vec<Finding>) {
    let public = config
        .oauth
        .as_ref()
        .map(|oauth| oauth.public_url.as_str())
        .or(config.outside_auth.public_url.as_deref());
    match public {
        Some(url) => out.push(Finding::Say(format!(
            "public URL: {url} (every URL of the OAuth metadata and WWW-Authenticate derives from it)"
        ))),
        None if !config.outside_auth.issuers.is_empty() => out.push(Finding::Say(
            "public URL: none; outside issuers publish no protected-resource metadata (set --public-url)"
                .to_owned(),
        )),
        None => {}
    }
    if let (Some(url), Some(acme)) = (public, &config.acme) {
        let host = crate::oauth::settings::host_of(url);
        let name = host.rsplit_once(':').map_or(host, |(name, _)| name);
        if !acme.domains.iter().any(|domain| domain == name) {
            out.push(Finding::Problem(format!(
                "public URL {url}: its host is none of the [tls.acme] domains ({}): clients would not trust the certificate",
                acme.domains.join(", ")
            )));
        }
    }
}

fn acme_findings(
    config: &Config,
    acme: &crate::config::acme::AcmeSettings,
    out: &mut Vec<Finding>,
) {
    out.push(Finding::Say(format!(
        "acme: {} from {}, cache {}{}",
        acme.domains.join(", "),
        acme.directory_url,
        acme.cache_dir.display(),
        if acme.contact.is_empty() {
            String::new()
        } else {
            format!(", contact {}", acme.contact.join(" "))
        }
    )));
    if let Err(reason) = writable_dir(&acme.cache_dir) {
        out.push(Finding::Problem(format!(
            "[tls.acme] cache_dir {}: {reason}",
            acme.cache_dir.display()
        )));
    }
    if let Err(error) = crate::outbound_tls::client_config(acme.ca_file.as_deref()) {
        out.push(Finding::Problem(format!("[tls.acme] ca_file: {error}")));
    }
    if !config.listen.iter().any(|address| address.port() == 443) {
        out.push(Finding::Say(
            "acme: note: the CA validates (TLS-ALPN-01) on port 443 of each domain; no listen address is :443, so something must forward 443 here".to_owned(),
        ));
    }
}

/// `path` can be read and written, or made (its directory exists and is writable).
fn writable_file(path: &Path) -> Result<(), String> {
    use nix::unistd::{AccessFlags, access};
    if path.exists() {
        return access(path, AccessFlags::R_OK | AccessFlags::W_OK)
            .map_err(|error| format!("not readable and writable ({error})"));
    }
    writable_dir(path.parent().unwrap_or(Path::new(".")))
        .map_err(|reason| format!("cannot be made: {reason}"))
}

/// `dir` is a writable directory, or can be made: its nearest existing ancestor is.
fn writable_dir(dir: &Path) -> Result<(), String> {
    use nix::unistd::{AccessFlags, access};
    let existing = dir
        .ancestors()
        .find(|ancestor| ancestor.exists())
        .unwrap_or(Path::new("/"));
    if !existing.is_dir() {
        return Err(format!("{} is not a directory", existing.display()));
    }
    access(existing, AccessFlags::W_OK | AccessFlags::X_OK)
        .map_err(|error| format!("{} is not writable ({error})", existing.display()))
}

/// A key file, when it exists, is readable and shared with nobody (made on first start).
fn private_file(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let Ok(metadata) = std::fs::metadata(path) else {
        return Ok(());
    };
    nix::unistd::access(path, nix::unistd::AccessFlags::R_OK)
        .map_err(|error| format!("not readable ({error})"))?;
    let mode = metadata.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(format!(
            "readable by group or others (mode {mode:o}); chmod 600 it"
        ));
    }
    Ok(())
}

/// With `--fetch-jwks`: fetch each outside issuer's JWK set now, one line each.
pub fn fetch_jwks(config: &Config) -> Vec<Finding> {
    let issuers = &config.outside_auth.issuers;
    if issuers.is_empty() {
        return vec![Finding::Say("jwks: no outside issuer to fetch".to_owned())];
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => return vec![Finding::Problem(format!("jwks: no runtime: {error}"))],
    };
    issuers
        .iter()
        .map(|issuer| {
            let fetched =
                crate::auth::jwt::keys::KeyCache::new(std::sync::Arc::new(issuer.clone()))
                    .map_err(|error| error.to_string())
                    .and_then(|cache| {
                        runtime
                            .block_on(cache.fetch_now())
                            .map_err(|error| error.to_string())
                    });
            match fetched {
                Ok(keys) => Finding::Say(format!(
                    "jwks {}: fetched, {keys} usable key{}",
                    issuer.name,
                    if keys == 1 { "" } else { "s" }
                )),
                Err(error) => Finding::Problem(format!(
                    "jwks {}: {error} (hint: check the issuer URL, jwks_uri and ca_file)",
                    issuer.name
                )),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;
    use crate::{
        cli::ServeArgs,
        config::{EnvSnapshot, FileConfig},
    };

    const DIGEST: &str = "f620b25af173bdc1a7739d0a6fe2dbf36e1c86ed8e94d6ac42eef2207660fcad";

    fn config(text: &str, state: &Path) -> Config {
        let env = EnvSnapshot {
            state_home: Some(state.to_owned()),
            ..EnvSnapshot::default()
        };
        let text = format!("{text}\n[[tokens]]\nname = \"a\"\nsha256 = \"{DIGEST}\"\n");
        Config::resolve(
            &ServeArgs::default(),
            &env,
            FileConfig::parse(&text).unwrap(),
        )
        .unwrap()
    }

    fn problems(findings: &[Finding]) -> Vec<&str> {
        findings
            .iter()
            .filter_map(|finding| match finding {
                Finding::Problem(text) => Some(text.as_str()),
                Finding::Say(_) => None,
            })
            .collect()
    }

    #[test]
    fn oauth_names_its_public_url_and_issuer_and_a_writable_store_is_no_problem() {
        let dir = tempfile::tempdir().unwrap();
        let config = config(
            "public_url = \"https://mcp.example.com\"\n[oauth]\n",
            dir.path(),
        );
        let found = findings(&config);
        assert!(problems(&found).is_empty(), "{found:?}");
        let text = format!("{found:?}");
        assert!(
            text.contains("public URL: https://mcp.example.com"),
            "{text}"
        );
        assert!(text.contains("issuer https://mcp.example.com/"), "{text}");
    }

    #[test]
    fn a_store_in_a_directory_that_is_a_file_is_a_problem() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("file"), "").unwrap();
        let store = dir.path().join("file").join("oauth.redb");
        let config = config(
            &format!(
                "public_url = \"https://mcp.example.com\"\n[oauth]\nstore = \"{}\"\n",
                store.display()
            ),
            dir.path(),
        );
        let found = findings(&config);
        assert_eq!(problems(&found).len(), 1, "{found:?}");
        assert!(problems(&found)[0].contains("oauth store"), "{found:?}");
    }

    #[test]
    fn a_signing_key_others_can_read_is_a_problem_and_a_private_one_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("oauth.redb");
        let key = store.with_extension("signing-key.der");
        std::fs::write(&key, b"key").unwrap();
        let text = format!(
            "public_url = \"https://mcp.example.com\"\n[oauth]\nstore = \"{}\"\n",
            store.display()
        );
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(problems(&findings(&config(&text, dir.path()))).is_empty());
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let found = findings(&config(&text, dir.path()));
        assert!(
            problems(&found).iter().any(|p| p.contains("signing key")),
            "{found:?}"
        );
    }

    #[test]
    fn acme_with_a_public_url_outside_its_domains_is_a_problem_and_inside_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let acme = format!(
            "[tls.acme]\ndomains = [\"mcp.example.com\"]\ncache_dir = \"{}\"\n",
            dir.path().join("acme").display()
        );
        // The public URL matters with OAuth (or outside issuers) on.
        let good = config(
            &format!("public_url = \"https://mcp.example.com\"\n{acme}[oauth]\n"),
            dir.path(),
        );
        let found = findings(&good);
        assert!(problems(&found).is_empty(), "{found:?}");
        assert!(format!("{found:?}").contains("no listen address is :443"));
        let bad = config(
            &format!("public_url = \"https://other.example.com\"\n{acme}[oauth]\n"),
            dir.path(),
        );
        let found = findings(&bad);
        assert!(
            problems(&found)
                .iter()
                .any(|p| p.contains("none of the [tls.acme] domains")),
            "{found:?}"
        );
    }

    #[test]
    fn an_acme_ca_file_that_is_no_certificate_is_a_problem() {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, "no\n").unwrap();
        let text = format!(
            "[tls.acme]\ndomains = [\"mcp.example.com\"]\nca_file = \"{}\"\n",
            ca.display()
        );
        let found = findings(&config(&text, dir.path()));
        assert!(
            problems(&found).iter().any(|p| p.contains("ca_file")),
            "{found:?}"
        );
    }
}
