//! The end of every scenario, however it ended: stop every child in two
//! stages, record how each ended, bound the collector's data, and check
//! the ports are free again.

use super::verdict::PortsHeld;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::model::CollectorKeep;
use crate::ports;
use crate::ports::{LabPorts, Tables};
use crate::reports;

/// How long the ports may take to be free after the children stopped.
const PORTS_FREE_TIMEOUT: Duration = Duration::from_secs(5);

/// Trims the scenario's collector data to what the run keeps.
pub fn bound_collector_data(collector_dir: &Path, keep: CollectorKeep) {
    reports::collector::trim(collector_dir, keep, true);
}

/// Waits until none of the lab's ports has a listener in `tables` (the
/// host's, or a sandboxed scenario's own network); the error names who
/// holds them.
pub async fn wait_ports_free(ports: &LabPorts, tables: Tables) -> Result<(), PortsHeld> {
    let deadline = Instant::now() + PORTS_FREE_TIMEOUT;
    loop {
        // Who holds them is looked up only for the error: that reads every
        // process's open files.
        if ports::listened(ports, tables).is_empty() {
            return Ok(());
        }
        if Instant::now() > deadline {
            let held = held_ports(ports, tables, "is still held by");
            if held.is_empty() {
                return Ok(());
            }
            return Err(PortsHeld(held));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `port N (purpose) <verb> pid …` for every lab port with a listener in
/// `tables`.
pub fn held_ports(ports: &LabPorts, tables: Tables, verb: &str) -> Vec<String> {
    ports::lab_port_reports(ports, tables)
        .into_iter()
        .filter(|r| !r.holders.is_empty())
        .map(|r| {
            let who: Vec<String> = r.holders.iter().map(ToString::to_string).collect();
            format!("port {} ({}) {verb} {}", r.port, r.purpose, who.join(", "))
        })
        .collect()
}
