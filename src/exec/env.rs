//! The environment every command starts from ([`BaseEnv`]): an allowlist of the server's
//! own variables ([`INHERITED_VARS`]), never the server's environment as a whole.

use super::{DEFAULT_PATH, INHERITED_VARS};

/// The environment every command starts from (the server's own environment is never passed
/// on as a whole).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BaseEnv {
    vars: Vec<(String, String)>,
}

impl BaseEnv {
    /// The [`INHERITED_VARS`] the server has (non-UTF-8 values are skipped), with `PATH`
    /// defaulting to [`DEFAULT_PATH`] when unset or empty and `TERM` to `dumb` when unset.
    pub fn from_server_env() -> Self {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Like [`BaseEnv::from_server_env`], reading variables through `lookup` instead.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let mut env = Self::default();
        for &name in INHERITED_VARS {
            if let Some(value) = lookup(name) {
                env = env.with(name, value);
            }
        }
        if env.get("PATH").is_none_or(str::is_empty) {
            env = env.with("PATH", DEFAULT_PATH);
        }
        if env.get("TERM").is_none() {
            env = env.with("TERM", "dumb");
        }
        env
    }

    /// Sets `key` to `value`, replacing an earlier value.
    pub fn with(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        let (key, value) = (key.into(), value.into());
        match self.vars.iter_mut().find(|(k, _)| *k == key) {
            Some(entry) => entry.1 = value,
            None => self.vars.push((key, value)),
        }
        self
    }

    /// The value of `key`, if set.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.vars
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// All variables, in the order they were set.
    pub fn vars(&self) -> &[(String, String)] {
        &self.vars
    }
}
