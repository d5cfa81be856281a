//! Token checks: each accepted token with its near-miss refusal, digests, the token file.

use super::*;

fn set() -> TokenSet {
    TokenSet::new(vec![
        TokenEntry::new(
            "alice",
            TokenDigest::of_token("alice-secret"),
            Role::Operator,
        ),
        TokenEntry::new("bob", TokenDigest::of_token("bob-secret"), Role::Read),
    ])
}

#[test]
fn each_valid_token_yields_its_own_principal_and_role() {
    let alice = set().authenticate("alice-secret").unwrap();
    assert_eq!((alice.name(), alice.role()), ("alice", Role::Operator));
    let bob = set().authenticate("bob-secret").unwrap();
    assert_eq!((bob.name(), bob.role()), ("bob", Role::Read));
}

#[test]
fn near_miss_tokens_are_refused() {
    for presented in [
        "alice-secre",
        "alice-secret ",
        "Alice-secret",
        "alice-secretx",
        "",
    ] {
        assert_eq!(
            set().authenticate(presented),
            Err(AuthError::Invalid),
            "{presented:?}"
        );
    }
}

#[test]
fn an_empty_token_set_refuses_everything() {
    assert_eq!(
        TokenSet::default().authenticate("anything"),
        Err(AuthError::Invalid)
    );
}

#[test]
fn bearer_header_parsing_accepts_any_scheme_case() {
    for header in [
        "Bearer alice-secret",
        "bearer alice-secret",
        "BEARER  alice-secret",
    ] {
        let principal = set().authenticate_header(Some(header.as_bytes())).unwrap();
        assert_eq!(principal.name(), "alice", "{header:?}");
    }
}

#[test]
fn malformed_or_missing_headers_are_refused_with_their_reason() {
    assert_eq!(set().authenticate_header(None), Err(AuthError::Missing));
    for header in [
        "Basic alice-secret",
        "alice-secret",
        "Bearer",
        "Bearer ",
        "Bearer a b",
    ] {
        assert_eq!(
            set().authenticate_header(Some(header.as_bytes())),
            Err(AuthError::Malformed),
            "{header:?}"
        );
    }
    assert_eq!(
        set().authenticate_header(Some(&[0x42, 0xff, 0x20, 0x61])),
        Err(AuthError::Malformed)
    );
}

#[test]
fn digest_hex_round_trips_and_rejects_bad_input() {
    let digest = TokenDigest::of_token("t");
    assert_eq!(TokenDigest::from_hex(&digest.to_hex()), Some(digest));
    assert_eq!(
        TokenDigest::from_hex(&digest.to_hex().to_uppercase()),
        Some(digest)
    );
    assert_eq!(TokenDigest::from_hex(&digest.to_hex()[1..]), None);
    assert_eq!(TokenDigest::from_hex(&"g".repeat(64)), None);
}

#[test]
fn secrets_and_digests_never_print_themselves() {
    let secret = Secret::new("hunter2");
    assert!(!format!("{secret:?} {secret}").contains("hunter2"));
    let digest = TokenDigest::of_token("hunter2");
    assert!(!format!("{digest:?}").contains(&digest.to_hex()[..8]));
}

#[test]
fn generated_tokens_are_long_url_safe_and_distinct() {
    let first = generate_token().unwrap();
    let second = generate_token().unwrap();
    assert_ne!(first, second);
    let body = first.expose().strip_prefix(token::TOKEN_PREFIX).unwrap();
    assert_eq!(body.len(), 43, "32 bytes in unpadded base64");
    assert!(
        body.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    );
}

#[test]
fn the_generated_token_file_is_private_and_survives_a_restart() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state/hostmcp");
    let first = token::load_or_create_token(&state).unwrap();
    assert!(first.created);
    let mode = std::fs::metadata(&first.path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let dir_mode = std::fs::metadata(&state).unwrap().permissions().mode() & 0o777;
    assert_eq!(dir_mode, 0o700);
    let second = token::load_or_create_token(&state).unwrap();
    assert!(!second.created);
    assert_eq!(first.token, second.token);
}

#[test]
fn a_token_file_readable_by_others_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let stored = token::load_or_create_token(dir.path()).unwrap();
    std::fs::set_permissions(&stored.path, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert!(matches!(
        token::load_or_create_token(dir.path()),
        Err(token::TokenFileError::File(
            crate::private_file::PrivateFileError::TooOpen { .. }
        ))
    ));
}

#[test]
fn token_names_are_plain() {
    assert!(is_valid_token_name("ci-bot_1.prod"));
    for bad in ["", "a b", "x\ny", "ä", &"n".repeat(65)] {
        assert!(!is_valid_token_name(bad), "{bad:?}");
    }
}

#[test]
fn roles_are_ordered_and_parse() {
    assert!(Role::Read < Role::Operator && Role::Operator < Role::Admin);
    assert_eq!("operator".parse::<Role>().unwrap(), Role::Operator);
    assert!("root".parse::<Role>().is_err());
}
