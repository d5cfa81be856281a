//! The one error of the host readers: which interface could not be read, and why.

/// A host interface that could not be read at all.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// A `/proc` file, through the procfs crate.
    #[error("cannot read {what} from /proc: {source}")]
    Proc {
        what: &'static str,
        #[source]
        source: procfs::ProcError,
    },
    /// A file or directory of the host (`/sys`, `/etc`, a walked directory).
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// A system call (`statvfs`, `getifaddrs`).
    #[error("{call} failed: {source}")]
    Sys {
        call: &'static str,
        #[source]
        source: nix::Error,
    },
    /// No process has this pid (or it ended while being read).
    #[error("no process with pid {0}")]
    NoSuchProcess(i32),
}

impl HostError {
    /// A procfs failure reading `what`.
    pub fn proc(what: &'static str) -> impl FnOnce(procfs::ProcError) -> Self {
        move |source| Self::Proc { what, source }
    }

    /// An I/O failure on `path`.
    pub fn io(path: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { path, source }
    }
}
