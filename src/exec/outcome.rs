//! What a command did: [`ExecOutcome`] (exit status, captured output, how it ended), and
//! the live chunks of output a caller may watch ([`OutputEvent`], [`OutputObserver`]).

use std::time::Duration;

use tokio::sync::mpsc::Sender;

use super::CapturedOutput;

/// A chunk of output as it was read, for live progress or a job's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputEvent {
    Stdout(Vec<u8>),
    Stderr(Vec<u8>),
}

/// Receives each chunk of output as it is read. It runs on the reader's task, so it must
/// not block: a slow consumer should drop chunks (as the channel sender does) or buffer.
pub trait OutputObserver: Send + Sync {
    fn observe(&self, event: OutputEvent);

    /// Called once the command is spawned, with its pid, which is also its process group id.
    fn started(&self, _pid: u32) {}
}

/// A channel observer offers a chunk only if the channel has room right now: a slow
/// receiver loses chunks but never slows the child down.
impl OutputObserver for Sender<OutputEvent> {
    fn observe(&self, event: OutputEvent) {
        if let Ok(permit) = self.try_reserve() {
            permit.send(event);
        }
    }
}

/// What a command did.
#[derive(Debug, Clone)]
pub struct ExecOutcome {
    /// The exit code, if the command exited rather than being killed by a signal.
    pub exit_code: Option<i32>,
    /// The signal that killed the command, if one did.
    pub signal: Option<i32>,
    pub stdout: CapturedOutput,
    pub stderr: CapturedOutput,
    /// The command ran past its timeout and its process group was killed.
    pub timed_out: bool,
    /// The caller cancelled the command and its process group was killed.
    pub cancelled: bool,
    /// From just before the spawn to the end of output capture.
    pub duration: Duration,
    /// Peak memory and CPU time, when the kernel said (not for a terminal's program).
    pub usage: Option<super::Usage>,
}

impl ExecOutcome {
    /// Exited with code 0, on time and not cancelled.
    pub fn is_success(&self) -> bool {
        self.exit_code == Some(0) && !self.timed_out && !self.cancelled
    }

    /// One line saying how the command ended, e.g. "exited with code 3" or
    /// "timed out; killed by signal 15 (SIGTERM) after 5.0s".
    pub fn describe_status(&self) -> String {
        let mut parts = Vec::new();
        if self.timed_out {
            parts.push("timed out".to_owned());
        }
        if self.cancelled {
            parts.push("cancelled".to_owned());
        }
        if let Some(code) = self.exit_code {
            parts.push(format!("exited with code {code}"));
        }
        if let Some(signal) = self.signal {
            let name = signal_name(signal);
            parts.push(format!("killed by signal {signal} ({name})"));
        }
        let mut status = parts.join("; ");
        if self.timed_out || self.cancelled {
            status += &format!(" after {:.1}s", self.duration.as_secs_f64());
        }
        status
    }
}

fn signal_name(signal: i32) -> &'static str {
    nix::sys::signal::Signal::try_from(signal).map_or("unknown", |s| s.as_str())
}
