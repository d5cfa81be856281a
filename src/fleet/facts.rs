//! The few host facts a presence beat carries (for `host_list` and selectors): OS,
//! kernel, architecture, CPUs, memory, uptime, load. Read with the host readers of
//! `crate::host`; a fact that cannot be read is left out, never guessed.

use super::protocol::Facts;
use crate::host;

/// The facts of this host now.
pub fn read() -> Facts {
    let os = host::os::read().ok();
    Facts {
        os: host::os::distribution().and_then(|distribution| distribution.pretty_name),
        kernel: os.as_ref().map(|os| os.kernel.clone()),
        arch: std::env::consts::ARCH.to_owned(),
        cpus: host::cpu::online_count().unwrap_or(1),
        memory_bytes: host::memory::read().ok().map(|memory| memory.total_bytes),
        uptime_s: os.map(|os| os.uptime_secs),
        load1: host::cpu::load().ok().map(|load| load.one),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn this_host_has_an_architecture_cpus_and_memory() {
        let facts = super::read();
        assert_eq!(facts.arch, std::env::consts::ARCH);
        assert!(facts.cpus >= 1);
        assert!(facts.memory_bytes.is_some_and(|bytes| bytes > 0));
        assert!(facts.kernel.is_some());
    }
}
