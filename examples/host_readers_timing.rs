//! Wall time of the host readers behind `host_info`, `process_list`, `process_tree`,
//! `disk_usage` and `network_info`, in-process (no MCP envelope, no HTTP), beside the same
//! facts gathered by shelling out as `bench/insight.sh` does through `run_command` (the
//! shell-outs are timed from spawn to exit, here too without the envelope). For profiling
//! the readers on a debug build, where a release build is out of reach, and for
//! `bench/insight.sh`'s reader-level table.
//!
//! ```text
//! cargo build --examples
//! target/debug/examples/host_readers_timing            # 30 calls each, Markdown table
//! target/debug/examples/host_readers_timing 100 host   # 100 calls of rows whose name has "host"
//! ```
//!
//! Each row: three unmeasured calls first (the CPU sampler's first reading, the lazily
//! read static facts), then `calls` measured ones; median and p90 in milliseconds. The rows
//! named `part:` time one reader of a tool alone, to see where a tool's time goes.

use std::{
    process::{Command, ExitCode, Stdio},
    time::Instant,
};

use hostmcp::{
    host::{self, processes::CpuSampler},
    tools::{
        disk_usage, host_info, network_info,
        process_list::{self, ProcessListInput, SortBy},
    },
};

/// One thing to time: a name and a call that does the work once.
struct Row {
    name: &'static str,
    call: Box<dyn FnMut()>,
}

/// The facts host_info reports gathered by shelling out, as bench/insight.py does.
const HOST_FACTS: &str = "uname -a; cat /etc/os-release; uptime; nproc; \
    grep -m1 'model name' /proc/cpuinfo; \
    cat /proc/pressure/cpu /proc/pressure/memory /proc/pressure/io; free -b; df -B1 /; \
    systemd-detect-virt; who; ls /proc | grep -c '^[0-9]'";

fn row(name: &'static str, call: impl FnMut() + 'static) -> Row {
    Row {
        name,
        call: Box::new(call),
    }
}

/// A shell line as `run_command` would run it (`sh -c`), its output read and dropped.
fn shell(line: &'static str) -> impl FnMut() {
    move || {
        let output = Command::new("sh")
            .args(["-c", line])
            .stdin(Stdio::null())
            .output()
            .expect("sh runs");
        assert!(output.status.success(), "{line}: {output:?}");
    }
}

fn rows() -> Vec<Row> {
    let sampler = std::sync::Arc::new(CpuSampler::default());
    let top10 = move || ProcessListInput {
        sort: SortBy::Memory,
        limit: Some(10),
        ..ProcessListInput::default()
    };
    vec![
        row("host_info", || {
            let snapshot = host::snapshot::load().expect("snapshot");
            std::hint::black_box(host_info::report(&snapshot));
        }),
        row("part: os", || {
            std::hint::black_box(host::os::read().expect("os"));
        }),
        row("part: cpu", || {
            std::hint::black_box(host::cpu::read().expect("cpu"));
        }),
        row("part: memory", || {
            std::hint::black_box(host::memory::read().expect("memory"));
        }),
        row("part: root disk", || {
            std::hint::black_box(host::disks::filesystem_of("/").expect("root"));
        }),
        row("part: process count", || {
            std::hint::black_box(host::processes::count().expect("count"));
        }),
        row("part: virtualisation", || {
            std::hint::black_box(host::virt::detect());
        }),
        row("part: users", || {
            std::hint::black_box(host::users::logged_in());
        }),
        // The facts host_info reports, each by the cheapest command (bench/insight.py's
        // HOST_FACTS), then the older subset without CPU model, pressure, virtualisation,
        // users and process count.
        row("shell: host_info's facts", shell(HOST_FACTS)),
        row(
            "shell: uname -a; cat /etc/os-release; uptime; nproc; free -b; df -B1 /",
            shell("uname -a; cat /etc/os-release; uptime; nproc; free -b; df -B1 /"),
        ),
        row("process_list sort=memory limit=10", move || {
            let list = process_list::list(&sampler, &top10()).expect("list");
            std::hint::black_box((
                process_list::render(&list),
                serde_json::to_value(&list).expect("json"),
            ));
        }),
        row("part: processes::read_all", || {
            std::hint::black_box(host::processes::read_all().expect("processes"));
        }),
        row(
            "shell: ps aux --sort=-%mem | head -11",
            shell("ps aux --sort=-%mem | head -11"),
        ),
        row("process_tree pid=1", || {
            let rows = host::processes::read_all().expect("processes");
            std::hint::black_box(host::processes::tree(&rows, 1, 100).expect("tree"));
        }),
        row("disk_usage", || {
            let usage = disk_usage::gather(false, None).expect("disks");
            std::hint::black_box((
                disk_usage::render(&usage),
                serde_json::to_value(&usage).expect("json"),
            ));
        }),
        row("shell: df -B1", shell("df -B1")),
        row("network_info max_connections=0", || {
            let info = network_info::gather(0).expect("network");
            std::hint::black_box((
                network_info::render(&info),
                serde_json::to_value(&info).expect("json"),
            ));
        }),
        row("part: sockets with owners", || {
            std::hint::black_box(host::sockets::sockets().expect("sockets"));
        }),
        row("shell: ss -ltnup", shell("ss -ltnup")),
    ]
}

/// Median and p90 of `times` (milliseconds), sorted in place.
fn summary(times: &mut [f64]) -> (f64, f64) {
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    let p90 = times[(times.len() * 9 / 10).min(times.len() - 1)];
    (median, p90)
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let calls: usize = match args.next().map(|n| n.parse()) {
        None => 30,
        Some(Ok(n)) if n > 0 => n,
        Some(_) => {
            eprintln!("usage: host_readers_timing [calls] [name filter]");
            return ExitCode::from(2);
        }
    };
    let filter = args.next();
    let processes = host::processes::count().unwrap_or(0);
    println!(
        "processes on the host: {processes}; {calls} calls each after 3 unmeasured; build: {}",
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
    );
    println!("| reader | median ms | p90 ms |");
    println!("|---|---|---|");
    for mut row in rows() {
        if filter.as_deref().is_some_and(|f| !row.name.contains(f)) {
            continue;
        }
        for _ in 0..3 {
            (row.call)();
        }
        let mut times: Vec<f64> = (0..calls)
            .map(|_| {
                let started = Instant::now();
                (row.call)();
                started.elapsed().as_secs_f64() * 1000.0
            })
            .collect();
        let (median, p90) = summary(&mut times);
        println!("| {} | {median:.2} | {p90:.2} |", row.name);
    }
    ExitCode::SUCCESS
}
