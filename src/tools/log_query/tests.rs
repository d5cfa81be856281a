use std::{
    io::Write,
    os::unix::fs::symlink,
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use super::*;
use crate::config::services::{FileLogs, LogFileSource, resolve_logs};

fn settings(files: &[(&str, &Path)]) -> LogSettings {
    LogSettings {
        files: files
            .iter()
            .map(|(name, path)| LogFileSource {
                name: (*name).to_owned(),
                path: path.to_path_buf(),
            })
            .collect(),
        ..LogSettings::default()
    }
}

fn ask(source: &str) -> LogQueryInput {
    LogQueryInput {
        source: Some(source.to_owned()),
        ..LogQueryInput::default()
    }
}

async fn run(settings: &LogSettings, input: LogQueryInput) -> Result<LogQueryOutput, String> {
    query(settings, input, Owner::default()).await
}

fn messages(output: &LogQueryOutput) -> Vec<&str> {
    output.lines.iter().map(|l| l.message.as_str()).collect()
}

/// A log with one line a minute, the last one a minute ago; every third an error.
fn app_log(dir: &Path) -> PathBuf {
    let now = jiff::Timestamp::now();
    let path = dir.join("app.log");
    let mut file = std::fs::File::create(&path).unwrap();
    for minute in (1..=30).rev() {
        let at = now - jiff::SignedDuration::from_mins(minute);
        let level = if minute % 3 == 0 { "ERROR" } else { "INFO" };
        writeln!(
            file,
            "{} {level} request {minute}",
            at.round(jiff::Unit::Second).unwrap()
        )
        .unwrap();
    }
    path.canonicalize().unwrap()
}

#[tokio::test]
async fn a_file_source_with_grep_line_cap_and_since() {
    let dir = tempfile::tempdir().unwrap();
    let log = app_log(dir.path());
    let settings = settings(&[("app", &log)]);
    let output = run(
        &settings,
        LogQueryInput {
            grep: Some("ERROR".into()),
            lines: Some(3),
            ..ask("app")
        },
    )
    .await
    .unwrap();
    let got = messages(&output);
    assert_eq!(got.len(), 3);
    assert!(got[0].ends_with("ERROR request 9") && got[2].ends_with("ERROR request 3"));
    assert_eq!(output.older_matches_left_out, 7);
    assert_eq!(output.scanned, 30);
    assert_eq!(output.path.as_deref(), Some(log.to_str().unwrap()));
    let text = render(&output);
    assert!(text.starts_with("3 lines from app ("), "{text}");
    assert!(text.contains("7 older matching lines left out"), "{text}");

    // since: the last 10 minutes (lines 1-9 minutes ago, and 10 at the boundary or not).
    let recent = run(
        &settings,
        LogQueryInput {
            since: Some("9m".into()),
            ..ask("app")
        },
    )
    .await
    .unwrap();
    let got = messages(&recent);
    assert!(
        got.iter().all(|line| !line.ends_with("request 10")),
        "{got:?}"
    );
    assert!(got.last().unwrap().ends_with("request 1"), "{got:?}");
    assert!((8..=9).contains(&got.len()), "{got:?}");
    // By path, the same source.
    let by_path = run(&settings, ask(log.to_str().unwrap())).await.unwrap();
    assert_eq!(by_path.lines.len(), 30);
}

#[tokio::test]
async fn a_file_not_configured_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let log = app_log(dir.path());
    let other = dir.path().join("other.log");
    std::fs::write(&other, "secret\n").unwrap();
    let settings = settings(&[("app", &log)]);
    for unlisted in [
        other.to_str().unwrap().to_owned(),
        format!(
            "{}/../{}/app.log",
            dir.path().display(),
            dir.path().file_name().unwrap().to_str().unwrap()
        ),
        "/etc/shadow".to_owned(),
        "app.log".to_owned(),
    ] {
        let refusal = run(&settings, ask(&unlisted)).await.unwrap_err();
        assert!(refusal.starts_with("refused:"), "{unlisted}: {refusal}");
        assert!(
            refusal.contains("the sources are: journal, app"),
            "{refusal}"
        );
    }
    // Near miss: the configured one reads.
    assert!(run(&settings, ask("app")).await.is_ok());
}

#[tokio::test]
async fn a_symlink_swapped_in_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let log = app_log(dir.path());
    let secret = dir.path().join("secret");
    std::fs::write(&secret, "root:x:0:0\n").unwrap();
    let settings = settings(&[("app", &log)]);
    assert!(run(&settings, ask("app")).await.is_ok());
    std::fs::remove_file(&log).unwrap();
    symlink(&secret, &log).unwrap();
    let refusal = run(&settings, ask("app")).await.unwrap_err();
    assert!(refusal.contains("is a symlink"), "{refusal}");
    assert!(!refusal.contains("root:x"), "{refusal}");
}

