//! Caller-supplied text as an audit line keeps it: bounded, so that refused calls with huge
//! arguments cannot fill the disk (a full disk refuses every command, for everyone).
//!
//! Every string a caller chose — an argument, a shell line, a working directory, an
//! environment variable's name or disclosed value, a job id, a reason that quotes them — is
//! an [`AuditText`]. It is written whole while it is short. Past [`MAX_TEXT_BYTES`] it is
//! written as its head, its length and the SHA-256 of the whole, so the whole can still be
//! recognised:
//!
//! ```text
//! {"head": "<first 4 KiB>", "bytes": 4194304, "sha256": "<hex SHA-256 of all 4194304 bytes>"}
//! ```
//!
//! One record spends at most [`MAX_RECORD_TEXT_BYTES`] on such text (a [`TextBudget`]).
//! Once it is spent, the rest of a list (argv, environment) is written as one last entry
//! standing for all of them, and a later single string keeps an empty head:
//!
//! ```text
//! {"omitted": 1000, "bytes": 4000000, "sha256": "<SHA-256 of each omitted string followed by a NUL>"}
//! ```
//!
//! Lengths are counted as the line spells them (after JSON escaping: a control character
//! costs six bytes), so the bound holds for the bytes on disk, not only for the input.

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Most bytes of one caller-supplied string a line keeps.
pub const MAX_TEXT_BYTES: usize = 4 * 1024;
/// Most bytes of caller-supplied text one line keeps, over all its strings.
pub const MAX_RECORD_TEXT_BYTES: usize = 64 * 1024;
/// What the budget charges for the `bytes` and `sha256` of a cut or omitted string.
const SUMMARY_COST: usize = 110;
/// What the budget charges for the quotes and comma around a string kept whole.
const STRING_COST: usize = 3;

/// A caller-supplied string: whole as given, or as the log keeps it once bounded.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum AuditText {
    /// Written as a plain JSON string.
    Whole(String),
    /// Longer than the log keeps: its head, and its length and SHA-256 (hex) in full.
    Cut {
        head: String,
        bytes: u64,
        sha256: String,
    },
    /// The last entry of a list whose other entries the log did not keep: how many, their
    /// total length, and the SHA-256 of each of them followed by a NUL byte.
    Omitted {
        omitted: u64,
        bytes: u64,
        sha256: String,
    },
}

impl AuditText {
    /// The text when it is kept whole.
    pub fn as_whole(&self) -> Option<&str> {
        match self {
            Self::Whole(text) => Some(text),
            Self::Cut { .. } | Self::Omitted { .. } => None,
        }
    }

    /// Length in bytes of what the caller gave (of all omitted strings, for `Omitted`).
    pub fn original_bytes(&self) -> u64 {
        match self {
            Self::Whole(text) => text.len() as u64,
            Self::Cut { bytes, .. } | Self::Omitted { bytes, .. } => *bytes,
        }
    }
}

impl From<String> for AuditText {
    fn from(text: String) -> Self {
        Self::Whole(text)
    }
}

impl From<&str> for AuditText {
    fn from(text: &str) -> Self {
        Self::Whole(text.to_owned())
    }
}

impl PartialEq<str> for AuditText {
    fn eq(&self, other: &str) -> bool {
        self.as_whole() == Some(other)
    }
}

impl PartialEq<&str> for AuditText {
    fn eq(&self, other: &&str) -> bool {
        self.as_whole() == Some(*other)
    }
}

/// The text when whole; otherwise the head (if any) and a bracketed summary.
impl fmt::Display for AuditText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Whole(text) => f.write_str(text),
            Self::Cut {
                head,
                bytes,
                sha256,
            } => write!(f, "{head}[... {bytes} bytes in all, sha256 {sha256}]"),
            Self::Omitted {
                omitted,
                bytes,
                sha256,
            } => write!(f, "[{omitted} more, {bytes} bytes, sha256 {sha256}]"),
        }
    }
}

impl fmt::Debug for AuditText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Whole(text) => fmt::Debug::fmt(text, f),
            other => write!(f, "{other}"),
        }
    }
}

/// The bytes of caller-supplied text one record may still spend.
#[derive(Debug)]
pub struct TextBudget {
    left: usize,
}

