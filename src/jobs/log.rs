//! The retained output of a background job: the last `cap` bytes of a stream, addressed
//! by absolute byte offsets so a reader pages through it with a cursor, without repeats,
//! and is told exactly how many bytes it missed when it fell behind the retained window.

use std::collections::VecDeque;

/// One stream (stdout or stderr) of a job.
#[derive(Debug)]
pub struct StreamLog {
    retained: VecDeque<u8>,
    /// Absolute offset of `retained[0]`: bytes before it were dropped.
    start: u64,
    cap: usize,
}

/// A page read from a [`StreamLog`].
#[derive(Debug, PartialEq, Eq)]
pub struct Page {
    pub bytes: Vec<u8>,
    /// Cursor to pass next time: the offset just after `bytes`.
    pub next_cursor: u64,
    /// Bytes between the requested cursor and the first retained byte, no longer kept.
    pub skipped: u64,
}

impl StreamLog {
    pub fn new(cap: usize) -> Self {
        Self {
            retained: VecDeque::new(),
            start: 0,
            cap,
        }
    }

    /// Total bytes ever written (the offset of the next byte).
    pub fn total(&self) -> u64 {
        self.start + self.retained.len() as u64
    }

    pub fn append(&mut self, bytes: &[u8]) {
        self.retained.extend(bytes);
        let excess = self.retained.len().saturating_sub(self.cap);
        if excess > 0 {
            self.retained.drain(..excess);
            self.start += excess as u64;
        }
    }

    /// Up to `max` bytes from `cursor`. A cursor past the end reads nothing.
    pub fn read(&self, cursor: u64, max: usize) -> Page {
        let skipped = self.start.saturating_sub(cursor);
        let from = cursor.max(self.start);
        let offset = usize::try_from(from - self.start).unwrap_or(usize::MAX);
        let bytes: Vec<u8> = self
            .retained
            .iter()
            .skip(offset)
            .take(max)
            .copied()
            .collect();
        Page {
            next_cursor: from.min(self.total()) + bytes.len() as u64,
            bytes,
            skipped,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_cover_the_stream_without_repeats_or_gaps() {
        let mut log = StreamLog::new(1024);
        log.append(b"hello ");
        log.append(b"world");
        let first = log.read(0, 4);
        assert_eq!(
            (first.bytes.as_slice(), first.next_cursor, first.skipped),
            (&b"hell"[..], 4, 0)
        );
        let second = log.read(first.next_cursor, 100);
        assert_eq!(second.bytes, b"o world");
        assert_eq!(second.next_cursor, 11);
        let third = log.read(second.next_cursor, 100);
        assert_eq!((third.bytes.len(), third.next_cursor), (0, 11));
    }

    #[test]
    fn a_reader_behind_the_window_is_told_what_it_missed() {
        let mut log = StreamLog::new(4);
        log.append(b"0123456789");
        assert_eq!(log.total(), 10);
        let page = log.read(2, 100);
        assert_eq!(
            (page.bytes.as_slice(), page.skipped, page.next_cursor),
            (&b"6789"[..], 4, 10)
        );
    }

    #[test]
    fn a_cursor_past_the_end_reads_nothing_and_stays_put() {
        let mut log = StreamLog::new(16);
        log.append(b"abc");
        let page = log.read(50, 10);
        assert_eq!(
            (page.bytes.len(), page.next_cursor, page.skipped),
            (0, 3, 0)
        );
    }
}
