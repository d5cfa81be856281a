//! What a command may reach, as a token or a policy allow rule writes it ([`Reach`]): the
//! filesystem roots it may read (`fs_read`) and write (`fs_write`), and its network
//! (`network = "none" | "any" | { connect = ["*:443", ...] }`). Parsed and checked here
//! ([`ReachWritten::parse`], [`Reach::canonicalize`], and the server's own files kept out:
//! [`Reach::check_protected`]); enforced by
//! `exec` in the child (Landlock and a network namespace, `exec::landlock`). A
//! ground-floor module, like [`crate::limits`], so the policy can carry it without
//! importing `exec`.
//!
//! A token's reach and its rule's are both applied (two Landlock layers): a command gets
//! only what both allow, as with limits the stricter wins.
//!
//! Network destinations are ports: Landlock restricts TCP `connect` by port number, not by
//! address, so a destination is written `"*:PORT"` and a named host is refused at load
//! rather than silently widened to "any host on that port".

use std::{fmt, path::PathBuf};

use serde::Deserialize;

/// The network a command gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Network {
    /// Unconfined.
    Any,
    /// No network at all: a fresh network namespace (only a loopback that is down), or,
    /// where the server cannot make one, Landlock refusing every TCP bind and connect.
    None,
    /// TCP connect only to these ports (any address); no TCP bind.
    Connect(Vec<u16>),
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Any => f.write_str("any"),
            Self::None => f.write_str("none"),
            Self::Connect(ports) => {
                let ports: Vec<String> = ports.iter().map(|port| format!("*:{port}")).collect();
                write!(f, "TCP connect to {} only", ports.join(", "))
            }
        }
    }
}

/// `network` as written: `"none"`, `"any"` or `{ connect = ["*:443"] }`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum NetworkWritten {
    Word(String),
    Table(ConnectTable),
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectTable {
    pub connect: Vec<String>,
}

/// What a token or an allow rule writes about a command's reach; all absent: unconfined.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReachWritten {
    pub fs_read: Option<Vec<PathBuf>>,
    pub fs_write: Option<Vec<PathBuf>>,
    pub network: Option<NetworkWritten>,
}

/// A validated reach: roots canonical, none of them touching the server's own files.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reach {
    /// `Some`: the filesystem is confined to these read roots and [`Self::fs_write`].
    pub fs_read: Option<Vec<PathBuf>>,
    pub fs_write: Option<Vec<PathBuf>>,
    /// `None`: not confined (as `Network::Any`).
    pub network: Option<Network>,
}

/// Why a reach cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReachError {
    #[error("{field} root {root:?} must be an absolute path")]
    Relative { field: &'static str, root: PathBuf },
    #[error("{field} root {root:?} cannot be used: {reason}")]
    Missing {
        field: &'static str,
        root: PathBuf,
        reason: String,
    },
    #[error(
        "{field} root {} would reach the server's own {} (state, keys, config and audit log \
         are never reachable by a command); list narrower roots beside it",
        .root.display(), .protected.display()
    )]
    Protected {
        field: &'static str,
        root: PathBuf,
        protected: PathBuf,
    },
    #[error(
        "{field} root {} is a process's /proc directory; every /proc/<number>, /proc/self and \
         /proc/thread-self root is refused (any of them may be the server or one of its \
         threads, whose environ holds secrets); list the /proc files a command needs, such \
         as /proc/meminfo",
        .root.display()
    )]
    ProcessDir { field: &'static str, root: PathBuf },
    #[error("network {0:?}: expected \"none\", \"any\" or {{ connect = [\"*:443\"] }}")]
    UnknownNetwork(String),
    #[error("network.connect is empty: use network = \"none\" for no network")]
    EmptyConnect,
    #[error(
        "network.connect {0:?}: write \"*:PORT\"; Landlock restricts TCP connect by port, not \
         by host, so a named host would silently allow every host on that port"
    )]
    Destination(String),
}

impl ReachWritten {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// Check what can be checked without I/O: roots absolute, network destinations ports.
    /// Roots stay as written until [`Reach::canonicalize`].
    pub fn parse(&self) -> Result<Reach, ReachError> {
        let roots = |field: &'static str, roots: &Option<Vec<PathBuf>>| {
            roots
                .as_ref()
                .map(|roots| {
                    roots
                        .iter()
                        .map(|root| {
                            if root.is_absolute() {
                                Ok(root.clone())
                            } else {
                                Err(ReachError::Relative {
                                    field,
                                    root: root.clone(),
                                })
                            }
                        })
                        .collect::<Result<Vec<_>, _>>()
                })
                .transpose()
        };
        let fs_write = roots("fs_write", &self.fs_write)?;
        let mut fs_read = roots("fs_read", &self.fs_read)?;
        if fs_write.is_some() && fs_read.is_none() {
            fs_read = Some(Vec::new());
        }
        Ok(Reach {
            fs_read,
            fs_write,
            network: self.network.as_ref().map(network).transpose()?,
        })
    }
}

