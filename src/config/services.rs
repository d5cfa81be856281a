//! The `[systemd]` and `[logs]` tables: where `service_status` finds the systemd manager,
//! and which logs `log_query` may read (the journal unless turned off, and only the files
//! listed here), with the caps on what one query reads and returns.

use std::{collections::BTreeMap, path::PathBuf, time::Duration};

use serde::Deserialize;

use super::ConfigError;
use crate::host::systemd::Target;

/// The `[systemd]` table as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSystemd {
    /// A D-Bus bus address (`unix:path=...`) on which systemd is reached, e.g. a user
    /// manager's `unix:path=$XDG_RUNTIME_DIR/bus`; default: the system bus.
    pub bus_address: Option<String>,
    /// Bound on connecting and on each call.
    pub timeout_secs: Option<u64>,
}

/// The `[logs]` table as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileLogs {
    /// false: the journal is not offered.
    pub journal: Option<bool>,
    /// Read journal files from this directory instead of the system journal.
    pub journal_directory: Option<PathBuf>,
    /// Log files that may be read, each named by its path.
    #[serde(default)]
    pub files: Vec<PathBuf>,
    /// Log files that may be read, by a name of their own.
    #[serde(default)]
    pub sources: BTreeMap<String, PathBuf>,
    pub max_lines: Option<usize>,
    pub max_bytes: Option<usize>,
    pub max_line_bytes: Option<usize>,
    pub max_scan_bytes: Option<u64>,
    pub max_scan_entries: Option<u64>,
    pub timeout_secs: Option<u64>,
}

/// The resolved `[systemd]` and `[logs]` tables.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceSettings {
    pub systemd: SystemdSettings,
    pub logs: LogSettings,
}

/// Where and how `service_status` asks systemd.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemdSettings {
    pub target: Target,
    pub timeout: Duration,
}

impl Default for SystemdSettings {
    fn default() -> Self {
        Self {
            target: Target::System,
            timeout: Duration::from_secs(5),
        }
    }
}

/// A log file `log_query` may read: its name and its absolute, normal path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogFileSource {
    pub name: String,
    pub path: PathBuf,
}

/// What `log_query` may read, and its caps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSettings {
    pub journal: bool,
    pub journal_directory: Option<PathBuf>,
    pub files: Vec<LogFileSource>,
    /// The most lines one query returns.
    pub max_lines: usize,
    /// The most bytes of log text one query returns.
    pub max_bytes: usize,
    /// A longer line is cut.
    pub max_line_bytes: usize,
    /// How much of a file's tail is read.
    pub max_scan_bytes: u64,
    /// How many journal entries one query reads at most.
    pub max_scan_entries: u64,
    pub timeout: Duration,
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            journal: true,
            journal_directory: None,
            files: Vec::new(),
            max_lines: 1000,
            max_bytes: 64 * 1024,
            max_line_bytes: 2048,
            max_scan_bytes: 16 * 1024 * 1024,
            max_scan_entries: 200_000,
            timeout: Duration::from_secs(10),
        }
    }
}

impl LogSettings {
    /// The file source called `name`, or configured with exactly the path `name`.
    pub fn file(&self, name: &str) -> Option<&LogFileSource> {
        self.files
            .iter()
            .find(|source| source.name == name || source.path.as_os_str() == name)
    }
}

/// The name `log_query` uses for the journal; no file source may take it.
pub const JOURNAL: &str = "journal";

pub fn resolve_systemd(file: &FileSystemd) -> Result<SystemdSettings, ConfigError> {
    let bad = |message: &str| ConfigError::BadServices {
        table: "systemd",
        message: message.to_owned(),
    };
    let target = match &file.bus_address {
        Some(address) if zbus::Address::try_from(address.as_str()).is_err() => {
            return Err(bad(
                "bus_address is not a D-Bus address (unix:path=/run/...)",
            ));
        }
        Some(address) => Target::Bus(address.clone()),
        None => Target::System,
    };
    let timeout = match file.timeout_secs {
        Some(0) => return Err(bad("timeout_secs must be at least 1")),
        Some(seconds) => Duration::from_secs(seconds),
        None => SystemdSettings::default().timeout,
    };
    Ok(SystemdSettings { target, timeout })
}

