//! Target `audit_verify`: the audit verifier's line reader (`hostmcp audit verify`) over
//! any bytes as a log, and the `SEQ:HASH` anchor parser over any text.
//!
//! What must hold: the report counts at most the lines there are and blames a line inside
//! the file (or the one after it, for a truncated tail); an intact non-empty log gives an
//! anchor that verifies the same log again, and an anchor one record later does not (the
//! tail-truncation check); an anchor prints as text that parses back to it.

use hostmcp::audit::{Anchor, verify_reader};

pub fn run(data: &[u8]) {
    let report = verify_reader(data, None).expect("reading from memory cannot fail");
    let newlines = data.iter().filter(|&&byte| byte == b'\n').count() as u64;
    assert!(report.lines <= newlines + 1, "more lines than the data has");
    let _ = report.to_string();
    if let Some(problem) = &report.problem {
        assert!(
            (1..=report.lines + 1).contains(&problem.line),
            "problem blamed on line {} of {}",
            problem.line,
            report.lines
        );
    }
    match (&report.problem, &report.last) {
        (None, Some(last)) => {
            let again = verify_reader(data, Some(last)).expect("in memory");
            assert!(again.is_intact(), "the log's own anchor fails: {again}");
            if let Some(seq) = last.seq.checked_add(1) {
                let later = Anchor {
                    seq,
                    hash: last.hash.clone(),
                };
                let cut = verify_reader(data, Some(&later)).expect("in memory");
                assert!(!cut.is_intact(), "an anchor past the end was accepted");
            }
            assert_eq!(last.to_string().parse::<Anchor>(), Ok(last.clone()));
        }
        (None, None) => assert_eq!(report.lines, 0, "an intact log with lines has a last"),
        (Some(_), last) => assert!(last.is_none(), "a broken log offered an anchor"),
    }
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(anchor) = text.parse::<Anchor>()
    {
        assert_eq!(anchor.to_string().parse::<Anchor>(), Ok(anchor.clone()));
    }
}
