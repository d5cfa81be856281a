use std::path::{Path, PathBuf};
use std::time::Duration;

use super::detect::{Controller, Mode, Version, detect, own_path};
use super::*;

fn scratch(name: &str) -> PathBuf {
    crate::exec::test_support::scratch_dir(name)
}

fn touch(path: &Path) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, "").unwrap();
}

const V1_OWN: &str = "9:name=systemd:/init.scope\n8:pids:/init.scope\n\
                      4:memory:/svc/abc\n1:cpu,cpuacct:/\n0::/init.scope\n";

#[test]
fn the_own_cgroup_is_read_per_controller_and_for_v2() {
    assert_eq!(own_path(V1_OWN, "memory"), Some("/svc/abc"));
    assert_eq!(own_path(V1_OWN, "pids"), Some("/init.scope"));
    assert_eq!(own_path(V1_OWN, "cpu"), Some("/"));
    assert_eq!(own_path(V1_OWN, ""), Some("/init.scope"));
    assert_eq!(own_path(V1_OWN, "blkio"), None);
    // "name=systemd" is no controller called "systemd".
    assert_eq!(own_path(V1_OWN, "systemd"), None);
}

#[test]
fn v1_puts_hostmcp_in_the_own_cgroup_of_each_hierarchy_it_finds() {
    let root = scratch("cg-v1");
    touch(&root.join("memory/memory.limit_in_bytes"));
    fs::create_dir_all(root.join("memory/svc/abc")).unwrap();
    touch(&root.join("pids/pids.max"));
    // The own pids cgroup is not visible (a container): its hierarchy's root serves.
    let support = detect(&root, V1_OWN, None, Mode::Prepare);
    assert_eq!(support.version, Some(Version::V1));
    assert_eq!(
        support.base(Controller::Memory),
        Some(root.join("memory/svc/abc/hostmcp").as_path())
    );
    assert_eq!(
        support.base(Controller::Pids),
        Some(root.join("pids/hostmcp").as_path())
    );
    assert!(!support.has(Controller::Cpu));
    assert!(root.join("pids/hostmcp").is_dir());
    let text = support.describe();
    assert!(text.starts_with("cgroup v1: memory"), "{text}");
    assert!(text.contains("cpu: no v1 hierarchy"), "{text}");
    fs::remove_dir_all(root).unwrap();
}

#[test]
fn no_mount_means_no_cgroups_and_says_so() {
    let root = scratch("cg-none");
    let support = detect(&root, V1_OWN, None, Mode::Prepare);
    assert_eq!(support.version, None);
    assert!(support.describe().starts_with("cgroups: none usable"));
    let limits: ResourceLimits = toml::from_str("memory = \"64MiB\"").unwrap();
    assert!(
        CommandCgroup::create(&support, &limits, None)
            .unwrap()
            .is_none()
    );
    fs::remove_dir_all(root).unwrap();
}

#[test]
fn v2_uses_the_delegated_controllers_of_the_parent() {
    let root = scratch("cg-v2");
    touch(&root.join("cgroup.controllers"));
    let own = root.join("system.slice/hostmcp.service");
    fs::create_dir_all(&own).unwrap();
    fs::write(
        own.join("cgroup.controllers"),
        "cpuset cpu io memory pids\n",
    )
    .unwrap();
    let support = detect(
        &root,
        "0::/system.slice/hostmcp.service\n",
        None,
        Mode::Prepare,
    );
    assert_eq!(support.version, Some(Version::V2));
    let base = own.join("hostmcp");
    for controller in Controller::ALL {
        assert_eq!(support.base(controller), Some(base.as_path()));
    }
    assert_eq!(
        fs::read_to_string(own.join("cgroup.subtree_control")).unwrap(),
        "+memory +pids +cpu"
    );
    assert_eq!(
        fs::read_to_string(base.join("cgroup.subtree_control")).unwrap(),
        "+memory +pids +cpu"
    );
    fs::remove_dir_all(root).unwrap();
}

#[test]
fn v2_without_delegated_controllers_is_no_support() {
    let root = scratch("cg-v2-none");
    touch(&root.join("cgroup.controllers"));
    fs::create_dir_all(root.join("user.slice")).unwrap();
    fs::write(root.join("user.slice/cgroup.controllers"), "cpuset io\n").unwrap();
    let support = detect(&root, "0::/user.slice\n", None, Mode::Prepare);
    assert_eq!(support.version, None);
    assert!(support.describe().contains("memory: not delegated"));
    fs::remove_dir_all(root).unwrap();
}

