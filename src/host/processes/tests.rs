use std::{
    os::unix::process::CommandExt as _,
    process::{Child, Command},
    sync::atomic::{AtomicBool, Ordering},
    time::Duration,
};

use super::*;

/// A shell in its own process group, the group killed and the shell reaped when dropped.
struct Spawned(Child);

impl Drop for Spawned {
    fn drop(&mut self) {
        let group = nix::unistd::Pid::from_raw(self.0.id() as i32);
        let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
        let _ = self.0.wait();
    }
}

fn spawn(script: &str) -> Spawned {
    let child = Command::new("sh")
        .args(["-c", script])
        .process_group(0)
        .spawn()
        .unwrap();
    Spawned(child)
}

fn proc_stat_field(pid: u32, index: usize) -> String {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after_name = stat.rsplit_once(')').unwrap().1;
    after_name.split_whitespace().nth(index).unwrap().to_owned()
}

#[test]
fn this_process_is_read_as_proc_shows_it() {
    let me = std::process::id();
    let rows = read_all().unwrap();
    let row = rows.iter().find(|row| row.pid as u32 == me).unwrap();
    assert_eq!(row.ppid.to_string(), proc_stat_field(me, 1));
    assert_eq!(row.uid, nix::unistd::getuid().as_raw());
    // The main thread waits for the test's thread: the process shows S or R.
    assert!(["R", "S"].contains(&row.state.as_str()), "{}", row.state);
    let rss_pages: u64 = proc_stat_field(me, 21).parse().unwrap();
    // RSS moves as the test runs: within 16 MiB.
    assert!(row.rss_bytes.abs_diff(rss_pages * procfs::page_size()) < 16 << 20);
    // The same row read alone.
    let alone = read_one(row.pid).unwrap();
    assert_eq!(
        (alone.ppid, alone.uid, alone.start_ticks),
        (row.ppid, row.uid, row.start_ticks)
    );
    assert!(matches!(read_one(-1), Err(HostError::NoSuchProcess(-1))));
    let details = details(row.pid);
    let args: Vec<String> = std::env::args().collect();
    assert_eq!(details.command_line, args.join(" "));
    assert!(details.io_read_bytes.is_some());
}

#[test]
fn threads_are_not_counted_as_processes() {
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let handles: Vec<_> = (0..3)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(5));
                }
            })
        })
        .collect();
    let me = std::process::id();
    let tids: Vec<i32> = std::fs::read_dir(format!("/proc/{me}/task"))
        .unwrap()
        .map(|entry| {
            entry
                .unwrap()
                .file_name()
                .to_str()
                .unwrap()
                .parse()
                .unwrap()
        })
        .filter(|tid: &i32| *tid as u32 != me)
        .collect();
    assert!(tids.len() >= 3);
    let rows = read_all().unwrap();
    assert!(rows.iter().all(|row| !tids.contains(&row.pid)));
    // Near miss: the process itself is there, with its threads counted on it.
    let row = rows.iter().find(|row| row.pid as u32 == me).unwrap();
    assert!(row.threads as usize > tids.len());
    let listed = count().unwrap();
    assert!(
        listed.abs_diff(rows.len()) < 20,
        "{listed} vs {}",
        rows.len()
    );
    stop.store(true, Ordering::Relaxed);
    for handle in handles {
        handle.join().unwrap();
    }
}

/// User + system ticks of `pid`, read from /proc by the test itself.
fn ticks_of(pid: u32) -> u64 {
    let utime: u64 = proc_stat_field(pid, 11).parse().unwrap();
    let stime: u64 = proc_stat_field(pid, 12).parse().unwrap();
    utime + stime
}

