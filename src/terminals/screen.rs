//! What a terminal shows: its program's output rendered by the `vt100` emulator (the screen
//! as text, the cursor, the alternate screen of full-screen programs), and the scroll-back:
//! every row that scrolled off the top of the main screen, numbered from 0 since the
//! terminal opened, the last [`Screen::new`]'s `keep_lines` of them kept. A reader passes
//! the `scrollback_cursor` of its last read to get only the rows since.

use std::{collections::VecDeque, num::NonZeroU16};

use serde::Serialize;

/// The emulator and the scroll-back of one terminal.
pub struct Screen {
    parser: vt100::Parser<ScrollLog>,
}

impl std::fmt::Debug for Screen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Screen").finish_non_exhaustive()
    }
}

/// The rows that scrolled off the main screen (the emulator keeps none itself).
#[derive(Debug, Default)]
struct ScrollLog {
    lines: VecDeque<String>,
    /// The number of `lines[0]` since the terminal opened.
    first: u64,
    keep: usize,
}

impl vt100::Callbacks for ScrollLog {
    fn on_scroll(&mut self, contents: vt100::capture::RowContents<'_>, alternate_screen: bool) {
        if alternate_screen {
            return;
        }
        let mut formatted = String::new();
        let mut state = vt100::capture::BasicFormattedCaptureState::new();
        if contents
            .write_formatted_basic(&mut formatted, &mut state)
            .is_err()
        {
            return;
        }
        let line: String = vt100::capture::basic_formatted_to_plain(&formatted).collect();
        self.lines.push_back(line.trim_end().to_owned());
        if self.lines.len() > self.keep {
            self.lines.pop_front();
            self.first += 1;
        }
    }
}

/// One look at a terminal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct ScreenView {
    /// The screen as text, one line per row, trailing blanks and blank rows at the end left out.
    pub screen: String,
    /// The cursor's row and column, from 0 at the top left.
    pub cursor_row: u16,
    pub cursor_col: u16,
    pub rows: u16,
    pub cols: u16,
    /// A full-screen program (an editor, `top`, a pager) is showing its own screen.
    pub alternate_screen: bool,
    /// Rows that scrolled off the top since `scrollback_cursor` was given, oldest first.
    pub scrollback: Vec<String>,
    /// Pass it to the next read to get only the rows that scroll off after this one.
    pub scrollback_cursor: u64,
    /// Rows after the given cursor that are no longer kept.
    pub scrollback_skipped: u64,
}

fn nonzero(value: u16) -> NonZeroU16 {
    NonZeroU16::new(value).unwrap_or(NonZeroU16::MIN)
}

impl Screen {
    /// A blank screen of `rows` x `cols` keeping the last `keep_lines` scrolled rows.
    pub fn new(rows: u16, cols: u16, keep_lines: usize) -> Self {
        let log = ScrollLog {
            keep: keep_lines,
            ..ScrollLog::default()
        };
        // Scroll-back capacity 0: every row pushed off the top goes to `on_scroll`.
        Self {
            parser: vt100::Parser::new_with_callbacks(nonzero(rows), nonzero(cols), 0, log),
        }
    }

    /// Render what the program wrote.
    pub fn feed(&mut self, bytes: &[u8]) {
        self.parser.process(bytes);
    }

    pub fn resize(&mut self, rows: u16, cols: u16) {
        self.parser.set_size(nonzero(rows), nonzero(cols));
    }

    /// Whether the program asked for application cursor keys (`ESC O A` arrows).
    pub fn application_cursor(&self) -> bool {
        self.parser.screen().application_cursor()
    }

