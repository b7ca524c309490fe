//! The end of every scenario, however it ended: stop every child in two
//! stages, record how each ended, bound the collector's data, and check
//! the ports are free again.

use std::path::Path;
use std::time::{Duration, Instant};

use super::launch::Children;
use crate::model::CollectorKeep;
use crate::ports;
use crate::ports::LabPorts;
use crate::reports;
use crate::store::{persistently, Store, STOP_PATH_PATIENCE};
use crate::supervisor::{self, Supervised, STOP_GRACE};

/// How long the ports may take to be free after the children stopped.
const PORTS_FREE_TIMEOUT: Duration = Duration::from_secs(5);

/// Stops the children and records their ends. A failed write is logged, not
/// fatal: the children are stopped either way, and `cleanup` closes any
/// record left open.
pub async fn stop_children(store: &Store, children: &mut Children) {
    stop_children_within(store, children, STOP_GRACE).await;
}

/// [`stop_children`], with `grace` between the polite signal and SIGKILL.
pub async fn stop_children_within(store: &Store, children: &mut Children, grace: Duration) {
    let (mut stopped, ids): (Vec<Supervised>, Vec<i64>) = children
        .list
        .drain(..)
        .map(|l| (l.child, l.record_id))
        .unzip();
    supervisor::stop_all(&mut stopped, grace).await;
    for (child, id) in stopped.iter_mut().zip(ids) {
        let exit = child
            .try_exit()
            .map(|s| supervisor::describe_exit(&s))
            .unwrap_or_else(|| "did not end after SIGKILL".to_string());
        if let Err(e) = persistently(STOP_PATH_PATIENCE, || store.end_process(id, &exit)).await {
            tracing::error!(
                "cannot record how the {} (pid {}) ended: {e}",
                child.kind,
                child.pid
            );
        }
    }
}

/// Trims the scenario's collector data to what the run keeps.
pub fn bound_collector_data(collector_dir: &Path, keep: CollectorKeep) {
    reports::collector::trim(collector_dir, keep, true);
}

/// Waits until none of the lab's ports has a listener; the error names who holds them.
pub async fn wait_ports_free(ports: &LabPorts) -> Result<(), String> {
    let deadline = Instant::now() + PORTS_FREE_TIMEOUT;
    loop {
        let held = held_ports(ports, "is still held by");
        if held.is_empty() {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(held.join("; "));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `port N (purpose) <verb> pid …` for every lab port with a listener.
pub fn held_ports(ports: &LabPorts, verb: &str) -> Vec<String> {
    ports::lab_port_reports(ports)
        .into_iter()
        .filter(|r| !r.holders.is_empty())
        .map(|r| {
            let who: Vec<String> = r.holders.iter().map(ToString::to_string).collect();
            format!("port {} ({}) {verb} {}", r.port, r.purpose, who.join(", "))
        })
        .collect()
}
