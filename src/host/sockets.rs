//! Sockets: TCP and UDP over IPv4 and IPv6 (/proc/net/{tcp,tcp6,udp,udp6}, through
//! procfs) with the process that owns each (the socket's inode found among the
//! `/proc/PID/fd` links). Owners are found only for processes this server may inspect
//! (its own user's, or all when it runs as root); the others' sockets have no owner.
//!
//! Finding owners is the costly part (every open file of every process is a `readlink`,
//! as for `ss -p`), so [`sockets_shown`] looks them up only for the sockets a caller
//! shows, and the walk over the processes ends once each of those has its owner.
//!
//! Between calls the server remembers ([`OwnerMemory`], one per server process) which
//! process owned each socket, and which sockets no visible process held. A remembered
//! owner is checked again on every call (its fds are read; a socket it no longer holds is
//! searched for like a new one), so it is never served stale. A socket the last full
//! walk found no owner for (a kernel socket, another namespace's or, without root,
//! another user's process) is not searched for again for [`UNOWNED_RECHECK`]: without
//! this, one such socket made every call walk every open file of every process. A
//! socket is keyed by its inode, which the kernel does not reuse while the socket lives.

use std::{
    collections::{HashMap, HashSet},
    time::{Duration, Instant},
};

use parking_lot::Mutex;

use serde::Serialize;

use super::{HostError, proc_dir::ProcDir};

/// One socket.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Socket {
    /// `tcp` or `udp` (either family).
    pub protocol: String,
    /// `listen`, `established`, `time_wait`, ... (UDP: `unconnected` or `established`).
    pub state: String,
    pub local: String,
    pub remote: String,
    pub local_port: u16,
    pub uid: u32,
    /// The owning process, when found.
    pub pid: Option<i32>,
    pub process: Option<String>,
    /// The socket's inode (0 for one no file refers to, such as TIME_WAIT).
    #[serde(skip)]
    pub inode: u64,
}

/// What [`sockets`] found.
#[derive(Debug, Clone, Default, Serialize, schemars::JsonSchema)]
pub struct Sockets {
    /// TCP sockets listening and UDP sockets bound without a peer.
    pub listening: Vec<Socket>,
    /// Every other socket (connections and their closing states).
    pub connections: Vec<Socket>,
}

/// Every TCP and UDP socket of this network namespace, each with its owner: listeners by
/// local port, connections established first, then by local port.
pub fn sockets() -> Result<Sockets, HostError> {
    sockets_shown(usize::MAX).map(|(found, _)| found)
}

/// The listeners and the first `max_connections` connections (in [`sockets`]' order),
/// with their owners, and the number of connections in all.
pub fn sockets_shown(max_connections: usize) -> Result<(Sockets, usize), HostError> {
    let mut found = unowned()?;
    let total = found.connections.len();
    found.connections.truncate(max_connections);
    let wanted: HashSet<u64> = found
        .listening
        .iter()
        .chain(&found.connections)
        .map(|socket| socket.inode)
        .filter(|inode| *inode != 0)
        .collect();
    let owners = owners(&wanted);
    for socket in found.listening.iter_mut().chain(&mut found.connections) {
        if let Some((pid, name)) = owners.get(&socket.inode) {
            socket.pid = Some(*pid);
            socket.process = Some(name.clone());
        }
    }
    Ok((found, total))
}

/// Every socket, sorted, no owner looked up yet.
fn unowned() -> Result<Sockets, HostError> {
    let tcp: Vec<_> = procfs::net::tcp()
        .map_err(HostError::proc("net/tcp"))?
        .into_iter()
        .chain(procfs::net::tcp6().unwrap_or_default())
        .collect();
    let udp: Vec<_> = procfs::net::udp()
        .map_err(HostError::proc("net/udp"))?
        .into_iter()
        .chain(procfs::net::udp6().unwrap_or_default())
        .collect();
    let mut found = Sockets::default();
    for entry in tcp {
        let state = tcp_state(&entry.state);
        let socket = socket(
            "tcp",
            state,
            &entry.local_address,
            &entry.remote_address,
            entry.uid,
            entry.inode,
        );
        if matches!(entry.state, procfs::net::TcpState::Listen) {
            found.listening.push(socket);
        } else {
            found.connections.push(socket);
        }
    }
    for entry in udp {
        let connected = entry.remote_address.port() != 0;
        let state = if connected {
            "established"
        } else {
            "unconnected"
        };
        let socket = socket(
            "udp",
            state,
            &entry.local_address,
            &entry.remote_address,
            entry.uid,
            entry.inode,
        );
        if connected {
            found.connections.push(socket);
        } else {
            found.listening.push(socket);
        }
    }
    found
        .listening
        .sort_by_key(|s| (s.local_port, s.local.clone()));
    // Established first: closing states (TIME_WAIT above all) are the long tail.
    found
        .connections
        .sort_by_key(|s| (s.state != "established", s.local_port, s.remote.clone()));
    Ok(found)
}

fn socket(
    protocol: &str,
    state: &str,
    local: &std::net::SocketAddr,
    remote: &std::net::SocketAddr,
    uid: u32,
    inode: u64,
) -> Socket {
    Socket {
        protocol: protocol.to_owned(),
        state: state.to_owned(),
        local: local.to_string(),
        remote: remote.to_string(),
        local_port: local.port(),
        uid,
        pid: None,
        process: None,
        inode,
    }
}

