//! Who holds a TCP port, read from Linux's `/proc` (no `lsof` needed).
//!
//! The lab uses this before a scenario (a busy port is an error naming its
//! holder), to know when a mite component is ready (it listens, or it has
//! connected), and after a scenario (the ports must be free again).

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::fs;
use std::path::Path;

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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TcpState {
    Established,
    Listen,
    Other,
}

#[derive(Debug, Clone)]
struct Socket {
    local_port: u16,
    remote_port: u16,
    state: TcpState,
    inode: u64,
}

fn parse_port(addr: &str) -> Option<u16> {
    let (_, port) = addr.rsplit_once(':')?;
    u16::from_str_radix(port, 16).ok()
}

/// Parses one `/proc/net/tcp` (or `tcp6`) table.
fn parse_tcp_table(text: &str) -> Vec<Socket> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.len() < 10 {
                return None;
            }
            let state = match fields[3] {
                "01" => TcpState::Established,
                "0A" => TcpState::Listen,
                _ => TcpState::Other,
            };
            Some(Socket {
                local_port: parse_port(fields[1])?,
                remote_port: parse_port(fields[2])?,
                state,
                inode: fields[9].parse().ok()?,
            })
        })
        .collect()
}

fn tcp_sockets() -> Vec<Socket> {
    ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|path| fs::read_to_string(path).ok())
        .flat_map(|text| parse_tcp_table(&text))
        .collect()
}

/// Socket inodes a process has open.
fn socket_inodes_of(pid: u32) -> HashSet<u64> {
    let Ok(entries) = fs::read_dir(format!("/proc/{pid}/fd")) else {
        return HashSet::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|entry| fs::read_link(entry.path()).ok())
        .filter_map(|target| {
            let target = target.to_string_lossy().into_owned();
            target
                .strip_prefix("socket:[")?
                .strip_suffix(']')?
                .parse()
                .ok()
        })
        .collect()
}

/// The command line of a process, as `ps` would show it.
pub fn command_of(pid: u32) -> String {
    let raw = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let cmd = raw
        .split(|b| *b == 0)
        .filter(|part| !part.is_empty())
        .map(|part| String::from_utf8_lossy(part).into_owned())
        .collect::<Vec<_>>()
        .join(" ");
    if cmd.is_empty() {
        fs::read_to_string(format!("/proc/{pid}/comm"))
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| "?".to_string())
    } else {
        cmd
    }
}

/// Maps socket inodes to the pids holding them, for the inodes asked about.
fn owners(inodes: &HashSet<u64>) -> HashMap<u64, u32> {
    let mut found = HashMap::new();
    if inodes.is_empty() {
        return found;
    }
    let Ok(procs) = fs::read_dir("/proc") else {
        return found;
    };
    for entry in procs.filter_map(Result::ok) {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
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
        .filter(|s| s.state == TcpState::Listen && s.local_port == port)
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
    tcp_sockets()
        .iter()
        .any(|s| s.state == TcpState::Listen && s.local_port == port && mine.contains(&s.inode))
}

/// Whether `pid` has an established connection to `port` on this machine.
pub fn is_connected_to(pid: u32, port: u16) -> bool {
    let mine = socket_inodes_of(pid);
    tcp_sockets().iter().any(|s| {
        s.state == TcpState::Established && s.remote_port == port && mine.contains(&s.inode)
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

/// Whether a pid exists right now (a zombie counts as gone).
pub fn pid_alive(pid: u32) -> bool {
    let path = format!("/proc/{pid}/stat");
    match fs::read_to_string(Path::new(&path)) {
        Ok(stat) => !matches!(stat_state(&stat), Some('Z') | Some('X') | None),
        Err(_) => false,
    }
}

fn stat_state(stat: &str) -> Option<char> {
    // The command is in parentheses and may contain spaces: the state follows the last ')'.
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().next()?.chars().next()
}

/// A process's start time in clock ticks after boot: with the pid, it names
/// one process for good (pids are reused, start times are not).
pub fn start_ticks(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 1..];
    // Field 22 overall is starttime; after the command, the state is field 3.
    after.split_whitespace().nth(19)?.parse().ok()
}

/// The process group of a pid.
pub fn process_group(pid: u32) -> Option<u32> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(2)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn parses_proc_net_tcp() {
        let text = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 0100007F:2692 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 12345 1 0000000000000000 100 0 0 10 0\n   1: 0100007F:D431 0100007F:37EF 01 00000000:00000000 00:00000000 00000000     0        0 678 1 0000000000000000 20 4 30 10 -1\n";
        let sockets = parse_tcp_table(text);
        assert_eq!(sockets.len(), 2);
        assert_eq!(sockets[0].local_port, 9874);
        assert_eq!(sockets[0].state, TcpState::Listen);
        assert_eq!(sockets[0].inode, 12345);
        assert_eq!(sockets[1].remote_port, 14319);
        assert_eq!(sockets[1].state, TcpState::Established);
    }

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

    #[test]
    fn reads_own_process_facts() {
        let me = std::process::id();
        assert!(pid_alive(me));
        assert!(start_ticks(me).is_some());
        assert!(process_group(me).is_some());
        assert!(command_of(me).contains("mite_perf"));
    }
}
