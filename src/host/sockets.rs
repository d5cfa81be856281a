//! Sockets: TCP and UDP over IPv4 and IPv6 (/proc/net/{tcp,tcp6,udp,udp6}, through
//! procfs) with the process that owns each (the socket's inode found among the
//! `/proc/PID/fd` links). Owners are found only for processes this server may inspect
//! (its own user's, or all when it runs as root); the others' sockets have no owner.

use std::collections::{HashMap, HashSet};

use serde::Serialize;

use super::HostError;

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
}

/// What [`sockets`] found.
#[derive(Debug, Clone, Default, Serialize, schemars::JsonSchema)]
pub struct Sockets {
    /// TCP sockets listening and UDP sockets bound without a peer.
    pub listening: Vec<Socket>,
    /// Every other socket (connections and their closing states).
    pub connections: Vec<Socket>,
}

/// Every TCP and UDP socket of this network namespace: listeners by local port,
/// connections established first, then by local port.
pub fn sockets() -> Result<Sockets, HostError> {
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
    let wanted: HashSet<u64> = tcp
        .iter()
        .map(|entry| entry.inode)
        .chain(udp.iter().map(|entry| entry.inode))
        .filter(|inode| *inode != 0)
        .collect();
    let owners = owners(&wanted);
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
            &owners,
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
            &owners,
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
    owners: &HashMap<u64, (i32, String)>,
) -> Socket {
    let owner = owners.get(&inode);
    Socket {
        protocol: protocol.to_owned(),
        state: state.to_owned(),
        local: local.to_string(),
        remote: remote.to_string(),
        local_port: local.port(),
        uid,
        pid: owner.map(|(pid, _)| *pid),
        process: owner.map(|(_, name)| name.clone()),
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

/// Socket inode to (pid, process name) for the `wanted` inodes, over the processes whose
/// fds can be read; the scan stops once every wanted inode has its owner (a socket in
/// TIME_WAIT has inode 0 and no owner at all).
fn owners(wanted: &HashSet<u64>) -> HashMap<u64, (i32, String)> {
    let mut owners = HashMap::new();
    let Ok(processes) = procfs::process::all_processes() else {
        return owners;
    };
    for process in processes.filter_map(Result::ok) {
        if owners.len() == wanted.len() {
            break;
        }
        let Ok(fds) = process.fd() else { continue };
        let mut name = None;
        for fd in fds.filter_map(Result::ok) {
            if let procfs::process::FDTarget::Socket(inode) = fd.target
                && wanted.contains(&inode)
            {
                let name = name.get_or_insert_with(|| {
                    process.stat().map(|stat| stat.comm).unwrap_or_default()
                });
                owners.entry(inode).or_insert((process.pid(), name.clone()));
            }
        }
    }
    owners
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
