//! Principals that no credential vouches for: each one is an administrator that nobody
//! authenticated. Named like rustls's `danger` module so that every use stands out in review.
//!
//! Right to use only where the operating system has already decided who the caller is, and
//! the server cannot be reached by anyone else:
//! - [`unauthenticated_local`]: `hostmcp serve --no-auth`, which the configuration allows on
//!   loopback addresses only; every request is this principal.
//! - [`stdio_owner`]: `hostmcp stdio`, whose one client is the process that started it, as the
//!   same Unix user.
//!
//! Anything reachable over a network authenticates through [`super::TokenSet::authenticate`]
//! instead. Tests that need an administrator may use these too.

use std::sync::Arc;

use super::{Lease, Principal, Role};

/// The caller when authentication is disabled (`--no-auth`, loopback only): `anonymous`, an
/// administrator whose credential never expires nor is revoked.
pub fn unauthenticated_local() -> Principal {
    admin("anonymous")
}

/// The user who started `hostmcp stdio`: the process owner, named `stdio`, with full rights.
pub fn stdio_owner() -> Principal {
    admin("stdio")
}

fn admin(name: &str) -> Principal {
    Principal {
        name: Arc::from(name),
        role: Role::Admin,
        run_as: None,
        lease: Lease::forever(),
        grant: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_local_principals_are_named_administrators_that_never_lose_their_rights() {
        for (principal, name) in [
            (unauthenticated_local(), "anonymous"),
            (stdio_owner(), "stdio"),
        ] {
            assert_eq!(principal.name(), name);
            assert_eq!(principal.role(), Role::Admin);
            assert_eq!(principal.run_as(), None);
            assert!(!principal.lease().is_ended());
        }
    }
}
