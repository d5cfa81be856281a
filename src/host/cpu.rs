//! How busy the CPUs are: count (online CPUs, `sysconf`) and model (/proc/cpuinfo), load
//! averages (/proc/loadavg) and pressure stall information (/proc/pressure/{cpu,memory,io},
//! kernels with PSI only).
//!
//! The model and the `hypervisor` flag are read from /proc/cpuinfo once per server
//! ([`static_facts`]): they cannot change while the kernel runs, and /proc/cpuinfo is the
//! costly file here (a block per CPU; on some kernels it samples each CPU's frequency).
//! The count, the load and the pressure are read on every call.

use procfs::Current as _;
use serde::Serialize;

use super::HostError;

/// The CPUs, their load and pressure.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct CpuFacts {
    /// Online logical CPUs (processor entries of /proc/cpuinfo).
    pub count: u32,
    /// Model name of the first CPU, when the architecture names it.
    pub model: Option<String>,
    pub load: Load,
    /// Pressure stall information; `None` where the kernel has no /proc/pressure.
    pub pressure: Option<Pressure>,
}

/// /proc/loadavg.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Load {
    /// Load averages over 1, 5 and 15 minutes.
    pub one: f64,
    pub five: f64,
    pub fifteen: f64,
    /// Runnable threads now.
    pub runnable: u32,
    /// Threads that exist now (all processes' threads).
    pub threads: u32,
}

/// PSI: the share of time some task waited for the resource, over 10 s, 60 s and 300 s.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Pressure {
    pub cpu: Option<Stall>,
    pub memory: Option<Stall>,
    pub io: Option<Stall>,
}

/// One resource's `some` line: percent of wall time at least one task stalled.
#[derive(Debug, Clone, Copy, Serialize, schemars::JsonSchema)]
pub struct Stall {
    pub avg10: f64,
    pub avg60: f64,
    pub avg300: f64,
}

impl From<&procfs::PressureRecord> for Stall {
    fn from(record: &procfs::PressureRecord) -> Self {
        Self {
            avg10: hundredths(record.avg10),
            avg60: hundredths(record.avg60),
            avg300: hundredths(record.avg300),
        }
    }
}

/// The kernel's two decimals, without the noise of f32 (`0.97` rather than
/// `0.9700000286102295`).
fn hundredths(value: f32) -> f64 {
    (f64::from(value) * 100.0).round() / 100.0
}

/// What /proc/cpuinfo says that cannot change while the kernel runs.
#[derive(Debug, Clone, Default)]
pub struct StaticCpuFacts {
    /// Processor entries when it was read (a fallback for [`online_count`]).
    pub count: u32,
    /// Model name of the first CPU, when the architecture names it.
    pub model: Option<String>,
    /// The CPU says it runs under a hypervisor (the `hypervisor` flag on x86).
    pub hypervisor: bool,
}

/// /proc/cpuinfo's lasting facts, read on the first call of the server.
pub fn static_facts() -> Result<&'static StaticCpuFacts, HostError> {
    static FACTS: std::sync::OnceLock<StaticCpuFacts> = std::sync::OnceLock::new();
    if let Some(facts) = FACTS.get() {
        return Ok(facts);
    }
    let info = procfs::CpuInfo::current().map_err(HostError::proc("cpuinfo"))?;
    Ok(FACTS.get_or_init(|| StaticCpuFacts {
        count: u32::try_from(info.num_cores()).unwrap_or(u32::MAX),
        model: info
            .model_name(0)
            .or_else(|| info.get_field(0, "Model"))
            .map(str::to_owned),
        hypervisor: info
            .flags(0)
            .is_some_and(|flags| flags.contains(&"hypervisor")),
    }))
}

/// CPUs online now (`sysconf(_SC_NPROCESSORS_ONLN)`, which follows hotplug: the
/// processor entries of /proc/cpuinfo).
pub fn online_count() -> Option<u32> {
    nix::unistd::sysconf(nix::unistd::SysconfVar::_NPROCESSORS_ONLN)
        .ok()
        .flatten()
        .and_then(|count| u32::try_from(count).ok())
        .filter(|count| *count > 0)
}

/// Read CPU count, model, load and pressure.
pub fn read() -> Result<CpuFacts, HostError> {
    let lasting = static_facts()?;
    Ok(CpuFacts {
        count: online_count().unwrap_or(lasting.count),
        model: lasting.model.clone(),
        load: load()?,
        pressure: pressure(),
    })
}

/// The load averages alone (cheap: one small file).
pub fn load() -> Result<Load, HostError> {
    let load = procfs::LoadAverage::current().map_err(HostError::proc("loadavg"))?;
    Ok(Load {
        one: hundredths(load.one),
        five: hundredths(load.five),
        fifteen: hundredths(load.fifteen),
        runnable: load.cur,
        threads: load.max,
    })
}

/// PSI where the kernel has it.
pub fn pressure() -> Option<Pressure> {
    if !std::path::Path::new("/proc/pressure").is_dir() {
        return None;
    }
    Some(Pressure {
        cpu: procfs::CpuPressure::current()
            .ok()
            .map(|p| Stall::from(&p.some)),
        memory: procfs::MemoryPressure::current()
            .ok()
            .map(|p| Stall::from(&p.some)),
        io: procfs::IoPressure::current()
            .ok()
            .map(|p| Stall::from(&p.some)),
    })
}

/// Whether the CPU says it runs under a hypervisor (the `hypervisor` flag on x86).
pub fn hypervisor_flag() -> bool {
    static_facts().is_ok_and(|facts| facts.hypervisor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn count_and_load_match_proc() {
        let facts = read().unwrap();
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap();
        let processors = cpuinfo
            .lines()
            .filter(|line| line.starts_with("processor"))
            .count();
        assert_eq!(facts.count as usize, processors);
        assert_eq!(static_facts().unwrap().count as usize, processors);
        let model = cpuinfo
            .lines()
            .find_map(|line| line.strip_prefix("model name")?.split_once(':'))
            .map(|(_, model)| model.trim().to_owned());
        if model.is_some() {
            assert_eq!(facts.model, model);
        }
        let loadavg = std::fs::read_to_string("/proc/loadavg").unwrap();
        let five: f64 = loadavg.split_whitespace().nth(1).unwrap().parse().unwrap();
        // The five-minute average moves slowly; the reads are a moment apart.
        assert!(
            (facts.load.five - five).abs() < 0.5,
            "{facts:?} vs {loadavg}"
        );
        assert!(facts.load.threads >= 1);
    }

    #[test]
    fn pressure_is_there_exactly_when_the_kernel_has_it() {
        let has_psi = std::fs::read_to_string("/proc/pressure/cpu").is_ok();
        let pressure = pressure();
        assert_eq!(
            pressure.is_some(),
            std::path::Path::new("/proc/pressure").is_dir()
        );
        if has_psi {
            let cpu = pressure.unwrap().cpu.unwrap();
            assert!((0.0..=100.0).contains(&cpu.avg60));
        }
    }
}
