//! Bounded capture of one output stream (stdout or stderr).
//!
//! Owns the memory bound: a stream of any size is kept as its first half-cap bytes (head)
//! and its last half-cap bytes (tail, a ring buffer), with an exact count of every byte
//! read (and every line), and the view of a capture in fewer bytes than it holds, with the
//! exact bytes and lines left out. Also owns the read loop that fills a buffer while the child runs and offers each
//! chunk to a live observer without ever waiting for it.

use std::collections::VecDeque;
use std::io;

use tokio::io::{AsyncRead, AsyncReadExt};

use super::{OutputEvent, OutputObserver};

/// Size of one read from a pipe; a Linux pipe holds 64 KiB by default.
const READ_CHUNK: usize = 64 * 1024;

/// What one stream of a finished command printed, bounded in memory.
///
/// If the stream was longer than the cap, only its head and tail are kept and the bytes in
/// between are counted, not stored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CapturedOutput {
    head: Vec<u8>,
    tail: Vec<u8>,
    total: u64,
    total_lines: u64,
}

/// A capture shown in a given number of bytes: head and tail, and what lies between.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputView {
    /// Head, the marker if anything was left out, tail (lossy UTF-8).
    pub text: String,
    /// Bytes of the stream not in `text` (cut by the capture cap or by the view).
    pub omitted_bytes: u64,
    /// Lines (newlines) of the stream not in `text`.
    pub omitted_lines: u64,
}

/// The marker put where bytes were left out of a text.
pub fn omission_marker(bytes: u64, lines: u64) -> String {
    format!("\n[... {bytes} bytes ({lines} lines) omitted here ...]\n")
}

fn newlines(bytes: &[u8]) -> u64 {
    memchr::memchr_iter(b'\n', bytes).count() as u64
}

impl CapturedOutput {
    /// Every byte the stream produced, including the ones that were cut.
    pub fn total_bytes(&self) -> u64 {
        self.total
    }

    /// Every line (newline) the stream produced, including the ones that were cut.
    pub fn total_lines(&self) -> u64 {
        self.total_lines
    }

    /// The stream in at most `keep` bytes of text (plus a marker): its first quarter-keep
    /// bytes and its last three quarters (where a command's verdict usually is), with the
    /// exact bytes and lines in between counted, whether the capture cap or this view left
    /// them out. Cuts fall on character boundaries.
    pub fn view(&self, keep: usize) -> OutputView {
        let whole;
        let (first, last): (&[u8], &[u8]) = if self.is_truncated() {
            (&self.head, &self.tail)
        } else {
            whole = [self.head(), self.tail()].concat();
            if whole.len() <= keep {
                return OutputView {
                    text: String::from_utf8_lossy(&whole).into_owned(),
                    omitted_bytes: 0,
                    omitted_lines: 0,
                };
            }
            (&whole, &whole)
        };
        let head = &first[..(keep / 4).min(first.len())];
        let head = &head[..head.len() - incomplete_suffix_len(head)];
        let tail = &last[last.len() - (keep - keep / 4).min(last.len())..];
        let tail = &tail[continuation_prefix_len(tail)..];
        let omitted_bytes = self.total - (head.len() + tail.len()) as u64;
        let omitted_lines = self.total_lines - newlines(head) - newlines(tail);
        OutputView {
            text: format!(
                "{}{}{}",
                String::from_utf8_lossy(head),
                omission_marker(omitted_bytes, omitted_lines),
                String::from_utf8_lossy(tail)
            ),
            omitted_bytes,
            omitted_lines,
        }
    }

    /// Whether bytes were dropped between head and tail.
    pub fn is_truncated(&self) -> bool {
        self.cut_bytes() > 0
    }

    /// How many bytes were dropped between head and tail.
    pub fn cut_bytes(&self) -> u64 {
        self.total - (self.head.len() + self.tail.len()) as u64
    }

    /// The first bytes of the stream, as read.
    pub fn head(&self) -> &[u8] {
        &self.head
    }

    /// The last bytes of the stream, as read (empty unless the head filled up).
    pub fn tail(&self) -> &[u8] {
        &self.tail
    }

    /// The output as text for a person or a model: lossy UTF-8, and if bytes were cut,
    /// `head + "\n[... hostmcp cut N bytes ...]\n" + tail`.
    ///
    /// A character split by the cut is dropped whole (and counted in N) rather than shown
    /// as replacement characters. Invalid UTF-8 elsewhere becomes U+FFFD; never panics.
    pub fn to_text(&self) -> String {
        if !self.is_truncated() {
            // Head and tail are contiguous: decode them together so a character that
            // straddles the boundary survives.
            return String::from_utf8_lossy(&[self.head(), self.tail()].concat()).into_owned();
        }
        let head = &self.head[..self.head.len() - incomplete_suffix_len(&self.head)];
        let tail = &self.tail[continuation_prefix_len(&self.tail)..];
        let cut = self.total - (head.len() + tail.len()) as u64;
        format!(
            "{}\n[... hostmcp cut {cut} bytes ...]\n{}",
            String::from_utf8_lossy(head),
            String::from_utf8_lossy(tail)
        )
    }
}

