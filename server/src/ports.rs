//! Who holds a TCP port, read from Linux's `/proc` with the `procfs` crate
//! (no `lsof` needed).
//!
//! The lab uses this before a scenario (a busy port is an error naming its
//! holder), to know when a mite component is ready (it listens, or it has
//! connected), and after a scenario (the ports must be free again).

use std::collections::{HashMap, HashSet};
use std::fmt;

use procfs::net::{TcpNetEntry, TcpState};

use crate::os_process::command_of;

/// The ports a run uses, with what each one is for.
pub const LAB_PORTS: [(u16, &str); 4] = [
    (TARGET_PORT, "target HTTP server"),
    (CONTROLLER_PORT, "mite controller"),
    (MESSAGE_PORT, "mite message socket (duplicator in)"),
    (COLLECTOR_PORT, "mite collector socket (duplicator out)"),
];
pub const TARGET_PORT: u16 = 9898;
pub const CONTROLLER_PORT: u16 = 14301;
pub const MESSAGE_PORT: u16 = 14302;
pub const COLLECTOR_PORT: u16 = 14303;

/// A process that holds a socket.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Holder {
    /// `None` when the socket's owner could not be found (another user's process).
    pub pid: Option<u32>,
    pub command: String,
}

impl fmt::Display for Holder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.pid {
            Some(pid) => write!(f, "pid {pid} ({})", self.command),
            None => write!(f, "a process this user cannot see"),
        }
    }
}

fn tcp_sockets() -> Vec<TcpNetEntry> {
    let mut all = procfs::net::tcp().unwrap_or_default();
    all.extend(procfs::net::tcp6().unwrap_or_default());
    all
}

/// Socket inodes a process has open.
fn socket_inodes_of(pid: u32) -> HashSet<u64> {
    let Some(process) = i32::try_from(pid)
        .ok()
        .and_then(|pid| procfs::process::Process::new(pid).ok())
    else {
        return HashSet::new();
    };
    let Ok(fds) = process.fd() else {
        return HashSet::new();
    };
    fds.filter_map(Result::ok)
        .filter_map(|fd| match fd.target {
            procfs::process::FDTarget::Socket(inode) => Some(inode),
            _ => None,
        })
        .collect()
}

/// Maps socket inodes to the pids holding them, for the inodes asked about.
fn owners(inodes: &HashSet<u64>) -> HashMap<u64, u32> {
    let mut found = HashMap::new();
    if inodes.is_empty() {
        return found;
    }
    let Ok(all) = procfs::process::all_processes() else {
        return found;
    };
    for process in all.filter_map(Result::ok) {
        let Ok(pid) = u32::try_from(process.pid()) else {
            continue;
        };
        for inode in socket_inodes_of(pid) {
            if inodes.contains(&inode) {
                found.insert(inode, pid);
            }
        }
        if found.len() == inodes.len() {
            break;
        }
    }
    found
}

/// The processes listening on `port` (IPv4 or IPv6). Empty means the port is free.
pub fn listeners(port: u16) -> Vec<Holder> {
    let inodes: HashSet<u64> = tcp_sockets()
        .into_iter()
        .filter(|s| s.state == TcpState::Listen && s.local_address.port() == port)
        .map(|s| s.inode)
        .collect();
    let owners = owners(&inodes);
    let mut holders: Vec<Holder> = inodes
        .iter()
        .map(|inode| {
            let pid = owners.get(inode).copied();
            Holder {
                pid,
                command: pid.map(command_of).unwrap_or_default(),
            }
        })
        .collect();
    holders.sort_by_key(|h| h.pid);
    holders.dedup();
    holders
}

/// Whether `pid` listens on `port`.
pub fn is_listening(pid: u32, port: u16) -> bool {
    let mine = socket_inodes_of(pid);
    tcp_sockets().iter().any(|s| {
        s.state == TcpState::Listen && s.local_address.port() == port && mine.contains(&s.inode)
    })
}

/// Whether `pid` has an established connection to `port` on this machine.
pub fn is_connected_to(pid: u32, port: u16) -> bool {
    let mine = socket_inodes_of(pid);
    tcp_sockets().iter().any(|s| {
        s.state == TcpState::Established
            && s.remote_address.port() == port
            && mine.contains(&s.inode)
    })
}

/// The state of one of the lab's ports.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PortReport {
    pub port: u16,
    pub purpose: String,
    pub holders: Vec<Holder>,
}

/// The state of every port the lab uses.
pub fn lab_port_reports() -> Vec<PortReport> {
    LAB_PORTS
        .iter()
        .map(|(port, purpose)| PortReport {
            port: *port,
            purpose: (*purpose).to_string(),
            holders: listeners(*port),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn finds_this_process_listening_and_connected() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
        let port = listener.local_addr().expect("local addr").port();
        let me = std::process::id();
        let holders = listeners(port);
        assert_eq!(holders.len(), 1);
        assert_eq!(holders[0].pid, Some(me));
        assert!(is_listening(me, port));
        let _client = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
        assert!(is_connected_to(me, port));
        drop(listener);
        assert!(listeners(port).is_empty());
    }
}
