//! The keyed chain: what the key and the anchor file add to the hash chain. Each property is
//! shown with its near miss: the untouched log verifies with the key, and each forgery that
//! the hashes alone accept fails with the key (or with the anchor).

use super::*;

const KEY_HEX_LEN: usize = 64;

fn key() -> AuditKey {
    key::AuditKey::from_bytes_for_test([42; 32])
}

fn keyed() -> AuditOptions {
    AuditOptions {
        key: Some(key()),
        ..AuditOptions::default()
    }
}

/// Open the keyed log at `path` and write `count` records. A new log gets a `chain_started`
/// record first (seq 1), so `count + 1` lines.
async fn write_keyed_log(path: &Path, count: u64) {
    let log = AuditLog::open(path, keyed()).unwrap();
    for n in 1..=count {
        log.record(context(), started(&format!("c-{n}")))
            .await
            .unwrap();
    }
}

/// What `audit verify --key` checks: the MACs and the anchor file beside the log.
fn verify_keyed(path: &Path) -> VerifyReport {
    let anchor = read_anchor_file(&anchor_path(path), &key()).unwrap();
    verify_files(
        &[path],
        &VerifyOptions {
            key: Some(key()),
            anchors: vec![anchor],
            ..VerifyOptions::default()
        },
    )
    .unwrap()
}

/// Recompute every `prev` after the first line, as a forger without the key can.
fn rechain(lines: &mut [Vec<u8>]) {
    for index in 1..lines.len() {
        let old = parse(&lines[index]).prev;
        let new = sha256_hex(&lines[index - 1]);
        lines[index] = replace(&lines[index], &old, &new);
    }
}