#[test]
fn a_busy_process_has_a_share_and_a_sleeping_one_none() {
    let busy = spawn("while :; do :; done");
    let idle = spawn("sleep 30");
    std::thread::sleep(Duration::from_millis(100));
    let share = |sampled: &Sampled, child: &Spawned| {
        sampled
            .processes
            .iter()
            .find(|row| row.pid as u32 == child.0.id())
            .and_then(|row| row.cpu_percent)
            .unwrap()
    };
    let ticks_per_second = procfs::ticks_per_second() as f64;
    let sampler = CpuSampler::default();
    let before = ticks_of(busy.0.id());
    let first = sampler.sample().unwrap();
    let after = ticks_of(busy.0.id());
    assert!(!first.since_earlier_call);
    assert!(first.window_ms >= SAMPLE.as_millis() as u64);
    // The share's ticks lie within what /proc showed around the call (one tick of
    // rounding); how many the loop got depends on the machine's load, not on the reader.
    let implied = share(&first, &busy) / 100.0 * first.window_ms as f64 / 1000.0 * ticks_per_second;
    assert!(
        implied <= (after - before) as f64 + 1.5,
        "{implied} vs {}",
        after - before
    );
    assert_eq!(share(&first, &idle), 0.0);
    std::thread::sleep(Duration::from_millis(400));
    let before = ticks_of(busy.0.id());
    let second = sampler.sample().unwrap();
    assert!(second.since_earlier_call);
    assert!(second.window_ms >= 400);
    // Near miss of the sleeper's zero: over 400 ms the loop ran, however loaded the host.
    assert!(before > after, "the loop got no CPU in 400 ms");
    assert!(share(&second, &busy) > 0.0);
    assert_eq!(share(&second, &idle), 0.0);
}

#[test]
fn a_tree_has_the_ancestors_and_the_descendants_by_depth() {
    let child = spawn("sleep 30 & sleep 30 & wait");
    let shell = child.0.id() as i32;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let rows = loop {
        let rows = read_all().unwrap();
        if rows.iter().filter(|row| row.ppid == shell).count() == 2 {
            break rows;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the sleeps did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let me = std::process::id() as i32;
    let around_me = tree(&rows, me, 100).unwrap();
    let depths: Vec<(i32, u32)> = around_me
        .descendants
        .iter()
        .map(|d| (d.process.pid, d.depth))
        .collect();
    assert!(depths.contains(&(shell, 1)), "{depths:?}");
    assert_eq!(depths.iter().filter(|(_, depth)| *depth == 2).count(), 2);
    let around_shell = tree(&rows, shell, 100).unwrap();
    assert_eq!(around_shell.ancestors[0].pid, me);
    assert_eq!(around_shell.descendants.len(), 2);
    // The cap: one listed, one counted.
    let capped = tree(&rows, shell, 1).unwrap();
    assert_eq!(
        (capped.descendants.len(), capped.descendants_omitted),
        (1, 1)
    );
    assert!(matches!(
        tree(&rows, -5, 10),
        Err(HostError::NoSuchProcess(-5))
    ));
}

#[test]
fn rows_read_by_several_threads_are_the_rows_read_by_one() {
    let pids = ProcDir::open().unwrap().pids().unwrap();
    let one = read_rows(RowReader::new(Scan::FULL).unwrap(), &pids, 1).unwrap();
    let three = read_rows(RowReader::new(Scan::FULL).unwrap(), &pids, 3).unwrap();
    // Processes may end between the two readings: compare those read both times.
    let both: Vec<i32> = one
        .iter()
        .map(|row| row.pid)
        .filter(|pid| three.iter().any(|row| row.pid == *pid))
        .collect();
    assert!(
        both.len() + 20 > pids.len(),
        "{} of {}",
        both.len(),
        pids.len()
    );
    // (A process may exec or change its user in between: its name and owner may differ.)
    let order = |rows: &[ProcessRow]| -> Vec<(i32, u64)> {
        rows.iter()
            .filter(|row| both.contains(&row.pid))
            .map(|row| (row.pid, row.start_ticks))
            .collect()
    };
    // The same processes, in pid order, with the same identity.
    assert_eq!(order(&one), order(&three));
    let me = std::process::id() as i32;
    assert!(three.iter().any(|row| row.pid == me));
    // Near miss: more threads than pids still reads each pid once.
    let few = read_rows(RowReader::new(Scan::FULL).unwrap(), &pids[..2], 8).unwrap();
    assert!(few.len() <= 2 && few.iter().all(|row| pids[..2].contains(&row.pid)));
}