impl Default for TextBudget {
    fn default() -> Self {
        Self::new(MAX_RECORD_TEXT_BYTES)
    }
}

impl TextBudget {
    pub fn new(bytes: usize) -> Self {
        Self { left: bytes }
    }

    /// Bound one string: whole if it fits in [`MAX_TEXT_BYTES`] and in what is left, else
    /// cut to the head that fits.
    pub fn bound(&mut self, text: &mut AuditText) {
        let AuditText::Whole(whole) = text else {
            self.charge(SUMMARY_COST);
            return;
        };
        let limit = MAX_TEXT_BYTES.min(self.left);
        let (head_end, written) = escaped_prefix(whole, limit);
        if head_end == whole.len() {
            self.charge(written + STRING_COST);
            return;
        }
        self.charge(written + STRING_COST + SUMMARY_COST);
        *text = AuditText::Cut {
            head: whole[..head_end].to_owned(),
            bytes: whole.len() as u64,
            sha256: hex::encode(Sha256::digest(whole.as_bytes())),
        };
    }

    /// Bound a list: each entry as [`Self::bound`] while the budget lasts, then the rest
    /// replaced by one [`AuditText::Omitted`].
    pub fn bound_list(&mut self, items: &mut Vec<AuditText>) {
        let kept = self.bound_each(items, |budget, item| budget.bound(item));
        if kept < items.len() {
            let rest = items.split_off(kept);
            items.push(omitted(rest.iter()));
        }
    }

    /// Apply `bound` to entries while anything is left; how many were kept.
    pub(super) fn bound_each<T>(
        &mut self,
        items: &mut [T],
        mut bound: impl FnMut(&mut Self, &mut T),
    ) -> usize {
        for (index, item) in items.iter_mut().enumerate() {
            if self.left == 0 {
                return index;
            }
            bound(self, item);
        }
        items.len()
    }

    fn charge(&mut self, bytes: usize) {
        self.left = self.left.saturating_sub(bytes);
    }
}

/// The entry that stands for `rest`: their count, total length and SHA-256 (each string
/// followed by a NUL; for an entry already cut or omitted, its own SHA-256 stands in).
pub(super) fn omitted<'a>(rest: impl Iterator<Item = &'a AuditText>) -> AuditText {
    let mut hasher = Sha256::new();
    let (mut count, mut bytes) = (0u64, 0u64);
    for item in rest {
        match item {
            AuditText::Whole(text) => hasher.update(text.as_bytes()),
            AuditText::Cut { sha256, .. } | AuditText::Omitted { sha256, .. } => {
                hasher.update(sha256.as_bytes());
            }
        }
        hasher.update([0]);
        count += match item {
            AuditText::Omitted { omitted, .. } => *omitted,
            _ => 1,
        };
        bytes += item.original_bytes();
    }
    AuditText::Omitted {
        omitted: count,
        bytes,
        sha256: hex::encode(hasher.finalize()),
    }
}

/// The longest prefix of `text`, ending on a character boundary, whose JSON spelling (without
/// the quotes) is at most `limit` bytes: its end, and its spelled length.
fn escaped_prefix(text: &str, limit: usize) -> (usize, usize) {
    let mut written = 0;
    for (index, character) in text.char_indices() {
        let cost = escaped_len(character);
        if written + cost > limit {
            return (index, written);
        }
        written += cost;
    }
    (text.len(), written)
}

