//! The host facts the resources show, read straight from the kernel and /etc: a small
//! adapter so the resources do not depend on how a tool shapes its result (the `host`
//! readers of issue 13 can replace it whole).

use serde::Serialize;

/// `host://info`: who and what the host is, and how it is doing.
#[derive(Debug, Serialize)]
pub struct Info {
    pub hostname: String,
    /// PRETTY_NAME of os-release.
    pub os: Option<String>,
    pub kernel: Option<String>,
    pub architecture: String,
    pub uptime_secs: u64,
    pub load: Load,
    pub cpus: usize,
    pub memory_total_bytes: u64,
    pub memory_available_bytes: Option<u64>,
}

/// `host://load`: /proc/loadavg, named.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Load {
    pub load1: f64,
    pub load5: f64,
    pub load15: f64,
    /// Runnable scheduling entities (threads) now.
    pub runnable: u64,
    /// Scheduling entities (threads) in all.
    pub threads: u64,
}

pub fn info() -> Info {
    let system = nix::sys::sysinfo::sysinfo().ok();
    Info {
        hostname: nix::unistd::gethostname()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default(),
        os: os_release().and_then(|text| {
            text.lines()
                .find_map(|line| line.strip_prefix("PRETTY_NAME="))
                .map(|value| value.trim_matches('"').to_owned())
        }),
        kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .ok()
            .map(|text| text.trim().to_owned()),
        architecture: std::env::consts::ARCH.to_owned(),
        uptime_secs: system.as_ref().map_or(0, |s| s.uptime().as_secs()),
        load: load().unwrap_or(Load {
            load1: 0.0,
            load5: 0.0,
            load15: 0.0,
            runnable: 0,
            threads: 0,
        }),
        cpus: std::thread::available_parallelism().map_or(1, usize::from),
        memory_total_bytes: system.as_ref().map_or(0, |s| s.ram_total()),
        memory_available_bytes: meminfo_kib("MemAvailable:").map(|kib| kib * 1024),
    }
}

/// /proc/loadavg: `0.52 0.58 0.59 2/345 12345`.
pub fn load() -> Option<Load> {
    parse_loadavg(&std::fs::read_to_string("/proc/loadavg").ok()?)
}

fn parse_loadavg(text: &str) -> Option<Load> {
    let mut fields = text.split_whitespace();
    let mut average = || fields.next()?.parse::<f64>().ok();
    let (load1, load5, load15) = (average()?, average()?, average()?);
    let (runnable, threads) = fields.next()?.split_once('/')?;
    Some(Load {
        load1,
        load5,
        load15,
        runnable: runnable.parse().ok()?,
        threads: threads.parse().ok()?,
    })
}

/// /etc/os-release, else /usr/lib/os-release (as os-release(5) says).
pub fn os_release() -> Option<String> {
    std::fs::read_to_string("/etc/os-release")
        .or_else(|_| std::fs::read_to_string("/usr/lib/os-release"))
        .ok()
}

fn meminfo_kib(key: &str) -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|line| line.starts_with(key))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loadavg_is_parsed_and_a_malformed_one_is_not() {
        let load = parse_loadavg("0.52 0.58 0.59 2/345 12345\n").unwrap();
        assert_eq!(
            (load.load1, load.load15, load.runnable, load.threads),
            (0.52, 0.59, 2, 345)
        );
        assert_eq!(parse_loadavg("0.52 0.58"), None);
        assert_eq!(parse_loadavg("0.52 0.58 0.59 2-345 1"), None);
    }

    #[test]
    fn the_facts_of_this_host() {
        let info = info();
        assert!(!info.hostname.is_empty() && info.cpus >= 1 && info.memory_total_bytes > 0);
        let proc_threads: u64 = std::fs::read_to_string("/proc/loadavg")
            .unwrap()
            .split_whitespace()
            .nth(3)
            .unwrap()
            .split_once('/')
            .unwrap()
            .1
            .parse()
            .unwrap();
        // The thread count moves; it stays in the same range.
        assert!(load().unwrap().threads.abs_diff(proc_threads) < 1000);
    }
}
