//! Who the host is: hostname, distribution (`/etc/os-release`, falling back to
//! `/usr/lib/os-release` as os-release(5) says), kernel release, architecture, boot time
//! and uptime. Every call reads them afresh: together they cost a `uname`, two clock
//! reads and two small files (os-release changes with an upgrade, the boot time with a
//! step of the wall clock).

use procfs::Current as _;
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
    let uptime = procfs::Uptime::current().map_err(HostError::proc("uptime"))?;
    // Whole seconds: the fraction is noise for a reader.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let uptime_secs = uptime.uptime.max(0.0) as u64;
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

/// os-release of this host, if it has one.
pub fn distribution() -> Option<Distribution> {
    os_release_text().map(|text| parse_os_release(&text))
}

/// The text of /etc/os-release, else /usr/lib/os-release (as os-release(5) says).
pub fn os_release_text() -> Option<String> {
    ["/etc/os-release", "/usr/lib/os-release"]
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
