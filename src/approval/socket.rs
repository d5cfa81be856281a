//! The approvals socket: `hostmcp approvals` on the host talks to the running server over
//! a unix socket, `approvals.sock` in the server's state directory, mode 0600 and checked
//! per connection: only a peer whose uid (`SO_PEERCRED`) is the server's own or root is
//! answered. A socket rather than the state store, because a decision must reach the call
//! that waits in this process at once, and because the kernel then names the deciding
//! Unix user: the decider on record is that user (and `$SUDO_USER` when root was reached
//! through sudo), not a name the client claims.
//!
//! Protocol: one JSON line each way. `{"op":"list"}` answers the pending requests;
//! `{"op":"approve"|"deny","id":"ap-…","sudo_user":…}` decides one.

use std::{
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, UNIX_EPOCH},
};

use serde::{Deserialize, Serialize};
use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader},
    net::{UnixListener, UnixStream},
};
use tokio_util::sync::CancellationToken;

use super::{
    Approvals,
    broker::{ApprovalRequest, Decided, Decider, StdinShown, Verdict, Via},
};

/// The socket's file name in the state directory.
pub const SOCKET_NAME: &str = "approvals.sock";
/// The longest request line read.
const MAX_LINE: u64 = 4096;
/// How long a connection may take to send its line.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// A request line.
#[derive(Debug, Serialize, Deserialize)]
pub struct SocketRequest {
    pub op: String,
    #[serde(default)]
    pub id: Option<String>,
    /// `$SUDO_USER` of the CLI, believed only from a root peer.
    #[serde(default)]
    pub sudo_user: Option<String>,
}

/// An answer line.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct SocketAnswer {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending: Vec<PendingView>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decider: Option<String>,
}

/// One pending request as `list` shows it.
#[derive(Debug, Serialize, Deserialize)]
pub struct PendingView {
    pub id: String,
    pub principal: String,
    /// The tool that asked: `run_command`, `job_start` or `terminal_open`.
    pub tool: Option<String>,
    /// What the command is given on stdin; `null`: nothing.
    pub stdin: Option<StdinShown>,
    pub command: String,
    pub program: String,
    pub working_dir: Option<String>,
    pub run_as: Option<String>,
    pub rule: String,
    pub reason: Option<String>,
    /// Unix seconds.
    pub created: u64,
    pub deadline: u64,
}

impl PendingView {
    fn of(request: &ApprovalRequest) -> Self {
        let secs = |time: std::time::SystemTime| {
            time.duration_since(UNIX_EPOCH)
                .map_or(0, |since| since.as_secs())
        };
        Self {
            id: request.id.clone(),
            principal: request.principal.clone(),
            tool: request.tool.clone(),
            stdin: request.stdin.clone(),
            command: request.command.describe(),
            program: request.program.clone(),
            working_dir: request.working_dir.clone(),
            run_as: request.run_as.clone(),
            rule: request.rule.clone(),
            reason: request.reason.clone(),
            created: secs(request.created),
            deadline: secs(request.deadline),
        }
    }
}

/// The socket's path in `state_dir`.
pub fn path_in(state_dir: &Path) -> PathBuf {
    state_dir.join(SOCKET_NAME)
}

/// Bind the socket at `path` (replacing a stale one), owner-only.
pub fn bind(path: &Path) -> std::io::Result<UnixListener> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    match std::fs::remove_file(path) {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => return Err(error),
        _ => {}
    }
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

/// Answer connections on `listener` until `shutdown`; the socket file is removed then.
pub async fn serve(
    listener: UnixListener,
    path: PathBuf,
    approvals: Arc<Approvals>,
    shutdown: CancellationToken,
) {
    loop {
        let accepted = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let Ok((stream, _)) = accepted else {
            continue;
        };
        let approvals = approvals.clone();
        tokio::spawn(async move {
            let _ = tokio::time::timeout(READ_TIMEOUT, answer(stream, &approvals)).await;
        });
    }
    let _ = std::fs::remove_file(path);
}

async fn answer(stream: UnixStream, approvals: &Approvals) -> std::io::Result<()> {
    let credentials = stream.peer_cred()?;
    let own = nix::unistd::Uid::effective().as_raw();
    let uid = credentials.uid();
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    BufReader::new(read)
        .take(MAX_LINE)
        .read_line(&mut line)
        .await?;
    let answer = if uid != own && uid != 0 {
        refusal("only the server's own user or root may decide approvals")
    } else {
        match serde_json::from_str::<SocketRequest>(&line) {
            Ok(request) => handle(approvals, request, uid),
            Err(error) => refusal(&format!("not a request: {error}")),
        }
    };
    let mut text = serde_json::to_string(&answer).unwrap_or_default();
    text.push('\n');
    write.write_all(text.as_bytes()).await?;
    write.shutdown().await
}

fn refusal(error: &str) -> SocketAnswer {
    SocketAnswer {
        ok: false,
        error: Some(error.to_owned()),
        ..SocketAnswer::default()
    }
}

/// The Unix user who decides: the peer's name, and the sudo caller's for root.
fn decider_name(uid: u32, sudo_user: Option<&str>) -> String {
    let name = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
        .ok()
        .flatten()
        .map_or_else(|| format!("uid {uid}"), |user| user.name);
    match sudo_user.filter(|user| uid == 0 && !user.is_empty()) {
        Some(caller) => format!("unix:{name} (sudo by {caller})"),
        None => format!("unix:{name}"),
    }
}

fn handle(approvals: &Approvals, request: SocketRequest, uid: u32) -> SocketAnswer {
    let verdict = match request.op.as_str() {
        "list" => {
            return SocketAnswer {
                ok: true,
                pending: approvals
                    .broker
                    .list()
                    .iter()
                    .map(|request| PendingView::of(request))
                    .collect(),
                ..SocketAnswer::default()
            };
        }
        "approve" => Verdict::Approved,
        "deny" => Verdict::Denied,
        other => return refusal(&format!("unknown op {other:?}: list, approve or deny")),
    };
    let Some(id) = request.id else {
        return refusal("name the approval id");
    };
    let who = decider_name(uid, request.sudo_user.as_deref());
    let decided = Decided {
        verdict,
        decider: Decider {
            via: Via::Cli,
            who: who.clone(),
        },
    };
    match approvals.broker.decide(&id, decided) {
        Ok(_) => SocketAnswer {
            ok: true,
            decider: Some(who),
            ..SocketAnswer::default()
        },
        Err(error) => refusal(&error.to_string()),
    }
}
