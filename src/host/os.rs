//! Who the host is: hostname, distribution (`/etc/os-release`, falling back to
//! `/usr/lib/os-release` as os-release(5) says), kernel release, architecture, boot time
//! and uptime. Every call reads them afresh: a `uname`, three clock reads (the uptime is
//! `CLOCK_BOOTTIME`, the clock /proc/uptime prints) and a `statx` of os-release, whose
//! parsed fields are kept while the file's identity (device, inode, size, change time)
//! stays the same: an upgrade that rewrites it is seen on the next call.

use parking_lot::Mutex;
use serde::Serialize;

use super::HostError;

/// The host's identity and how long it has been up.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct OsFacts {
    pub hostname: String,
    /// The distribution, from os-release; `None` when neither file exists.
    pub distribution: Option<Distribution>,
    /// Kernel release (`uname -r`).
    pub kernel: String,
    /// Machine architecture (`uname -m`).
    pub architecture: String,
    /// Boot time, Unix seconds (`btime` of /proc/stat).
    pub boot_time_unix: u64,
    /// Seconds since boot (/proc/uptime).
    pub uptime_secs: u64,
}

/// The fields of os-release a reader wants.
#[derive(Debug, Clone, Default, Serialize, schemars::JsonSchema)]
pub struct Distribution {
    /// `PRETTY_NAME`, e.g. "Debian GNU/Linux 12 (bookworm)".
    pub pretty_name: Option<String>,
    /// `ID`, e.g. "debian".
    pub id: Option<String>,
    /// `VERSION_ID`, e.g. "12".
    pub version_id: Option<String>,
}

/// Read the host's identity.
pub fn read() -> Result<OsFacts, HostError> {
    let uname = nix::sys::utsname::uname().map_err(|source| HostError::Sys {
        call: "uname",
        source,
    })?;
    // Whole seconds: the fraction is noise for a reader.
    let uptime_secs =
        u64::try_from(rustix::time::clock_gettime(rustix::time::ClockId::Boottime).tv_sec)
            .unwrap_or(0);
    Ok(OsFacts {
        hostname: uname.nodename().to_string_lossy().into_owned(),
        distribution: distribution(),
        kernel: uname.release().to_string_lossy().into_owned(),
        architecture: uname.machine().to_string_lossy().into_owned(),
        boot_time_unix: boot_time_secs(),
        uptime_secs,
    })
}

/// Boot time in Unix seconds, as /proc/stat's `btime` shows it, without reading
/// /proc/stat (a large file on a host with many CPUs and interrupts). The kernel's btime
/// is the wall clock minus the time since boot (`getboottime64`); the two clocks, read
/// back to back, give it to within the nanoseconds between the reads. Only when that
/// falls within a millisecond of a whole second, where the reads' skew could round it
/// the other way, is /proc/stat read. Unlike `procfs::boot_time_secs`, which keeps its
/// first answer for the thread's life, this follows a step of the wall clock.
pub fn boot_time_secs() -> u64 {
    use rustix::time::{ClockId, clock_gettime};
    let nanos =
        |t: rustix::time::Timespec| i128::from(t.tv_sec) * 1_000_000_000 + i128::from(t.tv_nsec);
    let real = nanos(clock_gettime(ClockId::Realtime));
    let since_boot = nanos(clock_gettime(ClockId::Boottime));
    let boot = real - since_boot;
    let fraction = boot.rem_euclid(1_000_000_000);
    if (1_000_000..999_000_000).contains(&fraction) {
        return u64::try_from(boot.div_euclid(1_000_000_000)).unwrap_or(0);
    }
    <procfs::KernelStats as procfs::CurrentSI>::current()
        .map(|stat| stat.btime)
        .unwrap_or_else(|_| u64::try_from(boot.div_euclid(1_000_000_000)).unwrap_or(0))
}

/// os-release of this host, if it has one: parsed again only when the file changed.
pub fn distribution() -> Option<Distribution> {
    static PARSED: OsRelease = OsRelease::new();
    PARSED.read(&OS_RELEASE)
}

/// The parsed os-release and the identity of the file it was parsed from.
struct OsRelease(Mutex<Option<(FileIdentity, Distribution)>>);

impl OsRelease {
    const fn new() -> Self {
        Self(Mutex::new(None))
    }

    /// The first of `paths` that exists, parsed, or kept from the last call when the
    /// file's identity is unchanged.
    fn read(&self, paths: &[&str]) -> Option<Distribution> {
        let (path, identity) = paths
            .iter()
            .find_map(|path| Some((*path, FileIdentity::of(path)?)))?;
        if let Some((seen, parsed)) = &*self.0.lock()
            && *seen == identity
        {
            return Some(parsed.clone());
        }
        let parsed = parse_os_release(&std::fs::read_to_string(path).ok()?);
        *self.0.lock() = Some((identity, parsed.clone()));
        Some(parsed)
    }
}

