//! CPU and memory of the lab's children.

use std::collections::HashMap;
use std::time::Instant;

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
///
/// A tick reads one file per process (`/proc/PID/stat`, with the `procfs`
/// crate): the sampler's own cost stays far below what it measures.
pub struct ProcessSampler {
    /// Per pid: CPU time in clock ticks at the previous call, and when.
    previous: HashMap<u32, (u64, Instant)>,
    ticks_per_second: f64,
    page_size: u64,
}

impl Default for ProcessSampler {
    fn default() -> Self {
        Self::new()
    }
}

impl ProcessSampler {
    pub fn new() -> Self {
        ProcessSampler {
            previous: HashMap::new(),
            ticks_per_second: procfs::ticks_per_second() as f64,
            page_size: procfs::page_size(),
        }
    }

    /// Reads `pids` and returns a reading for each one still there.
    pub fn measure(&mut self, pids: &[u32]) -> HashMap<u32, Reading> {
        let now = Instant::now();
        let mut readings = HashMap::new();
        for &pid in pids {
            let stat = i32::try_from(pid)
                .ok()
                .and_then(|p| procfs::process::Process::new(p).ok())
                .and_then(|p| p.stat().ok())
                .filter(|s| !matches!(s.state, 'Z' | 'X'));
            let Some(stat) = stat else {
                self.previous.remove(&pid);
                continue;
            };
            let cpu_ticks = stat.utime + stat.stime;
            let cpu = match self.previous.insert(pid, (cpu_ticks, now)) {
                Some((before_ticks, before)) => {
                    let wall = now.duration_since(before).as_secs_f64();
                    if wall > 0.0 {
                        cpu_ticks.saturating_sub(before_ticks) as f64 / self.ticks_per_second / wall
                            * 100.0
                    } else {
                        0.0
                    }
                }
                None => 0.0,
            };
            readings.insert(
                pid,
                Reading {
                    cpu,
                    rss: stat.rss * self.page_size,
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
