//! The one shape of a command a caller asks for: a program and its arguments, or a shell
//! line. The policy judges it ([`crate::policy::CommandRequest`]), the audit log writes it
//! (as `CommandLine<AuditText>`, its text bounded), and the exec engine runs what a policy
//! `Permit` made of it. A ground-floor module: it imports nothing of the product, so the
//! policy, exec, audit and tools all depend on it and on nothing of each other for it.

use serde::{Deserialize, Serialize};

/// What a command runs, as the caller wrote it. `T` is the text type: `String` everywhere
/// but the audit log, which keeps its own bounded text.
///
/// Serialized as the tools' input and the audit records spell it: `"argv": [..]` or
/// `"command": ".."`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CommandLine<T = String> {
    /// A program and its arguments, no shell; `argv[0]` is looked up in `PATH` unless it
    /// contains a `/`.
    #[serde(rename = "argv")]
    Argv(Vec<T>),
    /// A shell line, run by `/bin/sh -c`.
    #[serde(rename = "command")]
    Shell(T),
}

impl<T> CommandLine<T> {
    /// An argv command from anything that converts into the text type.
    pub fn argv<I, S>(argv: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<T>,
    {
        Self::Argv(argv.into_iter().map(Into::into).collect())
    }

    /// A shell line from anything that converts into the text type.
    pub fn shell(script: impl Into<T>) -> Self {
        Self::Shell(script.into())
    }

    /// The same command with each piece of text converted by `convert`.
    pub fn map<U>(&self, mut convert: impl FnMut(&T) -> U) -> CommandLine<U> {
        match self {
            Self::Argv(argv) => CommandLine::Argv(argv.iter().map(convert).collect()),
            Self::Shell(script) => CommandLine::Shell(convert(script)),
        }
    }

    pub fn is_shell(&self) -> bool {
        matches!(self, Self::Shell(_))
    }
}

impl CommandLine {
    /// The whole command, for job lists and the server's log: the shell line as written,
    /// an argv as a debug list (`["ls", "-la"]`).
    pub fn describe(&self) -> String {
        match self {
            Self::Shell(script) => script.clone(),
            Self::Argv(argv) => format!("{argv:?}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_shapes_serialize_as_the_records_spell_them() {
        let argv: CommandLine = CommandLine::Argv(vec!["ls".to_owned(), "-l".to_owned()]);
        assert_eq!(
            serde_json::to_value(&argv).unwrap(),
            serde_json::json!({"argv": ["ls", "-l"]})
        );
        let shell: CommandLine = CommandLine::Shell("ls; id".to_owned());
        assert_eq!(
            serde_json::to_value(&shell).unwrap(),
            serde_json::json!({"command": "ls; id"})
        );
    }

    #[test]
    fn describe_shows_a_shell_line_as_written_and_an_argv_as_a_list() {
        assert_eq!(
            CommandLine::Shell("ls | wc".to_owned()).describe(),
            "ls | wc"
        );
        assert_eq!(
            CommandLine::Argv(vec!["ls".to_owned(), "a b".to_owned()]).describe(),
            r#"["ls", "a b"]"#
        );
    }

    #[test]
    fn map_converts_every_piece_of_text_and_keeps_the_shape() {
        let argv: CommandLine = CommandLine::Argv(vec!["a".to_owned(), "bc".to_owned()]);
        assert_eq!(argv.map(String::len), CommandLine::Argv(vec![1, 2]));
        let shell: CommandLine = CommandLine::Shell("abc".to_owned());
        assert_eq!(shell.map(String::len), CommandLine::Shell(3));
        assert!(shell.is_shell() && !argv.is_shell());
    }
}
