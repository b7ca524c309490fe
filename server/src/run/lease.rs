//! Several lab hosts on one database: which host executes a run, and its
//! lease on it.
//!
//! A run taken from the queue (or started by `mite-perf run`) names the
//! [`LabHost`] executing it and holds a lease until [`LabHost::lease`] from
//! now. While it executes, [`keep_lease`] renews the lease every few seconds
//! and reads whether someone asked, on any host, to cancel it. A host decides
//! whether one of its own runs is alive from its own `/proc`; another
//! host's run only from its lease: a run whose lease ran out is abandoned
//! (its host or its lab died), and its processes, on that host, are left to
//! that host's cleanup.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::ports::LabPorts;
use crate::store::Store;

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

    /// The agent `name` (the host's name if `None`) on this machine, as it booted.
    pub fn named(name: Option<String>, ports: LabPorts) -> LabHost {
        let name = name.unwrap_or_else(host_name);
        let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
            .map(|b| b.trim().chars().take(8).collect::<String>())
            .unwrap_or_default();
        LabHost {
            id: format!("{name} (boot {boot})"),
            name,
            lease: LEASE,
            ports,
        }
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

    /// When a lease taken or renewed now ends (ms since the epoch).
    pub fn lease_end(&self, now_ms: i64) -> i64 {
        now_ms.saturating_add(i64::try_from(self.lease.as_millis()).unwrap_or(i64::MAX))
    }

    fn renew_every(&self) -> Duration {
        (self.lease / 4).min(RENEW_AT_MOST_EVERY)
    }
}

/// Renews run `run_id`'s lease while the returned task lives (abort it, or
/// drop the guard, when the run ends), and cancels `cancel` when a cancel
/// was asked on any host. A renewal the database refuses is logged and
/// tried again: the run goes on, its samples wait for the database anyway.
pub fn keep_lease(
    store: Store,
    run_id: i64,
    host: LabHost,
    cancel: CancellationToken,
) -> LeaseGuard {
    let task = tokio::spawn(async move {
        loop {
            match store.renew_lease(run_id, &host).await {
                Ok(true) => {
                    tracing::info!("run {run_id}: a cancel was asked: stopping");
                    cancel.cancel();
                }
                Ok(false) => {}
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
        assert_eq!(host.lease_end(1_000), 9_000);
        assert_eq!(host.renew_every(), Duration::from_secs(2));
        assert_eq!(LabHost::this().renew_every(), RENEW_AT_MOST_EVERY);
        assert!(LabHost::this().id.contains("(boot "));
        assert_eq!(LabHost::name_of("lab-a (boot 1234abcd)"), "lab-a");
        assert_eq!(LabHost::name_of("lab-b"), "lab-b");
    }
}
