//! Target `policy_glob`: the glob dialect of policy argument patterns
//! (`hostmcp::policy::args_match`), checked against a slow reference matcher written here
//! from the dialect's documentation.
//!
//! Input: the first line holds the patterns, the rest the arguments, each list split on
//! TAB. What must hold: `args_match` agrees with the reference on every input, and refuses
//! exactly the lists where `**` is anything but the whole last pattern.

use hostmcp::policy::args_match;

/// Longest pattern or argument given to the reference, in characters: it is quadratic.
const MAX_CHARS: usize = 256;

pub fn run(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (patterns, items) = text.split_once('\n').unwrap_or((text, ""));
    let split = |list: &str| -> Vec<String> {
        if list.is_empty() {
            Vec::new()
        } else {
            list.split('\t').map(str::to_owned).collect()
        }
    };
    let (patterns, items) = (split(patterns), split(items));
    if patterns
        .iter()
        .chain(&items)
        .any(|s| s.chars().count() > MAX_CHARS)
    {
        return;
    }
    assert_eq!(
        args_match(&patterns, &items),
        reference_list(&patterns, &items),
        "patterns {patterns:?} against {items:?}"
    );
}

/// The documented list semantics: element by element with equal lengths, unless the last
/// pattern is `**` alone, which takes any remaining elements; `**` elsewhere is refused.
fn reference_list(patterns: &[String], items: &[String]) -> Option<bool> {
    let (rest, elements) = match patterns.split_last() {
        Some((last, elements)) if last == "**" => (true, elements),
        _ => (false, patterns),
    };
    if elements.iter().any(|pattern| pattern.contains("**")) {
        return None;
    }
    let length_ok = if rest {
        items.len() >= elements.len()
    } else {
        items.len() == elements.len()
    };
    Some(
        length_ok
            && elements
                .iter()
                .zip(items)
                .all(|(pattern, item)| reference_glob(pattern, item)),
    )
}

/// The documented element semantics by dynamic programming over characters: `*` any run
/// (also empty), `?` one character, everything else itself, anchored at both ends.
fn reference_glob(pattern: &str, text: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let text: Vec<char> = text.chars().collect();
    // matches[j]: pattern[..i] matches text[..j], for the current i.
    let mut matches = vec![false; text.len() + 1];
    matches[0] = true;
    for &p in &pattern {
        let mut next = vec![false; text.len() + 1];
        for j in 0..=text.len() {
            next[j] = match p {
                '*' => matches[j] || (j > 0 && next[j - 1]),
                '?' => j > 0 && matches[j - 1],
                c => j > 0 && matches[j - 1] && text[j - 1] == c,
            };
        }
        matches = next;
    }
    matches[text.len()]
}

#[cfg(test)]
mod tests {
    use super::reference_glob;

    /// The oracle must be right for the target to mean anything.
    #[test]
    fn the_reference_matcher_follows_the_documented_dialect() {
        for (pattern, text, expected) in [
            ("status", "status", true),
            ("status", "statusx", false),
            ("-c*", "-c", true),
            ("-c*", "x-c", false),
            ("*", "", true),
            ("?", "", false),
            ("a?c", "abc", true),
            ("a*b*c", "axxbyyc", true),
            ("a*b*c", "axxbyy", false),
            ("[a]", "a", false),
            ("[a]", "[a]", true),
            ("é?", "éx", true),
        ] {
            assert_eq!(
                reference_glob(pattern, text),
                expected,
                "{pattern} vs {text}"
            );
        }
    }
}
