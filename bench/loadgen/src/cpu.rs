//! CPU time accounting from /proc, so results can be read per CPU-second: the machine
//! may be shared, and a server pinned to CPU 0 then gets less than the whole core.

use std::time::Instant;

use serde_json::{Value, json};

/// Linux reports process times in USER_HZ, which is 100 on every architecture we run.
const TICKS_PER_SECOND: f64 = 100.0;

/// A reading of the CPU time of some processes and of the two benchmark CPUs.
#[derive(Clone, Debug)]
pub struct Reading {
    at: Instant,
    /// utime+stime and cutime+cstime (reaped children) of each watched process, seconds.
    processes: Vec<Option<(f64, f64)>>,
    /// Busy and steal seconds of cpu0 and cpu1 (system-wide).
    cpus: Vec<Option<(f64, f64)>>,
}

fn process_times(pid: &str) -> Option<(f64, f64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces; fields after it are space-separated.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<f64> = rest.split(' ').filter_map(|f| f.parse().ok()).collect();
    // rest starts at field 3 (state, not numeric, filtered out): utime is field 14.
    let (utime, stime, cutime, cstime) = (
        fields.get(10)?,
        fields.get(11)?,
        fields.get(12)?,
        fields.get(13)?,
    );
    Some((
        (utime + stime) / TICKS_PER_SECOND,
        (cutime + cstime) / TICKS_PER_SECOND,
    ))
}

fn cpu_times() -> Vec<Option<(f64, f64)>> {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    ["cpu0 ", "cpu1 "]
        .iter()
        .map(|name| {
            let line = stat.lines().find(|l| l.starts_with(name))?;
            let v: Vec<f64> = line
                .split_whitespace()
                .skip(1)
                .filter_map(|f| f.parse().ok())
                .collect();
            // user nice system idle iowait irq softirq steal
            let busy = v.first()? + v.get(1)? + v.get(2)? + v.get(5)? + v.get(6)?;
            Some((
                busy / TICKS_PER_SECOND,
                v.get(7).copied().unwrap_or(0.0) / TICKS_PER_SECOND,
            ))
        })
        .collect()
}

impl Reading {
    /// Read the CPU times of `pids` ("self" for this process) and of cpu0/cpu1.
    pub fn take(pids: &[String]) -> Self {
        Self {
            at: Instant::now(),
            processes: pids.iter().map(|p| process_times(p)).collect(),
            cpus: cpu_times(),
        }
    }

    /// What happened between `self` and `later`, as JSON: per process CPU seconds and
    /// utilisation, and how busy each CPU was in all (including other work).
    pub fn delta(&self, later: &Reading, names: &[&str]) -> Value {
        let wall = (later.at - self.at).as_secs_f64();
        let mut out = serde_json::Map::new();
        out.insert("wall_s".into(), json!(wall));
        for (i, name) in names.iter().enumerate() {
            if let (Some(Some(a)), Some(Some(b))) = (self.processes.get(i), later.processes.get(i))
            {
                let own = b.0 - a.0;
                let children = b.1 - a.1;
                out.insert(format!("{name}_cpu_s"), json!(own + children));
                out.insert(format!("{name}_children_cpu_s"), json!(children));
                out.insert(format!("{name}_cpu_util"), json!((own + children) / wall));
            }
        }
        for (i, cpu) in ["cpu0", "cpu1"].iter().enumerate() {
            if let (Some(Some(a)), Some(Some(b))) = (self.cpus.get(i), later.cpus.get(i)) {
                out.insert(format!("{cpu}_busy_util"), json!((b.0 - a.0) / wall));
                out.insert(format!("{cpu}_steal_util"), json!((b.1 - a.1) / wall));
            }
        }
        Value::Object(out)
    }
}

/// CPU seconds of `name` in a delta, if it was read.
pub fn cpu_s(delta: &Value, name: &str) -> Option<f64> {
    delta.get(format!("{name}_cpu_s")).and_then(Value::as_f64)
}
