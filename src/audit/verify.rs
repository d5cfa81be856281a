//! Checking a log after the fact (`hostmcp audit verify FILE`): every line parses as a record,
//! `seq` goes up by one from 1, and each `prev` is the hash of the line before it, the first
//! line's being 64 zeros. The first problem is reported with its line number and the likely
//! cause: an edited line, deleted lines, reordered lines, bytes cut from the middle.
//!
//! What a chain alone cannot show: lines cut off the end at a line boundary (the shorter file
//! is a valid chain), an edit of the last line (no later line vouches for it), or a whole file
//! rewritten with a fresh chain. For these, keep an [`Anchor`] elsewhere: the report of an
//! intact log gives the last line's `seq` and hash, and [`verify_with_anchor`] later checks
//! that the line with that `seq` is still there, unchanged.
//!
//! Reading needs no lock, so a log can be checked while a server appends to it; a line being
//! written at that moment may then show as incomplete.

use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::Path;
use std::str::FromStr;

use serde::Deserialize;

use super::AuditError;
use super::events::{AuditRecord, GENESIS_PREV, line_hash};

/// A line remembered elsewhere: its `seq` and [`line_hash`]. Written `SEQ:HASH`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Anchor {
    pub seq: u64,
    /// 64 lowercase hex digits.
    pub hash: String,
}

impl fmt::Display for Anchor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.seq, self.hash)
    }
}

/// Text that is not `SEQ:HASH`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("an anchor is SEQ:HASH, a record number and 64 hex digits, as `audit verify` prints it")]
pub struct BadAnchor;

impl FromStr for Anchor {
    type Err = BadAnchor;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (seq, hash) = text.trim().split_once(':').ok_or(BadAnchor)?;
        let seq = seq.parse().map_err(|_| BadAnchor)?;
        if hash.len() != 64 || !hash.bytes().all(|byte| byte.is_ascii_hexdigit()) {
            return Err(BadAnchor);
        }
        Ok(Self {
            seq,
            hash: hash.to_ascii_lowercase(),
        })
    }
}

/// What [`verify`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// Lines in the file, counting a last line without a newline.
    pub lines: u64,
    /// The first problem, by line; `None` if the chain (and the anchor, if given) holds.
    pub problem: Option<Problem>,
    /// The last line's `seq` and hash, when the chain holds and the file is not empty.
    pub last: Option<Anchor>,
}

impl VerifyReport {
    pub fn is_intact(&self) -> bool {
        self.problem.is_none()
    }
}

impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.problem, &self.last) {
            (Some(problem), _) => write!(f, "broken: {problem}"),
            (None, Some(last)) => write!(
                f,
                "intact: {} records; anchor {last} (keep it elsewhere: a chain alone cannot \
                 show lines cut off the end)",
                self.lines
            ),
            (None, None) => f.write_str("intact: the log is empty"),
        }
    }
}

/// Where the chain breaks, and the likely reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// 1-based line number of the line at fault (past the end for a cut tail).
    pub line: u64,
    pub kind: ProblemKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProblemKind {
    /// Not a complete audit record: an edit that broke it, or bytes cut out of the file here.
    Malformed { detail: String },
    /// The last line has no newline: the file was cut inside it, or a write was torn.
    Incomplete,
    /// The first line's `prev` is not 64 zeros: lines before it were removed.
    BadStart { seq: u64 },
    /// The chain does not hold across this line: its bytes do not hash to the next line's
    /// `prev`, or its own `prev` (and hash) changed. Which of two neighbours is blamed is
    /// decided by the line after them; if there is none (the pair ends the file), the
    /// earlier line is blamed.
    Edited,
    /// The line is linked to the one before it but its `seq` is wrong: its `seq` was edited.
    WrongSeq { expected: u64, found: u64 },
    /// `seq` jumps forward and the skipped records appear nowhere later: lines were deleted
    /// before this one, or a stretch of the file was cut out.
    Missing { expected: u64, found: u64 },
    /// `seq` is out of order: lines were reordered, duplicated or inserted.
    OutOfOrder { expected: u64, found: u64 },
    /// The line with the anchor's `seq` has another hash: the log was rewritten.
    AnchorMismatch { seq: u64 },
    /// The log ends before the anchor's `seq`: lines were cut off the end.
    TailTruncated {
        anchor_seq: u64,
        last_seq: Option<u64>,
    },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let line = self.line;
        match &self.kind {
            ProblemKind::Malformed { detail } => write!(
                f,
                "line {line} is not an audit record ({detail}): it was edited, or bytes were \
                 cut out of the file here"
            ),
            ProblemKind::Incomplete => write!(
                f,
                "line {line} has no end of line: the file was cut inside it, or a write was torn"
            ),
            ProblemKind::BadStart { seq } => write!(
                f,
                "line {line} (seq {seq}) does not start a chain: the lines before it were removed"
            ),
            ProblemKind::Edited => write!(
                f,
                "line {line} was edited: the hashes that link it to the lines around it do not \
                 match"
            ),
            ProblemKind::WrongSeq { expected, found } => write!(
                f,
                "line {line} has seq {found} where the chain says {expected}: its seq was edited"
            ),
            ProblemKind::Missing { expected, found } => write!(
                f,
                "{} record(s) missing before line {line} (seq {expected} to {}): lines were \
                 deleted or a stretch of the file was cut out",
                found - expected,
                found - 1
            ),
            ProblemKind::OutOfOrder { expected, found } => write!(
                f,
                "line {line} has seq {found} where {expected} was expected: lines were \
                 reordered, duplicated or inserted"
            ),
            ProblemKind::AnchorMismatch { seq } => write!(
                f,
                "line {line} (seq {seq}) does not match the anchor: the log was rewritten"
            ),
            ProblemKind::TailTruncated {
                anchor_seq,
                last_seq,
            } => match last_seq {
                Some(last_seq) => write!(
                    f,
                    "the log ends at seq {last_seq}, before the anchor's seq {anchor_seq}: lines \
                     were cut off the end"
                ),
                None => write!(
                    f,
                    "the log is empty but the anchor names seq {anchor_seq}: it was emptied"
                ),
            },
        }
    }
}

