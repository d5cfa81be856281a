//! The file and its chain: the chain continues across reopens and under concurrency, a
//! damaged tail or a second writer is refused, and a record whose caller stops waiting is
//! still written.

use super::*;

#[tokio::test]
async fn the_chain_continues_across_a_reopen() {
    let dir = TempDir::new();
    let path = dir.join("audit.log");
    write_log(&path, 2).await;
    {
        let log = AuditLog::open(&path, AuditOptions::default()).unwrap();
        log.record(context(), finished("c-1")).await.unwrap();
        let refused = AuditEvent::AuthFailed {
            reason: "invalid token".into(),
        };
        log.record(AuditContext::new(), refused).await.unwrap();
    }

    let lines = read_lines(&path);
    assert_eq!(lines.len(), 4);
    let seqs: Vec<u64> = lines.iter().map(|line| parse(line).seq).collect();
    assert_eq!(seqs, [1, 2, 3, 4]);
    assert_eq!(parse(&lines[0]).prev, GENESIS_PREV);
    for pair in lines.windows(2) {
        assert_eq!(parse(&pair[1]).prev, sha256_hex(&pair[0]));
    }
    let report = verify(&path).unwrap();
    assert!(report.is_intact(), "{report}");
    assert_eq!(report.lines, 4);
    assert_eq!(
        report.last,
        Some(Anchor {
            seq: 4,
            hash: sha256_hex(&lines[3])
        })
    );
}

#[tokio::test]
async fn opening_refuses_to_continue_after_an_incomplete_last_line() {
    let dir = TempDir::new();
    let path = dir.join("audit.log");
    write_log(&path, 2).await;
    let bytes = fs::read(&path).unwrap();
    fs::write(&path, &bytes[..bytes.len() - 10]).unwrap();

    let error = AuditLog::open(&path, AuditOptions::default()).unwrap_err();
    assert!(
        matches!(error, AuditError::IncompleteTail { .. }),
        "{error}"
    );
    assert_eq!(fs::read(&path).unwrap(), &bytes[..bytes.len() - 10]);
}

#[tokio::test]
async fn opening_refuses_to_continue_after_a_last_line_that_is_not_a_record() {
    let dir = TempDir::new();
    let path = dir.join("audit.log");
    write_log(&path, 1).await;
    let mut file = OpenOptions::new().append(true).open(&path).unwrap();
    std::io::Write::write_all(&mut file, b"not json\n").unwrap();

    let error = AuditLog::open(&path, AuditOptions::default()).unwrap_err();
    assert!(matches!(error, AuditError::BadTail { .. }), "{error}");
}

#[tokio::test]
async fn a_second_writer_on_the_same_file_is_refused_while_the_first_is_open() {
    let dir = TempDir::new();
    let path = dir.join("audit.log");
    let first = AuditLog::open(&path, AuditOptions::default()).unwrap();
    let error = AuditLog::open(&path, AuditOptions::default()).unwrap_err();
    assert!(matches!(error, AuditError::Locked { .. }), "{error}");
    drop(first);
    assert!(AuditLog::open(&path, AuditOptions::default()).is_ok());
}

#[test]
fn a_new_log_is_created_with_mode_0600() {
    let dir = TempDir::new();
    let path = dir.join("audit.log");
    let _log = AuditLog::open(&path, AuditOptions::default()).unwrap();
    let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{mode:o}");
}

#[test]
fn concurrent_records_from_many_tasks_form_one_valid_chain() {
    const THREADS: usize = 8;
    const TASKS: usize = 25;
    let dir = TempDir::new();
    let path = dir.join("audit.log");
    let log = AuditLog::open(&path, AuditOptions::default()).unwrap();

    let threads: Vec<_> = (0..THREADS)
        .map(|thread| {
            let log = log.clone();
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .build()
                    .unwrap();
                runtime.block_on(async {
                    let tasks: Vec<_> = (0..TASKS)
                        .map(|task| {
                            let log = log.clone();
                            // Long argv so a torn or interleaved write would show.
                            let mut event = started(&format!("c-{thread}-{task}"));
                            if let AuditEvent::CommandStarted { command, .. } = &mut event {
                                *command = CommandLine::shell("x".repeat(3000 + task));
                            }
                            tokio::spawn(async move { log.record(context(), event).await })
                        })
                        .collect();
                    for task in tasks {
                        task.await.unwrap().unwrap();
                    }
                });
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }

    let lines = read_lines(&path);
    assert_eq!(lines.len(), THREADS * TASKS);
    let records: Vec<AuditRecord> = lines.iter().map(|line| parse(line)).collect();
    let seqs: Vec<u64> = records.iter().map(|record| record.seq).collect();
    assert_eq!(seqs, (1..=(THREADS * TASKS) as u64).collect::<Vec<_>>());
    let ids: BTreeSet<String> = records
        .iter()
        .map(|record| match &record.event {
            AuditEvent::CommandStarted { command_id, .. } => command_id.clone(),
            other => panic!("{other:?}"),
        })
        .collect();
    let expected: BTreeSet<String> = (0..THREADS)
        .flat_map(|thread| (0..TASKS).map(move |task| format!("c-{thread}-{task}")))
        .collect();
    assert_eq!(ids, expected);
    let report = verify(&path).unwrap();
    assert!(report.is_intact(), "{report}");
}

#[tokio::test]
async fn a_record_whose_caller_stops_waiting_is_still_written_and_chained() {
    let dir = TempDir::new();
    let path = dir.join("audit.log");
    let log = AuditLog::open(&path, AuditOptions::default()).unwrap();
    {
        let mut abandoned = Box::pin(log.record(context(), started("c-abandoned")));
        let mut cx = Context::from_waker(Waker::noop());
        assert!(abandoned.as_mut().poll(&mut cx).is_pending());
    }
    log.record(context(), started("c-next")).await.unwrap();

    let lines = read_lines(&path);
    assert_eq!(lines.len(), 2);
    assert!(String::from_utf8_lossy(&lines[0]).contains("c-abandoned"));
    assert!(String::from_utf8_lossy(&lines[1]).contains("c-next"));
    assert!(verify(&path).unwrap().is_intact());
}