#[cfg(test)]
impl CapturedOutput {
    /// What a stream of `bytes` leaves in a capture of `cap` bytes (for tests elsewhere).
    pub(crate) fn captured(cap: usize, bytes: &[u8]) -> Self {
        let mut buffer = OutputBuffer::new(cap);
        buffer.push(bytes);
        buffer.finish()
    }
}

/// Length of a UTF-8 sequence at the end of `bytes` that was started but not finished.
fn incomplete_suffix_len(bytes: &[u8]) -> usize {
    (1..=bytes.len().min(3))
        .find(|&n| {
            matches!(std::str::from_utf8(&bytes[bytes.len() - n..]),
                Err(e) if e.valid_up_to() == 0 && e.error_len().is_none())
        })
        .unwrap_or(0)
}

/// Number of UTF-8 continuation bytes (at most 3) at the start of `bytes`: the rest of a
/// character whose first byte was cut.
fn continuation_prefix_len(bytes: &[u8]) -> usize {
    bytes
        .iter()
        .take(3)
        .take_while(|&&b| b & 0b1100_0000 == 0b1000_0000)
        .count()
}

/// The live, bounded buffer behind a [`CapturedOutput`].
#[derive(Debug)]
pub(super) struct OutputBuffer {
    head: Vec<u8>,
    head_cap: usize,
    tail: VecDeque<u8>,
    tail_cap: usize,
    total: u64,
    total_lines: u64,
}

impl OutputBuffer {
    /// A buffer that stores at most `cap` bytes: the first half and the last half.
    pub(super) fn new(cap: usize) -> Self {
        let head_cap = cap / 2;
        Self {
            head: Vec::new(),
            head_cap,
            tail: VecDeque::new(),
            tail_cap: cap - head_cap,
            total: 0,
            total_lines: 0,
        }
    }

    pub(super) fn push(&mut self, chunk: &[u8]) {
        self.total += chunk.len() as u64;
        self.total_lines += newlines(chunk);
        let to_head = chunk.len().min(self.head_cap - self.head.len());
        let (head_part, rest) = chunk.split_at(to_head);
        self.head.extend_from_slice(head_part);
        self.push_tail(rest);
    }

    fn push_tail(&mut self, bytes: &[u8]) {
        if bytes.len() >= self.tail_cap {
            self.tail.clear();
            self.tail.extend(&bytes[bytes.len() - self.tail_cap..]);
            return;
        }
        let overflow = (self.tail.len() + bytes.len()).saturating_sub(self.tail_cap);
        self.tail.drain(..overflow);
        self.tail.extend(bytes);
    }

    pub(super) fn finish(self) -> CapturedOutput {
        CapturedOutput {
            head: self.head,
            tail: self.tail.into(),
            total: self.total,
            total_lines: self.total_lines,
        }
    }
}

