//! The host facts the `host://` resources show, read by the host readers of
//! [`crate::host`]: `host://info` is the same [`Snapshot`] the `host_info` tool returns as
//! its structured result, and `host://load` names the load figures of that snapshot the way
//! the resource has always named them. This file owns only that naming.

use serde::Serialize;

use crate::host::{self, HostError, snapshot::Snapshot};

/// `host://info`: the `host_info` tool's snapshot.
pub fn info() -> Result<Snapshot, HostError> {
    host::snapshot::load()
}

/// `host://load`: the load averages, named.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Load {
    pub load1: f64,
    pub load5: f64,
    pub load15: f64,
    /// Runnable scheduling entities (threads) now.
    pub runnable: u32,
    /// Scheduling entities (threads) in all.
    pub threads: u32,
}

impl From<host::cpu::Load> for Load {
    fn from(load: host::cpu::Load) -> Self {
        Self {
            load1: load.one,
            load5: load.five,
            load15: load.fifteen,
            runnable: load.runnable,
            threads: load.threads,
        }
    }
}

/// The load now (one small file).
pub fn load() -> Result<Load, HostError> {
    host::cpu::load().map(Load::from)
}

/// `host://os-release`: the file's text as it is.
pub fn os_release() -> Option<String> {
    host::os::os_release_text()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_load_keeps_its_names_and_the_readers_figures() {
        let load = Load::from(host::cpu::Load {
            one: 0.52,
            five: 0.58,
            fifteen: 0.59,
            runnable: 2,
            threads: 345,
        });
        assert_eq!(
            serde_json::to_value(&load).unwrap(),
            serde_json::json!({"load1": 0.52, "load5": 0.58, "load15": 0.59,
                               "runnable": 2, "threads": 345})
        );
    }

    #[test]
    fn info_is_the_host_info_snapshot_of_this_host() {
        let info = serde_json::to_value(info().unwrap()).unwrap();
        let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
        assert_eq!(info["hostname"], hostname.trim());
        assert!(info["cpu"]["count"].as_u64().unwrap() >= 1);
        assert!(info["memory"]["total_bytes"].as_u64().unwrap() > 0);
        let proc_threads: u32 = std::fs::read_to_string("/proc/loadavg")
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
