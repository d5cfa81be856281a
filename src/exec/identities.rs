//! Which Unix user runs a principal's commands: its token's `run_as`, else the server's;
//! none under a root server refuses; a non-root server runs commands only as itself.
//! Users are looked up once and kept.

use parking_lot::Mutex;

use crate::{
    auth::Principal,
    exec::run_as::{RunAsError, RunAsUser, current_user_name},
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
}

impl Identities {
    pub fn new(default_user: Option<String>) -> Self {
        Self {
            default_user,
            own_name: current_user_name(),
            server_is_root: nix::unistd::Uid::effective().is_root(),
            known: Mutex::default(),
        }
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