pub fn resolve_logs(file: &FileLogs) -> Result<LogSettings, ConfigError> {
    let bad = |message: String| ConfigError::BadServices {
        table: "logs",
        message,
    };
    let defaults = LogSettings::default();
    let mut files: Vec<LogFileSource> = Vec::new();
    let named = file
        .files
        .iter()
        .map(|path| (path.to_string_lossy().into_owned(), path))
        .chain(file.sources.iter().map(|(name, path)| (name.clone(), path)));
    for (name, path) in named {
        if !is_normal_absolute(path) {
            return Err(bad(format!(
                "{}: a log file must be an absolute path without '.', '..' or a trailing '/'",
                path.display()
            )));
        }
        if name == JOURNAL || name.is_empty() || name.chars().any(char::is_control) {
            return Err(bad(format!("{name:?} cannot name a log source")));
        }
        if files.iter().any(|source| source.name == name) {
            return Err(bad(format!("{name:?} is listed twice")));
        }
        files.push(LogFileSource {
            name,
            path: path.clone(),
        });
    }
    let settings = LogSettings {
        journal: file.journal.unwrap_or(defaults.journal),
        journal_directory: file.journal_directory.clone(),
        files,
        max_lines: file.max_lines.unwrap_or(defaults.max_lines),
        max_bytes: file.max_bytes.unwrap_or(defaults.max_bytes),
        max_line_bytes: file.max_line_bytes.unwrap_or(defaults.max_line_bytes),
        max_scan_bytes: file.max_scan_bytes.unwrap_or(defaults.max_scan_bytes),
        max_scan_entries: file.max_scan_entries.unwrap_or(defaults.max_scan_entries),
        timeout: file
            .timeout_secs
            .map_or(defaults.timeout, Duration::from_secs),
    };
    if settings.max_lines == 0
        || settings.max_line_bytes < 64
        || settings.max_bytes < settings.max_line_bytes
        || settings.max_scan_bytes == 0
        || settings.max_scan_entries == 0
        || settings.timeout.is_zero()
    {
        return Err(bad(
            "max_lines, max_scan_bytes, max_scan_entries and timeout_secs must be at least 1, \
             max_line_bytes at least 64 and max_bytes at least max_line_bytes"
                .to_owned(),
        ));
    }
    Ok(settings)
}

/// Absolute, with no `.` or `..` component and no trailing `/`: the path the kernel gives
/// back for the file once opened.
fn is_normal_absolute(path: &std::path::Path) -> bool {
    use std::path::Component;
    let text = path.as_os_str().as_encoded_bytes();
    path.is_absolute()
        && text.len() > 1
        && !text.ends_with(b"/")
        && !text
            .split(|byte| *byte == b'/')
            .skip(1)
            .any(|part| part.is_empty() || part == b"." || part == b"..")
        && path
            .components()
            .all(|part| matches!(part, Component::RootDir | Component::Normal(_)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn logs(text: &str) -> Result<LogSettings, ConfigError> {
        let file: FileLogs = toml::from_str(text).unwrap();
        resolve_logs(&file)
    }

    #[test]
    fn log_sources_by_path_and_by_name() {
        let settings = logs(
            "files = [\"/var/log/syslog\"]\n[sources]\nnginx = \"/var/log/nginx/error.log\"\n",
        )
        .unwrap();
        assert_eq!(
            settings.file("/var/log/syslog").unwrap().path,
            PathBuf::from("/var/log/syslog")
        );
        assert_eq!(
            settings.file("nginx").unwrap().path,
            PathBuf::from("/var/log/nginx/error.log")
        );
        // Its path names it too; nothing else does.
        assert!(settings.file("/var/log/nginx/error.log").is_some());
        for unlisted in [
            "/var/log/auth.log",
            "/var/log/../log/syslog",
            "syslog",
            "journal",
        ] {
            assert!(settings.file(unlisted).is_none(), "{unlisted}");
        }
        assert!(settings.journal);
    }

    #[test]
    fn log_paths_must_be_absolute_and_normal() {
        for bad in [
            "var/log/x",
            "/var/log/../x",
            "/var/./log/x",
            "/var/log/x/",
            "/var//log/x",
            "/",
        ] {
            assert!(logs(&format!("files = [{bad:?}]")).is_err(), "{bad}");
        }
        assert!(logs("files = [\"/var/log/x.log\"]").is_ok());
        assert!(logs("[sources]\njournal = \"/var/log/x\"").is_err());
        assert!(logs("max_lines = 0").is_err());
        assert!(logs("max_lines = 1").is_ok());
    }

    #[test]
    fn systemd_target_from_the_table() {
        let resolve = |text: &str| resolve_systemd(&toml::from_str(text).unwrap());
        assert_eq!(resolve("").unwrap(), SystemdSettings::default());
        assert_eq!(
            resolve("bus_address = \"unix:path=/tmp/bus\"")
                .unwrap()
                .target,
            Target::Bus("unix:path=/tmp/bus".into())
        );
        assert!(resolve("bus_address = \"nonsense\"").is_err());
        // Not a key: zbus cannot read systemd's private socket (see host::systemd).
        assert!(
            toml::from_str::<FileSystemd>("private_socket = \"/run/systemd/private\"").is_err()
        );
        assert!(resolve("timeout_secs = 0").is_err());
    }
}
