use std::{os::unix::fs::symlink, path::Path};

use jiff::tz::TimeZone;

use super::*;

fn clock() -> LineClock {
    LineClock::new(TimeZone::UTC, "2026-11-29T12:00:00Z".parse().unwrap())
}

fn all(lines: usize) -> Selection {
    Selection {
        since_us: None,
        until_us: None,
        grep: None,
        lines,
        max_line_bytes: 4096,
        max_bytes: 1 << 20,
    }
}

fn messages(selected: &Selected) -> Vec<String> {
    selected.entries.iter().map(|e| e.message.clone()).collect()
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

#[test]
fn the_configured_file_itself_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    write(&log, "one\ntwo\nthree\n");
    let (selected, scanned) = select(&log, 1 << 20, all(2), &clock()).unwrap();
    assert_eq!(messages(&selected), ["two", "three"]);
    assert_eq!(scanned, Scanned { size: 14, from: 0 });
    assert_eq!(selected.older_matches_left_out, 1);
    assert_eq!(selected.stopped_early, None);
}

#[test]
fn a_symlink_in_its_place_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("secret");
    write(&secret, "root:x:0:0\n");
    let log = dir.path().join("app.log");
    symlink(&secret, &log).unwrap();
    let error = select(&log, 1 << 20, all(10), &clock()).unwrap_err();
    assert!(matches!(error, FileError::Symlink { .. }), "{error}");
    // Near miss: the file the link points to is readable at its own path.
    assert!(select(&secret, 1 << 20, all(10), &clock()).is_ok());
}

#[test]
fn a_symlinked_directory_on_the_way_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let real = dir.path().join("real");
    std::fs::create_dir(&real).unwrap();
    write(&real.join("app.log"), "hello\n");
    symlink(&real, dir.path().join("logs")).unwrap();
    let through_link = dir.path().join("logs/app.log");
    let error = select(&through_link, 1 << 20, all(10), &clock()).unwrap_err();
    match error {
        FileError::Elsewhere { path, real: found } => {
            assert_eq!(path, through_link);
            assert_eq!(found, real.canonicalize().unwrap().join("app.log"));
        }
        other => panic!("{other}"),
    }
    // Near miss: the real path reads.
    let real_path = real.canonicalize().unwrap().join("app.log");
    let (selected, _) = select(&real_path, 1 << 20, all(10), &clock()).unwrap();
    assert_eq!(messages(&selected), ["hello"]);
}

#[test]
fn a_fifo_is_refused_without_blocking() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("app.log");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let error = select(&fifo, 1 << 20, all(10), &clock()).unwrap_err();
    assert!(matches!(error, FileError::NotRegular { .. }), "{error}");
}

#[test]
fn only_the_tail_is_read_and_the_cut_line_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    write(&log, "aaaa\nbbbb\ncccc\n");
    // The last 7 bytes are "b\ncccc\n": the partial "b" goes.
    let (selected, scanned) = select(&log, 7, all(10), &clock()).unwrap();
    assert_eq!(messages(&selected), ["cccc"]);
    assert_eq!(scanned, Scanned { size: 15, from: 8 });
    assert_eq!(
        selected.stopped_early.as_deref(),
        Some("read the last 7 of the file's 15 bytes")
    );
}

#[test]
fn continuation_lines_share_the_time_of_their_first_line() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    write(
        &log,
        "2026-11-29T10:00:00Z old\n\
         2026-11-29T11:30:00Z panic: boom\n  at frame 1\n\
         2026-11-29T11:45:00Z recovered\n",
    );
    let mut recent = all(10);
    recent.since_us = Some(
        "2026-11-29T11:00:00Z"
            .parse::<jiff::Timestamp>()
            .unwrap()
            .as_microsecond(),
    );
    let (selected, _) = select(&log, 1 << 20, recent, &clock()).unwrap();
    assert_eq!(
        messages(&selected),
        [
            "2026-11-29T11:30:00Z panic: boom",
            "  at frame 1",
            "2026-11-29T11:45:00Z recovered"
        ]
    );
    assert_eq!(selected.scanned, 4);
}
