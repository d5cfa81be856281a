use super::*;

/// A scripted host: counters and listing set by the test, listings counted.
#[derive(Default)]
struct Script {
    forks: Option<u64>,
    threads: Option<u64>,
    hidden: bool,
    processes: usize,
    listings: usize,
}

impl TaskSource for Script {
    fn forks(&mut self) -> Option<u64> {
        self.forks
    }

    fn threads(&mut self) -> Option<u64> {
        self.threads
    }

    fn lists_everyone(&mut self) -> bool {
        !self.hidden
    }

    fn list(&mut self) -> Result<usize, HostError> {
        self.listings += 1;
        Ok(self.processes)
    }
}

fn host(processes: usize) -> Script {
    Script {
        forks: Some(5_000),
        threads: Some(300),
        processes,
        ..Script::default()
    }
}

#[test]
fn unchanged_counters_keep_the_count_and_any_change_lists_again() {
    let cache = CountCache::new();
    let mut script = host(100);
    assert_eq!(cache.count(&mut script).unwrap(), 100);
    assert_eq!(script.listings, 1);
    // Near miss: nothing created or released, so no listing.
    assert_eq!(cache.count(&mut script).unwrap(), 100);
    assert_eq!(script.listings, 1);
    // A process started: forks and threads grow.
    script.forks = Some(5_001);
    script.threads = Some(301);
    script.processes = 101;
    assert_eq!(cache.count(&mut script).unwrap(), 101);
    assert_eq!(script.listings, 2);
    // A process reaped: only threads fall.
    script.threads = Some(300);
    script.processes = 100;
    assert_eq!(cache.count(&mut script).unwrap(), 100);
    assert_eq!(script.listings, 3);
    // A process started while a thread went away: threads the same, forks not.
    script.forks = Some(5_002);
    script.processes = 101;
    assert_eq!(cache.count(&mut script).unwrap(), 101);
    assert_eq!(script.listings, 4);
}

/// A way the counters can be untrustworthy, named.
type Untrusted = (&'static str, fn(&mut Script));

#[test]
fn no_count_is_kept_where_the_counters_cannot_be_trusted() {
    let cases: [Untrusted; 5] = [
        ("no /proc/stat (or not procfs)", |s| s.forks = None),
        ("no /proc/loadavg (or not procfs)", |s| s.threads = None),
        ("hidepid", |s| s.hidden = true),
        ("an emulated /proc that prints zeros", |s| {
            s.forks = Some(0);
            s.threads = Some(0);
        }),
        ("fewer threads than processes", |s| s.threads = Some(99)),
    ];
    for (case, spoil) in cases {
        let cache = CountCache::new();
        let mut script = host(100);
        spoil(&mut script);
        for _ in 0..3 {
            assert_eq!(cache.count(&mut script).unwrap(), 100, "{case}");
        }
        assert_eq!(script.listings, 3, "{case}");
    }
    // Near miss: threads equal to processes (every process single-threaded) is kept.
    let cache = CountCache::new();
    let mut script = host(300);
    cache.count(&mut script).unwrap();
    cache.count(&mut script).unwrap();
    assert_eq!(script.listings, 1);
}

/// `mounts` as the kernel's /proc/self/mounts text, parsed as the mount table parses it.
fn proc_lists_everyone(mounts: &str) -> bool {
    use procfs::FromBufRead as _;
    let entries = Vec::<procfs::MountEntry>::from_buf_read(mounts.as_bytes()).unwrap();
    super::proc_lists_everyone(&entries)
}

#[test]
fn hidepid_is_seen_in_the_mount_table() {
    let plain = "sysfs /sys sysfs rw 0 0\nproc /proc proc rw,nosuid,nodev,noexec,relatime 0 0\n";
    assert!(proc_lists_everyone(plain));
    assert!(proc_lists_everyone(
        "proc /proc proc rw,relatime,hidepid=0 0 0\n"
    ));
    assert!(proc_lists_everyone(
        "proc /proc proc rw,relatime,hidepid=off 0 0\n"
    ));
    for hidden in [
        "hidepid=2",
        "hidepid=invisible",
        "hidepid=1",
        "hidepid=ptraceable",
    ] {
        let mounts = format!("proc /proc proc rw,relatime,{hidden},gid=4 0 0\n");
        assert!(!proc_lists_everyone(&mounts), "{hidden}");
    }
    // The last mount at /proc is the one seen.
    let remounted = format!("{plain}proc /proc proc rw,hidepid=invisible 0 0\n");
    assert!(!proc_lists_everyone(&remounted));
    // A proc mounted elsewhere says nothing of /proc.
    assert!(!proc_lists_everyone("proc /mnt/proc proc rw 0 0\n"));
    assert!(proc_lists_everyone(
        "proc /mnt/proc proc rw,hidepid=2 0 0\nproc /proc proc rw 0 0\n"
    ));
}

#[test]
fn loadavg_total_is_the_fourth_field() {
    assert_eq!(
        loadavg_threads(b"0.52 0.58 0.59 3/1234 56789\n"),
        Some(1234)
    );
    assert_eq!(loadavg_threads(b"0.52 0.58 0.59\n"), None);
}

fn listed() -> usize {
    ProcDir::open().unwrap().count().unwrap()
}

/// Children started and then reaped are seen at once: a stale count would not move.
#[test]
fn the_hosts_count_follows_processes_started_and_reaped() {
    const CHILDREN: usize = 50;
    let before = count().unwrap();
    let mut children: Vec<std::process::Child> = (0..CHILDREN)
        .map(|_| {
            std::process::Command::new("sleep")
                .arg("60")
                .spawn()
                .unwrap()
        })
        .collect();
    let with = count().unwrap();
    // Other processes come and go on a shared machine: most of the 50, not all.
    assert!(with >= before + CHILDREN / 2, "{before} -> {with}");
    for child in &mut children {
        child.kill().unwrap();
        child.wait().unwrap();
    }
    let after = count().unwrap();
    assert!(after + CHILDREN / 2 <= with, "{with} -> {after}");
    // Against a listing of the same moment, give or take the machine's own traffic.
    assert!(count().unwrap().abs_diff(listed()) < 20);
}