/// Reads `reader` to EOF into `buffer`, handing each chunk to `observer`.
/// A read error ends the stream (it is logged).
pub(super) async fn pump<R: AsyncRead + Unpin>(
    reader: Option<R>,
    buffer: &mut OutputBuffer,
    observer: Option<&dyn OutputObserver>,
    to_event: fn(Vec<u8>) -> OutputEvent,
) {
    let Some(mut reader) = reader else { return };
    let mut chunk = vec![0; READ_CHUNK];
    loop {
        match reader.read(&mut chunk).await {
            Ok(0) => return,
            Ok(n) => {
                buffer.push(&chunk[..n]);
                if let Some(observer) = observer {
                    observer.observe(to_event(chunk[..n].to_vec()));
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                tracing::warn!(error = %e, "reading command output failed; output may be incomplete");
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn capture(cap: usize, chunks: &[&[u8]]) -> CapturedOutput {
        let mut buffer = OutputBuffer::new(cap);
        for chunk in chunks {
            buffer.push(chunk);
        }
        buffer.finish()
    }

    #[test]
    fn output_under_cap_is_kept_whole() {
        let out = capture(16, &[b"hello ", b"world"]);
        assert_eq!(out.total_bytes(), 11);
        assert!(!out.is_truncated());
        assert_eq!(out.to_text(), "hello world");
    }

    #[test]
    fn output_exactly_at_cap_is_not_truncated() {
        let out = capture(10, &[b"0123456789"]);
        assert!(!out.is_truncated());
        assert_eq!(out.to_text(), "0123456789");
    }

    #[test]
    fn output_one_byte_over_cap_is_truncated() {
        let out = capture(10, &[b"0123456789X"]);
        assert!(out.is_truncated());
        assert_eq!(out.cut_bytes(), 1);
        assert_eq!(out.to_text(), "01234\n[... hostmcp cut 1 bytes ...]\n6789X");
    }

    #[test]
    fn head_and_tail_match_the_stream_for_any_chunking() {
        let stream: Vec<u8> = (0..1000u32).map(|i| (i % 251) as u8).collect();
        for cap in [0, 1, 2, 7, 64, 999, 1000, 1001] {
            for chunk_len in [1, 3, 50, 333, 1000] {
                let chunks: Vec<&[u8]> = stream.chunks(chunk_len).collect();
                let out = capture(cap, &chunks);
                let kept_head = (cap / 2).min(stream.len());
                let kept_tail = (cap - cap / 2).min(stream.len() - kept_head);
                assert_eq!(out.total_bytes(), 1000, "cap {cap} chunk {chunk_len}");
                assert_eq!(
                    out.head(),
                    &stream[..kept_head],
                    "cap {cap} chunk {chunk_len}"
                );
                assert_eq!(
                    out.tail(),
                    &stream[1000 - kept_tail..],
                    "cap {cap} chunk {chunk_len}"
                );
            }
        }
    }

    #[test]
    fn zero_cap_counts_bytes_and_keeps_none() {
        let out = capture(0, &[b"abc"]);
        assert_eq!(out.total_bytes(), 3);
        assert_eq!(out.to_text(), "\n[... hostmcp cut 3 bytes ...]\n");
    }

    #[test]
    fn character_split_by_the_cut_is_dropped_whole_and_counted() {
        // "€" is 3 bytes; a 10-byte cap keeps 5 + 5 bytes of "€€€€€" (15 bytes), so the
        // cut falls inside the 2nd character on both sides.
        let out = capture(10, &["€€€€€".as_bytes()]);
        assert_eq!(out.cut_bytes(), 5);
        assert_eq!(out.to_text(), "€\n[... hostmcp cut 9 bytes ...]\n€");
    }

    #[test]
    fn character_straddling_head_and_tail_survives_when_nothing_is_cut() {
        let out = capture(4, &["a€".as_bytes()]);
        assert!(!out.is_truncated());
        assert_eq!(out.to_text(), "a€");
    }

    #[test]
    fn invalid_utf8_becomes_replacement_characters() {
        let out = capture(4, &[b"\xff\xfe"]);
        assert_eq!(out.to_text(), "\u{FFFD}\u{FFFD}");
        let cut = capture(4, &[b"\xff\xfe\x80\x80\x80\x80\xc3"]);
        assert_eq!(cut.total_bytes(), 7);
        assert!(cut.to_text().contains("[... hostmcp cut"));
    }

    #[test]
    fn a_view_counts_exactly_what_the_cap_and_the_view_leave_out() {
        let stream: String = (0..10_000).map(|i| format!("line {i}\n")).collect();
        for cap in [1_000, 50_000, 200_000] {
            let out = capture(cap, &[stream.as_bytes()]);
            assert_eq!(out.total_lines(), 10_000);
            for keep in [0, 100, 4_000, 40_000, 200_000] {
                let view = out.view(keep);
                let marker = omission_marker(view.omitted_bytes, view.omitted_lines);
                let Some((head, tail)) = view.text.split_once(&marker) else {
                    assert_eq!(view.text, stream, "cap {cap} keep {keep}: whole or marked");
                    assert_eq!((view.omitted_bytes, view.omitted_lines), (0, 0));
                    continue;
                };
                assert!(
                    stream.starts_with(head) && stream.ends_with(tail),
                    "{cap} {keep}"
                );
                assert!(head.len() + tail.len() <= keep, "cap {cap} keep {keep}");
                let cut = &stream[head.len()..stream.len() - tail.len()];
                assert_eq!(
                    view.omitted_bytes,
                    cut.len() as u64,
                    "cap {cap} keep {keep}"
                );
                assert_eq!(view.omitted_lines, newlines(cut.as_bytes()), "{cap} {keep}");
            }
        }
    }

    #[test]
    fn a_view_of_a_stream_that_fits_is_the_stream() {
        let out = capture(100, &[b"a\nb\n"]);
        assert_eq!(out.view(5).text, "a\nb\n");
        assert_eq!(out.view(4).omitted_bytes, 0, "4 bytes: nothing is left out");
        let short = out.view(3);
        assert_eq!((short.omitted_bytes, short.omitted_lines), (1, 0));
    }

    #[test]
    fn a_view_never_splits_a_character() {
        let out = capture(1_000, &["€".repeat(1_000).as_bytes()]);
        for keep in 0..20 {
            let view = out.view(keep);
            assert!(!view.text.contains('\u{FFFD}'), "keep {keep}");
            assert_eq!(view.omitted_bytes % 3, 0, "keep {keep}");
        }
    }

    #[test]
    fn incomplete_suffix_is_found_only_for_unfinished_characters() {
        assert_eq!(incomplete_suffix_len("a€".as_bytes()), 0);
        assert_eq!(incomplete_suffix_len(&"a€".as_bytes()[..3]), 2);
        assert_eq!(incomplete_suffix_len(b"a\xff"), 0);
        assert_eq!(incomplete_suffix_len(b""), 0);
    }
}