#[tokio::test]
async fn each_keyed_line_ends_with_its_mac_and_verifies_with_the_key() {
    let dir = TempDir::new();
    let path = dir.join("audit.log");
    write_keyed_log(&path, 3).await;

    for line in read_lines(&path) {
        let text = String::from_utf8(line.clone()).unwrap();
        let start = text.rfind(r#","mac":""#).expect("a mac member");
        assert_eq!(
            text.len() - start,
            r#","mac":""#.len() + KEY_HEX_LEN + 2,
            "{text}"
        );
        // The line is still a record, and its fields are where they were.
        assert!(text.starts_with(r#"{"seq":"#), "{text}");
    }
    let report = verify_keyed(&path);
    assert!(report.is_intact(), "{report}");
    assert_eq!(report.last.as_ref().map(|anchor| anchor.seq), Some(4));
    // The anchor file names the last line.
    assert_eq!(
        read_anchor_file(&anchor_path(&path), &key()).unwrap(),
        report.last.unwrap()
    );
}

#[tokio::test]
async fn an_edited_and_rechained_log_passes_without_the_key_and_fails_with_it() {
    let dir = TempDir::new();
    let path = dir.join("audit.log");
    write_keyed_log(&path, 5).await;
    assert!(verify_keyed(&path).is_intact());

    let mut lines = read_lines(&path);
    lines[1] = replace(
        &lines[1],
        r#""principal":"alice""#,
        r#""principal":"mallory""#,
    );
    rechain(&mut lines);
    write_lines(&path, &lines);

    // The hashes alone accept the forgery: that is what the key adds.
    assert!(verify(&path).unwrap().is_intact());
    let report = verify_files(
        &[&path],
        &VerifyOptions {
            key: Some(key()),
            ..VerifyOptions::default()
        },
    )
    .unwrap();
    assert_eq!(problem(&report), (2, ProblemKind::BadMac));
    // Another key does not confirm even the untouched first line.
    let other = VerifyOptions {
        key: Some(key::AuditKey::from_bytes_for_test([1; 32])),
        ..VerifyOptions::default()
    };
    assert_eq!(
        problem(&verify_files(&[&path], &other).unwrap()),
        (1, ProblemKind::BadMac)
    );
}

#[tokio::test]
async fn a_log_written_without_the_key_fails_with_it_as_unsealed() {
    let dir = TempDir::new();
    let path = dir.join("audit.log");
    write_log(&path, 2).await;
    let options = VerifyOptions {
        key: Some(key()),
        ..VerifyOptions::default()
    };
    assert_eq!(
        problem(&verify_files(&[&path], &options).unwrap()),
        (1, ProblemKind::Unsealed)
    );
    // A sealed last line whose MAC was stripped is unsealed too (`chain_started` is line 1).
    write_keyed_log(&dir.join("sealed.log"), 2).await;
    let mut lines = read_lines(&dir.join("sealed.log"));
    assert_eq!(lines.len(), 3);
    let text = String::from_utf8(lines[2].clone()).unwrap();
    let start = text.rfind(r#","mac":""#).unwrap();
    lines[2] = format!("{}}}", &text[..start]).into_bytes();
    write_lines(&path, &lines);
    assert!(verify(&path).unwrap().is_intact());
    assert_eq!(
        problem(&verify_files(&[&path], &options).unwrap()),
        (3, ProblemKind::Unsealed)
    );
}

#[tokio::test]
async fn a_cut_off_tail_passes_the_macs_and_fails_the_anchor_file() {
    let dir = TempDir::new();
    let path = dir.join("audit.log");
    write_keyed_log(&path, 5).await;
    let lines = read_lines(&path);
    write_lines(&path, &lines[..3]);

    let macs_only = VerifyOptions {
        key: Some(key()),
        ..VerifyOptions::default()
    };
    assert!(verify_files(&[&path], &macs_only).unwrap().is_intact());
    assert_eq!(
        problem(&verify_keyed(&path)),
        (
            4,
            ProblemKind::TailTruncated {
                anchor_seq: 6,
                last_seq: Some(3)
            }
        )
    );
}

#[tokio::test]
async fn an_emptied_log_fails_the_anchor_file() {
    let dir = TempDir::new();
    let path = dir.join("audit.log");
    write_keyed_log(&path, 3).await;
    fs::write(&path, b"").unwrap();
    assert!(verify(&path).unwrap().is_intact());
    assert_eq!(
        problem(&verify_keyed(&path)),
        (
            1,
            ProblemKind::TailTruncated {
                anchor_seq: 4,
                last_seq: None
            }
        )
    );
}

#[tokio::test]
async fn opening_a_keyed_log_refuses_one_cut_behind_its_anchor_or_without_it() {
    let dir = TempDir::new();
    let path = dir.join("audit.log");
    write_keyed_log(&path, 4).await;
    // Near miss: the untouched log opens and its chain goes on.
    write_keyed_log(&path, 1).await;
    assert_eq!(verify_keyed(&path).last.unwrap().seq, 6);

    let lines = read_lines(&path);
    write_lines(&path, &lines[..3]);
    let error = AuditLog::open(&path, keyed()).unwrap_err();
    assert!(
        matches!(
            error,
            AuditError::BehindAnchor {
                anchor_seq: 6,
                last_seq: 3,
                ..
            }
        ),
        "{error}"
    );
    assert_eq!(read_lines(&path).len(), 3, "nothing was written");

    write_lines(&path, &lines);
    fs::remove_file(anchor_path(&path)).unwrap();
    let error = AuditLog::open(&path, keyed()).unwrap_err();
    assert!(matches!(error, AuditError::AnchorMissing { .. }), "{error}");
}

#[tokio::test]
async fn a_key_added_to_an_unkeyed_log_starts_sealing_where_it_ends() {
    let dir = TempDir::new();
    let path = dir.join("audit.log");
    write_log(&path, 2).await;
    write_keyed_log(&path, 2).await;
    let lines = read_lines(&path);
    assert_eq!(lines.len(), 4);
    assert!(!key::is_sealed(&lines[1]) && key::is_sealed(&lines[2]));
    assert!(verify(&path).unwrap().is_intact());
}

#[tokio::test]
async fn an_empty_keyed_log_continues_after_its_anchor() {
    let dir = TempDir::new();
    let path = dir.join("audit.log");
    write_keyed_log(&path, 3).await;
    let old = dir.join("audit.log.1");
    fs::rename(&path, &old).unwrap();
    // Rotated while the server was stopped: the next start continues the chain.
    write_keyed_log(&path, 2).await;
    let first = parse(&read_lines(&path)[0]);
    assert_eq!(first.seq, 5);
    assert_eq!(first.prev, sha256_hex(read_lines(&old).last().unwrap()));
    let anchor = read_anchor_file(&anchor_path(&path), &key()).unwrap();
    let both = verify_files(
        &[&old, &path],
        &VerifyOptions {
            key: Some(key()),
            anchors: vec![anchor],
            ..VerifyOptions::default()
        },
    )
    .unwrap();
    assert!(both.is_intact(), "{both}");
    assert_eq!(both.lines, 6);
}

/// F5 (red team): a new keyed chain says so, in its first record and in what verify prints.
#[tokio::test]
async fn a_new_keyed_chain_starts_with_a_chain_started_record_and_verify_names_it() {
    let dir = TempDir::new();
    let path = dir.join("audit.log");
    write_keyed_log(&path, 2).await;
    let lines = read_lines(&path);
    let first = parse(&lines[0]);
    assert_eq!((first.seq, first.event), (1, AuditEvent::ChainStarted));
    assert_eq!(first.prev, "0".repeat(64));
    let report = verify_keyed(&path);
    assert!(report.is_intact(), "{report}");
    assert_eq!(report.genesis_time.as_deref(), Some(first.time.as_str()));
    let text = report.to_string();
    assert!(
        text.contains(&format!(
            "NOTE: this chain starts at genesis (seq 1) at {}",
            first.time
        )),
        "{text}"
    );
    let last = parse(lines.last().unwrap());
    assert!(
        text.contains(&format!("last record: seq 3 at {}", last.time)),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "anchor checked: 3:{}",
            sha256_hex(lines.last().unwrap())
        )),
        "{text}"
    );

    // Near misses: a keyed log that goes on gets no second one, nor does a key added to a
    // log that has lines, nor an unkeyed log; a part of a chain is not a genesis.
    write_keyed_log(&path, 1).await;
    let events: Vec<_> = read_lines(&path)
        .iter()
        .map(|line| parse(line).event)
        .collect();
    assert_eq!(
        events
            .iter()
            .filter(|e| **e == AuditEvent::ChainStarted)
            .count(),
        1
    );
    let unkeyed = dir.join("unkeyed.log");
    write_log(&unkeyed, 1).await;
    write_keyed_log(&unkeyed, 1).await;
    assert!(
        read_lines(&unkeyed)
            .iter()
            .all(|line| parse(line).event != AuditEvent::ChainStarted)
    );
    let mid = verify_files(
        &[&path],
        &VerifyOptions {
            start: Start::MidChain,
            ..VerifyOptions::default()
        },
    )
    .unwrap();
    assert!(mid.is_intact() && mid.genesis_time.is_none(), "{mid}");
}

/// F5 (red team): an anchor file rolled back with a cut log, and a wipe of both, look like
/// valid chains on the host (that is their near miss: verify with the anchor file passes);
/// the anchor kept off the host catches both.
#[tokio::test]
async fn a_rolled_back_anchor_or_a_wipe_is_caught_only_by_an_anchor_kept_elsewhere() {
    let dir = TempDir::new();
    let path = dir.join("audit.log");
    write_keyed_log(&path, 5).await;
    let old_lines = read_lines(&path);
    let old_anchor = fs::read(anchor_path(&path)).unwrap();
    write_keyed_log(&path, 3).await;
    let off_host = verify_keyed(&path).last.unwrap();
    assert_eq!(off_host.seq, 9);
    let with_off_host = |path: &Path| {
        let mut anchors = vec![read_anchor_file(&anchor_path(path), &key()).unwrap()];
        anchors.push(off_host.clone());
        verify_files(
            &[path],
            &VerifyOptions {
                key: Some(key()),
                anchors,
                ..VerifyOptions::default()
            },
        )
        .unwrap()
    };
    // Untouched: both anchors agree with the log.
    let report = with_off_host(&path);
    assert!(report.is_intact(), "{report}");
    assert_eq!(report.anchored.len(), 2);

    // Rolled back: the log cut to 6 lines, the anchor file of that time restored.
    write_lines(&path, &old_lines);
    fs::write(anchor_path(&path), &old_anchor).unwrap();
    assert!(
        verify_keyed(&path).is_intact(),
        "not detectable on the host"
    );
    assert_eq!(
        problem(&with_off_host(&path)),
        (
            7,
            ProblemKind::TailTruncated {
                anchor_seq: 9,
                last_seq: Some(6)
            }
        )
    );
    // And a server continues it: nothing on the host tells it apart from the real end.
    drop(AuditLog::open(&path, keyed()).unwrap());

    // Wiped: log and anchor file deleted, a new chain started.
    fs::remove_file(&path).unwrap();
    fs::remove_file(anchor_path(&path)).unwrap();
    write_keyed_log(&path, 2).await;
    let report = verify_keyed(&path);
    assert!(report.is_intact(), "not detectable on the host: {report}");
    assert!(report.to_string().contains("starts at genesis"), "{report}");
    assert_eq!(
        problem(&with_off_host(&path)),
        (
            4,
            ProblemKind::TailTruncated {
                anchor_seq: 9,
                last_seq: Some(3)
            }
        )
    );
    // Once the new chain is longer, the off-host anchor's line is there with another hash.
    write_keyed_log(&path, 8).await;
    assert_eq!(
        problem(&with_off_host(&path)),
        (9, ProblemKind::AnchorMismatch { seq: 9 })
    );
}

#[test]
fn the_key_file_is_made_0600_never_overwritten_and_refused_when_exposed() {
    let dir = TempDir::new();
    let path = dir.join("audit.key");
    let made = AuditKey::generate(&path).unwrap();
    assert_eq!(
        fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let text = fs::read_to_string(&path).unwrap();
    assert_eq!(text.trim().len(), KEY_HEX_LEN);
    assert!(!format!("{made:?}").contains(text.trim()));
    assert!(!format!("{made:?}").contains(&text[..8]));
    assert!(matches!(
        AuditKey::generate(&path),
        Err(KeyError::Exists { .. })
    ));
    assert_eq!(fs::read_to_string(&path).unwrap(), text);

    // Near miss: mode 0600 loads, and seals as the generated key does.
    let loaded = AuditKey::load(&path).unwrap();
    let mut a = br#"{"seq":1}"#.to_vec();
    let mut b = a.clone();
    made.seal_line(&mut a);
    loaded.seal_line(&mut b);
    assert_eq!(a, b);
    assert_eq!(loaded.open_line(&a), key::Seal::Valid);

    for mode in [0o640, 0o604, 0o620] {
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
        let error = AuditKey::load(&path).unwrap_err();
        assert!(
            matches!(error, KeyError::Exposed { .. }),
            "{mode:o}: {error}"
        );
        assert!(!error.to_string().contains(text.trim()));
    }
    fs::set_permissions(&path, fs::Permissions::from_mode(0o400)).unwrap();
    assert!(AuditKey::load(&path).is_ok());

    fs::write(dir.join("short.key"), "abcd\n").unwrap();
    fs::set_permissions(dir.join("short.key"), fs::Permissions::from_mode(0o600)).unwrap();
    assert!(matches!(
        AuditKey::load(&dir.join("short.key")),
        Err(KeyError::Malformed { .. })
    ));
}
