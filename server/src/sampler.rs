//! CPU, memory, threads, files, scheduling and IO of the lab's children.

use std::collections::HashMap;
use std::time::Instant;

use crate::model::ProcessDetail;

/// One reading of one process.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reading {
    /// Percent of one core since the previous reading (can exceed 100).
    pub cpu: f64,
    /// Resident set size in bytes.
    pub rss: u64,
    /// The rest of what `/proc` says; `None` at a process's first reading
    /// (its counters need an interval) or when `/proc` would not say.
    pub detail: Option<ProcessDetail>,
}

/// A process's counters at a reading, for the next one's differences.
#[derive(Debug, Clone, Copy)]
struct Counters {
    at: Instant,
    cpu_ticks: u64,
    /// Its main thread's nanoseconds waiting for a CPU, and switches.
    run_delay_ns: Option<u64>,
    voluntary: Option<u64>,
    involuntary: Option<u64>,
    read_bytes: Option<u64>,
    write_bytes: Option<u64>,
}

/// Reads a few processes. CPU is the CPU time a process used between two
/// consecutive calls over the wall time between them, so call
/// [`ProcessSampler::measure`] once when the processes start, then at
/// every tick; the counters of [`ProcessDetail`] are differences likewise.
///
/// A tick reads a few small files per process (`stat`, `status`,
/// `schedstat`, `io` and the `fd` folder under `/proc/PID`, with the
/// `procfs` crate): the sampler's own cost stays far below what it measures
/// (BENCHMARKS.md, the lab's overhead).
pub struct ProcessSampler {
    previous: HashMap<u32, Counters>,
    ticks_per_second: f64,
    page_size: u64,
}

impl Default for ProcessSampler {
    fn default() -> Self {
        Self::new()
    }
}

/// `after - before` as an i64 (0 when a counter went backwards).
fn since(after: Option<u64>, before: Option<u64>) -> Option<i64> {
    Some(after?.saturating_sub(before?) as i64)
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
        let mut readings = HashMap::new();
        for &pid in pids {
            let process = i32::try_from(pid)
                .ok()
                .and_then(|p| procfs::process::Process::new(p).ok());
            let stat = process
                .as_ref()
                .and_then(|p| p.stat().ok())
                .filter(|s| !matches!(s.state, 'Z' | 'X'));
            let (Some(process), Some(stat)) = (process, stat) else {
                self.previous.remove(&pid);
                continue;
            };
            let now = Instant::now();
            let status = process.status().ok();
            let io = process.io().ok();
            let counters = Counters {
                at: now,
                cpu_ticks: stat.utime + stat.stime,
                run_delay_ns: process.schedstat().ok().map(|s| s.run_delay),
                voluntary: status.as_ref().and_then(|s| s.voluntary_ctxt_switches),
                involuntary: status.as_ref().and_then(|s| s.nonvoluntary_ctxt_switches),
                read_bytes: io.as_ref().map(|io| io.read_bytes),
                write_bytes: io.as_ref().map(|io| io.write_bytes),
            };
            let fds = process.fd_count().ok();
            let (cpu, detail) = match self.previous.insert(pid, counters) {
                Some(before) => {
                    let wall = now.duration_since(before.at).as_secs_f64();
                    let cpu = if wall > 0.0 {
                        counters.cpu_ticks.saturating_sub(before.cpu_ticks) as f64
                            / self.ticks_per_second
                            / wall
                            * 100.0
                    } else {
                        0.0
                    };
                    let detail = (|| {
                        let waited = since(counters.run_delay_ns, before.run_delay_ns)?;
                        Some(ProcessDetail {
                            threads: stat.num_threads,
                            fds: fds? as i64,
                            cpu_wait: if wall > 0.0 {
                                waited as f64 / 1e9 / wall * 100.0
                            } else {
                                0.0
                            },
                            voluntary_switches: since(counters.voluntary, before.voluntary)?,
                            involuntary_switches: since(counters.involuntary, before.involuntary)?,
                            read_bytes: since(counters.read_bytes, before.read_bytes)?,
                            write_bytes: since(counters.write_bytes, before.write_bytes)?,
                        })
                    })();
                    (cpu, detail)
                }
                None => (0.0, None),
            };
            readings.insert(
                pid,
                Reading {
                    cpu,
                    rss: stat.rss * self.page_size,
                    detail,
                },
            );
        }
        readings
    }
}

