//! Checking a log after the fact (`hostmcp audit verify FILE...`): every line parses as a
//! record, `seq` goes up by one from 1, and each `prev` is the hash of the line before it, the
//! first line's being 64 zeros. The first problem is reported with its file, line number and
//! the likely cause: an edited line, deleted lines, reordered lines, bytes cut from the middle.
//!
//! Several files are one chain, oldest first (`audit.jsonl.1 audit.jsonl` after a rotation):
//! each file's first line must link to the previous file's last. A file rotated out of a longer
//! chain starts mid-chain; [`Start::MidChain`] accepts any first line and the report then names
//! the line it continues after, to compare with the previous file's anchor.
//!
//! With the audit key ([`VerifyOptions::key`]), every line must carry a MAC the key confirms:
//! a chain recomputed after an edit, which the hashes alone accept, fails. Lines cut off the
//! end and an emptied file still need an anchor: the anchor file that a keyed server keeps
//! (read by the command, given here as one of [`VerifyOptions::anchors`]), or one kept
//! elsewhere.
//!
//! What a chain alone cannot show: lines cut off the end at a line boundary (the shorter file
//! is a valid chain), an edit of the last line (no later line vouches for it), or a whole file
//! rewritten with a fresh chain. For these, keep an [`Anchor`] elsewhere: the report of an
//! intact log gives the last line's `seq` and hash, and [`verify_with_anchor`] later checks
//! that the line with that `seq` is still there, unchanged.
//!
//! A chain that starts at genesis (`seq` 1) is named as such with the time of its first
//! line ([`VerifyReport::genesis_time`]): a log deleted with its anchor file and started
//! afresh is a whole, valid chain, and only that time (or an anchor kept elsewhere) shows
//! that history older than it is gone. Each anchor checked is printed with the time of its
//! line, to compare with a copy kept off the host.
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
use super::key::{AuditKey, Seal};

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
    /// Lines in the files, counting a last line without a newline.
    pub lines: u64,
    /// The file of the problem, when several were checked.
    pub problem_file: Option<std::path::PathBuf>,
    /// With [`Start::MidChain`]: the `seq` and `prev` the first line continues after.
    pub continues_after: Option<Anchor>,
    /// The first problem, by line; `None` if the chain (and the anchor, if given) holds.
    pub problem: Option<Problem>,
    /// The last line's `seq` and hash, when the chain holds and the file is not empty.
    pub last: Option<Anchor>,
    /// When the chain holds and starts at genesis (`seq` 1): the time of its first line.
    pub genesis_time: Option<String>,
    /// When the chain holds: the time of its last line.
    pub last_time: Option<String>,
    /// When the chain holds: each anchor checked that names a line of the files, with the
    /// time of that line.
    pub anchored: Vec<(Anchor, String)>,
}

impl VerifyReport {
    pub fn is_intact(&self) -> bool {
        self.problem.is_none()
    }
}

impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.problem, &self.last) {
            (Some(problem), _) => match &self.problem_file {
                Some(file) => write!(f, "broken: {}: {problem}", file.display()),
                None => write!(f, "broken: {problem}"),
            },
            (None, Some(last)) => {
                write!(f, "intact: {} records", self.lines)?;
                if let Some(after) = &self.continues_after {
                    write!(f, " continuing after {after}")?;
                }
                write!(
                    f,
                    "; anchor {last} (keep it elsewhere: a chain alone cannot show lines cut \
                     off the end)"
                )?;
                if let Some(time) = &self.last_time {
                    write!(f, "\nlast record: seq {} at {time}", last.seq)?;
                }
                for (anchor, time) in &self.anchored {
                    write!(f, "\nanchor checked: {anchor}, a line written at {time}")?;
                }
                if let Some(time) = &self.genesis_time {
                    write!(
                        f,
                        "\nNOTE: this chain starts at genesis (seq 1) at {time}. If this host \
                         had audit records before then, they were removed (log and anchor file \
                         deleted, a new chain started): only an anchor kept off the host shows \
                         it (--anchor SEQ:HASH)"
                    )?;
                }
                Ok(())
            }
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
    /// The line carries no MAC, but the key was given: it was written without the key, or
    /// its MAC was removed.
    Unsealed,
    /// The line's MAC does not match: it was edited (and the chain maybe recomputed), or
    /// sealed with another key.
    BadMac,
    /// The files start mid-chain after the anchor's line: it cannot be checked.
    AnchorBeforeStart { anchor_seq: u64, first_seq: u64 },
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
            ProblemKind::Unsealed => write!(
                f,
                "line {line} carries no MAC: it was not written with this key, or its MAC was \
                 removed"
            ),
            ProblemKind::BadMac => write!(
                f,
                "line {line} has a MAC that the key does not confirm: it was edited (and the \
                 chain recomputed), or sealed with another key"
            ),
            ProblemKind::AnchorMismatch { seq } => write!(
                f,
                "line {line} (seq {seq}) does not match the anchor: the log was rewritten"
            ),
            ProblemKind::AnchorBeforeStart {
                anchor_seq,
                first_seq,
            } => write!(
                f,
                "the anchor's seq {anchor_seq} is before the first line checked (seq \
                 {first_seq}): give the file that holds it too"
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

/// Where the first file's chain may start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Start {
    /// At seq 1 with a `prev` of 64 zeros: the whole chain is given.
    #[default]
    Genesis,
    /// Anywhere: the first file was rotated out of a longer chain.
    MidChain,
}

/// How [`verify_files`] checks.
#[derive(Debug, Clone, Default)]
pub struct VerifyOptions {
    pub start: Start,
    /// Every line must carry a MAC that this key confirms.
    pub key: Option<AuditKey>,
    /// Lines that must still be there, unchanged.
    pub anchors: Vec<Anchor>,
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
    let options = VerifyOptions {
        anchors: anchor.into_iter().cloned().collect(),
        ..VerifyOptions::default()
    };
    verify_files(&[path.as_ref()], &options)
}

/// Check `files`, oldest first, as one chain.
pub fn verify_files(
    files: &[impl AsRef<Path>],
    options: &VerifyOptions,
) -> Result<VerifyReport, AuditError> {
    let mut checker = Checker::new(options);
    for path in files {
        let path = path.as_ref();
        let read_error = |source| AuditError::Read {
            path: path.to_owned(),
            source,
        };
        let file = File::open(path).map_err(read_error)?;
        checker.file(BufReader::new(file)).map_err(read_error)?;
        if checker.problem.is_some() {
            checker.problem_file = Some(path.to_owned());
            break;
        }
    }
    let mut report = checker.finish();
    if files.len() < 2 {
        report.problem_file = None;
    } else if report.problem.is_some() && report.problem_file.is_none() {
        report.problem_file = files.last().map(|path| path.as_ref().to_owned());
    }
    Ok(report)
}

/// [`verify_files`] over log text already in hand (one file's worth): for callers that
/// do not read from a file, such as the fuzz target `fuzz/fuzz_targets/audit_verify.rs`.
pub fn verify_reader(reader: impl BufRead, anchor: Option<&Anchor>) -> io::Result<VerifyReport> {
    let options = VerifyOptions {
        anchors: anchor.into_iter().cloned().collect(),
        ..VerifyOptions::default()
    };
    let mut checker = Checker::new(&options);
    checker.file(reader)?;
    Ok(checker.finish())
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

/// The state of a check across lines and files.
struct Checker<'a> {
    options: &'a VerifyOptions,
    lines: u64,
    problem: Option<Problem>,
    problem_file: Option<std::path::PathBuf>,
    /// seq and hash of the last line checked.
    previous: Option<(u64, String)>,
    continues_after: Option<Anchor>,
    /// One per anchor of the options: whether its line was seen.
    anchors_seen: Vec<bool>,
    /// Lines of the last file read.
    lines_in_last_file: u64,
    /// The time of the first line, if it starts the chain at genesis.
    genesis_time: Option<String>,
    /// The time of the last line checked.
    last_time: Option<String>,
    /// One per anchor of the options: the time of its line, once seen.
    anchor_times: Vec<Option<String>>,
}

impl<'a> Checker<'a> {
    fn new(options: &'a VerifyOptions) -> Self {
        Self {
            options,
            lines: 0,
            problem: None,
            problem_file: None,
            previous: None,
            continues_after: None,
            anchors_seen: vec![false; options.anchors.len()],
            lines_in_last_file: 0,
            genesis_time: None,
            last_time: None,
            anchor_times: vec![None; options.anchors.len()],
        }
    }

    /// Check one file's lines, continuing the chain of the files before it.
    fn file(&mut self, mut reader: impl BufRead) -> io::Result<()> {
        let mut buffer = Vec::new();
        let mut lines = 0u64;
        let mut gap: Option<Gap> = None;
        // A line that does not link back to the one before it, with its hash: the line before
        // is blamed unless the next line does not link to this one either.
        let mut suspect: Option<(u64, String)> = None;

        loop {
            buffer.clear();
            if reader.read_until(b'\n', &mut buffer)? == 0 {
                break;
            }
            lines += 1;
            self.lines += 1;
            let complete = buffer.last() == Some(&b'\n');
            let content = if complete {
                &buffer[..buffer.len() - 1]
            } else {
                &buffer[..]
            };

            if let Some(problem) = &mut self.problem {
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
                self.problem = fault(lines, ProblemKind::Incomplete);
                continue;
            }
            let record: AuditRecord = match serde_json::from_slice(content) {
                Ok(record) => record,
                Err(error) => {
                    let detail = error.to_string();
                    self.problem = fault(lines, ProblemKind::Malformed { detail });
                    continue;
                }
            };
            if let Some(key) = &self.options.key {
                let kind = match key.open_line(content) {
                    Seal::Valid => None,
                    Seal::Invalid => Some(ProblemKind::BadMac),
                    Seal::Missing => Some(ProblemKind::Unsealed),
                };
                if let Some(kind) = kind {
                    self.problem = fault(lines, kind);
                    continue;
                }
            }
            let hash = line_hash(content);

            self.problem = match &self.previous {
                None if self.options.start == Start::MidChain && record.seq > 0 => {
                    self.continues_after = Some(Anchor {
                        seq: record.seq - 1,
                        hash: record.prev.clone(),
                    });
                    None
                }
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
                None => {
                    self.genesis_time = Some(record.time.clone());
                    None
                }
                Some((previous_seq, previous_hash)) => {
                    let expected = previous_seq.saturating_add(1);
                    let found = record.seq;
                    match (record.prev == *previous_hash, found == expected) {
                        (true, true) => None,
                        (true, false) => fault(lines, ProblemKind::WrongSeq { expected, found }),
                        // A file's first line that does not link to the previous file's last:
                        // nothing before it in this file to blame.
                        (false, true) if lines == 1 => fault(lines, ProblemKind::Edited),
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
            if self.problem.is_none() {
                let seen = self.anchors_seen.iter_mut().zip(&mut self.anchor_times);
                for (anchor, (seen, time)) in self.options.anchors.iter().zip(seen) {
                    if anchor.seq == record.seq {
                        *seen = true;
                        *time = Some(record.time.clone());
                        if anchor.hash != hash {
                            self.problem =
                                fault(lines, ProblemKind::AnchorMismatch { seq: record.seq });
                        }
                    }
                }
            }
            self.previous = Some((record.seq, hash));
            self.last_time = Some(record.time);
        }
        self.lines_in_last_file = lines;
        Ok(())
    }

    fn finish(mut self) -> VerifyReport {
        let unseen = self
            .options
            .anchors
            .iter()
            .zip(&self.anchors_seen)
            .filter(|(_, seen)| !**seen)
            .map(|(anchor, _)| anchor);
        for anchor in unseen {
            if self.problem.is_some() {
                break;
            }
            match &self.continues_after {
                // Before a mid-chain start: not in the files given, so it cannot be checked.
                Some(after) if anchor.seq < after.seq => {
                    self.problem = Some(Problem {
                        line: 1,
                        kind: ProblemKind::AnchorBeforeStart {
                            anchor_seq: anchor.seq,
                            first_seq: after.seq + 1,
                        },
                    });
                }
                // The line the start continues after: its hash is the first line's prev.
                Some(after) if anchor.seq == after.seq => {
                    if anchor.hash != after.hash {
                        self.problem = Some(Problem {
                            line: 1,
                            kind: ProblemKind::AnchorMismatch { seq: anchor.seq },
                        });
                    }
                }
                _ => {
                    self.problem = Some(Problem {
                        line: self.lines_in_last_file + 1,
                        kind: ProblemKind::TailTruncated {
                            anchor_seq: anchor.seq,
                            last_seq: self.previous.as_ref().map(|(seq, _)| *seq),
                        },
                    });
                }
            }
        }
        let last = match (&self.problem, self.previous) {
            (None, Some((seq, hash))) => Some(Anchor { seq, hash }),
            _ => None,
        };
        let intact = self.problem.is_none();
        let anchored = self
            .options
            .anchors
            .iter()
            .zip(self.anchor_times)
            .filter_map(|(anchor, time)| Some((anchor.clone(), time?)))
            .filter(|_| intact)
            .collect();
        VerifyReport {
            lines: self.lines,
            problem_file: self.problem_file,
            continues_after: self.continues_after,
            problem: self.problem,
            last,
            genesis_time: self.genesis_time.filter(|_| intact),
            last_time: self.last_time.filter(|_| intact),
            anchored,
        }
    }
}
