//! CPU and memory of the lab's children, read with sysinfo.

use std::collections::HashMap;

use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, System};

/// One reading of one process.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reading {
    /// Percent of one core since the previous reading (can exceed 100).
    pub cpu: f64,
    /// Resident set size in bytes.
    pub rss: u64,
}

/// Reads CPU and RSS of a few processes. CPU is measured between two
/// consecutive calls, so call [`ProcessSampler::measure`] once when a process
/// starts and then at every tick.
pub struct ProcessSampler {
    system: System,
}

impl Default for ProcessSampler {
    fn default() -> Self {
        Self::new()
    }
}

impl ProcessSampler {
    pub fn new() -> Self {
        ProcessSampler {
            system: System::new(),
        }
    }

    /// Refreshes only `pids` (cheap) and returns a reading for each one still there.
    pub fn measure(&mut self, pids: &[u32]) -> HashMap<u32, Reading> {
        let wanted: Vec<Pid> = pids.iter().map(|p| Pid::from_u32(*p)).collect();
        self.system.refresh_processes_specifics(
            ProcessesToUpdate::Some(&wanted),
            true,
            ProcessRefreshKind::nothing().with_cpu().with_memory(),
        );
        wanted
            .iter()
            .filter_map(|pid| {
                let process = self.system.process(*pid)?;
                Some((
                    pid.as_u32(),
                    Reading {
                        cpu: f64::from(process.cpu_usage()),
                        rss: process.memory(),
                    },
                ))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn busy_process_reads_near_one_core() {
        let mut child = std::process::Command::new("/bin/sh")
            .args(["-c", "while :; do :; done"])
            .spawn()
            .expect("spawn a busy loop");
        let pid = child.id();
        let mut sampler = ProcessSampler::new();
        sampler.measure(&[pid]);
        let start = Instant::now();
        std::thread::sleep(Duration::from_millis(1000));
        let readings = sampler.measure(&[pid]);
        let elapsed = start.elapsed();
        let _ = child.kill();
        let _ = child.wait();
        let reading = readings.get(&pid).expect("a reading for the busy loop");
        // One busy thread: close to 100 % of one core (the machine may be loaded).
        assert!(reading.cpu > 40.0 && reading.cpu < 110.0, "cpu {reading:?} over {elapsed:?}");
        assert!(reading.rss > 0);
        assert!(sampler.measure(&[pid]).is_empty(), "a dead process has no reading");
    }
}
