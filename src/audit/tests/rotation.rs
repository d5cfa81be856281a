//! The log deleted or renamed under a running writer: records are refused with
//! [`AuditError::Moved`] until [`AuditLog::reopen`], and the chain then goes on in the new file.
//! Each refusal has its near miss: the same record with the file in place is written.

use super::*;

async fn record(log: &AuditLog, id: &str) -> Result<(), AuditError> {
    log.record(context(), started(id)).await
}

#[tokio::test]
async fn a_deleted_log_refuses_records_until_reopened_then_continues_the_chain() {
    let dir = TempDir::new();
    let path = dir.join("audit.log");
    let log = AuditLog::open(&path, AuditOptions::default()).unwrap();
    record(&log, "c-1").await.unwrap();
    // Near miss: a reopen with the file in place changes nothing.
    assert_eq!(log.reopen().await.unwrap(), Reopened::Unchanged);
    record(&log, "c-2").await.unwrap();
    let old_lines = read_lines(&path);

    fs::remove_file(&path).unwrap();
    let error = record(&log, "c-3").await.unwrap_err();
    assert!(matches!(error, AuditError::Moved { .. }), "{error}");
    assert!(error.refusal_reason().contains("deleted or renamed"));
    assert!(!path.exists(), "a refused record creates nothing");
    // Recreating the file is not enough: it is not the open one.
    fs::write(&path, b"").unwrap();
    assert!(matches!(
        record(&log, "c-3").await,
        Err(AuditError::Moved { .. })
    ));

    assert_eq!(log.reopen().await.unwrap(), Reopened::NewFile);
    record(&log, "c-4").await.unwrap();
    let lines = read_lines(&path);
    assert_eq!(lines.len(), 1);
    let first = parse(&lines[0]);
    assert_eq!(first.seq, 3, "refused records took no seq");
    assert_eq!(first.prev, sha256_hex(old_lines.last().unwrap()));

    // Alone, the new file starts mid-chain: refused as a whole chain, accepted as a part.
    assert_eq!(
        problem(&verify(&path).unwrap()),
        (1, ProblemKind::BadStart { seq: 3 })
    );
    let part = verify_files(
        &[&path],
        &VerifyOptions {
            start: Start::MidChain,
            ..VerifyOptions::default()
        },
    )
    .unwrap();
    assert!(part.is_intact(), "{part}");
    // An anchor before the part cannot be checked there: said, not skipped.
    let old_anchor = Anchor {
        seq: 1,
        hash: sha256_hex(&old_lines[0]),
    };
    let unchecked = verify_files(
        &[&path],
        &VerifyOptions {
            start: Start::MidChain,
            anchors: vec![old_anchor],
            ..VerifyOptions::default()
        },
    )
    .unwrap();
    assert_eq!(
        problem(&unchecked),
        (
            1,
            ProblemKind::AnchorBeforeStart {
                anchor_seq: 1,
                first_seq: 3
            }
        )
    );
    assert_eq!(
        part.continues_after,
        Some(Anchor {
            seq: 2,
            hash: sha256_hex(old_lines.last().unwrap())
        })
    );
}

#[tokio::test]
async fn a_renamed_log_and_the_new_one_verify_together_as_one_chain() {
    let dir = TempDir::new();
    let path = dir.join("audit.log");
    let rotated = dir.join("audit.log.1");
    let log = AuditLog::open(&path, AuditOptions::default()).unwrap();
    record(&log, "c-1").await.unwrap();
    record(&log, "c-2").await.unwrap();

    fs::rename(&path, &rotated).unwrap();
    assert!(matches!(
        record(&log, "c-x").await,
        Err(AuditError::Moved { .. })
    ));
    assert_eq!(
        read_lines(&rotated).len(),
        2,
        "nothing more went to the old file"
    );
    assert_eq!(log.reopen().await.unwrap(), Reopened::NewFile);
    record(&log, "c-3").await.unwrap();
    record(&log, "c-4").await.unwrap();

    let both = verify_files(&[&rotated, &path], &VerifyOptions::default()).unwrap();
    assert!(both.is_intact(), "{both}");
    assert_eq!((both.lines, both.last.unwrap().seq), (4, 4));
    // Near miss: in the wrong order, or with the old file's last line gone, they do not.
    let swapped = verify_files(&[&path, &rotated], &VerifyOptions::default()).unwrap();
    assert!(!swapped.is_intact());
    let old = read_lines(&rotated);
    write_lines(&rotated, &old[..1]);
    let cut = verify_files(&[&rotated, &path], &VerifyOptions::default()).unwrap();
    assert_eq!(
        problem(&cut),
        (
            1,
            ProblemKind::Missing {
                expected: 2,
                found: 3
            }
        )
    );
    assert_eq!(cut.problem_file.as_deref(), Some(path.as_path()));
    assert!(cut.to_string().contains("audit.log: "), "{cut}");
}

#[tokio::test]
async fn a_reopen_refuses_a_file_that_does_not_continue_the_chain() {
    let dir = TempDir::new();
    let path = dir.join("audit.log");
    let log = AuditLog::open(&path, AuditOptions::default()).unwrap();
    // Not "c-1": the other log's first line would be the same line (same seq, prev and,
    // within one millisecond, time), which does continue the chain.
    record(&log, "c-first").await.unwrap();
    fs::rename(&path, dir.join("old")).unwrap();
    write_log(&path, 1).await;

    let error = log.reopen().await.unwrap_err();
    assert!(
        matches!(error, AuditError::NotContinuation { .. }),
        "{error}"
    );
    assert!(matches!(
        record(&log, "c-2").await,
        Err(AuditError::Moved { .. })
    ));
    // Moved away, the path is free: the next reopen creates the file.
    fs::remove_file(&path).unwrap();
    assert_eq!(log.reopen().await.unwrap(), Reopened::NewFile);
    record(&log, "c-2").await.unwrap();
    assert_eq!(parse(&read_lines(&path)[0]).seq, 2);
}

#[tokio::test]
async fn a_keyed_log_rotated_under_the_writer_verifies_with_the_key_and_anchor() {
    let dir = TempDir::new();
    let path = dir.join("audit.log");
    let rotated = dir.join("audit.log.1");
    let key = key::AuditKey::from_bytes_for_test([3; 32]);
    let options = AuditOptions {
        key: Some(key.clone()),
        ..AuditOptions::default()
    };
    let log = AuditLog::open(&path, options).unwrap();
    record(&log, "c-1").await.unwrap();
    fs::rename(&path, &rotated).unwrap();
    log.reopen().await.unwrap();
    record(&log, "c-2").await.unwrap();

    // A new keyed chain: `chain_started` is seq 1.
    let anchor = read_anchor_file(&anchor_path(&path), &key).unwrap();
    assert_eq!(anchor.seq, 3);
    let options = VerifyOptions {
        key: Some(key),
        anchors: vec![anchor],
        ..VerifyOptions::default()
    };
    let both = verify_files(&[&rotated, &path], &options).unwrap();
    assert!(both.is_intact(), "{both}");
    let new_only = verify_files(
        &[&path],
        &VerifyOptions {
            start: Start::MidChain,
            ..options
        },
    )
    .unwrap();
    assert!(new_only.is_intact(), "{new_only}");
}
