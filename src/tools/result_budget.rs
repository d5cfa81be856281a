//! The byte budget of a tool result: the whole serialized `CallToolResult` (text content
//! and `structuredContent` together) stays within `[limits] result_budget_bytes`.
//!
//! Why: the Python SDK refuses an SSE event over 1 MiB (the call fails with "Server-sent
//! event exceeded the 1048576 byte limit"), Claude Code cuts results over ~25k tokens and
//! claude.ai over ~150k characters. Before this budget a 5 MB command output became a
//! 1.08 MB message.
//!
//! Tools that know their output shape it to the budget themselves and say how to get the
//! rest (`run_command` points to `job_start` + `job_output`, `job_output` pages smaller);
//! [`fit`] is the step the dispatch applies to every tool's result afterwards, so no tool,
//! present or future, can exceed the budget. It cuts the longest strings (text blocks and
//! string leaves of `structuredContent`, so the result still matches the tool's
//! `outputSchema`) to their head and tail, each with a marker giving the exact bytes and
//! lines omitted. A result that cannot be cut to the budget (thousands of small values)
//! becomes an error result saying so.

use rmcp::model::{CallToolResult, ContentBlock};
use serde_json::Value;

/// Strings at most this long are never cut: ids, states and names stay whole.
const UNCUT_BYTES: usize = 256;
/// Room each cut string needs for its marker, beyond the bytes it keeps.
const MARKER_ROOM: usize = 96;
/// Rounds of cutting before [`fit`] gives up (each re-measures the serialized result).
const ROUNDS: usize = 6;

/// What was left out of a string: exact counts, for the marker and for callers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Omitted {
    pub bytes: u64,
    pub lines: u64,
}

impl Omitted {
    /// The marker put where the bytes were left out.
    pub fn marker(self) -> String {
        crate::exec::omission_marker(self.bytes, self.lines)
    }
}

/// Bytes of `result` as it goes on the wire (compact JSON), counted without keeping them.
pub fn serialized_len(result: &CallToolResult) -> usize {
    let mut counter = ByteCounter(0);
    serde_json::to_writer(&mut counter, result).map_or(usize::MAX, |()| counter.0)
}

/// A writer that only counts what it is given.
struct ByteCounter(usize);

impl std::io::Write for ByteCounter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0 += bytes.len();
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// `text` in at most `keep` bytes plus a marker: its head (a quarter) and tail (the rest,
/// where a command's verdict usually is), cut on character boundaries, with what was
/// omitted. Text that fits is returned unchanged with nothing omitted.
pub fn head_and_tail(text: &str, keep: usize) -> (String, Omitted) {
    if text.len() <= keep {
        return (text.to_owned(), Omitted::default());
    }
    let head_end = floor_char_boundary(text, keep / 4);
    let tail_start = ceil_char_boundary(text, text.len() - (keep - keep / 4));
    let tail_start = tail_start.max(head_end);
    let cut = &text[head_end..tail_start];
    let omitted = Omitted {
        bytes: cut.len() as u64,
        lines: count_lines(cut.as_bytes()),
    };
    let shown = format!(
        "{}{}{}",
        &text[..head_end],
        omitted.marker(),
        &text[tail_start..]
    );
    (shown, omitted)
}

/// Newlines in `bytes`.
pub fn count_lines(bytes: &[u8]) -> u64 {
    memchr::memchr_iter(b'\n', bytes).count() as u64
}

fn floor_char_boundary(text: &str, mut index: usize) -> usize {
    while !text.is_char_boundary(index) {
        index -= 1;
    }
    index
}

fn ceil_char_boundary(text: &str, mut index: usize) -> usize {
    while !text.is_char_boundary(index) {
        index += 1;
    }
    index
}

