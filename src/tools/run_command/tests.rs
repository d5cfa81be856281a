use std::time::Duration;

use crate::exec::{CapturedOutput, ExecOutcome};

use super::*;
use crate::tools::result_budget::serialized_len;

const MIB: usize = 1024 * 1024;

fn outcome(stdout: &[u8], stderr: &[u8]) -> ExecOutcome {
    ExecOutcome {
        exit_code: Some(0),
        signal: None,
        stdout: CapturedOutput::captured(MIB, stdout),
        stderr: CapturedOutput::captured(MIB, stderr),
        timed_out: false,
        cancelled: false,
        duration: Duration::from_millis(5),
        usage: None,
    }
}

fn text(result: &CallToolResult) -> &str {
    &result.content[0].as_text().unwrap().text
}

#[test]
fn five_megabytes_of_output_fit_the_default_budget_and_say_what_was_omitted() {
    let stdout: String = (0..500_000).map(|i| format!("{i:09}\n")).collect(); // 5 MB
    let result = tool_result(
        &outcome(stdout.as_bytes(), b"warning\n"),
        &RunFacts::default(),
        100 * 1024,
    );
    assert!(serialized_len(&result) <= 100 * 1024);
    let structured = result.structured_content.as_ref().unwrap();
    assert_eq!(structured["truncated"], true);
    assert_eq!(structured["stdout_bytes"], 5_000_000);
    assert_eq!(structured["stdout_lines"], 500_000);
    assert_eq!(
        structured["stderr"], "warning\n",
        "a short stream is kept whole"
    );
    let omitted = structured["stdout_omitted_bytes"].as_u64().unwrap();
    let shown = structured["stdout"].as_str().unwrap();
    assert!(shown.starts_with("000000000\n") && shown.ends_with("000499999\n"));
    let (head, rest) = shown.split_once("\n[... ").unwrap();
    let (_, tail) = rest.split_once("omitted here ...]\n").unwrap();
    let lines_shown = head.matches('\n').count() + tail.matches('\n').count();
    let marker = crate::exec::omission_marker(omitted, 500_000 - lines_shown as u64);
    assert!(shown.contains(&marker), "exact lines omitted: {marker}");
    assert!(text(&result).contains(&marker), "the text says the same");
    assert!(text(&result).contains("job_start") && text(&result).contains("job_output"));
}

#[test]
fn output_within_the_budget_is_whole_and_not_marked() {
    let result = tool_result(&outcome(b"hello\n", b""), &RunFacts::default(), 100 * 1024);
    let structured = result.structured_content.as_ref().unwrap();
    assert_eq!(structured["truncated"], false);
    assert_eq!(structured["stdout"], "hello\n");
    assert_eq!(structured["stdout_omitted_bytes"], 0);
    assert!(!text(&result).contains("omitted"));
    assert!(text(&result).contains("--- stdout (6 bytes, 1 lines) ---\nhello\n"));
}

#[test]
fn two_long_streams_share_the_room() {
    let long = vec![b'x'; 300_000];
    let result = tool_result(&outcome(&long, &long), &RunFacts::default(), 100 * 1024);
    assert!(serialized_len(&result) <= 100 * 1024);
    let structured = result.structured_content.as_ref().unwrap();
    let (stdout, stderr) = (
        structured["stdout"].as_str().unwrap().len(),
        structured["stderr"].as_str().unwrap().len(),
    );
    assert!(stdout.abs_diff(stderr) < 100, "{stdout} vs {stderr}");
    assert!(stdout > 20_000, "the room is used: {stdout}");
}

#[test]
fn share_gives_a_short_stream_all_it_needs() {
    assert_eq!(share(100, 10, 20), (10, 20));
    assert_eq!(share(100, 10, 500), (10, 90));
    assert_eq!(share(100, 500, 10), (90, 10));
    assert_eq!(share(100, 500, 500), (50, 50));
    assert_eq!(share(100, u64::MAX, 0), (100, 0));
}
