//! A rule's argument patterns matched against a request's arguments: which argument matched
//! which pattern, or which one did not and why. Owns the one rule the glob dialect does not
//! know, about options.
//!
//! An *option* is an argument that starts with `-` (`-H`, `--host=me@elsewhere`, `-`, `--`)
//! or with `@`: `@file` is a *response file* to gcc, clang, ld, javac, 7z and others, which
//! read their options from the file (`gcc -c @/tmp/opts` runs whatever `-wrapper` the file
//! names). In an allow rule, a wildcard does not match an option: a pattern that does not
//! itself start with `-` or `@` (`*`, `?x`, `nginx*`, and a final `**` for each argument it
//! takes) matches only arguments that start with neither. An option is matched only by a
//! pattern that starts with the same character, so the rule names the options it allows:
//! `-u`, `--since=*`, `-*` for any one, `@/srv/build/*.rsp` for response files there.
//! `["status", "*"]` therefore allows `systemctl status nginx` and refuses
//! `systemctl status --host=me@elsewhere`, which would make systemctl run ssh to a host of
//! the caller's choosing. An allow rule with `allow_options = true` lets its wildcards match
//! options too: it allows whatever options its program has, and says so.
//!
//! Deny rules are never narrowed this way: their `args` and `any_arg` wildcards match options
//! like any other argument, because a deny rule must catch more, not less
//! (`args = ["-rf", "**"]` denies `rm -rf --no-preserve-root /`).
//!
//! A literal `--` (end of options) changes nothing: a `*` after it still does not match `-x`.
//! Whether `--` ends the options is up to each program (GNU `echo` prints it; a wrapper such
//! as `ssh host -- cmd` hands what follows to a program that parses options again), and the
//! policy cannot know which kind it is judging. A rule that means to allow an operand that
//! starts with `-` writes a pattern that starts with `-` at that position.

use std::fmt;

use super::{
    glob::{Glob, GlobList, REST},
    shown::show_arg,
};

/// The characters that make an argument an option: `-`, and `@` (a response file).
pub(super) const OPTION_PREFIXES: [char; 2] = ['-', '@'];

/// Whether an argument is an option: it starts with `-` or `@`.
pub(super) fn is_option(arg: &str) -> bool {
    arg.starts_with(OPTION_PREFIXES)
}

/// Whether a rule's wildcards may match options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Options {
    /// Only a pattern that starts with `-` (or `@`) matches an option (allow rules by default).
    Named,
    /// Any pattern may match an option (deny rules; allow rules with `allow_options = true`).
    Wildcards,
}

/// A rule's positional `args`: element-wise globs with an optional final `**`, and how they
/// treat options.
#[derive(Clone, PartialEq, Eq)]
pub(super) struct ArgPatterns {
    list: GlobList,
    options: Options,
}

/// How one argument was matched: `argv[index + 1]` by `pattern`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Matched {
    /// Index into the arguments after `argv[0]`.
    pub(super) index: usize,
    /// The pattern as written (`**` for arguments a final `**` took).
    pub(super) pattern: String,
    /// Whether the pattern is one of a deny rule's `any_arg`.
    pub(super) any_arg: bool,
}

/// Why a request's arguments do not match a rule's `args`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mismatch {
    /// The rule takes `expected` arguments (at least that many with a final `**`).
    Count {
        expected: usize,
        at_least: bool,
        given: usize,
    },
    /// `argv[index + 1]`, shown as `arg`, does not match `pattern`.
    Differs {
        index: usize,
        arg: String,
        pattern: String,
    },
    /// `argv[index + 1]` is an option (it starts with `-` or `@`), and `pattern` is a wildcard
    /// that does not match options.
    Option {
        index: usize,
        arg: String,
        pattern: String,
    },
}

impl ArgPatterns {
    pub(super) fn new(list: GlobList, options: Options) -> Self {
        Self { list, options }
    }

    pub(super) fn options(&self) -> Options {
        self.options
    }