/// `result` within `budget` serialized bytes (see the module doc).
pub fn fit(mut result: CallToolResult, budget: usize) -> CallToolResult {
    let original = serialized_len(&result);
    if original <= budget {
        return result;
    }
    let note = cut_note(original, budget);
    // The note goes into the first text block after the cuts: leave room for it.
    let target = budget.saturating_sub(encoded_len(&note));
    let mut size = original;
    for _ in 0..ROUNDS {
        let mut strings = long_strings(&mut result);
        let Some(cap) = water_level(&strings, size.saturating_sub(target)) else {
            break;
        };
        for text in &mut strings {
            let length = encoded_len(text);
            if length > cap {
                // Keep raw bytes in the proportion the JSON escaping leaves them.
                let keep = (cap - MARKER_ROOM) * text.len() / length;
                **text = head_and_tail(text, keep).0;
            }
        }
        size = serialized_len(&result);
        if size <= target {
            break;
        }
    }
    if size <= target {
        if let Some(ContentBlock::Text(text)) = result
            .content
            .iter_mut()
            .find(|block| matches!(block, ContentBlock::Text(_)))
        {
            text.text.push_str(&note);
        }
        if serialized_len(&result) <= budget {
            return result;
        }
    }
    too_large(original, budget)
}

/// Every string of the result that may be cut: text blocks and structured string leaves
/// longer than [`UNCUT_BYTES`].
fn long_strings(result: &mut CallToolResult) -> Vec<&mut String> {
    let mut strings: Vec<&mut String> = result
        .content
        .iter_mut()
        .filter_map(|block| match block {
            ContentBlock::Text(text) => Some(&mut text.text),
            _ => None,
        })
        .collect();
    if let Some(structured) = result.structured_content.as_mut() {
        string_leaves(structured, &mut strings);
    }
    strings.retain(|text| text.len() > UNCUT_BYTES);
    strings
}

fn string_leaves<'a>(value: &'a mut Value, into: &mut Vec<&'a mut String>) {
    match value {
        Value::String(text) => into.push(text),
        Value::Array(items) => items.iter_mut().for_each(|item| string_leaves(item, into)),
        Value::Object(fields) => fields
            .values_mut()
            .for_each(|field| string_leaves(field, into)),
        _ => {}
    }
}

/// Serialized length of a string, quotes and escapes included.
fn encoded_len(text: &str) -> usize {
    serde_json::to_string(text).map_or(usize::MAX, |encoded| encoded.len())
}

/// The largest cap (in serialized bytes) such that cutting every longer string to it saves
/// at least `excess` bytes, markers included; `None` when even cutting all of them to the
/// floor would not.
fn water_level(strings: &[&mut String], excess: usize) -> Option<usize> {
    let lengths: Vec<usize> = strings.iter().map(|text| encoded_len(text)).collect();
    let floor = UNCUT_BYTES + MARKER_ROOM;
    let saved = |cap: usize| -> usize {
        lengths
            .iter()
            .filter(|&&length| length > cap)
            .map(|&length| length - cap)
            .sum()
    };
    // Aim a little lower than needed: character boundaries make cuts inexact (the next
    // round takes what is still over).
    let needed = excess + 64;
    if saved(floor) < needed {
        return None;
    }
    let (mut low, mut high) = (floor, lengths.iter().copied().max().unwrap_or(floor));
    while low < high {
        let middle = (low + high).div_ceil(2);
        if saved(middle) >= needed {
            low = middle;
        } else {
            high = middle - 1;
        }
    }
    Some(low)
}

/// Said once, at the end of the first text block, when a result was cut.
fn cut_note(original: usize, budget: usize) -> String {
    format!(
        "\n[this result was {original} bytes; parts marked \"omitted here\" were cut to fit \
         the result budget of {budget} bytes: ask for less (filter, a smaller page) to see them]"
    )
}

/// The answer for a result that cannot be cut to the budget.
fn too_large(original: usize, budget: usize) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(format!(
        "the result was {original} bytes, over the result budget of {budget} bytes, and could \
         not be shortened: ask for less (a filter, a smaller limit or page)"
    ))])
}

#[cfg(test)]
mod tests;