fn tcp_state(state: &procfs::net::TcpState) -> &'static str {
    use procfs::net::TcpState as S;
    match state {
        S::Established => "established",
        S::SynSent => "syn_sent",
        S::SynRecv => "syn_recv",
        S::FinWait1 => "fin_wait1",
        S::FinWait2 => "fin_wait2",
        S::TimeWait => "time_wait",
        S::Close => "close",
        S::CloseWait => "close_wait",
        S::LastAck => "last_ack",
        S::Listen => "listen",
        S::Closing => "closing",
        S::NewSynRecv => "new_syn_recv",
    }
}

/// How long a socket no visible process held is left unsearched.
pub const UNOWNED_RECHECK: Duration = Duration::from_secs(30);

/// What the last calls learnt about owners; see the module doc.
#[derive(Debug, Default)]
struct OwnerMemory {
    /// Socket inode to the pid that held it.
    owners: HashMap<u64, i32>,
    /// Socket inode to when a full walk found no owner for it.
    unowned: HashMap<u64, Instant>,
}

static MEMORY: Mutex<Option<OwnerMemory>> = Mutex::new(None);

/// Socket inode to (pid, process name) for the `wanted` inodes, over the processes whose
/// fds can be read: first the remembered owners, checked; then, for what is left (less
/// the sockets recently found unowned), every process in pid order until each has its
/// owner. A socket in TIME_WAIT has inode 0 and no owner at all. Where several processes
/// share a socket (a parent and the children it forked), the first found is named: the
/// remembered one, else the lowest pid.
fn owners(wanted: &HashSet<u64>) -> HashMap<u64, (i32, String)> {
    let mut owners = HashMap::new();
    if wanted.is_empty() {
        return owners;
    }
    let Ok(mut proc) = ProcDir::open() else {
        return owners;
    };
    let mut guard = MEMORY.lock();
    let memory = guard.get_or_insert_with(OwnerMemory::default);
    let remembered: HashSet<i32> = wanted
        .iter()
        .filter_map(|inode| memory.owners.get(inode).copied())
        .collect();
    for pid in remembered {
        look_in(&mut proc, pid, wanted, &mut owners);
    }
    let now = Instant::now();
    let missing: HashSet<u64> = wanted
        .iter()
        .filter(|inode| !owners.contains_key(*inode))
        .filter(|inode| {
            memory
                .unowned
                .get(*inode)
                .is_none_or(|since| now.saturating_duration_since(*since) >= UNOWNED_RECHECK)
        })
        .copied()
        .collect();
    if !missing.is_empty() {
        for pid in proc.pids().unwrap_or_default() {
            if missing.iter().all(|inode| owners.contains_key(inode)) {
                break;
            }
            look_in(&mut proc, pid, wanted, &mut owners);
        }
        for inode in missing.iter().filter(|inode| !owners.contains_key(*inode)) {
            memory.unowned.insert(*inode, now);
        }
    }
    memory.owners = owners
        .iter()
        .map(|(inode, (pid, _))| (*inode, *pid))
        .collect();
    memory.unowned.retain(|inode, _| wanted.contains(inode));
    owners
}

/// Add to `owners` the `wanted` sockets `pid` holds that have no owner yet.
fn look_in(
    proc: &mut ProcDir,
    pid: i32,
    wanted: &HashSet<u64>,
    owners: &mut HashMap<u64, (i32, String)>,
) {
    let mut name = None;
    for inode in proc.socket_inodes(pid) {
        if wanted.contains(&inode) && !owners.contains_key(&inode) {
            let name = name
                .get_or_insert_with(|| proc.stat(pid).map(|stat| stat.comm).unwrap_or_default());
            owners.insert(inode, (pid, name.clone()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listener_of_this_process_is_found_with_its_owner() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let client = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        let client_port = client.local_addr().unwrap().port();
        let found = sockets().unwrap();
        let me = std::process::id() as i32;
        let listening = found
            .listening
            .iter()
            .find(|s| s.local_port == port)
            .unwrap();
        assert_eq!(listening.pid, Some(me));
        assert_eq!(listening.state, "listen");
        // Near miss: the client's end is a connection, not a listener.
        let connection = found
            .connections
            .iter()
            .find(|s| s.local_port == client_port)
            .unwrap();
        assert_eq!(connection.state, "established");
        assert_eq!(connection.remote, format!("127.0.0.1:{port}"));
        assert_eq!(connection.pid, Some(me));
        assert!(found.listening.iter().all(|s| s.local_port != client_port));
        // With no connection shown, the listener still has its owner and the
        // connections are counted.
        let (shown, total) = sockets_shown(0).unwrap();
        assert!(shown.connections.is_empty() && total >= 2);
        let listening = shown.listening.iter().find(|s| s.local_port == port);
        assert_eq!(listening.unwrap().pid, Some(me));
    }

    #[test]
    fn listeners_match_ss() {
        let output = std::process::Command::new("ss")
            .args(["-H", "-ltn"])
            .output()
            .unwrap();
        let text = String::from_utf8(output.stdout).unwrap();
        let found = sockets().unwrap();
        for line in text.lines() {
            let local = line.split_whitespace().nth(3).unwrap();
            let port: u16 = local.rsplit(':').next().unwrap().parse().unwrap();
            // A listener of a test running beside this one may close in between: only
            // the ones still open after the read must be there.
            let still_open = std::process::Command::new("ss")
                .args(["-H", "-ltn", &format!("sport = :{port}")])
                .output()
                .unwrap();
            if still_open.stdout.is_empty() {
                continue;
            }
            assert!(
                found
                    .listening
                    .iter()
                    .any(|s| s.local_port == port && s.protocol == "tcp"),
                "port {port} not in {:?}",
                found.listening
            );
        }
    }
}
