//! The principal of a fleet call: a caller a trusted gateway vouched for in a signed
//! request (`crate::fleet::host` checks the signature, the nonce and the mapping first).
//! Named `fleet:<gateway principal>`, so its audit records and limits never mix with a
//! local token of the same name; its role is the one `[fleet]` maps it to here.

use std::sync::Arc;

use super::{Lease, Principal, Role};

/// `fleet:<name>` with `role`, running commands as the host's default user; its
/// credential is one request, so it never expires on its own.
pub fn fleet_principal(name: &str, role: Role) -> Principal {
    Principal {
        name: Arc::from(format!("fleet:{name}")),
        role,
        run_as: None,
        lease: Lease::forever(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fleet_principals_are_prefixed_and_keep_their_mapped_role() {
        let principal = fleet_principal("alice", Role::Read);
        assert_eq!(principal.name(), "fleet:alice");
        assert_eq!(principal.role(), Role::Read);
        assert_eq!(principal.run_as(), None);
    }
}