/// What tells one version of a file from another without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileIdentity {
    device: u64,
    inode: u64,
    size: i64,
    changed: (i64, u64),
}

impl FileIdentity {
    /// Of the file `path` names (through symlinks); `None` when there is none.
    #[allow(clippy::useless_conversion)] // the field types differ between architectures
    fn of(path: &str) -> Option<Self> {
        let stat = rustix::fs::stat(path).ok()?;
        Some(Self {
            device: u64::from(stat.st_dev),
            inode: u64::from(stat.st_ino),
            size: i64::from(stat.st_size),
            changed: (i64::from(stat.st_ctime), u64::from(stat.st_ctime_nsec)),
        })
    }
}

/// Where os-release lives, in the order os-release(5) gives.
const OS_RELEASE: [&str; 2] = ["/etc/os-release", "/usr/lib/os-release"];

/// The text of /etc/os-release, else /usr/lib/os-release (as os-release(5) says).
pub fn os_release_text() -> Option<String> {
    OS_RELEASE
        .iter()
        .find_map(|path| std::fs::read_to_string(path).ok())
}

/// The fields of an os-release text: `KEY=value` lines, values optionally quoted.
pub fn parse_os_release(text: &str) -> Distribution {
    let mut found = Distribution::default();
    for line in text.lines() {
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let value = unquote(value.trim());
        let slot = match key.trim() {
            "PRETTY_NAME" => &mut found.pretty_name,
            "ID" => &mut found.id,
            "VERSION_ID" => &mut found.version_id,
            _ => continue,
        };
        *slot = Some(value);
    }
    found
}

fn unquote(value: &str) -> String {
    let inner = value
        .strip_prefix('"')
        .and_then(|rest| rest.strip_suffix('"'))
        .or_else(|| {
            value
                .strip_prefix('\'')
                .and_then(|rest| rest.strip_suffix('\''))
        })
        .unwrap_or(value);
    inner.replace("\\\"", "\"").replace("\\\\", "\\")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_release_values_are_unquoted() {
        let parsed = parse_os_release(
            "NAME=\"Debian GNU/Linux\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n\
             ID=debian\nVERSION_ID='12'\n# comment\nBROKEN\n",
        );
        assert_eq!(
            parsed.pretty_name.as_deref(),
            Some("Debian GNU/Linux 12 (bookworm)")
        );
        assert_eq!(parsed.id.as_deref(), Some("debian"));
        assert_eq!(parsed.version_id.as_deref(), Some("12"));
    }

    #[test]
    fn os_release_is_parsed_again_when_the_file_changes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("os-release");
        let path = path.to_str().unwrap();
        let cache = OsRelease::new();
        std::fs::write(path, "ID=debian\nVERSION_ID=12\n").unwrap();
        let first = cache.read(&["/nonexistent/os-release", path]).unwrap();
        assert_eq!(first.version_id.as_deref(), Some("12"));
        // Near miss: the file unchanged, the answer is the same.
        let again = cache.read(&[path]).unwrap();
        assert_eq!(again.version_id.as_deref(), Some("12"));
        // An upgrade rewrites it (same size, so only the change time or inode tells).
        std::fs::write(format!("{path}.new"), "ID=debian\nVERSION_ID=13\n").unwrap();
        std::fs::rename(format!("{path}.new"), path).unwrap();
        let upgraded = cache.read(&[path]).unwrap();
        assert_eq!(upgraded.version_id.as_deref(), Some("13"));
        assert!(cache.read(&["/nonexistent/os-release"]).is_none());
        // The host's own, as read without the cache.
        assert_eq!(
            distribution().map(|d| d.pretty_name),
            os_release_text().map(|text| parse_os_release(&text).pretty_name)
        );
    }

    #[test]
    fn facts_match_proc_and_uname() {
        let facts = read().unwrap();
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
        assert_eq!(facts.kernel, release.trim());
        let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
        assert_eq!(facts.hostname, hostname.trim());
        let stat = std::fs::read_to_string("/proc/stat").unwrap();
        let btime: u64 = stat
            .lines()
            .find_map(|line| line.strip_prefix("btime "))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert_eq!(facts.boot_time_unix, btime);
        let uptime: f64 = std::fs::read_to_string("/proc/uptime")
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert!(facts.uptime_secs.abs_diff(uptime as u64) <= 2);
        assert_eq!(facts.architecture, std::env::consts::ARCH);
    }
}
