//! Named keys to the bytes a terminal sends for them (xterm's encoding): `Enter`, `Tab`,
//! `Escape`, `Backspace`, `Delete`, `Insert`, the arrows, `Home`/`End`, `PageUp`/`PageDown`,
//! `F1`-`F12`, and `Ctrl-<letter>` (also `Ctrl-[`, `Ctrl-\`, `Ctrl-]`, `Ctrl-^`, `Ctrl-_`,
//! `Ctrl-@`, `Ctrl-Space`). Names are case-insensitive; `C-c`, `Ctrl+C` and `^C` spell
//! `Ctrl-C`. The arrows, Home and End follow the program's cursor-key mode (`ESC O A` in
//! application mode, as `vim` and `less` ask for; `ESC [ A` otherwise).

/// A key name that is not one of the above.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown key {0:?}: use Enter, Tab, Escape, Backspace, Delete, Insert, Up, Down, Left, \
     Right, Home, End, PageUp, PageDown, F1-F12, Space or Ctrl-<letter> (Ctrl-C, Ctrl-D, ...)"
)]
pub struct UnknownKey(pub String);

/// The bytes of the key named `name`; `application_cursor` is the program's cursor-key mode.
pub fn encode(name: &str, application_cursor: bool) -> Result<Vec<u8>, UnknownKey> {
    let unknown = || UnknownKey(name.to_owned());
    let key = name.trim().to_ascii_lowercase();
    if let Some(rest) = ctrl_suffix(&key) {
        return ctrl(rest).map(|byte| vec![byte]).ok_or_else(unknown);
    }
    let cursor = |code: u8| {
        if application_cursor {
            vec![0x1b, b'O', code]
        } else {
            vec![0x1b, b'[', code]
        }
    };
    let bytes = match key.as_str() {
        "enter" | "return" => b"\r".to_vec(),
        "tab" => b"\t".to_vec(),
        "escape" | "esc" => b"\x1b".to_vec(),
        "backspace" => b"\x7f".to_vec(),
        "space" => b" ".to_vec(),
        "delete" | "del" => b"\x1b[3~".to_vec(),
        "insert" => b"\x1b[2~".to_vec(),
        "up" | "arrowup" => cursor(b'A'),
        "down" | "arrowdown" => cursor(b'B'),
        "right" | "arrowright" => cursor(b'C'),
        "left" | "arrowleft" => cursor(b'D'),
        "home" => cursor(b'H'),
        "end" => cursor(b'F'),
        "pageup" | "pgup" => b"\x1b[5~".to_vec(),
        "pagedown" | "pgdn" => b"\x1b[6~".to_vec(),
        _ => function_key(&key).ok_or_else(unknown)?,
    };
    Ok(bytes)
}

/// What follows `ctrl-`, `ctrl+`, `c-` or `^`, if the name starts so.
fn ctrl_suffix(key: &str) -> Option<&str> {
    ["ctrl-", "ctrl+", "control-", "c-", "^"]
        .iter()
        .find_map(|prefix| key.strip_prefix(prefix))
        .filter(|rest| !rest.is_empty())
}

/// The control byte of `Ctrl-<rest>`.
fn ctrl(rest: &str) -> Option<u8> {
    if rest == "space" {
        return Some(0);
    }
    let [byte] = rest.as_bytes() else {
        return None;
    };
    match byte {
        b'a'..=b'z' => Some(byte - b'a' + 1),
        b'@' | b'[' | b'\\' | b']' | b'^' | b'_' => Some(byte & 0x1f),
        b'?' => Some(0x7f),
        _ => None,
    }
}

/// `F1`-`F12`.
fn function_key(key: &str) -> Option<Vec<u8>> {
    let number: u8 = key.strip_prefix('f')?.parse().ok()?;
    let bytes: &[u8] = match number {
        1 => b"\x1bOP",
        2 => b"\x1bOQ",
        3 => b"\x1bOR",
        4 => b"\x1bOS",
        5 => b"\x1b[15~",
        6 => b"\x1b[17~",
        7 => b"\x1b[18~",
        8 => b"\x1b[19~",
        9 => b"\x1b[20~",
        10 => b"\x1b[21~",
        11 => b"\x1b[23~",
        12 => b"\x1b[24~",
        _ => return None,
    };
    Some(bytes.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str) -> Vec<u8> {
        encode(name, false).unwrap()
    }

    #[test]
    fn control_keys_are_their_control_bytes_in_every_spelling() {
        for name in ["Ctrl-C", "ctrl-c", "C-c", "Ctrl+C", "^C"] {
            assert_eq!(key(name), [0x03], "{name}");
        }
        assert_eq!(key("Ctrl-D"), [0x04]);
        assert_eq!(key("Ctrl-Z"), [0x1a]);
        assert_eq!(key("Ctrl-A"), [0x01]);
        assert_eq!(key("Ctrl-["), [0x1b]);
        assert_eq!(key("Ctrl-\\"), [0x1c]);
        assert_eq!(key("Ctrl-Space"), [0x00]);
    }

    #[test]
    fn editing_keys_are_what_xterm_sends() {
        assert_eq!(key("Enter"), b"\r");
        assert_eq!(key("Tab"), b"\t");
        assert_eq!(key("Escape"), b"\x1b");
        assert_eq!(key("Backspace"), b"\x7f");
        assert_eq!(key("PageUp"), b"\x1b[5~");
        assert_eq!(key("PageDown"), b"\x1b[6~");
        assert_eq!(key("Delete"), b"\x1b[3~");
        assert_eq!(key("F1"), b"\x1bOP");
        assert_eq!(key("F5"), b"\x1b[15~");
        assert_eq!(key("F12"), b"\x1b[24~");
    }

    #[test]
    fn arrows_follow_the_cursor_key_mode() {
        assert_eq!(encode("Up", false).unwrap(), b"\x1b[A");
        assert_eq!(encode("Up", true).unwrap(), b"\x1bOA");
        assert_eq!(encode("Left", false).unwrap(), b"\x1b[D");
        assert_eq!(encode("Home", true).unwrap(), b"\x1bOH");
        assert_eq!(encode("End", false).unwrap(), b"\x1b[F");
    }

    #[test]
    fn unknown_names_are_refused_with_the_list() {
        for name in ["F13", "F0", "Ctrl-1", "Ctrl-", "Hyper", "", "Ctrl-ab"] {
            let error = encode(name, false).unwrap_err();
            assert!(error.to_string().contains("Ctrl-<letter>"), "{name}");
        }
    }
}
