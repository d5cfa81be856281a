//! Which log entries an answer keeps: those inside the time window that match the grep,
//! the newest `lines` of them, each line cut at `max_line_bytes`, and as many of the newest
//! as fit in `max_bytes`. What was left out is counted, so the answer can say so.

use std::collections::VecDeque;

use regex::Regex;

/// One log line with what its source knows about it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LogEntry {
    /// Microseconds since the epoch, when known.
    pub time_us: Option<i64>,
    /// syslog priority, 0 (emerg) to 7 (debug): journal entries only.
    pub priority: Option<u8>,
    pub unit: Option<String>,
    /// The program (SYSLOG_IDENTIFIER).
    pub identifier: Option<String>,
    pub pid: Option<u32>,
    pub message: String,
}

/// The filter and the caps.
#[derive(Debug, Clone)]
pub struct Selection {
    pub since_us: Option<i64>,
    pub until_us: Option<i64>,
    pub grep: Option<Regex>,
    /// At most this many entries (the newest).
    pub lines: usize,
    /// A longer message is cut here (at a character boundary) and marked.
    pub max_line_bytes: usize,
    /// The kept messages add up to at most this many bytes (the newest kept first).
    pub max_bytes: usize,
}

/// What a selection kept, oldest first, and what it left out.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Selected {
    pub entries: Vec<LogEntry>,
    /// Entries read from the source.
    pub scanned: u64,
    /// Matching entries not returned because of the line or byte cap: older than the
    /// ones returned. For a source read newest first and stopped early, more may exist.
    pub older_matches_left_out: u64,
    /// Messages cut at `max_line_bytes`.
    pub lines_cut: u64,
    /// Reading stopped before the source's start (scan cap or time limit): older
    /// matches may exist that were never read.
    pub stopped_early: Option<String>,
}

/// The order a source delivers entries in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    OldestFirst,
    NewestFirst,
}

/// Takes entries one by one and keeps what the [`Selection`] asks for.
#[derive(Debug)]
pub struct Collector {
    selection: Selection,
    order: Order,
    kept: VecDeque<LogEntry>,
    result: Selected,
}

/// Whether a [`Collector`] wants more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum More {
    Yes,
    /// A newest-first source has given enough matches: stop reading it.
    Enough,
}

impl Collector {
    pub fn new(selection: Selection, order: Order) -> Self {
        Self {
            selection,
            order,
            kept: VecDeque::new(),
            result: Selected::default(),
        }
    }

    pub fn push(&mut self, entry: LogEntry) -> More {
        self.result.scanned += 1;
        if !self.wanted(&entry) {
            return More::Yes;
        }
        match self.order {
            Order::OldestFirst => {
                self.kept.push_back(entry);
                if self.kept.len() > self.selection.lines {
                    self.kept.pop_front();
                    self.result.older_matches_left_out += 1;
                }
                More::Yes
            }
            Order::NewestFirst => {
                self.kept.push_front(entry);
                if self.kept.len() >= self.selection.lines {
                    More::Enough
                } else {
                    More::Yes
                }
            }
        }
    }

    fn wanted(&self, entry: &LogEntry) -> bool {
        let Selection {
            since_us,
            until_us,
            grep,
            ..
        } = &self.selection;
        if since_us.is_some() || until_us.is_some() {
            let Some(time) = entry.time_us else {
                return false;
            };
            if since_us.is_some_and(|since| time < since)
                || until_us.is_some_and(|until| time > until)
            {
                return false;
            }
        }
        grep.as_ref()
            .is_none_or(|grep| grep.is_match(&entry.message))
    }

    /// Reading stopped before the source was exhausted, for `reason`.
    pub fn stopped_early(&mut self, reason: impl Into<String>) {
        self.result.stopped_early = Some(reason.into());
    }