    /// Every argument with the pattern that matched it, or the first that does not match.
    /// Positions are checked before the count, so an option is reported as such even when
    /// the count is wrong as well.
    pub(super) fn check(&self, args: &[String]) -> Result<Vec<Matched>, Mismatch> {
        let elements = self.list.elements();
        let mut matched = Vec::with_capacity(args.len());
        for (index, arg) in args.iter().enumerate() {
            let (pattern, glob_ok) = match elements.get(index) {
                Some(glob) => (glob.as_str(), glob.matches(arg)),
                None if self.list.has_rest() => (REST, true),
                None => break,
            };
            if !glob_ok {
                return Err(Mismatch::Differs {
                    index,
                    arg: show_arg(arg),
                    pattern: pattern.to_owned(),
                });
            }
            if !self.admits(pattern, arg) {
                return Err(Mismatch::Option {
                    index,
                    arg: show_arg(arg),
                    pattern: pattern.to_owned(),
                });
            }
            matched.push(Matched {
                index,
                pattern: pattern.to_owned(),
                any_arg: false,
            });
        }
        let count_ok = if self.list.has_rest() {
            args.len() >= elements.len()
        } else {
            args.len() == elements.len()
        };
        if !count_ok {
            return Err(Mismatch::Count {
                expected: elements.len(),
                at_least: self.list.has_rest(),
                given: args.len(),
            });
        }
        Ok(matched)
    }

    /// Whether `pattern`, which matches `arg` as a glob, may match it as an argument. A
    /// glob that starts with a literal `-` or `@` matches only arguments that start with the
    /// same character, so `-*` never admits `@file`, nor `@*` a `-x`.
    fn admits(&self, pattern: &str, arg: &str) -> bool {
        self.options == Options::Wildcards || !is_option(arg) || is_option(pattern)
    }
}

impl fmt::Debug for ArgPatterns {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.list, f)
    }
}

/// The first argument that one of `patterns` matches (options included: `any_arg` is a deny
/// rule's), with the pattern.
pub(super) fn find_any(patterns: &[Glob], args: &[String]) -> Option<Matched> {
    args.iter().enumerate().find_map(|(index, arg)| {
        patterns
            .iter()
            .find(|pattern| pattern.matches(arg))
            .map(|pattern| Matched {
                index,
                pattern: pattern.as_str().to_owned(),
                any_arg: true,
            })
    })
}

/// `argv[1] "status" by "status", argv[2] "nginx" by "*"`; `no arguments` for none.
pub(super) fn describe_matches(matched: &[Matched], args: &[String]) -> String {
    if matched.is_empty() {
        return "no arguments".to_owned();
    }
    matched
        .iter()
        .map(|m| {
            let arg = args
                .get(m.index)
                .map_or_else(String::new, |arg| show_arg(arg));
            let by = if m.any_arg { "by any_arg" } else { "by" };
            format!("argv[{}] {arg} {by} {:?}", m.index + 1, m.pattern)
        })
        .collect::<Vec<_>>()
        .join(", ")
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Count {
                expected,
                at_least,
                given,
            } => {
                let least = if *at_least { "at least " } else { "" };
                write!(
                    f,
                    "the rule takes {least}{expected} arguments, {given} given"
                )
            }
            Self::Differs {
                index,
                arg,
                pattern,
            } => write!(f, "argv[{}] {arg} does not match {pattern:?}", index + 1),
            Self::Option {
                index,
                arg,
                pattern,
            } => {
                // `arg` is shown quoted: its first character after the quote says which kind.
                let prefix = if arg.starts_with("\"@") { '@' } else { '-' };
                let kind = if prefix == '@' {
                    "an option (a response file)"
                } else {
                    "an option"
                };
                write!(
                    f,
                    "argv[{}] {arg} is {kind}, and {pattern:?} does not match options \
                     (only a pattern that starts with \"{prefix}\" does, or allow_options = true)",
                    index + 1
                )
            }
        }
    }
}