/// The whole machine's busy CPU (soft interrupts left out), from
/// `/proc/stat`: percent of one core since the previous call (up to 100
/// times the cores).
pub struct MachineSampler {
    previous: Option<(u64, Instant)>,
    ticks_per_second: f64,
}

impl Default for MachineSampler {
    fn default() -> Self {
        Self::new()
    }
}

impl MachineSampler {
    pub fn new() -> Self {
        MachineSampler {
            previous: None,
            ticks_per_second: procfs::ticks_per_second() as f64,
        }
    }

    /// Busy CPU since the previous call; `None` at the first call, or when
    /// `/proc/stat` cannot be read.
    pub fn measure(&mut self) -> Option<f64> {
        use procfs::CurrentSI;
        let now = Instant::now();
        let total = procfs::KernelStats::current().ok()?.total;
        // Soft interrupts are left out: on loopback they are mostly the
        // kernel carrying the lab's own traffic, not another load.
        let busy = total.user
            + total.nice
            + total.system
            + total.irq.unwrap_or(0)
            + total.steal.unwrap_or(0);
        let (before, at) = self.previous.replace((busy, now))?;
        let wall = now.duration_since(at).as_secs_f64();
        (wall > 0.0)
            .then(|| busy.saturating_sub(before) as f64 / self.ticks_per_second / wall * 100.0)
    }
}

/// The machine's CPU beyond the lab's processes (percent of one core): what
/// the machine used less what the lab itself and its children used.
pub fn other_cpu(machine: f64, lab_processes: impl IntoIterator<Item = f64>) -> f64 {
    (machine - lab_processes.into_iter().sum::<f64>()).max(0.0)
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
        let detail = reading.detail.expect("threads, files, scheduling and IO");
        assert_eq!(detail.threads, 1);
        // stdin, stdout and stderr at least.
        assert!(detail.fds >= 3, "{detail:?}");
        assert!((0.0..=100.0).contains(&detail.cpu_wait), "{detail:?}");
        // A busy loop is preempted, never waits.
        assert!(detail.involuntary_switches > 0, "{detail:?}");
        assert!(
            detail.voluntary_switches <= detail.involuntary_switches,
            "{detail:?}"
        );
        assert!(
            sampler.measure(&[pid]).is_empty(),
            "a dead process has no reading"
        );
    }

    #[test]
    fn a_busy_loop_shows_in_the_machine_reading_and_not_as_other_load() {
        let mut child = std::process::Command::new("/bin/sh")
            .args(["-c", "while :; do :; done"])
            .spawn()
            .expect("spawn a busy loop");
        let pid = child.id();
        let mut machine = MachineSampler::new();
        let mut sampler = ProcessSampler::new();
        assert_eq!(machine.measure(), None, "the first call has no interval");
        sampler.measure(&[pid]);
        std::thread::sleep(Duration::from_millis(1000));
        let busy = machine.measure().expect("a reading");
        let loop_cpu = sampler.measure(&[pid])[&pid].cpu;
        let _ = child.kill();
        let _ = child.wait();
        assert!(busy >= loop_cpu * 0.9, "machine {busy} < loop {loop_cpu}");
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        assert!(busy <= cores * 100.0 + 5.0, "{busy}");
        assert_eq!(other_cpu(150.0, [100.0, 20.0]), 30.0);
        assert_eq!(other_cpu(50.0, [100.0]), 0.0);
    }
}
