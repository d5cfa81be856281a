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
