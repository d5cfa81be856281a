//! Caller-supplied text as the server's own log (stderr) keeps it: whole when short, else
//! its head and its length, so a caller cannot fill the log's disk with huge arguments,
//! headers or cancellation reasons. Used by every room that logs what a caller sent
//! (transports, tools); the audit log bounds its text separately (`audit::bounded`).

/// Most bytes of caller-supplied text one field of the server's log keeps.
pub const LOG_EXCERPT_BYTES: usize = 512;

/// `text` as the server's log keeps caller-supplied text: whole up to [`LOG_EXCERPT_BYTES`],
/// else its head and its length, so huge arguments cannot fill the log's disk either.
pub fn log_excerpt(text: &str) -> std::borrow::Cow<'_, str> {
    if text.len() <= LOG_EXCERPT_BYTES {
        return text.into();
    }
    let mut end = LOG_EXCERPT_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}[... {} bytes in all]", &text[..end], text.len()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_excerpt_keeps_short_text_whole_and_cuts_long_text_on_a_character() {
        assert_eq!(log_excerpt("ls -l"), "ls -l");
        let exact = "x".repeat(LOG_EXCERPT_BYTES);
        assert_eq!(log_excerpt(&exact), exact);
        let long = "é".repeat(1_000_000);
        let excerpt = log_excerpt(&long);
        assert!(excerpt.starts_with(&"é".repeat(LOG_EXCERPT_BYTES / 2)));
        assert!(excerpt.ends_with("[... 2000000 bytes in all]"), "{excerpt}");
        assert!(excerpt.len() < LOG_EXCERPT_BYTES + 64);
    }
}
