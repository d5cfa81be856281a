//! The host at a glance: everything `host_info` reports, read in one call of [`load()`].
//! For any part of the product that shows the host's state (the `host_info` tool, a
//! `host://info` resource, a dashboard).

use serde::Serialize;

use super::{
    HostError, cpu::CpuFacts, disks::Filesystem, memory::MemoryFacts, os::OsFacts, users::Login,
    virt::Virtualisation,
};

/// The host's identity and state now.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Snapshot {
    #[serde(flatten)]
    pub os: OsFacts,
    pub cpu: CpuFacts,
    pub memory: MemoryFacts,
    /// The filesystem mounted at `/`.
    pub root_disk: Option<Filesystem>,
    /// Running processes (not threads).
    pub processes: u32,
    pub virtualisation: Virtualisation,
    /// Logged-in sessions; `None` when the host keeps no utmp (most containers).
    pub users: Option<Vec<Login>>,
}

/// Read every part. Only a failure of /proc itself is an error; a part one host lacks
/// is `None`.
pub fn load() -> Result<Snapshot, HostError> {
    Ok(Snapshot {
        os: super::os::read()?,
        cpu: super::cpu::read()?,
        memory: super::memory::read()?,
        root_disk: super::disks::filesystem_of("/")?,
        processes: u32::try_from(super::processes::count()?).unwrap_or(u32::MAX),
        virtualisation: super::virt::detected().clone(),
        users: super::users::logged_in(),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_snapshot_counts_processes_not_threads() {
        let snapshot = super::load().unwrap();
        let threads = snapshot.cpu.load.threads;
        let processes = std::fs::read_dir("/proc")
            .unwrap()
            .filter(|entry| {
                let name = entry.as_ref().unwrap().file_name();
                name.to_str().unwrap().bytes().all(|b| b.is_ascii_digit())
            })
            .count() as u32;
        assert!(snapshot.processes.abs_diff(processes) < 20);
        // This test process has at least the runner's threads: more threads than
        // processes on any host.
        assert!(
            threads > snapshot.processes,
            "{threads} vs {}",
            snapshot.processes
        );
        assert_eq!(snapshot.root_disk.unwrap().mount_point, "/");
    }
}