#[test]
fn flat_keyed_event_files_are_read_by_key() {
    let events = "low 0\nhigh 0\nmax 3\noom 2\noom_kill 1\noom_group_kill 0\n";
    assert_eq!(events::count(events, "oom_kill"), Some(1));
    assert_eq!(events::count(events, "max"), Some(3));
    assert_eq!(events::count(events, "oom"), Some(2));
    assert_eq!(events::count(events, "missing"), None);
    let v1 = "oom_kill_disable 0\nunder_oom 0\noom_kill 4\n";
    assert_eq!(events::count(v1, "oom_kill"), Some(4));
}

#[test]
fn cpu_time_is_read_from_cpuacct_usage_and_cpu_stat() {
    assert_eq!(
        events::cpu_time_v1("1234567890\n"),
        Some(Duration::from_nanos(1_234_567_890))
    );
    assert_eq!(events::cpu_time_v1("0\n"), Some(Duration::ZERO));
    assert_eq!(events::cpu_time_v1("nope\n"), None);
    let stat = "usage_usec 2500000\nuser_usec 2000000\nsystem_usec 500000\n\
                nr_periods 0\nnr_throttled 0\nthrottled_usec 0\n";
    assert_eq!(events::cpu_time_v2(stat), Some(Duration::from_millis(2500)));
    // Near miss: user_usec alone is not the usage.
    assert_eq!(events::cpu_time_v2("user_usec 2000000\n"), None);
}

#[test]
fn looking_at_v1_makes_nothing_that_stays_and_preparing_does() {
    let root = scratch("cg-v1-look");
    touch(&root.join("memory/memory.limit_in_bytes"));
    fs::create_dir_all(root.join("memory/svc/abc")).unwrap();
    touch(&root.join("pids/pids.max"));
    let before = tree(&root);
    let looked = detect(&root, V1_OWN, None, Mode::Look);
    assert_eq!(tree(&root), before, "looking changed the hierarchy");
    assert_eq!(looked.version, Some(Version::V1));
    assert_eq!(
        looked.base(Controller::Memory),
        Some(root.join("memory/svc/abc/hostmcp").as_path())
    );
    // Near miss: preparing makes the same bases, for real.
    let prepared = detect(&root, V1_OWN, None, Mode::Prepare);
    assert_eq!(prepared, looked);
    assert!(root.join("memory/svc/abc/hostmcp").is_dir());
    // Looking again, with the bases there, leaves them as they are.
    let before = tree(&root);
    assert_eq!(detect(&root, V1_OWN, None, Mode::Look), prepared);
    assert_eq!(tree(&root), before);
    fs::remove_dir_all(root).unwrap();
}

#[test]
fn looking_at_v2_enables_nothing_and_makes_nothing() {
    let root = scratch("cg-v2-look");
    touch(&root.join("cgroup.controllers"));
    let own = root.join("system.slice/hostmcp.service");
    fs::create_dir_all(&own).unwrap();
    fs::write(own.join("cgroup.controllers"), "cpu memory pids\n").unwrap();
    let before = tree(&root);
    let looked = detect(
        &root,
        "0::/system.slice/hostmcp.service\n",
        None,
        Mode::Look,
    );
    assert_eq!(looked.version, Some(Version::V2));
    assert_eq!(
        looked.base(Controller::Pids),
        Some(own.join("hostmcp").as_path())
    );
    assert_eq!(tree(&root), before, "looking changed the hierarchy");
    assert!(!own.join("cgroup.subtree_control").exists());
    fs::remove_dir_all(root).unwrap();
}

#[test]
fn co_mounted_cpu_and_cpuacct_share_one_base() {
    let root = fs::canonicalize(scratch("cg-v1-comount")).unwrap();
    touch(&root.join("cpu,cpuacct/cpu.cfs_quota_us"));
    touch(&root.join("cpu,cpuacct/cpuacct.usage"));
    std::os::unix::fs::symlink("cpu,cpuacct", root.join("cpu")).unwrap();
    std::os::unix::fs::symlink("cpu,cpuacct", root.join("cpuacct")).unwrap();
    let support = detect(&root, V1_OWN, None, Mode::Look);
    let base = root.join("cpu,cpuacct/hostmcp");
    assert_eq!(support.base(Controller::Cpu), Some(base.as_path()));
    assert_eq!(support.base(Controller::Cpuacct), Some(base.as_path()));
    fs::remove_dir_all(root).unwrap();
}

