//! Verified claims -> who and which role: the principal claim's value (a string of 1-128
//! bytes, no whitespace or control characters) prefixed by the issuer's name, and the highest
//! role the role claim's values map to (else the issuer's default role, else refused).

use serde_json::Value;

use super::{IssuerSettings, Refusal};
use crate::auth::{AuthError, Role};

/// Longest principal claim value accepted (it is in every audit record of the caller).
pub const MAX_PRINCIPAL_BYTES: usize = 128;

/// The principal a verified token names.
#[derive(Debug, PartialEq, Eq)]
pub struct Identity {
    pub name: String,
    pub role: Role,
}

/// The identity of verified `claims` under `settings`.
pub fn identity(settings: &IssuerSettings, claims: &Value) -> Result<Identity, AuthError> {
    let value = lookup(claims, &settings.principal_claim)
        .and_then(Value::as_str)
        .filter(|value| is_plain(value))
        .ok_or(AuthError::Jwt(Refusal::Principal))?;
    let mapped = settings
        .role_claim
        .as_deref()
        .and_then(|claim| lookup(claims, claim))
        .map(values)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|value| settings.roles.get(value).copied())
        .max();
    let role = mapped.or(settings.default_role).ok_or(AuthError::NoRole)?;
    Ok(Identity {
        name: format!("{}:{value}", settings.name),
        role,
    })
}

/// The claim at a dotted `path` (`realm_access.roles`); a claim whose own name has a dot
/// is found first.
fn lookup<'a>(claims: &'a Value, path: &str) -> Option<&'a Value> {
    if let Some(value) = claims.get(path) {
        return Some(value);
    }
    path.split('.')
        .try_fold(claims, |value, segment| value.get(segment))
}

/// The string values of a role claim: a list's strings, or a string's space-separated words
/// (`scope`).
fn values(claim: &Value) -> Vec<&str> {
    match claim {
        Value::String(text) => text.split_whitespace().collect(),
        Value::Array(items) => items.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

fn is_plain(value: &str) -> bool {
    (1..=MAX_PRINCIPAL_BYTES).contains(&value.len())
        && !value.chars().any(|c| c.is_whitespace() || c.is_control())
}