    /// The screen now, and the scroll-back after `since` (at most `max_lines` of it, the
    /// oldest first; `scrollback_cursor` then says where to go on).
    pub fn view(&self, since: u64, max_lines: usize) -> ScreenView {
        let screen = self.parser.screen();
        let (rows, cols) = screen.size();
        let mut lines: Vec<String> = screen
            .rows(0, cols.get())
            .map(|row| row.trim_end().to_owned())
            .collect();
        while lines.last().is_some_and(String::is_empty) {
            lines.pop();
        }
        let (cursor_row, cursor_col) = screen.cursor_position();
        let log = self.parser.callbacks();
        let end = log.first + log.lines.len() as u64;
        let from = since.clamp(log.first, end);
        let skipped = from.saturating_sub(since.min(end));
        let start = usize::try_from(from - log.first).unwrap_or(usize::MAX);
        let scrollback: Vec<String> = log
            .lines
            .iter()
            .skip(start)
            .take(max_lines)
            .cloned()
            .collect();
        ScreenView {
            screen: lines.join("\n"),
            cursor_row,
            cursor_col,
            rows: rows.get(),
            cols: cols.get(),
            alternate_screen: screen.alternate_screen(),
            scrollback_cursor: from + scrollback.len() as u64,
            scrollback,
            scrollback_skipped: skipped,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_screen_is_the_rendered_text_with_the_cursor() {
        let mut screen = Screen::new(5, 20, 100);
        screen.feed(b"hello\r\nworld\x1b[1;1HJ");
        let view = screen.view(0, 100);
        assert_eq!(view.screen, "Jello\nworld");
        assert_eq!((view.cursor_row, view.cursor_col), (0, 1));
        assert_eq!((view.rows, view.cols), (5, 20));
        assert!(view.scrollback.is_empty());
        assert!(!view.alternate_screen);
    }

    #[test]
    fn rows_that_scroll_off_are_numbered_and_read_from_a_cursor() {
        let mut screen = Screen::new(3, 20, 100);
        for n in 0..7 {
            screen.feed(format!("line {n}\r\n").as_bytes());
        }
        // Three rows on screen: lines 5 and 6 and the empty one the cursor is on.
        let view = screen.view(0, 100);
        assert_eq!(view.screen, "line 5\nline 6");
        assert_eq!(
            view.scrollback,
            ["line 0", "line 1", "line 2", "line 3", "line 4"]
        );
        assert_eq!(view.scrollback_cursor, 5);
        // From the cursor: nothing new, then only what scrolled since.
        assert!(screen.view(5, 100).scrollback.is_empty());
        screen.feed(b"line 7\r\n");
        let view = screen.view(5, 100);
        assert_eq!(view.scrollback, ["line 5"]);
        assert_eq!(view.scrollback_cursor, 6);
        // A page at a time.
        let page = screen.view(1, 2);
        assert_eq!(page.scrollback, ["line 1", "line 2"]);
        assert_eq!(page.scrollback_cursor, 3);
    }

    #[test]
    fn only_the_last_rows_are_kept_and_the_gap_is_counted() {
        let mut screen = Screen::new(2, 20, 3);
        for n in 0..10 {
            screen.feed(format!("l{n}\r\n").as_bytes());
        }
        let view = screen.view(0, 100);
        assert_eq!(view.scrollback, ["l6", "l7", "l8"]);
        assert_eq!(view.scrollback_skipped, 6);
        assert_eq!(view.scrollback_cursor, 9);
    }

    #[test]
    fn a_full_screen_program_shows_its_own_screen_and_leaves_no_scrollback() {
        let mut screen = Screen::new(3, 20, 100);
        screen.feed(b"prompt$ \x1b[?1049h\x1b[?1h");
        for n in 0..10 {
            screen.feed(format!("top {n}\r\n").as_bytes());
        }
        let view = screen.view(0, 100);
        assert!(view.alternate_screen);
        assert!(screen.application_cursor());
        assert!(view.scrollback.is_empty(), "{:?}", view.scrollback);
        screen.feed(b"\x1b[?1049l");
        assert_eq!(screen.view(0, 100).screen, "prompt$");
    }

    #[test]
    fn resizing_changes_the_size_rendered() {
        let mut screen = Screen::new(24, 80, 10);
        screen.resize(10, 40);
        let view = screen.view(0, 10);
        assert_eq!((view.rows, view.cols), (10, 40));
    }
}
