//! Which config file a command reads when none is named: the operator's places, in order.
//!
//! 1. `--config PATH` or `HOSTMCP_CONFIG` (the file must exist);
//! 2. `$XDG_CONFIG_HOME/hostmcp/hostmcp.toml` (default `~/.config/hostmcp/hostmcp.toml`);
//! 3. `/etc/hostmcp/hostmcp.toml`, only when running as root;
//! 4. none: the embedded defaults (the README's "one command on a fresh machine").
//!
//! The choice is pure ([`discover`] takes the environment and a probe for existence), and
//! [`ConfigSource::describe`] is the one line `serve` logs about it.

use std::path::{Path, PathBuf};

use super::{ConfigError, EnvSnapshot, FileConfig};

/// The system-wide config file, read by root when the user has none.
pub const SYSTEM_CONFIG: &str = "/etc/hostmcp/hostmcp.toml";

/// Where the configuration comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigSource {
    /// Named by `--config` or `HOSTMCP_CONFIG`.
    Named(PathBuf),
    /// Found at the user's place (`$XDG_CONFIG_HOME/hostmcp/hostmcp.toml`).
    User(PathBuf),
    /// Found at [`SYSTEM_CONFIG`] (root only).
    System(PathBuf),
    /// No file: the embedded defaults. `looked_at` lists the places searched.
    Defaults { looked_at: Vec<PathBuf> },
}

impl ConfigSource {
    /// The file to read, if any.
    pub fn path(&self) -> Option<&Path> {
        match self {
            Self::Named(path) | Self::User(path) | Self::System(path) => Some(path),
            Self::Defaults { .. } => None,
        }
    }

    /// Read and parse the file, or the empty file of the defaults.
    pub fn load(&self) -> Result<FileConfig, ConfigError> {
        super::load_file(self.path())
    }

    /// One line for the log: which file was used and why, or that none was.
    pub fn describe(&self) -> String {
        match self {
            Self::Named(path) => format!(
                "config: {} (named by --config or HOSTMCP_CONFIG)",
                path.display()
            ),
            Self::User(path) => format!("config: {} (the user's config file)", path.display()),
            Self::System(path) => format!("config: {} (the system config file)", path.display()),
            Self::Defaults { looked_at } => {
                let places: Vec<String> = looked_at
                    .iter()
                    .map(|path| path.display().to_string())
                    .collect();
                format!(
                    "config: no config file (looked at {}); using the embedded defaults",
                    places.join(", ")
                )
            }
        }
    }
}

/// Where the configuration comes from for a process with `env`, running as root or not;
/// `exists` says whether a file is there.
pub fn discover(
    named: Option<&Path>,
    env: &EnvSnapshot,
    is_root: bool,
    exists: impl Fn(&Path) -> bool,
) -> ConfigSource {
    if let Some(path) = named {
        return ConfigSource::Named(path.to_owned());
    }
    let mut looked_at = Vec::new();
    if let Some(user) = user_config(env) {
        if exists(&user) {
            return ConfigSource::User(user);
        }
        looked_at.push(user);
    }
    if is_root {
        let system = PathBuf::from(SYSTEM_CONFIG);
        if exists(&system) {
            return ConfigSource::System(system);
        }
        looked_at.push(system);
    }
    ConfigSource::Defaults { looked_at }
}

/// [`discover`] for this process: its effective uid and the file system.
pub fn discover_here(named: Option<&Path>, env: &EnvSnapshot) -> ConfigSource {
    discover(
        named,
        env,
        nix::unistd::Uid::effective().is_root(),
        Path::exists,
    )
}

/// `$XDG_CONFIG_HOME/hostmcp/hostmcp.toml`, else `~/.config/hostmcp/hostmcp.toml`.
fn user_config(env: &EnvSnapshot) -> Option<PathBuf> {
    let base = match (&env.config_home, &env.home) {
        (Some(config), _) => config.clone(),
        (None, Some(home)) => home.join(".config"),
        (None, None) => return None,
    };
    Some(base.join("hostmcp").join("hostmcp.toml"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(config_home: Option<&str>, home: Option<&str>) -> EnvSnapshot {
        EnvSnapshot {
            config_home: config_home.map(PathBuf::from),
            home: home.map(PathBuf::from),
            ..EnvSnapshot::default()
        }
    }

    fn only(present: &'static [&'static str]) -> impl Fn(&Path) -> bool {
        move |path| present.iter().any(|p| Path::new(p) == path)
    }

    #[test]
    fn a_named_file_wins_over_every_place() {
        let all = only(&["/x/hostmcp/hostmcp.toml", SYSTEM_CONFIG]);
        let source = discover(
            Some(Path::new("/named.toml")),
            &env(Some("/x"), None),
            true,
            all,
        );
        assert_eq!(source, ConfigSource::Named("/named.toml".into()));
    }

    #[test]
    fn the_users_file_comes_before_the_systems() {
        let all = only(&["/x/hostmcp/hostmcp.toml", SYSTEM_CONFIG]);
        let source = discover(None, &env(Some("/x"), Some("/home/u")), true, all);
        assert_eq!(source, ConfigSource::User("/x/hostmcp/hostmcp.toml".into()));
        // Without XDG_CONFIG_HOME the user's place is under ~/.config.
        let home = only(&["/home/u/.config/hostmcp/hostmcp.toml"]);
        let source = discover(None, &env(None, Some("/home/u")), false, home);
        assert_eq!(
            source,
            ConfigSource::User("/home/u/.config/hostmcp/hostmcp.toml".into())
        );
    }

    #[test]
    fn root_reads_the_system_file_and_others_do_not() {
        let system = only(&[SYSTEM_CONFIG]);
        let source = discover(None, &env(Some("/x"), None), true, &system);
        assert_eq!(source, ConfigSource::System(SYSTEM_CONFIG.into()));
        // Near miss: the same host, not root: the defaults, and /etc was not looked at.
        let source = discover(None, &env(Some("/x"), None), false, &system);
        assert_eq!(
            source,
            ConfigSource::Defaults {
                looked_at: vec!["/x/hostmcp/hostmcp.toml".into()]
            }
        );
    }

    #[test]
    fn no_file_anywhere_is_the_embedded_defaults_and_says_where_it_looked() {
        let source = discover(None, &env(Some("/x"), None), true, only(&[]));
        let line = source.describe();
        assert_eq!(source.path(), None);
        assert!(line.contains("/x/hostmcp/hostmcp.toml"), "{line}");
        assert!(line.contains(SYSTEM_CONFIG), "{line}");
        assert!(line.contains("embedded defaults"), "{line}");
    }
}
