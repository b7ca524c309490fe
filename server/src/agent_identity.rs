//! Who an agent is: its name, the machine's boot and its PID namespace
//! (two containers sharing a host name are two agents: neither can see the
//! other's processes), its lease time and its five ports. A run names the
//! agent executing it by its id; an agent decides whether its own runs
//! live from its `/proc`, and another's only from their lease.

use std::time::Duration;

use crate::ports::LabPorts;

/// This machine's name.
pub fn host_name() -> String {
    sysinfo::System::host_name().unwrap_or_else(|| "unnamed-host".into())
}

/// How long a run's lease holds unless renewed: an agent silent this long
/// has its running run marked interrupted by another agent.
pub const LEASE: Duration = Duration::from_secs(30);
/// How often the executing host renews it at most (and reads a cancel
/// asked elsewhere: the longest a remote cancel waits).
const RENEW_AT_MOST_EVERY: Duration = Duration::from_secs(5);

/// A lab agent, the one thing that executes runs: its name (the host's
/// name unless given), the machine's boot (an agent whose machine rebooted
/// is another), and its ports. Two agents may share a machine when their
/// names and ports differ; each touches only its own runs and processes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentIdentity {
    /// `name (boot 1a2b3c4d)`.
    pub id: String,
    /// The agent's name.
    pub name: String,
    pub lease: Duration,
    pub ports: LabPorts,
    /// Bumped by the host's admin when the machine changed in a way its
    /// facts do not show: its runs start a new machine class (trends).
    pub machine_epoch: u32,
}

impl AgentIdentity {
    /// The agent on this machine named after it, with the default ports.
    pub fn this() -> AgentIdentity {
        AgentIdentity::named(None, LabPorts::default())
    }

    /// The agent `name` (the host's name if `None`) on this machine, as it
    /// booted, in this PID namespace.
    pub fn named(name: Option<String>, ports: LabPorts) -> AgentIdentity {
        let name = name.unwrap_or_else(host_name);
        let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
            .map(|b| b.trim().chars().take(8).collect::<String>())
            .unwrap_or_default();
        AgentIdentity {
            id: format!("{name} (boot {boot}, pid ns {})", pid_namespace()),
            name,
            lease: LEASE,
            ports,
            machine_epoch: 0,
        }
    }

    /// The lease time in milliseconds.
    pub fn lease_ms(&self) -> i64 {
        i64::try_from(self.lease.as_millis()).unwrap_or(i64::MAX)
    }

    /// The agent's name in an id (`name (boot …)`).
    pub fn name_of(id: &str) -> &str {
        id.rsplit_once(" (boot ").map_or(id, |(name, _)| name)
    }

    /// Whether a run recorded with `agent_id` is this host's (runs from
    /// before hosts were recorded are).
    pub fn owns(&self, agent_id: Option<&str>) -> bool {
        agent_id.is_none_or(|h| h == self.id)
    }

    /// How often its leases are renewed (and a cancel asked elsewhere read).
    pub fn renew_every(&self) -> Duration {
        (self.lease / 4).min(RENEW_AT_MOST_EVERY)
    }
}

/// This process's PID namespace (the inode of `/proc/self/ns/pid`).
fn pid_namespace() -> String {
    std::fs::read_link("/proc/self/ns/pid")
        .ok()
        .and_then(|link| {
            let link = link.to_string_lossy().into_owned();
            let inode = link.strip_prefix("pid:[")?.strip_suffix(']')?.to_string();
            Some(inode)
        })
        .unwrap_or_else(|| "?".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_host_owns_its_runs_and_those_from_before_hosts() {
        let host = AgentIdentity {
            id: "lab-a (boot 1234abcd)".into(),
            name: "lab-a".into(),
            lease: Duration::from_secs(8),
            ports: LabPorts::default(),
            machine_epoch: 0,
        };
        assert!(host.owns(Some("lab-a (boot 1234abcd)")));
        assert!(host.owns(None));
        assert!(!host.owns(Some("lab-b (boot 1234abcd)")));
        assert!(!host.owns(Some("lab-a (boot 99999999)")));
        assert_eq!(host.lease_ms(), 8_000);
        assert_eq!(host.renew_every(), Duration::from_secs(2));
        assert_eq!(AgentIdentity::this().renew_every(), RENEW_AT_MOST_EVERY);
        let this = AgentIdentity::this();
        assert!(
            this.id.contains("(boot ") && this.id.contains(", pid ns "),
            "{}",
            this.id
        );
        assert!(!this.id.contains("pid ns ?"), "{}", this.id);
        assert_eq!(AgentIdentity::name_of(&this.id), this.name);
        assert_eq!(AgentIdentity::name_of("lab-a (boot 1234abcd)"), "lab-a");
        assert_eq!(AgentIdentity::name_of("lab-b"), "lab-b");
    }
}