/// Every path under `root`, sorted: what a test compares before and after.
fn tree(root: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut next = vec![root.to_owned()];
    while let Some(dir) = next.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() && !path.is_symlink() {
                next.push(path.clone());
            }
            found.push(path);
        }
    }
    found.sort();
    found
}

#[test]
fn labels_become_one_safe_path_component_and_quotas_have_a_floor() {
    assert_eq!(sanitize("c-12"), "c-12");
    assert_eq!(sanitize("../x/y"), "___x_y");
    assert_eq!(cpu_quota(50), 50_000);
    assert_eq!(cpu_quota(200), 200_000);
    assert_eq!(cpu_quota(0), 1_000);
}

#[test]
fn only_the_tree_limits_ask_for_a_cgroup() {
    let limits = |text: &str| toml::from_str::<ResourceLimits>(text).unwrap();
    assert!(wanted(&limits("memory = 1024")));
    assert!(wanted(&limits("processes = 4")));
    assert!(wanted(&limits("cpu_percent = 50")));
    assert!(!wanted(&limits("cpu_seconds = 4\nfile_size = 10")));
}

/// The host's support, or `None` (with the reason printed) where cgroups are not writable.
fn usable(controller: Controller) -> Option<&'static Support> {
    let support = detect::here();
    if support.has(controller) {
        return Some(support);
    }
    eprintln!("skipped: {}", support.describe());
    None
}

async fn run_limited(script: &str, limits: &str) -> crate::exec::ExecOutcome {
    let spec = crate::exec::test_support::sh(script).confined(crate::exec::Confinement {
        limits: toml::from_str(limits).unwrap(),
        layers: Vec::new(),
    });
    crate::exec::test_support::run_ok(spec).await
}

/// This process's command cgroups still present under `controller`'s base.
fn left_over(support: &Support, controller: Controller) -> Vec<String> {
    let prefix = format!("{}-", std::process::id());
    fs::read_dir(support.base(controller).unwrap())
        .unwrap()
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|name| name.starts_with(&prefix))
        .collect()
}

const FOUR_HOGS: &str = "for i in 1 2 3 4; do \
    python3 -c 'import time; b = bytearray(40 << 20); time.sleep(3)' & done; wait";

#[tokio::test]
async fn four_children_of_40_mib_are_killed_by_a_96_mib_tree_limit_and_two_of_30_are_not() {
    let Some(support) = usable(Controller::Memory) else {
        return;
    };
    let limits = "memory = \"96MiB\"";
    let hogs = run_limited(FOUR_HOGS, limits).await;
    let counted = hogs.usage.and_then(|usage| usage.cgroup).unwrap();
    assert!(counted.oom_kills > 0, "{counted:?}");
    let hit = crate::exec::diagnose::limit_hit(&hogs, &toml::from_str(limits).unwrap()).unwrap();
    assert_eq!(hit.limit, "memory");
    assert!(
        hit.message.starts_with("killed: memory limit 96.0 MiB"),
        "{}",
        hit.message
    );

    let near = run_limited(
        "for i in 1 2; do python3 -c 'b = bytearray(30 << 20)' & done; wait",
        limits,
    )
    .await;
    assert!(near.is_success(), "{}", near.stderr.to_text());
    let usage = near.usage.unwrap();
    assert_eq!(usage.cgroup.unwrap().oom_kills, 0);
    // The tree's peak: at least one child's 30 MiB, which ru_maxrss of the shell would miss.
    assert!(usage.peak_memory_bytes >= 30 << 20, "{usage:?}");
    assert!(left_over(support, Controller::Memory).is_empty());
}

/// A child that touches `mib` MiB of shared memory: charged to the cgroup, but not to the
/// per-process `RLIMIT_DATA` (private memory), so only the cgroup's limit can stop it.
fn shared_hog(mib: u64) -> String {
    format!(
        "python3 -c 'import mmap\nm = mmap.mmap(-1, {mib} << 20)\n\
         for i in range(0, len(m), 4096): m[i] = 1'"
    )
}

