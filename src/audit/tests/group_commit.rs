//! Group commit: records waiting together share one sync; records awaited one after another
//! each get their own. Counted with the writer's count of syncs.

use super::*;

#[tokio::test]
async fn records_waiting_together_are_written_with_one_sync() {
    const RECORDS: usize = 100;
    let dir = TempDir::new();
    let path = dir.join("audit.log");
    let log = AuditLog::open(&path, AuditOptions::default()).unwrap();
    log.record(context(), started("c-0")).await.unwrap();
    assert_eq!(log.data_syncs_for_test().await, 1);

    let release = log.hold_writer_for_test().await;
    let tasks = queue_records(&log, (1..=RECORDS).map(|n| format!("c-{n}"))).await;
    drop(release);
    for task in tasks {
        task.await.unwrap().unwrap();
    }

    assert_eq!(log.data_syncs_for_test().await, 2);
    let lines = read_lines(&path);
    assert_eq!(lines.len(), RECORDS + 1);
    let records: Vec<AuditRecord> = lines.iter().map(|line| parse(line)).collect();
    let seqs: Vec<u64> = records.iter().map(|record| record.seq).collect();
    assert_eq!(seqs, (1..=RECORDS as u64 + 1).collect::<Vec<_>>());
    let ids: BTreeSet<String> = records[1..]
        .iter()
        .map(|record| match &record.event {
            AuditEvent::CommandStarted { command_id, .. } => command_id.clone(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(ids, (1..=RECORDS).map(|n| format!("c-{n}")).collect());
    assert!(verify(&path).unwrap().is_intact());
}

#[tokio::test]
async fn records_awaited_one_after_another_each_get_their_own_sync() {
    let dir = TempDir::new();
    let path = dir.join("audit.log");
    let log = AuditLog::open(&path, AuditOptions::default()).unwrap();
    for n in 1..=3u64 {
        log.record(context(), started(&format!("c-{n}")))
            .await
            .unwrap();
        assert_eq!(log.data_syncs_for_test().await, n);
        assert_eq!(read_lines(&path).len() as u64, n);
    }
    assert!(verify(&path).unwrap().is_intact());
}