/// Bytes `serde_json` writes for `character` inside a string.
fn escaped_len(character: char) -> usize {
    match character {
        '"' | '\\' | '\n' | '\r' | '\t' | '\u{08}' | '\u{0c}' => 2,
        '\0'..='\u{1f}' => 6,
        other => other.len_utf8(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bound(text: &str) -> AuditText {
        let mut text = AuditText::from(text);
        TextBudget::default().bound(&mut text);
        text
    }

    #[test]
    fn a_long_string_keeps_its_head_length_and_hash() {
        let whole = "x".repeat(4 * 1024 * 1024);
        let AuditText::Cut {
            head,
            bytes,
            sha256,
        } = bound(&whole)
        else {
            panic!("not cut");
        };
        assert_eq!(head, "x".repeat(MAX_TEXT_BYTES));
        assert_eq!(bytes, 4 * 1024 * 1024);
        assert_eq!(sha256, hex::encode(Sha256::digest(whole.as_bytes())));
    }

    #[test]
    fn a_string_of_exactly_the_limit_is_kept_whole_and_one_more_byte_is_cut() {
        let at_limit = "y".repeat(MAX_TEXT_BYTES);
        assert_eq!(bound(&at_limit), AuditText::Whole(at_limit.clone()));
        assert!(matches!(
            bound(&format!("{at_limit}y")),
            AuditText::Cut { .. }
        ));
    }

    #[test]
    fn a_small_string_is_kept_whole() {
        assert_eq!(bound("ls -l /srv"), AuditText::from("ls -l /srv"));
    }

    #[test]
    fn the_limit_counts_bytes_as_json_spells_them() {
        // 1000 control characters are 6000 bytes in the line.
        let AuditText::Cut { head, bytes, .. } = bound(&"\u{1}".repeat(1000)) else {
            panic!("not cut");
        };
        assert_eq!(head.len(), MAX_TEXT_BYTES / 6);
        assert_eq!(bytes, 1000);
        let written = serde_json::to_string(&head).unwrap();
        assert!(written.len() <= MAX_TEXT_BYTES + 2, "{}", written.len());
    }

    #[test]
    fn a_cut_never_splits_a_character() {
        let AuditText::Cut { head, .. } = bound(&"é".repeat(3000)) else {
            panic!("not cut");
        };
        assert_eq!(head, "é".repeat(MAX_TEXT_BYTES / 2));
    }

    #[test]
    fn a_long_list_is_cut_to_the_record_budget_and_the_rest_summarised() {
        let given: Vec<String> = (0..1000).map(|i| format!("{i:0>4}").repeat(1024)).collect();
        let mut items: Vec<AuditText> = given.iter().map(|s| AuditText::from(s.as_str())).collect();
        let mut budget = TextBudget::default();
        budget.bound_list(&mut items);
        let written = serde_json::to_string(&items).unwrap();
        assert!(
            written.len() <= MAX_RECORD_TEXT_BYTES + 2 * SUMMARY_COST,
            "{}",
            written.len()
        );
        let Some(AuditText::Omitted {
            omitted,
            bytes,
            sha256,
        }) = items.last()
        else {
            panic!("no summary: {items:?}");
        };
        let kept = items.len() - 1;
        assert_eq!(*omitted, (1000 - kept) as u64);
        assert_eq!(*bytes, (1000 - kept) as u64 * 4096);
        let mut hasher = Sha256::new();
        for rest in &given[kept..] {
            hasher.update(rest.as_bytes());
            hasher.update([0]);
        }
        assert_eq!(*sha256, hex::encode(hasher.finalize()));
        assert_eq!(items[0], given[0].as_str());
    }

    #[test]
    fn a_list_of_many_empty_strings_is_bounded_too() {
        let mut items = vec![AuditText::from(""); 1_000_000];
        TextBudget::default().bound_list(&mut items);
        let written = serde_json::to_string(&items).unwrap();
        assert!(
            written.len() <= MAX_RECORD_TEXT_BYTES + SUMMARY_COST,
            "{}",
            written.len()
        );
        assert!(matches!(items.last(), Some(AuditText::Omitted { .. })));
    }

    #[test]
    fn a_short_list_is_kept_whole() {
        let mut items = vec![AuditText::from("ls"), AuditText::from("-l")];
        TextBudget::default().bound_list(&mut items);
        assert_eq!(items, vec![AuditText::from("ls"), AuditText::from("-l")]);
    }

    #[test]
    fn every_form_round_trips_through_json() {
        let mut items: Vec<AuditText> = vec![
            AuditText::from("a"),
            AuditText::from("b".repeat(5000)),
            AuditText::from("c".repeat(70_000)),
        ];
        items.extend(std::iter::repeat_n(AuditText::from("d".repeat(4000)), 30));
        TextBudget::default().bound_list(&mut items);
        assert!(
            items
                .iter()
                .any(|item| matches!(item, AuditText::Cut { .. }))
        );
        assert!(matches!(items.last(), Some(AuditText::Omitted { .. })));
        let json = serde_json::to_string(&items).unwrap();
        let back: Vec<AuditText> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, items);
    }
}
