//! The glob dialect of policy rules, written here so its every corner is known.
//!
//! One [`Glob`] matches one whole string (an argument, a path component, a variable name),
//! anchored at both ends: `status` does not match `statusx`, `-c*` does not match `x-c`.
//!
//! - `*` matches any run of characters, including none (inside one element only);
//! - `?` matches exactly one character;
//! - every other character matches itself. There are no escapes and no character classes
//!   (`[` and `\` are literal), so nothing a pattern says depends on a quoting rule.
//!
//! A [`GlobList`] matches a list element by element and needs the same length, unless its
//! last pattern is `**` alone, which matches any number (including zero) of remaining
//! elements. `**` anywhere else is refused when the policy is loaded.

use std::fmt;

/// The pattern that, as the whole last element of a list, matches any remaining elements.
pub(super) const REST: &str = "**";

/// A pattern over one whole string.
#[derive(Clone, PartialEq, Eq)]
pub(super) struct Glob(String);

impl Glob {
    pub(super) fn new(pattern: &str) -> Self {
        Self(pattern.to_owned())
    }

    pub(super) fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether the pattern has no `*` or `?`, so it matches only itself.
    pub(super) fn is_literal(&self) -> bool {
        !self.0.contains(['*', '?'])
    }

    /// Whether the pattern matches all of `text`.
    pub(super) fn matches(&self, text: &str) -> bool {
        glob_match(&self.0, text)
    }
}

impl fmt::Debug for Glob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

/// Patterns for a list, element by element, with an optional final `**`.
#[derive(Clone, PartialEq, Eq)]
pub(super) struct GlobList {
    elements: Vec<Glob>,
    rest: bool,
}

/// Where a `**` was found that is not the whole last element.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct MisplacedRest {
    pub(super) index: usize,
}

impl GlobList {
    /// Parse a list of patterns; `**` may only be the whole last one.
    pub(super) fn parse<S: AsRef<str>>(patterns: &[S]) -> Result<Self, MisplacedRest> {
        let mut elements = Vec::with_capacity(patterns.len());
        let mut rest = false;
        for (index, pattern) in patterns.iter().enumerate() {
            let pattern = pattern.as_ref();
            let is_last = index + 1 == patterns.len();
            if pattern == REST && is_last {
                rest = true;
            } else if pattern.contains(REST) {
                return Err(MisplacedRest { index });
            } else {
                elements.push(Glob::new(pattern));
            }
        }
        Ok(Self { elements, rest })
    }

    /// Build from already-checked parts.
    pub(super) fn from_parts(elements: Vec<Glob>, rest: bool) -> Self {
        Self { elements, rest }
    }

    pub(super) fn elements(&self) -> &[Glob] {
        &self.elements
    }

    pub(super) fn has_rest(&self) -> bool {
        self.rest
    }

    /// Whether every element matches its pattern, and the lengths agree (or a final `**`
    /// takes the remainder).
    pub(super) fn matches<S: AsRef<str>>(&self, items: &[S]) -> bool {
        let length_ok = if self.rest {
            items.len() >= self.elements.len()
        } else {
            items.len() == self.elements.len()
        };
        length_ok
            && self
                .elements
                .iter()
                .zip(items)
                .all(|(pattern, item)| pattern.matches(item.as_ref()))
    }

    /// The patterns as written, `**` included.
    pub(super) fn patterns(&self) -> Vec<&str> {
        let mut patterns: Vec<&str> = self.elements.iter().map(Glob::as_str).collect();
        if self.rest {
            patterns.push(REST);
        }
        patterns
    }
}

impl fmt::Debug for GlobList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.patterns()).finish()
    }
}

/// Whether the argument patterns `patterns` (as an allow rule's `args` is parsed) match
/// `items`; `None` when the patterns would be refused at load (a misplaced `**`). The one
/// public door to this dialect, so the fuzz target (`fuzz/fuzz_targets/policy_glob.rs`)
/// can reach the matcher the rules use without the rest of the policy around it.
pub fn args_match(patterns: &[String], items: &[String]) -> Option<bool> {
    GlobList::parse(patterns)
        .ok()
        .map(|list| list.matches(items))
}

/// `*` and `?` wildcard matching over characters, anchored at both ends. Linear in the
/// common case; backtracks only to the most recent `*`, so at worst O(pattern × text).
fn glob_match(pattern: &str, text: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let text: Vec<char> = text.chars().collect();
    let (mut p, mut t) = (0, 0);
    // Position of the last `*` seen, and the text position it currently stands up to.
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some('*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(&c) if c == '?' || c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((star_p, star_t)) => {
                    p = star_p + 1;
                    t = star_t + 1;
                    star = Some((star_p, star_t + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod args_match_tests {
    use super::args_match;

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|item| (*item).to_owned()).collect()
    }

    #[test]
    fn args_match_is_the_rules_list_matcher() {
        let patterns = strings(&["status", "*"]);
        assert_eq!(
            args_match(&patterns, &strings(&["status", "nginx"])),
            Some(true)
        );
        // The near miss: one argument more than the patterns.
        let extra = strings(&["status", "nginx", "--now"]);
        assert_eq!(args_match(&patterns, &extra), Some(false));
        let rest = strings(&["status", "**"]);
        assert_eq!(args_match(&rest, &extra), Some(true));
    }

    #[test]
    fn args_match_refuses_a_misplaced_rest_like_the_loader() {
        let misplaced = strings(&["**", "x"]);
        assert_eq!(args_match(&misplaced, &strings(&["a", "x"])), None);
        let inside = strings(&["-c**"]);
        assert_eq!(args_match(&inside, &strings(&["-cx"])), None);
    }
}