#[tokio::test]
async fn journal_filters_do_not_apply_to_files_and_bad_arguments_say_why() {
    let dir = tempfile::tempdir().unwrap();
    let log = app_log(dir.path());
    let settings = settings(&[("app", &log)]);
    let unit = run(
        &settings,
        LogQueryInput {
            unit: Some("nginx".into()),
            ..ask("app")
        },
    )
    .await
    .unwrap_err();
    assert!(unit.contains("journal only"), "{unit}");
    for (input, expected) in [
        (
            LogQueryInput {
                grep: Some("(".into()),
                ..ask("app")
            },
            "grep:",
        ),
        (
            LogQueryInput {
                since: Some("yesterday".into()),
                ..ask("app")
            },
            "is not a time",
        ),
        (
            LogQueryInput {
                lines: Some(0),
                ..ask("app")
            },
            "at least 1",
        ),
        (
            LogQueryInput {
                priority: Some("loud".into()),
                ..LogQueryInput::default()
            },
            "priority",
        ),
        (
            LogQueryInput {
                unit: Some("a b".into()),
                ..LogQueryInput::default()
            },
            "not a unit name",
        ),
    ] {
        let refusal = run(&settings, input).await.unwrap_err();
        assert!(refusal.contains(expected), "{refusal}");
    }
    let off = LogSettings {
        journal: false,
        ..settings.clone()
    };
    let refusal = run(&off, LogQueryInput::default()).await.unwrap_err();
    assert!(
        refusal.contains("journal = false") && refusal.contains("sources are: app"),
        "{refusal}"
    );
}

#[test]
fn priorities_and_units_as_journalctl_takes_them() {
    assert_eq!(priority("err"), Ok(3));
    assert_eq!(priority("ERROR"), Ok(3));
    assert_eq!(priority("warning"), Ok(4));
    assert_eq!(priority("7"), Ok(7));
    assert!(priority("8").is_err());
    assert_eq!(unit_argument("nginx").unwrap(), "nginx.service");
    assert_eq!(unit_argument("ssh.socket").unwrap(), "ssh.socket");
    assert_eq!(
        unit_argument("user@1000.service").unwrap(),
        "user@1000.service"
    );
    assert_eq!(unit_argument("ssh*").unwrap(), "ssh*");
    for bad in ["", "a b", "x;rm", "../x", "a\nb", "a=b"] {
        assert!(unit_argument(bad).is_err(), "{bad:?}");
    }
}

/// A journal file written by systemd-journal-remote from export format: five entries of
/// demo.service a minute apart (priorities info and err alternating) and one of other.service.
fn journal_dir() -> Option<tempfile::TempDir> {
    let remote = Path::new("/lib/systemd/systemd-journal-remote");
    if !remote.exists() {
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let now = jiff::Timestamp::now().as_microsecond();
    let mut export = String::new();
    for i in 0..5i64 {
        export.push_str(&format!(
            "__REALTIME_TIMESTAMP={}\n__MONOTONIC_TIMESTAMP={}\n_BOOT_ID=0123456789abcdef0123456789abcdef\n\
             _SYSTEMD_UNIT=demo.service\nSYSLOG_IDENTIFIER=demo\n_PID=42\nPRIORITY={}\nMESSAGE=line {i}\n\n",
            now - (5 - i) * 60_000_000,
            1000 + i,
            if i % 2 == 1 { 3 } else { 6 },
        ));
    }
    export.push_str(&format!(
        "__REALTIME_TIMESTAMP={now}\n__MONOTONIC_TIMESTAMP=2000\n_BOOT_ID=0123456789abcdef0123456789abcdef\n\
         _SYSTEMD_UNIT=other.service\nSYSLOG_IDENTIFIER=other\nPRIORITY=6\nMESSAGE=other line\n\n"
    ));
    let mut child = Command::new(remote)
        .arg(format!("--output={}/test.journal", dir.path().display()))
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(export.as_bytes())
        .unwrap();
    child.wait().unwrap().success().then_some(dir)
}

#[tokio::test]
async fn the_journal_by_unit_priority_grep_and_cap() {
    let Some(dir) = journal_dir() else {
        eprintln!(
            "SKIP: systemd-journal-remote is not installed (scripts/install-test-deps.sh installs it)"
        );
        return;
    };
    let settings = LogSettings {
        journal_directory: Some(dir.path().to_owned()),
        ..LogSettings::default()
    };
    let all = run(&settings, LogQueryInput::default()).await.unwrap();
    assert_eq!(
        messages(&all),
        [
            "line 0",
            "line 1",
            "line 2",
            "line 3",
            "line 4",
            "other line"
        ]
    );
    let demo = run(
        &settings,
        LogQueryInput {
            unit: Some("demo".into()),
            priority: Some("err".into()),
            ..LogQueryInput::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(messages(&demo), ["line 1", "line 3"]);
    assert!(
        demo.lines
            .iter()
            .all(|l| l.priority == Some(3) && l.pid == Some(42))
    );
    assert_eq!(demo.lines[0].unit.as_deref(), Some("demo.service"));
    let text = render(&demo);
    assert!(text.contains("demo.service demo[42] err: line 3"), "{text}");
    // Newest first and stopped at the cap: two lines read for two matches.
    let capped = run(
        &settings,
        LogQueryInput {
            grep: Some("^line [0-9]$".into()),
            lines: Some(2),
            ..LogQueryInput::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(messages(&capped), ["line 3", "line 4"]);
    assert_eq!(capped.scanned, 3);
    let window = run(
        &settings,
        LogQueryInput {
            since: Some("270s".into()),
            until: Some("90s".into()),
            ..LogQueryInput::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(messages(&window), ["line 1", "line 2", "line 3"]);
}

#[test]
fn configured_sources_resolve_from_the_table() {
    let file: FileLogs = toml::from_str("files = [\"/var/log/syslog\"]").unwrap();
    let settings = resolve_logs(&file).unwrap();
    assert_eq!(
        sources(&settings),
        "the sources are: journal, /var/log/syslog"
    );
}
