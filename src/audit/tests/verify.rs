//! What `verify` reports for each kind of tampering, each with its untampered twin.

use super::*;

#[test]
fn an_empty_file_verifies_as_intact() {
    let dir = TempDir::new();
    let path = dir.join("audit.log");
    File::create(&path).unwrap();
    let report = verify(&path).unwrap();
    assert_eq!(
        report,
        VerifyReport {
            lines: 0,
            problem_file: None,
            continues_after: None,
            problem: None,
            last: None,
            genesis_time: None,
            last_time: None,
            anchored: Vec::new(),
        }
    );
}

#[test]
fn a_missing_file_is_an_error_not_a_report() {
    let error = verify("/nonexistent-dir/audit.log").unwrap_err();
    assert!(matches!(error, AuditError::Read { .. }), "{error}");
}

#[tokio::test]
async fn an_edited_line_is_reported_at_its_own_line_number() {
    let dir = TempDir::new();
    let path = dir.join("audit.log");
    write_log(&path, 5).await;
    assert!(verify(&path).unwrap().is_intact());

    let mut lines = read_lines(&path);
    lines[2] = replace(&lines[2], r#""command_id":"c-3""#, r#""command_id":"c-9""#);
    write_lines(&path, &lines);
    assert_eq!(problem(&verify(&path).unwrap()), (3, ProblemKind::Edited));
}

#[tokio::test]
async fn an_edited_first_line_is_reported_at_line_1() {
    let dir = TempDir::new();
    let path = dir.join("audit.log");
    write_log(&path, 3).await;
    let mut lines = read_lines(&path);
    lines[0] = replace(&lines[0], r#""principal":"alice""#, r#""principal":"bob""#);
    write_lines(&path, &lines);
    assert_eq!(problem(&verify(&path).unwrap()), (1, ProblemKind::Edited));
}

#[tokio::test]
async fn an_edited_seq_is_reported_at_its_line() {
    let dir = TempDir::new();
    let path = dir.join("audit.log");
    write_log(&path, 5).await;
    let mut lines = read_lines(&path);
    lines[2] = replace(&lines[2], r#""seq":3,"#, r#""seq":7,"#);
    write_lines(&path, &lines);
    assert_eq!(
        problem(&verify(&path).unwrap()),
        (
            3,
            ProblemKind::WrongSeq {
                expected: 3,
                found: 7
            }
        )
    );
}

#[tokio::test]
async fn a_deleted_middle_line_is_reported_as_missing_where_it_was() {
    let dir = TempDir::new();
    let path = dir.join("audit.log");
    write_log(&path, 5).await;
    let mut lines = read_lines(&path);
    lines.remove(2);
    write_lines(&path, &lines);
    let report = verify(&path).unwrap();
    assert_eq!(
        problem(&report),
        (
            3,
            ProblemKind::Missing {
                expected: 3,
                found: 4
            }
        )
    );
    assert_eq!(report.lines, 4);
    assert_eq!(report.last, None);
}

#[tokio::test]
async fn a_stretch_cut_from_the_middle_is_reported() {
    let dir = TempDir::new();
    let path = dir.join("audit.log");
    write_log(&path, 6).await;
    let lines = read_lines(&path);

    // Whole lines 2 to 4 gone.
    let mut whole = lines.clone();
    whole.drain(1..4);
    write_lines(&path, &whole);
    assert_eq!(
        problem(&verify(&path).unwrap()),
        (
            2,
            ProblemKind::Missing {
                expected: 2,
                found: 5
            }
        )
    );

    // From inside line 2 to inside line 4. Lines 2 and 4 have the same layout, so a cut at
    // the same offset in both leaves a well-formed line that belongs to no chain; any other
    // cut leaves a malformed one.
    let bytes: Vec<u8> = lines
        .iter()
        .flat_map(|line| [line.as_slice(), b"\n"].concat())
        .collect();
    let line_2_start = lines[0].len() + 1;
    let line_4_start = line_2_start + lines[1].len() + 1 + lines[2].len() + 1;
    let offset = lines[1].len() / 2;
    for skew in [0, 7] {
        let cut_from = line_2_start + offset;
        let cut_to = line_4_start + offset + skew;
        fs::write(&path, [&bytes[..cut_from], &bytes[cut_to..]].concat()).unwrap();
        let (line, kind) = problem(&verify(&path).unwrap());
        assert_eq!(line, 2, "skew {skew}: {kind:?}");
        if skew == 0 {
            assert_eq!(kind, ProblemKind::Edited);
        } else {
            assert!(matches!(kind, ProblemKind::Malformed { .. }), "{kind:?}");
        }
    }
}

#[tokio::test]
async fn an_edited_prev_is_blamed_on_its_own_line() {
    let dir = TempDir::new();
    let path = dir.join("audit.log");
    write_log(&path, 5).await;
    let mut lines = read_lines(&path);
    let prev = parse(&lines[2]).prev;
    lines[2] = replace(&lines[2], &prev, &sha256_hex(b"forged"));
    write_lines(&path, &lines);
    assert_eq!(problem(&verify(&path).unwrap()), (3, ProblemKind::Edited));
}

#[tokio::test]
async fn reordered_lines_are_reported_as_out_of_order() {
    let dir = TempDir::new();
    let path = dir.join("audit.log");
    write_log(&path, 5).await;
    let mut lines = read_lines(&path);
    lines.swap(2, 3);
    write_lines(&path, &lines);
    assert_eq!(
        problem(&verify(&path).unwrap()),
        (
            3,
            ProblemKind::OutOfOrder {
                expected: 3,
                found: 4
            }
        )
    );
}

#[tokio::test]
async fn a_duplicated_line_is_reported_as_out_of_order() {
    let dir = TempDir::new();
    let path = dir.join("audit.log");
    write_log(&path, 4).await;
    let mut lines = read_lines(&path);
    lines.insert(2, lines[1].clone());
    write_lines(&path, &lines);
    assert_eq!(
        problem(&verify(&path).unwrap()),
        (
            3,
            ProblemKind::OutOfOrder {
                expected: 3,
                found: 2
            }
        )
    );
}

#[tokio::test]
async fn removed_first_lines_are_reported_as_a_bad_start() {
    let dir = TempDir::new();
    let path = dir.join("audit.log");
    write_log(&path, 4).await;
    let lines = read_lines(&path);
    write_lines(&path, &lines[2..]);
    assert_eq!(
        problem(&verify(&path).unwrap()),
        (1, ProblemKind::BadStart { seq: 3 })
    );
}

#[tokio::test]
async fn a_tail_cut_inside_a_line_is_reported_as_incomplete() {
    let dir = TempDir::new();
    let path = dir.join("audit.log");
    write_log(&path, 3).await;
    let bytes = fs::read(&path).unwrap();
    fs::write(&path, &bytes[..bytes.len() - 20]).unwrap();
    let report = verify(&path).unwrap();
    assert_eq!(problem(&report), (3, ProblemKind::Incomplete));
    assert_eq!(report.lines, 3);
}

#[tokio::test]
async fn a_tail_cut_at_a_line_end_needs_the_anchor_to_be_seen() {
    let dir = TempDir::new();
    let path = dir.join("audit.log");
    write_log(&path, 5).await;
    let anchor = verify(&path).unwrap().last.unwrap();
    assert_eq!(anchor.seq, 5);
    assert!(
        verify_with_anchor(&path, Some(&anchor))
            .unwrap()
            .is_intact()
    );

    let lines = read_lines(&path);
    write_lines(&path, &lines[..3]);
    // The chain alone cannot tell: the shorter file is a valid chain.
    assert!(verify(&path).unwrap().is_intact());
    assert_eq!(
        problem(&verify_with_anchor(&path, Some(&anchor)).unwrap()),
        (
            4,
            ProblemKind::TailTruncated {
                anchor_seq: 5,
                last_seq: Some(3)
            }
        )
    );
}

#[tokio::test]
async fn an_edited_last_line_needs_the_anchor_to_be_seen() {
    let dir = TempDir::new();
    let path = dir.join("audit.log");
    write_log(&path, 3).await;
    let anchor: Anchor = verify(&path)
        .unwrap()
        .last
        .unwrap()
        .to_string()
        .parse()
        .unwrap();
    assert!(
        verify_with_anchor(&path, Some(&anchor))
            .unwrap()
            .is_intact()
    );

    let mut lines = read_lines(&path);
    lines[2] = replace(&lines[2], r#""command_id":"c-3""#, r#""command_id":"c-9""#);
    write_lines(&path, &lines);
    assert!(verify(&path).unwrap().is_intact());
    assert_eq!(
        problem(&verify_with_anchor(&path, Some(&anchor)).unwrap()),
        (3, ProblemKind::AnchorMismatch { seq: 3 })
    );
}

#[test]
fn anchors_parse_only_as_seq_colon_hash() {
    let hash = "ab".repeat(32);
    let anchor: Anchor = format!("12:{}", hash.to_uppercase()).parse().unwrap();
    assert_eq!(
        anchor,
        Anchor {
            seq: 12,
            hash: hash.clone()
        }
    );
    assert_eq!(anchor.to_string(), format!("12:{hash}"));
    for bad in [
        hash.clone(),
        format!("x:{hash}"),
        format!("12:{}", &hash[1..]),
        format!("12:{}zz", &hash[2..]),
        format!("-1:{hash}"),
    ] {
        assert_eq!(bad.parse::<Anchor>(), Err(BadAnchor), "{bad}");
    }
}

#[tokio::test]
async fn reports_read_as_sentences() {
    let dir = TempDir::new();
    let path = dir.join("audit.log");
    write_log(&path, 3).await;
    let intact = verify(&path).unwrap().to_string();
    assert!(
        intact.starts_with("intact: 3 records; anchor 3:"),
        "{intact}"
    );
    let mut lines = read_lines(&path);
    lines.remove(1);
    write_lines(&path, &lines);
    let broken = verify(&path).unwrap().to_string();
    assert_eq!(
        broken,
        "broken: 1 record(s) missing before line 2 (seq 2 to 2): lines were deleted or a \
         stretch of the file was cut out"
    );
}
