use super::*;

fn row(pid: i32, name: &str, cpu: f64, rss: u64, state: &str, start: u64) -> ProcessRow {
    ProcessRow {
        pid,
        ppid: 1,
        uid: 0,
        user: Some("root".to_owned()),
        state: state.to_owned(),
        name: name.to_owned(),
        threads: 1,
        rss_bytes: rss,
        cpu_time_ms: 0,
        start_time_unix: 0,
        cpu_percent: Some(cpu),
        start_ticks: start,
        cpu_ticks: 0,
    }
}

fn sampled() -> Sampled {
    Sampled {
        processes: vec![
            row(10, "nginx", 1.0, 300, "S", 5),
            row(11, "nginx", 50.0, 100, "R", 6),
            row(12, "postgres", 5.0, 900, "S", 7),
            row(13, "defunct", 0.0, 0, "Z", 8),
        ],
        window_ms: 150,
        since_earlier_call: false,
    }
}

/// Selection over rows that are complete already.
fn select(sampled: Sampled, input: &ProcessListInput) -> ProcessList {
    select_with(sampled, input, |_| true)
}

fn pids(list: &ProcessList) -> Vec<i32> {
    list.processes.iter().map(|p| p.process.pid).collect()
}

#[test]
fn each_sort_orders_as_named() {
    let by = |sort| {
        pids(&select(
            sampled(),
            &ProcessListInput {
                sort,
                ..Default::default()
            },
        ))
    };
    assert_eq!(by(SortBy::Cpu), [11, 12, 10, 13]);
    assert_eq!(by(SortBy::Memory), [12, 10, 11, 13]);
    assert_eq!(by(SortBy::Pid), [10, 11, 12, 13]);
    assert_eq!(by(SortBy::Start), [13, 12, 11, 10]);
}

#[test]
fn filters_and_limit_cut_the_list_and_say_how_many_matched() {
    let list = select(
        sampled(),
        &ProcessListInput {
            name: Some("NGIN".to_owned()),
            limit: Some(1),
            ..Default::default()
        },
    );
    assert_eq!((list.total, list.matched), (4, 2));
    assert_eq!(pids(&list), [11]);
    let zombies = select(
        sampled(),
        &ProcessListInput {
            state: Some("zombie".to_owned()),
            ..Default::default()
        },
    );
    assert_eq!(pids(&zombies), [13]);
    let by_letter = select(
        sampled(),
        &ProcessListInput {
            state: Some("Z".to_owned()),
            ..Default::default()
        },
    );
    assert_eq!(pids(&by_letter), [13]);
    let nobody = select(
        sampled(),
        &ProcessListInput {
            user: Some("nobody".to_owned()),
            ..Default::default()
        },
    );
    assert_eq!(nobody.matched, 0);
    let by_uid = select(
        sampled(),
        &ProcessListInput {
            user: Some("0".to_owned()),
            ..Default::default()
        },
    );
    assert_eq!(by_uid.matched, 4);
}

#[test]
fn the_limit_defaults_small_and_is_capped() {
    let many = Sampled {
        processes: (1..=500).map(|pid| row(pid, "x", 0.0, 0, "S", 0)).collect(),
        window_ms: 150,
        since_earlier_call: true,
    };
    let default = select(many, &ProcessListInput::default());
    assert_eq!(default.processes.len(), DEFAULT_LIMIT);
    let many = Sampled {
        processes: (1..=500).map(|pid| row(pid, "x", 0.0, 0, "S", 0)).collect(),
        window_ms: 150,
        since_earlier_call: true,
    };
    let asked = select(
        many,
        &ProcessListInput {
            limit: Some(100_000),
            ..Default::default()
        },
    );
    assert_eq!(asked.processes.len(), MAX_LIMIT);
    assert!(render(&asked).contains("500 processes, 500 match; 200 shown"));
}

#[test]
fn a_row_whose_process_ended_gives_its_place_to_the_next() {
    // The completer says pid 12 ended after the scan: the next by memory is shown.
    let list = select_with(
        sampled(),
        &ProcessListInput {
            sort: SortBy::Memory,
            limit: Some(2),
            ..Default::default()
        },
        |row| row.pid != 12,
    );
    assert_eq!(pids(&list), [10, 11]);
    assert_eq!((list.total, list.matched), (4, 4));
}