    /// The kept entries, oldest first, cut to the line and byte caps.
    pub fn finish(mut self) -> Selected {
        let mut budget = self.selection.max_bytes;
        let mut newest_first = Vec::with_capacity(self.kept.len());
        while let Some(mut entry) = self.kept.pop_back() {
            if cut(&mut entry.message, self.selection.max_line_bytes) {
                self.result.lines_cut += 1;
            }
            let size = entry.message.len() + 1;
            if size > budget {
                self.result.older_matches_left_out += 1 + self.kept.len() as u64;
                break;
            }
            budget -= size;
            newest_first.push(entry);
        }
        newest_first.reverse();
        self.result.entries = newest_first;
        self.result
    }
}

/// Cut `text` to at most `max` bytes at a character boundary, marking the cut with `…`.
fn cut(text: &mut String, max: usize) -> bool {
    if text.len() <= max {
        return false;
    }
    let mut end = max.saturating_sub('…'.len_utf8());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    text.push('…');
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(time: i64, message: &str) -> LogEntry {
        LogEntry {
            time_us: Some(time),
            message: message.to_owned(),
            ..LogEntry::default()
        }
    }

    fn selection(lines: usize) -> Selection {
        Selection {
            since_us: None,
            until_us: None,
            grep: None,
            lines,
            max_line_bytes: 1000,
            max_bytes: 100_000,
        }
    }

    fn messages(selected: &Selected) -> Vec<&str> {
        selected
            .entries
            .iter()
            .map(|e| e.message.as_str())
            .collect()
    }

    #[test]
    fn keeps_the_newest_matches_in_either_order() {
        let mut grep = selection(2);
        grep.grep = Some(Regex::new("err").unwrap());
        let input: Vec<LogEntry> = (0..6)
            .map(|i| line(i, if i % 2 == 0 { "err x" } else { "ok" }))
            .map(|mut e| {
                e.message = format!("{} {}", e.message, e.time_us.unwrap());
                e
            })
            .collect();
        let mut forward = Collector::new(grep.clone(), Order::OldestFirst);
        for entry in input.clone() {
            assert_eq!(forward.push(entry), More::Yes);
        }
        let forward = forward.finish();
        assert_eq!(messages(&forward), ["err x 2", "err x 4"]);
        assert_eq!((forward.scanned, forward.older_matches_left_out), (6, 1));

        let mut backward = Collector::new(grep, Order::NewestFirst);
        let mut pushed = 0;
        for entry in input.into_iter().rev() {
            pushed += 1;
            if backward.push(entry) == More::Enough {
                break;
            }
        }
        assert_eq!(pushed, 4, "stops at the second match, newest first");
        assert_eq!(messages(&backward.finish()), ["err x 2", "err x 4"]);
    }

    #[test]
    fn time_window_is_inclusive_and_drops_untimed_lines() {
        let mut window = selection(10);
        window.since_us = Some(2);
        window.until_us = Some(3);
        let mut collector = Collector::new(window, Order::OldestFirst);
        for entry in [line(1, "a"), line(2, "b"), line(3, "c"), line(4, "d")] {
            collector.push(entry);
        }
        collector.push(LogEntry {
            message: "untimed".into(),
            ..LogEntry::default()
        });
        assert_eq!(messages(&collector.finish()), ["b", "c"]);
        // Without a window the untimed line is kept.
        let mut all = Collector::new(selection(10), Order::OldestFirst);
        all.push(LogEntry {
            message: "untimed".into(),
            ..LogEntry::default()
        });
        assert_eq!(messages(&all.finish()), ["untimed"]);
    }

    #[test]
    fn byte_caps_cut_lines_and_keep_the_newest() {
        let mut caps = selection(10);
        caps.max_line_bytes = 8;
        caps.max_bytes = 20;
        let mut collector = Collector::new(caps, Order::OldestFirst);
        for message in ["first", "second line is long", "été été été", "last"] {
            collector.push(line(0, message));
        }
        let selected = collector.finish();
        // "last" (4 + 1) + "été…" (8 + 1) = 14; "secon…" (8 + 1) would make 23 > 20.
        assert_eq!(messages(&selected), ["été…", "last"]);
        assert_eq!(selected.older_matches_left_out, 2);
        assert_eq!(selected.lines_cut, 2);
        assert!(selected.entries.iter().all(|e| e.message.len() <= 8));
    }
}