/// Check the chain of the log at `path`. `Err` only if the file cannot be read; a broken
/// chain is an `Ok` report with a [`Problem`].
pub fn verify(path: impl AsRef<Path>) -> Result<VerifyReport, AuditError> {
    verify_with_anchor(path, None)
}

/// [`verify`], and also check that the line with `anchor.seq` is still there and unchanged.
pub fn verify_with_anchor(
    path: impl AsRef<Path>,
    anchor: Option<&Anchor>,
) -> Result<VerifyReport, AuditError> {
    let path = path.as_ref();
    let read_error = |source| AuditError::Read {
        path: path.to_owned(),
        source,
    };
    let file = File::open(path).map_err(read_error)?;
    check(BufReader::new(file), anchor).map_err(read_error)
}

/// [`verify_with_anchor`] over log text already in hand (`check` itself): for callers that
/// do not read from a file, such as the fuzz target `fuzz/fuzz_targets/audit_verify.rs`.
pub fn verify_reader(reader: impl BufRead, anchor: Option<&Anchor>) -> io::Result<VerifyReport> {
    check(reader, anchor)
}

/// What the look-ahead past the first problem reads of a line.
#[derive(Deserialize)]
struct Link {
    seq: u64,
    prev: String,
}

/// A jump forward in `seq`, reported as `Missing` unless a skipped `seq` turns up later.
struct Gap {
    expected: u64,
    found: u64,
}

fn check(mut reader: impl BufRead, anchor: Option<&Anchor>) -> io::Result<VerifyReport> {
    let mut buffer = Vec::new();
    let mut lines = 0u64;
    let mut problem: Option<Problem> = None;
    let mut gap: Option<Gap> = None;
    // A line that does not link back to the one before it, with its hash: the line before
    // is blamed unless the next line does not link to this one either.
    let mut suspect: Option<(u64, String)> = None;
    // seq and hash of the last line checked.
    let mut previous: Option<(u64, String)> = None;
    let mut anchor_seen = false;

    loop {
        buffer.clear();
        if reader.read_until(b'\n', &mut buffer)? == 0 {
            break;
        }
        lines += 1;
        let complete = buffer.last() == Some(&b'\n');
        let content = if complete {
            &buffer[..buffer.len() - 1]
        } else {
            &buffer[..]
        };

        if let Some(problem) = &mut problem {
            // Past the first problem: count lines, and look ahead to name the fault.
            let link: Option<Link> = serde_json::from_slice(content).ok();
            if let Some((line, hash)) = suspect.take()
                && let Some(link) = &link
                && link.prev != hash
            {
                // The line that did not link back is not linked to from here either: the
                // fault is in it (its prev, or a splice), not in the line before it.
                problem.line = line;
            }
            if let Some(Gap { expected, found }) = gap
                && let Some(link) = &link
                && (expected..found).contains(&link.seq)
            {
                problem.kind = ProblemKind::OutOfOrder { expected, found };
                gap = None;
            }
            continue;
        }

        let fault = |line, kind| Some(Problem { line, kind });
        if !complete {
            problem = fault(lines, ProblemKind::Incomplete);
            continue;
        }
        let record: AuditRecord = match serde_json::from_slice(content) {
            Ok(record) => record,
            Err(error) => {
                let detail = error.to_string();
                problem = fault(lines, ProblemKind::Malformed { detail });
                continue;
            }
        };
        let hash = line_hash(content);

        problem = match &previous {
            None if record.prev != GENESIS_PREV => {
                fault(lines, ProblemKind::BadStart { seq: record.seq })
            }
            None if record.seq != 1 => fault(
                lines,
                ProblemKind::WrongSeq {
                    expected: 1,
                    found: record.seq,
                },
            ),
            None => None,
            Some((previous_seq, previous_hash)) => {
                let expected = previous_seq.saturating_add(1);
                let found = record.seq;
                match (record.prev == *previous_hash, found == expected) {
                    (true, true) => None,
                    (true, false) => fault(lines, ProblemKind::WrongSeq { expected, found }),
                    (false, true) => {
                        suspect = Some((lines, hash.clone()));
                        fault(lines - 1, ProblemKind::Edited)
                    }
                    (false, false) if found > expected => {
                        gap = Some(Gap { expected, found });
                        fault(lines, ProblemKind::Missing { expected, found })
                    }
                    (false, false) => fault(lines, ProblemKind::OutOfOrder { expected, found }),
                }
            }
        };
        if problem.is_none()
            && let Some(anchor) = anchor
            && anchor.seq == record.seq
        {
            anchor_seen = true;
            if anchor.hash != hash {
                problem = fault(lines, ProblemKind::AnchorMismatch { seq: record.seq });
            }
        }
        previous = Some((record.seq, hash));
    }

    if problem.is_none()
        && let Some(anchor) = anchor
        && !anchor_seen
    {
        problem = Some(Problem {
            line: lines + 1,
            kind: ProblemKind::TailTruncated {
                anchor_seq: anchor.seq,
                last_seq: previous.as_ref().map(|(seq, _)| *seq),
            },
        });
    }
    let last = match (&problem, previous) {
        (None, Some((seq, hash))) => Some(Anchor { seq, hash }),
        _ => None,
    };
    Ok(VerifyReport {
        lines,
        problem,
        last,
    })
}
