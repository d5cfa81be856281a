//! Memory and swap, from /proc/meminfo (the kernel's own accounting, in bytes).

use procfs::Current as _;
use serde::Serialize;

use super::HostError;

/// Memory and swap in bytes.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct MemoryFacts {
    pub total_bytes: u64,
    /// `MemAvailable`: what can be given to programs without swapping (the kernel's
    /// estimate; on kernels before 3.14, free + buffers + cached).
    pub available_bytes: u64,
    pub free_bytes: u64,
    /// Page cache and buffers (`Cached` + `Buffers`).
    pub cached_bytes: u64,
    pub swap_total_bytes: u64,
    pub swap_free_bytes: u64,
}

/// Read /proc/meminfo.
pub fn read() -> Result<MemoryFacts, HostError> {
    let info = procfs::Meminfo::current().map_err(HostError::proc("meminfo"))?;
    let cached = info.cached + info.buffers;
    Ok(MemoryFacts {
        total_bytes: info.mem_total,
        available_bytes: info.mem_available.unwrap_or(info.mem_free + cached),
        free_bytes: info.mem_free,
        cached_bytes: cached,
        swap_total_bytes: info.swap_total,
        swap_free_bytes: info.swap_free,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meminfo_kib(name: &str) -> u64 {
        let text = std::fs::read_to_string("/proc/meminfo").unwrap();
        text.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap()
            .parse()
            .unwrap()
    }

    #[test]
    fn totals_match_proc_meminfo_in_bytes() {
        let facts = read().unwrap();
        assert_eq!(facts.total_bytes, meminfo_kib("MemTotal") * 1024);
        assert_eq!(facts.swap_total_bytes, meminfo_kib("SwapTotal") * 1024);
        // Available moves between the two reads; within 64 MiB.
        let available = meminfo_kib("MemAvailable") * 1024;
        assert!(facts.available_bytes.abs_diff(available) < 64 << 20);
        assert!(facts.available_bytes <= facts.total_bytes);
    }
}