#[tokio::test]
async fn an_oom_ends_the_whole_command_not_only_its_largest_process() {
    let Some(support) = usable(Controller::Memory) else {
        return;
    };
    let limits = "memory = \"64MiB\"";
    let started = std::time::Instant::now();
    let hog = run_limited(
        &format!("{}; echo survived; sleep 30", shared_hog(200)),
        limits,
    )
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(25),
        "ran on: {:?}",
        started.elapsed()
    );
    assert!(!hog.stdout.to_text().contains("survived"), "{hog:?}");
    assert!(!hog.is_success());
    assert_eq!(hog.signal, Some(nix::libc::SIGKILL), "{hog:?}");
    let counted = hog.usage.and_then(|usage| usage.cgroup).unwrap();
    assert!(counted.oom_kills >= 2, "the shell too: {counted:?}");
    let hit = crate::exec::diagnose::limit_hit(&hog, &toml::from_str(limits).unwrap()).unwrap();
    assert_eq!(hit.limit, "memory");
    assert!(left_over(support, Controller::Memory).is_empty());

    // Near miss: under the limit, the shell goes on to its next line.
    let fits = run_limited(&format!("{}; echo survived", shared_hog(16)), limits).await;
    assert!(fits.is_success(), "{}", fits.stderr.to_text());
    assert_eq!(fits.stdout.to_text(), "survived\n");
    assert_eq!(fits.usage.unwrap().cgroup.unwrap().oom_kills, 0);
}

/// A shell that starts a daemon (an orphan, through a subshell that exits at once)
/// spinning `seconds` of CPU, and waits until it is done: the shell never reaps the daemon,
/// so its own rusage never sees the daemon's CPU time.
fn daemon_spinning(seconds: f64, done: &Path) -> String {
    format!(
        "(setsid python3 -c 'import time\nt = time.process_time()\n\
         while time.process_time() - t < {seconds}: pass\nopen(\"{done}\", \"w\")' \
         >/dev/null 2>&1 </dev/null &)\n\
         i=0; while [ ! -e {done} ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done; test -e {done}",
        done = done.display()
    )
}

