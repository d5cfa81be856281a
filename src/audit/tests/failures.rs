//! Write failures: a failed write or batch is an error for every record in it and leaves the
//! chain where it was; a log that cannot be opened says why.

use super::*;

#[tokio::test]
async fn a_failed_write_is_an_error_and_does_not_advance_the_chain() {
    let dir = TempDir::new();
    let path = dir.join("audit.log");
    let log = AuditLog::open(&path, AuditOptions::default()).unwrap();
    log.record(context(), started("c-1")).await.unwrap();
    let before = fs::read(&path).unwrap();

    log.replace_file_for_test(File::open(&path).unwrap()).await;
    let error = log.record(context(), started("c-lost")).await.unwrap_err();
    assert!(matches!(error, AuditError::Write { .. }), "{error}");
    assert_eq!(fs::read(&path).unwrap(), before);

    let writable = OpenOptions::new().append(true).open(&path).unwrap();
    log.replace_file_for_test(writable).await;
    log.record(context(), started("c-2")).await.unwrap();
    let lines = read_lines(&path);
    assert_eq!(lines.len(), 2);
    assert_eq!(parse(&lines[1]).seq, 2);
    assert!(verify(&path).unwrap().is_intact());
}

#[tokio::test]
async fn a_failed_batch_fails_every_record_in_it_and_does_not_advance_the_chain() {
    let dir = TempDir::new();
    let path = dir.join("audit.log");
    let log = AuditLog::open(&path, AuditOptions::default()).unwrap();
    log.record(context(), started("c-1")).await.unwrap();
    let before = fs::read(&path).unwrap();

    log.replace_file_for_test(File::open(&path).unwrap()).await;
    let release = log.hold_writer_for_test().await;
    let tasks = queue_records(&log, (1..=5).map(|n| format!("c-lost-{n}"))).await;
    drop(release);
    for task in tasks {
        let error = task.await.unwrap().unwrap_err();
        assert!(matches!(error, AuditError::Write { .. }), "{error}");
    }
    assert_eq!(fs::read(&path).unwrap(), before);
    assert_eq!(log.data_syncs_for_test().await, 1);

    let writable = OpenOptions::new().append(true).open(&path).unwrap();
    log.replace_file_for_test(writable).await;
    log.record(context(), started("c-2")).await.unwrap();
    let lines = read_lines(&path);
    assert_eq!(lines.len(), 2);
    assert_eq!(parse(&lines[1]).seq, 2);
    assert_eq!(parse(&lines[1]).prev, sha256_hex(&lines[0]));
    assert!(verify(&path).unwrap().is_intact());
}

#[tokio::test]
async fn opening_fails_when_the_file_was_replaced_by_a_directory() {
    let dir = TempDir::new();
    let path = dir.join("audit.log");
    write_log(&path, 1).await;
    fs::remove_file(&path).unwrap();
    fs::create_dir(&path).unwrap();

    let error = AuditLog::open(&path, AuditOptions::default()).unwrap_err();
    assert!(matches!(error, AuditError::Open { .. }), "{error}");
}

#[test]
fn opening_fails_in_a_directory_that_cannot_be_written() {
    // /proc refuses new files even to root, unlike a chmod 0500 directory.
    for path in ["/proc/hostmcp-audit-test.log", "/nonexistent-dir/audit.log"] {
        let error = AuditLog::open(path, AuditOptions::default()).unwrap_err();
        assert!(matches!(error, AuditError::Open { .. }), "{path}: {error}");
        assert!(!error.hint().is_empty());
    }
}

#[test]
fn opening_refuses_something_that_is_not_a_regular_file() {
    let error = AuditLog::open("/dev/null", AuditOptions::default()).unwrap_err();
    assert!(matches!(error, AuditError::NotAFile { .. }), "{error}");
}
