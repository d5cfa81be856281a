//! Who may decide another token's waiting command: the one rule the approval page
//! (`super::page`) and the MCP Apps view (`super::app_view`) share, so the two cannot drift
//! apart. An approver is a token named in `[approval] approvers`, or, when that list is not
//! set, any token of role `admin`; and never the token whose command waits (the model that
//! holds the requesting token must not approve itself). Pure: the caller says who is
//! deciding and whose request it is; the settings are those in effect when the decision
//! comes, so a reload that drops an approver takes effect at once.

use super::ApprovalSettings;
use crate::auth::Role;

/// Why a token may not decide another token's request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NotAnApprover {
    #[error("the requesting token cannot approve its own command")]
    OwnRequest,
    #[error("this token is not an approver")]
    NotNamed,
}

/// Whether the token `name` (of `role`) may decide the request of `requester`.
pub fn check(
    settings: &ApprovalSettings,
    name: &str,
    role: Role,
    requester: &str,
) -> Result<(), NotAnApprover> {
    if name == requester {
        return Err(NotAnApprover::OwnRequest);
    }
    if is_approver(settings, name, role) {
        Ok(())
    } else {
        Err(NotAnApprover::NotNamed)
    }
}

/// Whether the token `name` (of `role`) is an approver at all: named in `approvers`, or an
/// admin when the list is not set.
pub fn is_approver(settings: &ApprovalSettings, name: &str, role: Role) -> bool {
    match &settings.approvers {
        Some(names) => names.iter().any(|approver| approver == name),
        None => role == Role::Admin,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(approvers: Option<&[&str]>) -> ApprovalSettings {
        ApprovalSettings {
            approvers: approvers.map(|names| names.iter().map(|name| (*name).to_owned()).collect()),
            ..ApprovalSettings::default()
        }
    }

    #[test]
    fn by_default_admins_approve_others_and_never_themselves() {
        let settings = named(None);
        assert_eq!(check(&settings, "boss", Role::Admin, "ops"), Ok(()));
        assert_eq!(
            check(&settings, "boss", Role::Admin, "boss"),
            Err(NotAnApprover::OwnRequest)
        );
        for role in [Role::Operator, Role::Read] {
            assert_eq!(
                check(&settings, "alice", role, "ops"),
                Err(NotAnApprover::NotNamed),
                "{role}"
            );
        }
    }

    #[test]
    fn a_list_names_the_approvers_whatever_their_role() {
        let settings = named(Some(&["lead"]));
        assert_eq!(check(&settings, "lead", Role::Operator, "ops"), Ok(()));
        // An admin not on the list is no approver once the list is set.
        assert_eq!(
            check(&settings, "boss", Role::Admin, "ops"),
            Err(NotAnApprover::NotNamed)
        );
        assert_eq!(
            check(&settings, "lead", Role::Operator, "lead"),
            Err(NotAnApprover::OwnRequest)
        );
        assert!(is_approver(&settings, "lead", Role::Read));
        assert!(!is_approver(&settings, "boss", Role::Admin));
    }
}
