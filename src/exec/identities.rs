//! Which Unix user runs a principal's commands, and under which resource limits: the
//! `run_as` of the policy rule that allowed the command, else its token's, else the
//! server's; none under a root server refuses; a non-root server runs commands only as
//! itself. A token's `limits` and reach (`fs_read`, `fs_write`, `network`) are kept here
//! too, by token name. Users are looked up once and kept.

use parking_lot::Mutex;

use crate::{
    auth::Principal,
    exec::{
        ResourceLimits,
        run_as::{RunAsError, RunAsUser, current_user_name},
    },
};

/// Why no Unix user may run a principal's commands.
#[derive(Debug, thiserror::Error)]
pub enum RunAsRefusal {
    #[error(
        "refused: hostmcp runs as root and no run_as user is configured for token {principal:?}; \
         the operator must set run_as for the token or --run-as for the server \
         (run_as = \"root\" to run commands as root)"
    )]
    RootWithoutRunAs { principal: String },
    #[error("refused: run_as: {0}")]
    Lookup(#[from] RunAsError),
    #[error("refused: run_as {name:?} needs hostmcp to run as root, and it does not")]
    NeedsRoot { name: String },
}

/// Which Unix user runs a principal's commands: its token's `run_as`, else the server's.
/// When the server runs as root and neither names a user, commands are refused: root is
/// only ever used when configured so explicitly (`run_as = "root"`).
#[derive(Debug)]
pub struct Identities {
    default_user: Option<String>,
    /// The name of the server's own user, which runs commands when no `run_as` applies.
    pub(crate) own_name: Option<String>,
    server_is_root: bool,
    known: Mutex<std::collections::HashMap<String, RunAsUser>>,
    /// Each token's `limits`, by token name (replaced on reload).
    token_limits: Mutex<std::collections::HashMap<String, ResourceLimits>>,
    /// Each token's reach, by token name (replaced on reload).
    token_reach: Mutex<std::collections::HashMap<String, crate::reach::Reach>>,
}

impl Identities {
    pub fn new(default_user: Option<String>) -> Self {
        Self {
            default_user,
            own_name: current_user_name(),
            server_is_root: nix::unistd::Uid::effective().is_root(),
            known: Mutex::default(),
            token_limits: Mutex::default(),
            token_reach: Mutex::default(),
        }
    }

    /// Use `limits` (by token name) for the commands of the tokens they name.
    pub fn set_token_limits(&self, limits: std::collections::HashMap<String, ResourceLimits>) {
        *self.token_limits.lock() = limits;
    }

    /// Use `reach` (by token name) for the commands of the tokens they name.
    pub fn set_token_reach(&self, reach: std::collections::HashMap<String, crate::reach::Reach>) {
        *self.token_reach.lock() = reach;
    }

    /// The reach of `principal`'s token (unconfined for a principal without).
    pub fn token_reach(&self, principal: &Principal) -> crate::reach::Reach {
        self.token_reach
            .lock()
            .get(principal.name())
            .cloned()
            .unwrap_or_default()
    }

    /// The limits of `principal`'s token (none for a principal without).
    pub fn token_limits(&self, principal: &Principal) -> ResourceLimits {
        self.token_limits
            .lock()
            .get(principal.name())
            .copied()
            .unwrap_or_default()
    }

    /// The user a command allowed by a rule runs as: the rule's `run_as` when it names one
    /// (checked at load: the user exists and this server can switch to it), which wins over
    /// the token's; else [`Self::user_for`].
    pub fn user_for_rule(
        &self,
        principal: &Principal,
        rule_run_as: Option<&str>,
    ) -> Result<Option<RunAsUser>, RunAsRefusal> {
        let Some(name) = rule_run_as else {
            return self.user_for(principal);
        };
        let mut known = self.known.lock();
        if let Some(user) = known.get(name) {
            return Ok(Some(user.clone()));
        }
        let user = RunAsUser::switchable(name)?;
        known.insert(name.to_owned(), user.clone());
        Ok(Some(user))
    }

    /// Look the server-wide user up now, so a typo stops the server at start.
    pub fn check_default(&self) -> Result<(), RunAsError> {
        match &self.default_user {
            Some(name) => RunAsUser::lookup(name).map(|_| ()),
            None => Ok(()),
        }
    }

    /// `Ok(None)`: run as the server's own user.
    pub fn user_for(&self, principal: &Principal) -> Result<Option<RunAsUser>, RunAsRefusal> {
        let Some(name) = principal.run_as().or(self.default_user.as_deref()) else {
            if self.server_is_root {
                return Err(RunAsRefusal::RootWithoutRunAs {
                    principal: principal.name().to_owned(),
                });
            }
            return Ok(None);
        };
        let mut known = self.known.lock();
        if let Some(user) = known.get(name) {
            return Ok(Some(user.clone()));
        }
        let user = RunAsUser::lookup(name)?;
        if !self.server_is_root && user.name() != current_user_name().as_deref().unwrap_or("") {
            return Err(RunAsRefusal::NeedsRoot {
                name: name.to_owned(),
            });
        }
        known.insert(name.to_owned(), user.clone());
        Ok(Some(user))
    }
}