#[tokio::test]
async fn the_cgroup_counts_the_cpu_time_of_a_daemon_no_wait_sees() {
    if usable(Controller::Cpuacct).is_none() || usable(Controller::Pids).is_none() {
        return;
    }
    let dir = scratch("cg-cpu");
    let counted = run_limited(&daemon_spinning(0.4, &dir.join("a")), "processes = 16").await;
    assert!(counted.is_success(), "{}", counted.stderr.to_text());
    let usage = counted.usage.unwrap();
    assert!(usage.cgroup.unwrap().cpu_time.is_some(), "{usage:?}");
    assert!(usage.cpu_time >= Duration::from_millis(390), "{usage:?}");

    // Near miss: without a cgroup, only what the leader waited for is counted.
    let spec = crate::exec::test_support::sh(&daemon_spinning(0.4, &dir.join("b")));
    let rusage_only = crate::exec::test_support::run_ok(spec).await;
    assert!(rusage_only.is_success(), "{}", rusage_only.stderr.to_text());
    let usage = rusage_only.usage.unwrap();
    assert!(usage.cgroup.is_none());
    assert!(usage.cpu_time < Duration::from_millis(300), "{usage:?}");
    fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn a_fork_bomb_is_stopped_by_the_tree_process_limit_and_nothing_is_left() {
    let Some(support) = usable(Controller::Pids) else {
        return;
    };
    let marker = "sleep 313";
    let bomb = run_limited(
        &format!("for i in $(seq 60); do {marker} & done; wait"),
        "processes = 8",
    )
    .await;
    let counted = bomb.usage.and_then(|usage| usage.cgroup).unwrap();
    assert!(counted.pids_refused > 0, "{counted:?}");
    let hit =
        crate::exec::diagnose::limit_hit(&bomb, &toml::from_str("processes = 8").unwrap()).unwrap();
    assert_eq!(hit.limit, "processes");
    assert!(left_over(support, Controller::Pids).is_empty());
    let found = std::process::Command::new("pgrep")
        .args(["-f", marker])
        .output()
        .unwrap();
    assert!(found.stdout.is_empty(), "left running: {:?}", found.stdout);

    let few = run_limited("for i in 1 2 3; do true & done; wait", "processes = 8").await;
    assert!(few.is_success(), "{}", few.stderr.to_text());
    assert_eq!(few.usage.unwrap().cgroup.unwrap().pids_refused, 0);
}

#[tokio::test]
async fn a_process_that_left_the_group_is_killed_with_the_cgroup() {
    let Some(support) = usable(Controller::Pids) else {
        return;
    };
    let marker = "sleep 314";
    let outcome = run_limited(
        &format!("setsid {marker} >/dev/null 2>&1 < /dev/null & echo started"),
        "processes = 16",
    )
    .await;
    assert!(outcome.is_success(), "{}", outcome.stderr.to_text());
    let found = std::process::Command::new("pgrep")
        .args(["-f", marker])
        .output()
        .unwrap();
    assert!(found.stdout.is_empty(), "left running: {:?}", found.stdout);
    assert!(left_over(support, Controller::Pids).is_empty());
}

#[test]
fn cpu_percent_without_the_cpu_controller_is_refused_unless_degraded() {
    let limits: ResourceLimits = toml::from_str("cpu_percent = 50\nmemory = 1024").unwrap();
    let memory_only = Support {
        version: Some(Version::V1),
        bases: vec![(Controller::Memory, PathBuf::from("/x/hostmcp"))],
        missing: vec!["cpu: no v1 hierarchy".to_owned()],
    };
    let refused = check([("token \"a\"".to_owned(), &limits)], &memory_only, false).unwrap_err();
    assert!(
        refused
            .to_string()
            .contains("limits.cpu_percent needs the cgroup cpu controller")
    );
    assert_eq!(
        check([("token \"a\"".to_owned(), &limits)], &memory_only, true)
            .unwrap()
            .len(),
        1
    );
    // Near miss: memory alone falls back to its rlimit; with the cpu controller, all loads.
    let memory: ResourceLimits = toml::from_str("memory = 1024").unwrap();
    assert!(check([("t".to_owned(), &memory)], &memory_only, false).is_ok());
    let with_cpu = Support {
        bases: vec![(Controller::Cpu, PathBuf::from("/y/hostmcp"))],
        ..memory_only
    };
    assert!(check([("t".to_owned(), &limits)], &with_cpu, false).is_ok());
}

#[test]
fn explain_says_which_limits_bind_the_tree() {
    let limits: ResourceLimits =
        toml::from_str("memory = \"96MiB\"\nprocesses = 8\ncpu_percent = 50").unwrap();
    let support = Support {
        version: Some(Version::V1),
        bases: vec![
            (Controller::Memory, PathBuf::from("/m/hostmcp")),
            (Controller::Pids, PathBuf::from("/p/hostmcp")),
        ],
        missing: Vec::new(),
    };
    let text = scope(&limits, &support);
    assert!(
        text.starts_with("memory 96.0 MiB, processes 8 for the whole tree (cgroup v1)"),
        "{text}"
    );
    assert!(
        text.contains("no controller here for cpu_percent 50"),
        "{text}"
    );
    assert!(scope(&limits, &Support::default()).starts_with("no limit binds"));
}

#[test]
fn the_subtree_walk_is_deepest_first_and_bounded() {
    let root = scratch("cg-subtree");
    fs::create_dir_all(root.join("a/b/c")).unwrap();
    fs::create_dir_all(root.join("d")).unwrap();
    // Files and symlinks are no cgroups.
    touch(&root.join("a/cgroup.procs"));
    std::os::unix::fs::symlink(root.join("a"), root.join("a/b/loop")).unwrap();
    let found = tree::subtree(&root);
    let depth = |path: &PathBuf| path.strip_prefix(&root).unwrap().components().count();
    assert_eq!(found.len(), 5, "{found:?}");
    assert_eq!(found.last(), Some(&root), "the command's own last");
    assert_eq!(found[0], root.join("a/b/c"));
    assert!(
        found.windows(2).all(|w| depth(&w[0]) >= depth(&w[1])),
        "{found:?}"
    );

    // Bounds: a chain deeper than MAX_DEPTH, and a fan wider than MAX_ENTRIES.
    let deep = scratch("cg-deep");
    let mut chain = deep.clone();
    for _ in 0..tree::MAX_DEPTH + 3 {
        chain = chain.join("x");
    }
    fs::create_dir_all(&chain).unwrap();
    assert_eq!(tree::subtree(&deep).len(), tree::MAX_DEPTH + 1);
    let wide = scratch("cg-wide");
    for n in 0..tree::MAX_ENTRIES + 20 {
        fs::create_dir(wide.join(n.to_string())).unwrap();
    }
    assert_eq!(tree::subtree(&wide).len(), tree::MAX_ENTRIES);
    for dir in [root, deep, wide] {
        fs::remove_dir_all(dir).unwrap();
    }
}

#[test]
fn removal_takes_the_child_cgroups_first_and_reports_what_stays() {
    let root = scratch("cg-remove");
    fs::create_dir_all(root.join("sub/subsub")).unwrap();
    fs::create_dir_all(root.join("other")).unwrap();
    tree::remove_subtree(&root).unwrap();
    assert!(!root.exists());
    // Already gone is fine.
    tree::remove_subtree(&root).unwrap();
    // A directory that cannot go (here: a file in it, as a process in a cgroup) is an error.
    let busy = scratch("cg-busy");
    touch(&busy.join("sub/held"));
    assert!(tree::remove_subtree(&busy).is_err());
    assert!(busy.exists());
    fs::remove_dir_all(busy).unwrap();
}

#[test]
fn the_kill_reaches_a_child_cgroup_and_only_pids_still_listed() {
    let root = scratch("cg-kill");
    fs::create_dir_all(root.join("sub")).unwrap();
    let mut listed = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .unwrap();
    let mut unlisted = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .unwrap();
    fs::write(root.join("cgroup.procs"), "").unwrap();
    fs::write(root.join("sub/cgroup.procs"), format!("{}\n", listed.id())).unwrap();
    // One round: a fake cgroup.procs does not empty itself.
    assert_eq!(tree::kill_subtree(&root, 1), 1);
    let status = listed.wait().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(nix::libc::SIGKILL));
    // Near miss: the process no cgroup of the subtree lists lives on.
    assert!(unlisted.try_wait().unwrap().is_none());
    unlisted.kill().unwrap();
    unlisted.wait().unwrap();
    // A pid no longer alive is not counted (the pidfd cannot be had).
    assert_eq!(tree::kill_subtree(&root, 1), 0);
    fs::remove_dir_all(root).unwrap();
}