#[test]
fn each_question_reads_only_what_it_needs_of_every_process() {
    let scan = |input: ProcessListInput| scan_for(&input);
    let each = |input: ProcessListInput| scan_for(&input).each;
    assert_eq!(
        scan(ProcessListInput::default()),
        processes::Scan {
            each: PerProcess::Stat,
            owner: false
        }
    );
    let by = |sort| ProcessListInput {
        sort,
        ..Default::default()
    };
    assert_eq!(each(by(SortBy::Memory)), PerProcess::Memory);
    assert_eq!(each(by(SortBy::Pid)), PerProcess::Pid);
    assert_eq!(each(by(SortBy::Start)), PerProcess::Stat);
    // A filter on what only the stat line holds needs it whatever the sort.
    let named = ProcessListInput {
        sort: SortBy::Memory,
        name: Some("x".to_owned()),
        ..Default::default()
    };
    assert_eq!(each(named), PerProcess::Stat);
    let in_state = ProcessListInput {
        sort: SortBy::Pid,
        state: Some("Z".to_owned()),
        ..Default::default()
    };
    assert_eq!(each(in_state), PerProcess::Stat);
    let of_user = ProcessListInput {
        sort: SortBy::Memory,
        user: Some("root".to_owned()),
        ..Default::default()
    };
    assert_eq!(
        scan(of_user),
        processes::Scan {
            each: PerProcess::Memory,
            owner: true
        }
    );
}

/// The resident pages of `pid` as /proc/PID/statm shows them, read by the test.
fn statm_rss_bytes(pid: i32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/statm")).ok()?;
    let pages: u64 = text.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * procfs::page_size())
}

#[test]
fn rows_listed_from_a_partial_scan_are_complete() {
    let sampler = processes::CpuSampler::default();
    let ask = |sort, user: Option<&str>| ProcessListInput {
        sort,
        user: user.map(str::to_owned),
        limit: Some(5),
        ..Default::default()
    };
    let my_user = nix::unistd::User::from_uid(nix::unistd::getuid())
        .unwrap()
        .unwrap()
        .name;
    for input in [
        ask(SortBy::Memory, None),
        ask(SortBy::Pid, None),
        ask(SortBy::Memory, Some(&my_user)),
    ] {
        let list = list(&sampler, &input).unwrap();
        assert!(list.cpu_window_ms >= processes::MIN_WINDOW.as_millis() as u64);
        assert_eq!(list.processes.len(), 5, "{input:?}");
        // Filled in for each shown row: what the scan did not read, as /proc shows it
        // (a process that ended since is skipped).
        let mut compared = 0;
        for listed in &list.processes {
            let row = &listed.process;
            let Ok(alone) = processes::read_one(row.pid) else {
                continue;
            };
            if alone.start_ticks != row.start_ticks {
                continue; // the pid was reused
            }
            compared += 1;
            assert_eq!(
                (row.ppid, row.uid, &row.name, &row.state.is_empty()),
                (alone.ppid, alone.uid, &alone.name, &false),
                "{input:?}"
            );
            assert_eq!(row.user, alone.user, "{input:?}");
            assert!(row.cpu_percent.is_some() && row.threads >= 1, "{input:?}");
            if input.user.is_some() {
                assert_eq!(row.user.as_deref(), Some(my_user.as_str()));
            }
        }
        assert!(compared >= 3, "{input:?}: {compared}");
        // Near miss: the order is the one asked for, by figures /proc shows.
        let shown: Vec<i32> = list.processes.iter().map(|l| l.process.pid).collect();
        if input.sort == SortBy::Pid {
            assert!(shown.windows(2).all(|pair| pair[0] < pair[1]), "{shown:?}");
            // The lowest pid (1, the namespace's init, which does not end).
            let lowest = crate::host::proc_dir::ProcDir::open()
                .unwrap()
                .pids()
                .unwrap()[0];
            assert_eq!(shown[0], lowest, "{shown:?}");
        } else {
            // Memory moves between the reads: each row against the next, within 16 MiB.
            let rss: Vec<u64> = shown
                .iter()
                .filter_map(|pid| statm_rss_bytes(*pid))
                .collect();
            assert!(
                rss.windows(2).all(|pair| pair[0] + (16 << 20) >= pair[1]),
                "{rss:?}"
            );
        }
    }
}
