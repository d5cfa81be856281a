use std::time::Duration;

use super::*;

const SIZE: TerminalSize = TerminalSize { rows: 24, cols: 80 };

/// Everything the program writes until the terminal closes (bounded).
async fn output(handle: &PtyHandle) -> String {
    let mut all = Vec::new();
    let mut buf = [0u8; 4096];
    let read_all = async {
        loop {
            match handle.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => all.extend_from_slice(&buf[..n]),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(20), read_all)
        .await
        .expect("the terminal closed");
    String::from_utf8_lossy(&all).into_owned()
}

#[tokio::test]
async fn the_program_has_the_terminal_as_its_controlling_tty() {
    let spec =
        CommandSpec::shell_for_test("tty; stty size; echo term=$TERM", Duration::from_secs(10));
    let (mut process, handle) = spawn(spec, &BaseEnv::from_server_env(), SIZE).unwrap();
    let text = output(&handle).await;
    let status = process.wait().await.unwrap();
    process.finish().await;
    assert!(status.success(), "{text}");
    assert!(text.contains("/dev/pts/"), "{text}");
    assert!(text.contains("24 80"), "{text}");
    assert!(text.contains("term=xterm-256color"), "{text}");
}

#[tokio::test]
async fn the_program_does_not_inherit_the_servers_end_of_the_terminal() {
    let spec = CommandSpec::shell_for_test("echo ready; exec sleep 30", Duration::from_secs(40));
    let (mut process, handle) = spawn(spec, &BaseEnv::from_server_env(), SIZE).unwrap();
    let mut buf = [0u8; 256];
    let n = tokio::time::timeout(Duration::from_secs(10), handle.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert!(n > 0);
    let fds: Vec<(String, String)> = std::fs::read_dir(format!("/proc/{}/fd", process.pid()))
        .unwrap()
        .filter_map(Result::ok)
        .map(|entry| {
            let target = std::fs::read_link(entry.path()).unwrap_or_default();
            (
                entry.file_name().to_string_lossy().into_owned(),
                target.to_string_lossy().into_owned(),
            )
        })
        .collect();
    for fd in ["0", "1", "2"] {
        let (_, target) = fds.iter().find(|(name, _)| name == fd).unwrap();
        assert!(target.starts_with("/dev/pts/"), "{fds:?}");
    }
    // The master side (and any other pty the server opened) is close-on-exec.
    assert!(
        !fds.iter().any(|(_, target)| target.contains("ptmx")),
        "{fds:?}"
    );
    process.end(Duration::from_secs(1)).await.unwrap();
    process.finish().await;
}

#[tokio::test]
async fn ending_a_terminal_kills_its_whole_session_even_jobs_in_other_groups() {
    // `sh -m` puts the background job in a process group of its own, as an interactive
    // shell does.
    let spec = CommandSpec::for_test(
        vec![
            "/bin/sh".into(),
            "-mc".into(),
            "sleep 300 & echo job=$!; wait".into(),
        ],
        Duration::from_secs(10),
    );
    let (mut process, handle) = spawn(spec, &BaseEnv::from_server_env(), SIZE).unwrap();
    let mut seen = String::new();
    let mut buf = [0u8; 1024];
    while !seen.contains('\n') {
        let n = tokio::time::timeout(Duration::from_secs(10), handle.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "the terminal closed early: {seen}");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    let job: i32 = seen
        .trim()
        .trim_start_matches("job=")
        .parse()
        .unwrap_or_else(|_| panic!("{seen:?}"));
    let session = Pid::from_raw(i32::try_from(process.pid()).unwrap());
    assert!(session_members(session).contains(&Pid::from_raw(job)));
    // Near miss: before the end, the job runs.
    assert!(kill(Pid::from_raw(job), None).is_ok());

    process.end(Duration::from_secs(2)).await.unwrap();
    process.finish().await;
    let gone = async {
        while kill(Pid::from_raw(job), None).is_ok() {
            // A zombie until the reaper (or init) collects it: its state says so.
            if procfs::process::Process::new(job)
                .and_then(|p| p.stat())
                .is_ok_and(|stat| stat.state == 'Z')
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), gone)
        .await
        .expect("the job in its own group was killed with the terminal");
}

/// The path of `pid`'s cgroup in the v1 `pids` hierarchy (or v2's), from `/proc`.
fn pids_cgroup(pid: u32) -> String {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    text.lines()
        .find_map(|line| {
            let mut parts = line.splitn(3, ':');
            let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
            (controllers.split(',').any(|c| c == "pids") || controllers.is_empty())
                .then(|| path.to_owned())
        })
        .unwrap_or_default()
}

/// Reads until `marker` is on the terminal (bounded).
async fn read_until(handle: &PtyHandle, marker: &str) -> String {
    let mut seen = String::new();
    let mut buf = [0u8; 1024];
    while !seen.contains(marker) {
        let n = tokio::time::timeout(Duration::from_secs(20), handle.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "the terminal closed early: {seen}");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    seen
}

#[tokio::test]
async fn a_terminal_under_tree_limits_runs_in_a_cgroup_that_goes_with_it() {
    use crate::exec::cgroup::{Controller, detect};
    let support = detect::here();
    let Some(base) = support.base(Controller::Pids) else {
        eprintln!("skipped: {}", support.describe());
        return;
    };
    let script = "sh -c 'for i in $(seq 30); do sleep 316 & done' 2>/dev/null; \
                  echo forked; exec sleep 30";
    let limited = CommandSpec::shell_for_test(script, Duration::from_secs(40)).confined(
        crate::exec::Confinement {
            limits: toml::from_str("processes = 8").unwrap(),
            layers: Vec::new(),
        },
    );
    let (mut process, handle) = spawn(limited, &BaseEnv::from_server_env(), SIZE).unwrap();
    read_until(&handle, "forked").await;
    let counters = process
        .cgroup_counters()
        .expect("the terminal has a cgroup");
    assert!(counters.usage().pids_refused > 0, "{:?}", counters.usage());
    let own = pids_cgroup(process.pid());
    let name = own.rsplit('/').next().unwrap().to_owned();
    assert!(own.contains("/hostmcp/"), "{own}");
    assert!(base.join(&name).is_dir());
    process.end(Duration::from_secs(1)).await.unwrap();
    let usage = process.finish().await.expect("usage reported");
    assert!(usage.cgroup.unwrap().pids_refused > 0);
    assert!(!base.join(&name).exists(), "its cgroup is gone");

    // Near miss: without tree limits, no cgroup of its own.
    let free = CommandSpec::shell_for_test("echo forked; exec sleep 30", Duration::from_secs(40));
    let (mut process, handle) = spawn(free, &BaseEnv::from_server_env(), SIZE).unwrap();
    read_until(&handle, "forked").await;
    assert!(process.cgroup_counters().is_none());
    assert!(!pids_cgroup(process.pid()).contains("/hostmcp/"));
    process.end(Duration::from_secs(1)).await.unwrap();
    process.finish().await;
}
