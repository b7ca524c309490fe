//! CPU and memory of the lab's children, read with sysinfo.

use std::collections::HashMap;
use std::time::Instant;

use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, System};

/// One reading of one process.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reading {
    /// Percent of one core since the previous reading (can exceed 100).
    pub cpu: f64,
    /// Resident set size in bytes.
    pub rss: u64,
}

/// Reads CPU and RSS of a few processes. CPU is the CPU time a process used
/// between two consecutive calls over the wall time between them, so call
/// [`ProcessSampler::measure`] once when the processes start, then at every tick.
pub struct ProcessSampler {
    system: System,
    /// Per pid: accumulated CPU milliseconds at the previous call, and when.
    previous: HashMap<u32, (u64, Instant)>,
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
            previous: HashMap::new(),
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
        let now = Instant::now();
        let mut readings = HashMap::new();
        for pid in &wanted {
            let Some(process) = self.system.process(*pid) else {
                self.previous.remove(&pid.as_u32());
                continue;
            };
            let cpu_ms = process.accumulated_cpu_time();
            // sysinfo's own cpu_usage() reads 0 until a process has used a
            // clock tick before the previous refresh: a young process would
            // read idle at its first tick. Deltas of CPU time do not.
            let cpu = match self.previous.insert(pid.as_u32(), (cpu_ms, now)) {
                Some((before_ms, before)) => {
                    let wall_ms = now.duration_since(before).as_secs_f64() * 1000.0;
                    if wall_ms > 0.0 {
                        cpu_ms.saturating_sub(before_ms) as f64 / wall_ms * 100.0
                    } else {
                        0.0
                    }
                }
                None => 0.0,
            };
            readings.insert(
                pid.as_u32(),
                Reading {
                    cpu,
                    rss: process.memory(),
                },
            );
        }
        readings
    }
}

/// The lab's own cost so far: CPU seconds (user + system) and peak RSS in bytes.
pub fn own_usage() -> Option<(f64, u64)> {
    use nix::sys::resource::{getrusage, UsageWho};
    let usage = getrusage(UsageWho::RUSAGE_SELF).ok()?;
    let seconds = |t: nix::sys::time::TimeVal| t.tv_sec() as f64 + t.tv_usec() as f64 / 1e6;
    Some((
        seconds(usage.user_time()) + seconds(usage.system_time()),
        (usage.max_rss().max(0) as u64) * 1024,
    ))
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
        assert!(
            reading.cpu > 40.0 && reading.cpu < 110.0,
            "cpu {reading:?} over {elapsed:?}"
        );
        assert!(reading.rss > 0);
        assert!(
            sampler.measure(&[pid]).is_empty(),
            "a dead process has no reading"
        );
    }
}