impl Reach {
    /// Each root replaced by its canonical path (symlinks resolved); a root that does not
    /// exist is an error, not a silently narrower set.
    pub fn canonicalize(self) -> Result<Self, ReachError> {
        let roots = |field: &'static str, roots: Option<Vec<PathBuf>>| {
            roots
                .map(|roots| {
                    roots
                        .iter()
                        .map(|root| {
                            std::fs::canonicalize(root).map_err(|error| ReachError::Missing {
                                field,
                                root: root.clone(),
                                reason: error.to_string(),
                            })
                        })
                        .collect::<Result<Vec<_>, _>>()
                })
                .transpose()
        };
        Ok(Self {
            fs_read: roots("fs_read", self.fs_read)?,
            fs_write: roots("fs_write", self.fs_write)?,
            network: self.network,
        })
    }

    /// Refuse a root equal to, inside or above one of `protected` (the canonical paths of
    /// the server's state dir, keys, config and audit log), and any root inside a process's
    /// `/proc` directory ([`is_process_dir`]): Landlock only adds access, so the one way to
    /// keep those files out is never to grant a root that holds them.
    pub fn check_protected(&self, protected: &[PathBuf]) -> Result<(), ReachError> {
        let fields = [("fs_read", &self.fs_read), ("fs_write", &self.fs_write)];
        for (field, roots) in fields {
            for root in roots.iter().flatten() {
                if is_process_dir(root) {
                    return Err(ReachError::ProcessDir {
                        field,
                        root: root.clone(),
                    });
                }
                if let Some(hit) = protected
                    .iter()
                    .find(|path| path.starts_with(root) || root.starts_with(path))
                {
                    return Err(ReachError::Protected {
                        field,
                        root: root.clone(),
                        protected: hit.clone(),
                    });
                }
            }
        }
        Ok(())
    }
}

/// `/proc/<number>`, `/proc/self`, `/proc/thread-self` or anything beneath them.
///
/// Every numeric entry is refused, not only the server's pid: `/proc/<tid>` of any server
/// thread resolves although `/proc` does not list it, and a thread the runtime starts
/// after the check would get a tid no list made at load time could hold. Refusing them
/// all cannot be raced. The process-independent files (`/proc/meminfo`, `/proc/cpuinfo`,
/// `/proc/loadavg`, `/proc/sys/...`) stay allowed.
pub fn is_process_dir(root: &std::path::Path) -> bool {
    let Ok(rest) = root.strip_prefix("/proc") else {
        return false;
    };
    let Some(std::path::Component::Normal(first)) = rest.components().next() else {
        return false;
    };
    let first = first.to_string_lossy();
    first == "self"
        || first == "thread-self"
        || (!first.is_empty() && first.bytes().all(|byte| byte.is_ascii_digit()))
}

fn network(written: &NetworkWritten) -> Result<Network, ReachError> {
    match written {
        NetworkWritten::Word(word) => match word.as_str() {
            "none" => Ok(Network::None),
            "any" => Ok(Network::Any),
            other => Err(ReachError::UnknownNetwork(other.to_owned())),
        },
        NetworkWritten::Table(table) => {
            if table.connect.is_empty() {
                return Err(ReachError::EmptyConnect);
            }
            let mut ports = table
                .connect
                .iter()
                .map(|destination| port_of(destination))
                .collect::<Result<Vec<_>, _>>()?;
            ports.sort_unstable();
            ports.dedup();
            Ok(Network::Connect(ports))
        }
    }
}

/// `"*:443"` -> 443.
fn port_of(destination: &str) -> Result<u16, ReachError> {
    destination
        .strip_prefix("*:")
        .and_then(|port| port.parse::<u16>().ok())
        .filter(|port| *port != 0)
        .ok_or_else(|| ReachError::Destination(destination.to_owned()))
}

impl Reach {
    /// Confines anything (a filesystem root set, or a network other than "any").
    pub fn confines(&self) -> bool {
        self.confines_fs() || self.confines_network()
    }

    pub fn confines_fs(&self) -> bool {
        self.fs_read.is_some() || self.fs_write.is_some()
    }

    pub fn confines_network(&self) -> bool {
        matches!(self.network, Some(Network::None | Network::Connect(_)))
    }

    /// `fs_read [/usr, /etc]; fs_write [/srv/data]; network none`, or `unconfined`.
    pub fn describe(&self) -> String {
        let list = |roots: &[PathBuf]| {
            let shown: Vec<String> = roots.iter().map(|r| r.display().to_string()).collect();
            format!("[{}]", shown.join(", "))
        };
        let mut parts = Vec::new();
        if self.confines_fs() {
            parts.push(format!(
                "fs_read {}",
                list(self.fs_read.as_deref().unwrap_or_default())
            ));
            parts.push(format!(
                "fs_write {}",
                list(self.fs_write.as_deref().unwrap_or_default())
            ));
        }
        if let Some(network) = &self.network {
            parts.push(format!("network {network}"));
        }
        if parts.is_empty() {
            return "unconfined".to_owned();
        }
        parts.join("; ")
    }
}

#[cfg(test)]
mod tests;
