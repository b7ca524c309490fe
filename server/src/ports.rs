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

/// The five ports a run uses: the target's, mite's three sockets, and the
/// duplicator's output the lab reads mite's messages from. Each lab agent
/// has its own set (`--ports`), so two agents can share a machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LabPorts {
    pub target: u16,
    pub controller: u16,
    /// The duplicator's input: runners and the controller send here.
    pub message: u16,
    /// The duplicator's output: the collector reads here.
    pub collector: u16,
    /// The duplicator's output of the lab's own: its bus reader reads here.
    pub bus: u16,
}

impl Default for LabPorts {
    /// The ports of mite's own performance tests.
    fn default() -> Self {
        LabPorts {
            target: 9898,
            controller: 14301,
            message: 14302,
            collector: 14303,
            bus: 14304,
        }
    }
}

impl LabPorts {
    /// Each port with what it is for.
    pub fn purposes(&self) -> [(u16, &'static str); 5] {
        [
            (self.target, "target HTTP server"),
            (self.controller, "mite controller"),
            (self.message, "mite message socket (duplicator in)"),
            (self.collector, "mite collector socket (duplicator out)"),
            (self.bus, "the lab's bus reader (duplicator out)"),
        ]
    }
}

impl fmt::Display for LabPorts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{},{},{},{},{}",
            self.target, self.controller, self.message, self.collector, self.bus
        )
    }
}

/// Why `--ports` cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortsError {
    #[error("`{0}` is not a port (1 to 65535)")]
    NotAPort(String),
    #[error("no port follows {0} for the bus reader: give five")]
    NoneAfter(u16),
    #[error(
        "give five ports, TARGET,CONTROLLER,MESSAGE,COLLECTOR,BUS (default {}), \
         or four (the bus reader then takes COLLECTOR+1), not {given}",
        LabPorts::default()
    )]
    Count { given: usize },
    #[error("the five ports must differ: {0}")]
    Repeated(String),
}

impl std::str::FromStr for LabPorts {
    type Err = PortsError;

    /// `TARGET,CONTROLLER,MESSAGE,COLLECTOR,BUS`, five different ports; with
    /// four, the bus reader's is the collector's plus one.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let ports: Vec<u16> = text
            .split(',')
            .map(|p| {
                p.trim()
                    .parse::<u16>()
                    .ok()
                    .filter(|p| *p > 0)
                    .ok_or_else(|| PortsError::NotAPort(p.trim().to_string()))
            })
            .collect::<Result<_, _>>()?;
        let (target, controller, message, collector, bus) = match ports[..] {
            [t, c, m, col, bus] => (t, c, m, col, bus),
            [t, c, m, col] => (
                t,
                c,
                m,
                col,
                col.checked_add(1).ok_or(PortsError::NoneAfter(col))?,
            ),
            _ => return Err(PortsError::Count { given: ports.len() }),
        };
        let all = [target, controller, message, collector, bus];
        let distinct: HashSet<u16> = all.iter().copied().collect();
        if distinct.len() < all.len() {
            return Err(PortsError::Repeated(all.map(|p| p.to_string()).join(",")));
        }
        Ok(LabPorts {
            target,
            controller,
            message,
            collector,
            bus,
        })
    }
}

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

/// Whether a socket of the tables listens on `port`.
fn listens_on(socket: &TcpNetEntry, port: u16) -> bool {
    socket.state == TcpState::Listen && socket.local_address.port() == port
}

/// Whose socket tables: the host's (this process's network), or those of
/// the network a process is in (a sandboxed scenario's own: see
/// [`crate::sandbox::net`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tables {
    Host,
    Of(u32),
}

fn tcp_sockets(tables: Tables) -> Vec<TcpNetEntry> {
    match tables {
        Tables::Host => {
            let mut all = procfs::net::tcp().unwrap_or_default();
            all.extend(procfs::net::tcp6().unwrap_or_default());
            all
        }
        Tables::Of(pid) => {
            let Some(process) = i32::try_from(pid)
                .ok()
                .and_then(|pid| procfs::process::Process::new(pid).ok())
            else {
                return Vec::new();
            };
            let mut all = process.tcp().unwrap_or_default();
            all.extend(process.tcp6().unwrap_or_default());
            all
        }
    }
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
    listeners_among(&tcp_sockets(Tables::Host), port)
}

