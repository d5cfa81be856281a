use super::*;

fn read(state: JobState, stdout: &str, cursors: (u64, u64)) -> JobRead {
    JobRead {
        job_id: "j1".to_owned(),
        state,
        stdout: stdout.to_owned(),
        stderr: String::new(),
        stdout_cursor: cursors.0,
        stderr_cursor: cursors.1,
        stdout_skipped: 0,
        stderr_skipped: 0,
        duration_ms: 12_345,
    }
}

fn summary(id: &str, state: JobState, started: u64) -> JobSummary {
    JobSummary {
        job_id: id.to_owned(),
        command: "make -j4".to_owned(),
        state,
        started_at_unix: started,
        started_at_unix_nanos: u128::from(started) * 1_000_000_000,
        duration_ms: 245_000,
        stdout_bytes: 1536,
        stderr_bytes: 0,
    }
}

#[test]
fn a_page_reads_as_words_not_json() {
    let text = render_read(
        &read(JobState::Exited { exit_code: 0 }, "done\n", (5, 0)),
        100,
        (0, 0),
    );
    assert_eq!(
        text,
        "job j1: exited with code 0 after 12.3 s\n--- stdout, bytes 0 to 5 (5 B) ---\ndone\n\n\
         [that is all of its output]"
    );
    assert!(!text.contains('{'), "no raw JSON");
}

#[test]
fn a_running_job_or_a_full_page_says_how_to_read_on() {
    let running = render_read(&read(JobState::Running, "", (7, 3)), 100, (7, 3));
    assert!(
        running.starts_with("job j1: running for 12.3 s\n(no new output)"),
        "{running}"
    );
    assert!(running.ends_with(
        "[to read on: job_output with stdout_cursor=7 and stderr_cursor=3; wait_secs waits for new output]"
    ));
    let full = render_read(
        &read(JobState::Exited { exit_code: 2 }, "abcd", (4, 0)),
        4,
        (0, 0),
    );
    assert!(
        full.contains("stdout_cursor=4"),
        "a full page may have more: {full}"
    );
    let short = render_read(
        &read(JobState::Exited { exit_code: 2 }, "abc", (3, 0)),
        4,
        (0, 0),
    );
    assert!(short.ends_with("[that is all of its output]"), "{short}");
}

#[test]
fn every_state_has_words() {
    for (state, words) in [
        (
            JobState::Killed { signal: 9 },
            "killed by signal 9 after 4 min 5 s",
        ),
        (JobState::TimedOut, "timed out after 4 min 5 s"),
        (JobState::Cancelled, "cancelled after 4 min 5 s"),
        (
            JobState::FailedToStart {
                reason: "no sh".into(),
            },
            "failed to start: no sh",
        ),
    ] {
        assert!(
            describe_state(&state, 245_000).starts_with(words),
            "{words}"
        );
    }
}

#[test]
fn the_list_reads_one_line_per_job_and_names_the_next_cursor() {
    let jobs = [
        summary("a1", JobState::Running, 100),
        summary("b2", JobState::Exited { exit_code: 0 }, 101),
    ];
    assert_eq!(render_list(&[], 0, None), "no jobs");
    assert_eq!(
        render_list(&jobs, 2, None),
        "2 job(s):\n- a1 running for 4 min 5 s: `make -j4` (stdout 1.5 KiB, stderr 0 B)\n\
         - b2 exited with code 0 after 4 min 5 s: `make -j4` (stdout 1.5 KiB, stderr 0 B)"
    );
    let first = render_list(&jobs[..1], 2, Some("cXYZ"));
    assert!(first.starts_with("1 of 2 job(s):"));
    assert!(first.ends_with("[more jobs: job_list with cursor \"cXYZ\"]"));
}

#[test]
fn the_list_pages_in_start_order_with_a_cursor() {
    let jobs = vec![
        summary("zz", JobState::Running, 300),
        summary("aa", JobState::Running, 100),
        summary("mm", JobState::Running, 200),
    ];
    let first = paging::page(jobs, list_order, None, Some(2)).unwrap();
    let ids: Vec<&str> = first.items.iter().map(|job| job.job_id.as_str()).collect();
    assert_eq!(ids, ["aa", "mm"]);
    assert!(first.next_cursor.is_some());
}
