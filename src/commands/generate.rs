//! `hostmcp generate man DIR` and `hostmcp generate completions DIR` (hidden: for
//! packagers): the man pages and the bash, zsh and fish completions, made from the clap
//! definitions in [`crate::cli`], so they never drift from the real command line.
//! `packaging/build-deb.sh` runs both; the .deb ships what they write.

use std::path::{Path, PathBuf};

use clap::CommandFactory;
use clap_complete::Shell;

use super::CommandError;
use crate::cli::{Cli, GenerateCommand};

/// The shells completions are written for, with the file name each one's loader looks for
/// (bash-completion loads `completions/<command>`; zsh `_<command>`; fish `<command>.fish`).
pub const SHELLS: [(Shell, &str); 3] = [
    (Shell::Bash, "hostmcp"),
    (Shell::Zsh, "_hostmcp"),
    (Shell::Fish, "hostmcp.fish"),
];

/// Why the files could not be written.
#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

pub fn run(command: GenerateCommand) -> Result<(), CommandError> {
    let written = match command {
        GenerateCommand::Man { dir } => man_pages(&dir),
        GenerateCommand::Completions { dir } => completions(&dir),
    }
    .map_err(|error| {
        CommandError::new(error).with_hint("give a directory that exists and that you may write")
    })?;
    for path in written {
        println!("{}", path.display());
    }
    Ok(())
}

/// Write `hostmcp.1` and one page per visible subcommand (`hostmcp-serve.1`,
/// `hostmcp-token-create.1`, ...) into `dir`; returns the files written.
pub fn man_pages(dir: &Path) -> Result<Vec<PathBuf>, GenerateError> {
    let mut command = Cli::command().disable_help_subcommand(true);
    command.build();
    let mut written = Vec::new();
    write_pages(command, dir, &mut written)?;
    Ok(written)
}

/// One page for `command` (its name already the full `hostmcp-sub-sub` display name after
/// `build`), then its visible subcommands'.
fn write_pages(
    command: clap::Command,
    dir: &Path,
    written: &mut Vec<PathBuf>,
) -> Result<(), GenerateError> {
    let subcommands: Vec<clap::Command> = command
        .get_subcommands()
        .filter(|sub| !sub.is_hide_set())
        .cloned()
        .collect();
    let man = clap_mangen::Man::new(command)
        .source(format!("hostmcp {}", env!("CARGO_PKG_VERSION")))
        .manual("hostmcp manual");
    let path = dir.join(man.get_filename());
    let mut page = Vec::new();
    man.render(&mut page)
        .map_err(|source| GenerateError::Write {
            path: path.clone(),
            source,
        })?;
    write(&path, &page)?;
    written.push(path);
    for sub in subcommands {
        write_pages(sub, dir, written)?;
    }
    Ok(())
}

/// Write the completion scripts of [`SHELLS`] into `dir`; returns the files written.
pub fn completions(dir: &Path) -> Result<Vec<PathBuf>, GenerateError> {
    let mut written = Vec::new();
    for (shell, file_name) in SHELLS {
        let mut script = Vec::new();
        clap_complete::generate(shell, &mut visible_command(), "hostmcp", &mut script);
        let path = dir.join(file_name);
        write(&path, &script)?;
        written.push(path);
    }
    Ok(written)
}

/// The command line without its hidden subcommands (clap_complete would offer them): the
/// top level has no arguments of its own beyond `--help` and `--version`, which clap adds.
fn visible_command() -> clap::Command {
    let full = Cli::command();
    let visible = full
        .get_subcommands()
        .filter(|sub| !sub.is_hide_set())
        .cloned()
        .collect::<Vec<_>>();
    clap::Command::new("hostmcp")
        .version(env!("CARGO_PKG_VERSION"))
        .about(full.get_about().cloned().unwrap_or_default())
        .subcommand_required(true)
        .subcommands(visible)
}

fn write(path: &Path, contents: &[u8]) -> Result<(), GenerateError> {
    std::fs::write(path, contents).map_err(|source| GenerateError::Write {
        path: path.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(paths: &[PathBuf]) -> Vec<String> {
        paths
            .iter()
            .map(|path| path.file_name().unwrap().to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn man_pages_cover_every_visible_subcommand_and_document_its_flags() {
        let dir = tempfile::tempdir().unwrap();
        let written = man_pages(dir.path()).unwrap();
        let names = names(&written);
        for page in [
            "hostmcp.1",
            "hostmcp-serve.1",
            "hostmcp-stdio.1",
            "hostmcp-token-create.1",
            "hostmcp-audit-verify.1",
            "hostmcp-policy-explain.1",
        ] {
            assert!(
                names.contains(&page.to_owned()),
                "{page} missing: {names:?}"
            );
        }
        // Near miss: the hidden packaging subcommand gets no page.
        assert!(
            !names.iter().any(|name| name.contains("generate")),
            "{names:?}"
        );
        let serve = std::fs::read_to_string(dir.path().join("hostmcp-serve.1")).unwrap();
        assert!(serve.contains(".TH hostmcp-serve 1"), "{serve}");
        assert!(serve.contains("audit\\-log"), "flags documented");
        assert!(serve.contains("HOSTMCP_CONFIG"), "environment documented");
        assert!(serve.contains(env!("CARGO_PKG_VERSION")));
    }

    #[test]
    fn completions_name_the_subcommands_for_each_shell() {
        let dir = tempfile::tempdir().unwrap();
        let written = completions(dir.path()).unwrap();
        assert_eq!(names(&written), ["hostmcp", "_hostmcp", "hostmcp.fish"]);
        // How each shell's script registers itself and names `serve --listen`.
        let expected = [
            ("complete -F _hostmcp", "--listen"),
            ("#compdef hostmcp", "--listen"),
            ("complete -c hostmcp", "-l listen"),
        ];
        for (path, (registers, flag)) in written.iter().zip(expected) {
            let script = std::fs::read_to_string(path).unwrap();
            assert!(script.contains(registers), "{}", path.display());
            assert!(script.contains("serve"), "{}", path.display());
            assert!(script.contains(flag), "{}", path.display());
            // Near miss: the hidden packaging subcommand is not offered.
            assert!(!script.contains("generate"), "{}", path.display());
        }
    }

    #[test]
    fn a_missing_directory_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("absent");
        let error = completions(&missing).unwrap_err();
        assert!(error.to_string().contains("absent/hostmcp"), "{error}");
        // Near miss: the directory once made, the same call succeeds.
        std::fs::create_dir(&missing).unwrap();
        assert_eq!(completions(&missing).unwrap().len(), 3);
    }
}
