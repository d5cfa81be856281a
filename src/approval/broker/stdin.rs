//! What an approver is shown of the bytes a command will be given on its standard input:
//! their count, their SHA-256, and a bounded, printable preview. The whole stdin is never
//! copied into the request: the preview is cut, and the audit record keeps only the count
//! and the digest (stdin may carry secrets; the audit log never stores them).

use serde::Serialize;
use sha2::{Digest, Sha256};

/// How many bytes of stdin the preview shows at most.
pub const PREVIEW_BYTES: usize = 2048;

/// A command's stdin as an approver sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct StdinShown {
    /// How many bytes the command is given.
    pub bytes: usize,
    /// Their SHA-256, lowercase hex.
    pub sha256: String,
    /// The first [`PREVIEW_BYTES`] as text: invalid UTF-8 replaced (U+FFFD), control
    /// characters other than newline and tab written as escapes (`\r`, `\u{1b}`), and
    /// `(N more bytes)` on a line of its own when cut.
    pub preview: String,
}

impl StdinShown {
    /// The summary of `stdin`; `None` (no stdin: it is closed) stays `None`, while an
    /// empty stdin is shown as 0 bytes.
    pub fn of(stdin: Option<&[u8]>) -> Option<Self> {
        let stdin = stdin?;
        let cut = &stdin[..stdin.len().min(PREVIEW_BYTES)];
        let mut preview = visible(&String::from_utf8_lossy(cut));
        if stdin.len() > cut.len() {
            preview.push_str(&format!("\n({} more bytes)", stdin.len() - cut.len()));
        }
        Some(Self {
            bytes: stdin.len(),
            sha256: hex::encode(Sha256::digest(stdin)),
            preview,
        })
    }
}

/// `text` with every control character except newline and tab escaped, so a carriage
/// return or an escape sequence cannot hide or restyle what comes before it.
fn visible(text: &str) -> String {
    let mut shown = String::with_capacity(text.len());
    for c in text.chars() {
        if c == '\n' || c == '\t' || !c.is_control() {
            shown.push(c);
        } else {
            shown.extend(c.escape_default());
        }
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn none_is_none_and_empty_is_zero_bytes() {
        assert_eq!(StdinShown::of(None), None);
        let empty = StdinShown::of(Some(b"")).unwrap();
        assert_eq!(empty.bytes, 0);
        assert_eq!(empty.preview, "");
        assert_eq!(
            empty.sha256,
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn short_stdin_is_shown_whole_with_its_digest() {
        let shown = StdinShown::of(Some(b"* * * * * root /tmp/evil\n")).unwrap();
        assert_eq!(shown.bytes, 25);
        assert_eq!(shown.preview, "* * * * * root /tmp/evil\n");
        assert_eq!(shown.sha256.len(), 64);
        assert_eq!(
            shown.sha256,
            hex::encode(Sha256::digest(b"* * * * * root /tmp/evil\n"))
        );
    }

    #[test]
    fn long_stdin_is_cut_with_a_note_of_the_rest() {
        let long = vec![b'a'; PREVIEW_BYTES + 10];
        let shown = StdinShown::of(Some(&long)).unwrap();
        assert_eq!(shown.bytes, PREVIEW_BYTES + 10);
        assert!(shown.preview.starts_with(&"a".repeat(PREVIEW_BYTES)));
        assert!(
            shown.preview.ends_with("\n(10 more bytes)"),
            "{}",
            shown.preview
        );
        // Near miss: exactly the limit is not cut.
        let exact = StdinShown::of(Some(&long[..PREVIEW_BYTES])).unwrap();
        assert_eq!(exact.preview, "a".repeat(PREVIEW_BYTES));
    }

    #[test]
    fn control_characters_are_made_visible() {
        let shown = StdinShown::of(Some(b"rm -rf /\r\x1b[2Kecho hi\n\tok")).unwrap();
        assert_eq!(shown.preview, "rm -rf /\\r\\u{1b}[2Kecho hi\n\tok");
        assert!(!shown.preview.contains('\r') && !shown.preview.contains('\x1b'));
    }

    #[test]
    fn invalid_utf8_is_shown_lossily_and_hashed_as_given() {
        let raw = b"ok\xff\xfeend";
        let shown = StdinShown::of(Some(raw)).unwrap();
        assert_eq!(shown.preview, "ok\u{fffd}\u{fffd}end");
        assert_eq!(shown.bytes, raw.len());
        assert_eq!(shown.sha256, hex::encode(Sha256::digest(raw)));
    }
}
