//! Target `config_file`: a config file's text through what `hostmcp serve` does with it,
//! TOML to `FileConfig` to the validated `Config` (with the flags at their defaults), and
//! its `[policy]` table to a `Policy`.
//!
//! What must hold: a `Config` that resolves never listens off loopback in plain HTTP
//! unless that was allowed (HTTPS is certificate files or `[tls.acme]`), never turns authentication off off loopback, and never shows
//! the environment's token in its `Debug` text; every error has a hint.

use hostmcp::{
    auth::Secret,
    cli::ServeArgs,
    config::{AuthSetting, Config, EnvSnapshot, FileConfig},
    policy::resolve_policy,
};

/// The `HOSTMCP_TOKEN` the resolution sees on odd-length inputs; never to be printed.
const ENV_TOKEN: &str = "fuzz-env-token-6f1d2c9a8b7e";

pub fn run(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let file = match FileConfig::parse(text) {
        Ok(file) => file,
        Err(message) => {
            assert!(!message.is_empty());
            return;
        }
    };
    // Both ways a token can come: from the environment, or generated in the state dir.
    let env = EnvSnapshot {
        token: (data.len() % 2 == 1).then(|| Secret::new(ENV_TOKEN)),
        state_home: Some("/nonexistent/hostmcp-fuzz-state".into()),
        home: None,
        config_home: None,
    };
    let config = match Config::resolve(&ServeArgs::default(), &env, file) {
        Ok(config) => config,
        Err(error) => {
            let _ = error.to_string();
            assert!(!error.hint().is_empty(), "no hint for {error:?}");
            return;
        }
    };
    let off_loopback = config.listen.iter().any(|addr| !addr.ip().is_loopback());
    if off_loopback {
        assert!(
            config.tls.is_some() || config.acme.is_some() || config.allow_plaintext,
            "plain HTTP off loopback: {:?}",
            config.listen
        );
        assert!(
            !matches!(config.auth, AuthSetting::Disabled),
            "no auth off loopback: {:?}",
            config.listen
        );
    }
    assert!(
        !format!("{config:?}").contains(ENV_TOKEN),
        "the token shows in Debug"
    );
    match resolve_policy(config.policy, &|_| Ok(())) {
        Ok(policy) => {
            let _ = format!("{policy:?}");
        }
        Err(error) => {
            let _ = error.to_string();
            let _ = error.problem.hint();
        }
    }
}
