//! Several lab hosts on one database: which host executes a run, and its
//! lease on it.
//!
//! A run taken from the queue (or started by `mite-perf run`) names the
//! [`LabHost`] executing it and holds a lease (with an id of its own: a
//! [`Fence`] every write for the run carries) until [`LabHost::lease`]
//! from now on the database's clock. While it executes, [`keep_lease`]
//! renews the lease every few seconds and reads whether someone asked, on
//! any host, to cancel it; a lease lost, or not renewed for a whole lease
//! time, stops the run. A host decides whether one of its own runs is alive
//! from its own `/proc`; another host's run only from its lease: a run
//! whose lease ran out is abandoned (its host or its lab died), and its
//! processes, on that host, are left to that host's cleanup. "Its own"
//! means the same name on the same boot *in the same PID namespace*: two
//! containers sharing a host name cannot see each other's processes, so
//! they are two hosts.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::ports::LabPorts;
use crate::store::{Fence, LeaseState, Store};

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
pub struct LabHost {
    /// `name (boot 1a2b3c4d)`.
    pub id: String,
    /// The agent's name.
    pub name: String,
    pub lease: Duration,
    pub ports: LabPorts,
}

impl LabHost {
    /// The agent on this machine named after it, with the default ports.
    pub fn this() -> LabHost {
        LabHost::named(None, LabPorts::default())
    }

    /// The agent `name` (the host's name if `None`) on this machine, as it
    /// booted, in this PID namespace.
    pub fn named(name: Option<String>, ports: LabPorts) -> LabHost {
        let name = name.unwrap_or_else(host_name);
        let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
            .map(|b| b.trim().chars().take(8).collect::<String>())
            .unwrap_or_default();
        LabHost {
            id: format!("{name} (boot {boot}, pid ns {})", pid_namespace()),
            name,
            lease: LEASE,
            ports,
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

    /// Whether a run recorded with `lab_host` is this host's (runs from
    /// before hosts were recorded are).
    pub fn owns(&self, lab_host: Option<&str>) -> bool {
        lab_host.is_none_or(|h| h == self.id)
    }

    fn renew_every(&self) -> Duration {
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

/// Renews the lease `store` is fenced with while the returned task lives
/// (abort it, or drop the guard, when the run ends), and cancels `cancel`
/// when a cancel was asked on any host, when the lease is lost (another
/// agent marked the run interrupted: the fenced store refuses every later
/// write anyway), or when no renewal has succeeded for a whole lease time
/// (the database unreachable: another agent may soon take the run for
/// abandoned). A renewal the database refuses before that is logged and
/// tried again: the run goes on, its samples wait for the database anyway.
pub fn keep_lease(store: Store, host: LabHost, cancel: CancellationToken) -> LeaseGuard {
    let run_id = store.fence().map_or(0, |f: &Fence| f.run_id);
    let task = tokio::spawn(async move {
        let mut renewed = std::time::Instant::now();
        loop {
            match store.renew_lease(&host).await {
                Ok(LeaseState::Held) => renewed = std::time::Instant::now(),
                Ok(LeaseState::CancelAsked) => {
                    renewed = std::time::Instant::now();
                    tracing::info!("run {run_id}: a cancel was asked: stopping");
                    cancel.cancel();
                }
                Ok(LeaseState::Lost) => {
                    tracing::error!(
                        "run {run_id}: its lease was lost (another agent marked it interrupted, \
                         or it ended): stopping; nothing more is stored"
                    );
                    cancel.cancel();
                    return;
                }
                Err(e) if renewed.elapsed() >= host.lease => {
                    tracing::error!(
                        "run {run_id}: its lease could not be renewed for {} s ({e}): stopping, \
                         as another agent may take it for abandoned",
                        renewed.elapsed().as_secs()
                    );
                    cancel.cancel();
                }
                Err(e) => tracing::warn!("run {run_id}: cannot renew its lease: {e}"),
            }
            tokio::time::sleep(host.renew_every()).await;
        }
    });
    LeaseGuard(task)
}

/// Stops renewing a lease when dropped.
pub struct LeaseGuard(tokio::task::JoinHandle<()>);

impl Drop for LeaseGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_host_owns_its_runs_and_those_from_before_hosts() {
        let host = LabHost {
            id: "lab-a (boot 1234abcd)".into(),
            name: "lab-a".into(),
            lease: Duration::from_secs(8),
            ports: LabPorts::default(),
        };
        assert!(host.owns(Some("lab-a (boot 1234abcd)")));
        assert!(host.owns(None));
        assert!(!host.owns(Some("lab-b (boot 1234abcd)")));
        assert!(!host.owns(Some("lab-a (boot 99999999)")));
        assert_eq!(host.lease_ms(), 8_000);
        assert_eq!(host.renew_every(), Duration::from_secs(2));
        assert_eq!(LabHost::this().renew_every(), RENEW_AT_MOST_EVERY);
        let this = LabHost::this();
        assert!(
            this.id.contains("(boot ") && this.id.contains(", pid ns "),
            "{}",
            this.id
        );
        assert!(!this.id.contains("pid ns ?"), "{}", this.id);
        assert_eq!(LabHost::name_of(&this.id), this.name);
        assert_eq!(LabHost::name_of("lab-a (boot 1234abcd)"), "lab-a");
        assert_eq!(LabHost::name_of("lab-b"), "lab-b");
    }
}