/// The processes listening on `port` among `sockets` (the machine's socket
/// tables, read once for several ports: after a scenario they hold
/// thousands of closed connections, and each read walks them all).
fn listeners_among(sockets: &[TcpNetEntry], port: u16) -> Vec<Holder> {
    let inodes: HashSet<u64> = sockets
        .iter()
        .filter(|s| listens_on(s, port))
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

/// Whether `pid` listens on every one of `ports` (the socket tables read once).
///
/// Reading the machine's socket tables costs the kernel milliseconds (it
/// walks every bucket of its connection table, about 7 ms here, charged to
/// the lab), so they are read only once `pid` holds a socket for each
/// port: a Python component importing its modules holds none, and readiness
/// is polled every 50 ms.
pub fn is_listening(pid: u32, ports: &[u16]) -> bool {
    let mine = socket_inodes_of(pid);
    if mine.len() < ports.len() {
        return false;
    }
    let sockets = tcp_sockets(Tables::Of(pid));
    ports.iter().all(|port| {
        sockets
            .iter()
            .any(|s| listens_on(s, *port) && mine.contains(&s.inode))
    })
}

/// Whether something in `pid`'s network listens on `port` (the port was
/// free there before, so it is what `pid` started).
pub fn is_listened_near(pid: u32, port: u16) -> bool {
    tcp_sockets(Tables::Of(pid))
        .iter()
        .any(|s| listens_on(s, port))
}

/// Whether `pid` has an established connection to `port` in its network.
pub fn is_connected_to(pid: u32, port: u16) -> bool {
    let mine = socket_inodes_of(pid);
    // As for listening: the tables only once it holds a socket.
    if mine.is_empty() {
        return false;
    }
    tcp_sockets(Tables::Of(pid)).iter().any(|s| {
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

/// The ports of a set that have a listener in `tables` (read once, and
/// nobody looked up: that scans every process's files).
pub fn listened(ports: &LabPorts, tables: Tables) -> Vec<u16> {
    let sockets = tcp_sockets(tables);
    ports
        .purposes()
        .iter()
        .map(|(port, _)| *port)
        .filter(|port| sockets.iter().any(|s| listens_on(s, *port)))
        .collect()
}

/// The state of every port of a set in `tables`.
pub fn lab_port_reports(ports: &LabPorts, tables: Tables) -> Vec<PortReport> {
    let sockets = tcp_sockets(tables);
    ports
        .purposes()
        .iter()
        .map(|(port, purpose)| PortReport {
            port: *port,
            purpose: (*purpose).to_string(),
            holders: listeners_among(&sockets, *port),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn port_sets_are_five_different_ports() {
        assert_eq!(
            "9898,14301,14302,14303,14304".parse(),
            Ok(LabPorts::default())
        );
        // Four: the bus reader's port follows the collector's.
        assert_eq!("9898,14301,14302,14303".parse(), Ok(LabPorts::default()));
        let other: LabPorts = " 19898, 24301,24302 ,24303".parse().expect("valid");
        assert_eq!(
            (other.target, other.collector, other.bus),
            (19898, 24303, 24304)
        );
        assert_eq!(other.to_string(), "19898,24301,24302,24303,24304");
        assert!("9898,14301,14302,14303,14302".parse::<LabPorts>().is_err());
        assert!("9898,14301,14302,65535".parse::<LabPorts>().is_err());
        assert!("9898,14301,14302".parse::<LabPorts>().is_err());
        assert!("9898,14301,14302,9898".parse::<LabPorts>().is_err());
        assert!("9898,0,14302,14303".parse::<LabPorts>().is_err());
        assert!("9898,x,14302,14303".parse::<LabPorts>().is_err());
    }

    #[test]
    fn finds_this_process_listening_and_connected() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
        let port = listener.local_addr().expect("local addr").port();
        let me = std::process::id();
        let holders = listeners(port);
        assert_eq!(holders.len(), 1);
        assert_eq!(holders[0].pid, Some(me));
        assert!(is_listening(me, &[port]));
        let _client = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
        assert!(is_connected_to(me, port));
        drop(listener);
        assert!(listeners(port).is_empty());
    }

    #[test]
    fn a_process_without_sockets_is_not_ready_and_listened_ports_are_named() {
        // A child that holds no socket (as a Python component importing
        // its modules): neither listening nor connected, tables unread.
        let mut sleeper = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("sleep");
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
        let port = listener.local_addr().expect("local addr").port();
        assert!(!is_listening(sleeper.id(), &[port]));
        assert!(!is_connected_to(sleeper.id(), port));
        let _ = sleeper.kill();
        let _ = sleeper.wait();
        // (The other ports of the set may be another test's.)
        let ports = LabPorts {
            target: port,
            ..LabPorts::default()
        };
        assert!(listened(&ports, Tables::Host).contains(&port));
        drop(listener);
        // A child another test forks meanwhile holds a copy of the socket
        // until it execs: free within moments.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while listened(&ports, Tables::Host).contains(&port) {
            assert!(
                std::time::Instant::now() < deadline,
                "{port} still listened"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}