/// A root command that makes `sub/` in its own memory cgroup, moves itself in, and then
/// needs `mib` MiB: what the F3 escape did.
fn escaping_hog(mib: u64) -> String {
    format!(
        "m=$(awk -F: '$2==\"memory\"{{print $3}}' /proc/self/cgroup); \
         D=/sys/fs/cgroup/memory$m; mkdir \"$D/sub\" && echo $$ > \"$D/sub/cgroup.procs\" \
         && {}; echo survived",
        shared_hog(mib)
    )
}

#[tokio::test]
async fn a_command_in_a_child_cgroup_it_made_is_still_killed_and_removed_on_oom() {
    let Some(support) = usable(Controller::Memory) else {
        return;
    };
    if support.version != Some(Version::V1) || !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs v1 and root");
        return;
    }
    let limits = "memory = \"64MiB\"";
    let started = std::time::Instant::now();
    let hog = run_limited(&escaping_hog(200), limits).await;
    assert!(started.elapsed() < Duration::from_secs(25), "{hog:?}");
    assert!(!hog.timed_out, "{hog:?}");
    assert!(!hog.stdout.to_text().contains("survived"), "{hog:?}");
    let hit = crate::exec::diagnose::limit_hit(&hog, &toml::from_str(limits).unwrap()).unwrap();
    assert_eq!(hit.limit, "memory");
    assert!(left_over(support, Controller::Memory).is_empty());
    if support.has(Controller::Cpuacct) {
        assert!(left_over(support, Controller::Cpuacct).is_empty());
    }

    // Near miss: in its child cgroup but under the limit, it goes on.
    let fits = run_limited(&escaping_hog(16), limits).await;
    assert!(fits.is_success(), "{}", fits.stderr.to_text());
    assert_eq!(fits.stdout.to_text(), "survived\n");
    assert!(left_over(support, Controller::Memory).is_empty());
}

#[test]
fn a_command_cgroup_is_not_writable_by_other_users() {
    use std::os::unix::fs::PermissionsExt;
    let Some(support) = usable(Controller::Memory) else {
        return;
    };
    let limits = toml::from_str("memory = \"64MiB\"").unwrap();
    // The widest umask: the mode must not depend on the server's. (nextest runs each test
    // in a process of its own; the umask is put back at once.)
    let before = nix::sys::stat::umask(nix::sys::stat::Mode::empty());
    let cgroup = CommandCgroup::create(support, &limits, Some("mode-check"));
    nix::sys::stat::umask(before);
    let cgroup = cgroup.unwrap().unwrap();
    for dir in cgroup.dirs() {
        let mode = fs::metadata(dir).unwrap().permissions().mode();
        assert_eq!(mode & 0o022, 0, "{}: {mode:o}", dir.display());
        // Near miss: its owner (the server's user) can still write it.
        assert_ne!(mode & 0o200, 0, "{}: {mode:o}", dir.display());
    }
    drop(cgroup);
}
