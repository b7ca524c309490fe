//! CPU, memory, threads, files, scheduling and IO of the lab's children.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::model::ProcessDetail;

/// The shortest interval a CPU figure is computed over. The kernel counts
/// CPU time in clock ticks (10 ms at 100 Hz): over a millisecond one tick
/// reads as 1,000 %. A reading closer than this to the previous one (the
/// closing sample a scenario takes right after a tick) is measured from
/// the reading before that instead, so its figure covers a long enough
/// interval. It is the shortest sampling interval a run may ask for, so
/// regular ticks are never merged.
pub const MIN_CPU_INTERVAL: Duration = crate::model::MIN_INTERVAL;

/// One reading of one process.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reading {
    /// Percent of one core over at least [`MIN_CPU_INTERVAL`] up to this
    /// reading, at most 100 % per thread and per core.
    pub cpu: f64,
    /// Resident set size in bytes.
    pub rss: u64,
    /// The rest of what `/proc` says; `None` at a process's first reading
    /// (its counters need an interval) or when `/proc` would not say.
    pub detail: Option<ProcessDetail>,
}

/// Where a process's CPU figures are measured from: its last reading, and
/// the one before (for a reading too close to the last).
#[derive(Debug, Clone, Copy)]
struct CpuWindow {
    last: (Instant, u64),
    before: Option<(Instant, u64)>,
}

impl CpuWindow {
    fn new(at: Instant, ticks: u64) -> Self {
        CpuWindow {
            last: (at, ticks),
            before: None,
        }
    }

    /// The ticks counted and the seconds passed up to a reading at `at`
    /// (`ticks` in all): since the last reading, or since the one before
    /// when the last is closer than [`MIN_CPU_INTERVAL`]. The window moves
    /// on to this reading unless it was that close.
    fn read(&mut self, at: Instant, ticks: u64) -> (u64, f64) {
        let since_last = at.saturating_duration_since(self.last.0);
        let from = match self.before {
            Some(before) if since_last < MIN_CPU_INTERVAL => before,
            _ => self.last,
        };
        if since_last >= MIN_CPU_INTERVAL || self.before.is_none() {
            self.before = Some(self.last);
            self.last = (at, ticks);
        }
        (
            ticks.saturating_sub(from.1),
            at.saturating_duration_since(from.0).as_secs_f64(),
        )
    }
}

/// Percent of one core from `ticks` clock ticks over `wall` seconds, at
/// most what `threads` threads on `cores` cores can use (a tick counted
/// at an interval's edge can otherwise put a busy thread a little past
/// 100 %).
pub fn cpu_percent(
    ticks: u64,
    ticks_per_second: f64,
    wall: f64,
    threads: i64,
    cores: usize,
) -> f64 {
    if wall <= 0.0 || ticks_per_second <= 0.0 {
        return 0.0;
    }
    let most = 100.0 * threads.clamp(1, cores.max(1) as i64) as f64;
    (ticks as f64 / ticks_per_second / wall * 100.0).min(most)
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
    cpu: HashMap<u32, CpuWindow>,
    ticks_per_second: f64,
    page_size: u64,
    cores: usize,
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
            cpu: HashMap::new(),
            ticks_per_second: procfs::ticks_per_second() as f64,
            page_size: procfs::page_size(),
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
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
                self.cpu.remove(&pid);
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
            let cpu = match self.cpu.get_mut(&pid) {
                Some(window) => {
                    let (ticks, wall) = window.read(now, counters.cpu_ticks);
                    cpu_percent(
                        ticks,
                        self.ticks_per_second,
                        wall,
                        stat.num_threads,
                        self.cores,
                    )
                }
                None => {
                    self.cpu
                        .insert(pid, CpuWindow::new(now, counters.cpu_ticks));
                    0.0
                }
            };
            let detail = match self.previous.insert(pid, counters) {
                Some(before) => {
                    let wall = now.duration_since(before.at).as_secs_f64();
                    (|| {
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
                    })()
                }
                None => None,
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
    /// Like a process's, a reading closer than [`MIN_CPU_INTERVAL`] to the
    /// previous one says nothing (and the next is measured from that one).
    pub fn measure(&mut self) -> Option<f64> {
        use procfs::CurrentSI;
        let now = Instant::now();
        if self
            .previous
            .is_some_and(|(_, at)| now.saturating_duration_since(at) < MIN_CPU_INTERVAL)
        {
            return None;
        }
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

    /// A process of 1 to 4 threads, each busy a share of the time, whose
    /// CPU time the kernel counts in 100 Hz ticks, read at random moments,
    /// many of them a millisecond or two apart: no figure is ever above
    /// what its threads and the cores can use, and each is within a tick's
    /// worth of the truth over its window.
    #[test]
    fn no_reading_is_impossible_whatever_the_tick_timings() {
        use proptest::prelude::*;
        let config = ProptestConfig {
            cases: 300,
            ..ProptestConfig::default()
        };
        proptest!(config, |(
            threads in 1i64..=4,
            busy in 0.0f64..=1.0,
            cores in 1usize..=4,
            phase in 0.0f64..1.0,
            gaps in proptest::collection::vec(prop_oneof![1u64..=3, 1u64..=2000], 1..40),
        )| {
            const HZ: f64 = 100.0;
            let origin = Instant::now();
            // CPU seconds used by time t; the kernel shows whole ticks.
            let used = |t: f64| t * busy * threads.min(cores as i64) as f64;
            let ticks_at = |t: f64| (used(t) * HZ + phase).floor() as u64;
            let mut window = CpuWindow::new(origin, ticks_at(0.0));
            let mut t_ms = 0u64;
            for gap in gaps {
                t_ms += gap;
                let t = t_ms as f64 / 1000.0;
                let at = origin + Duration::from_millis(t_ms);
                let (ticks, wall) = window.read(at, ticks_at(t));
                let cpu = cpu_percent(ticks, HZ, wall, threads, cores);
                let most = 100.0 * threads.min(cores as i64) as f64;
                prop_assert!(cpu <= most + 1e-9, "{cpu} % with {threads} threads on {cores} cores");
                prop_assert!(cpu >= 0.0);
                // Only the first reading may cover less than the minimum.
                if wall >= MIN_CPU_INTERVAL.as_secs_f64() {
                    let truth = busy * most;
                    let tick_error = 100.0 / HZ / wall;
                    prop_assert!(
                        (cpu - truth).abs() <= tick_error + 1e-9 || cpu == most,
                        "{cpu} % against {truth} % over {wall} s"
                    );
                }
            }
        });
    }

    /// The row found in a default run's samples.csv: the one-thread target
    /// at 1,071.9 % in a closing sample taken 1 ms after a tick.
    #[test]
    fn a_closing_sample_right_after_a_tick_is_measured_with_the_interval_before() {
        const HZ: f64 = 100.0;
        let origin = Instant::now();
        let at = |ms: u64| origin + Duration::from_millis(ms);
        // One thread, busy all the time: a tick every 10 ms, the 101st
        // counted just after the tick at 1,000 ms.
        let mut window = CpuWindow::new(at(0), 0);
        let (ticks, wall) = window.read(at(1000), 100);
        assert_eq!(cpu_percent(ticks, HZ, wall, 1, 2), 100.0);
        let (ticks, wall) = window.read(at(1001), 101);
        assert_eq!(
            (ticks, wall),
            (101, 1.001),
            "measured from the reading before"
        );
        let cpu = cpu_percent(ticks, HZ, wall, 1, 2);
        assert!((99.0..=100.0).contains(&cpu), "{cpu}");
        // The old way: one tick over one millisecond.
        assert_eq!(cpu_percent(1, HZ, 0.001, 64, 64), 1000.0);
        // Regular ticks move the window on.
        let (ticks, wall) = window.read(at(2000), 200);
        assert_eq!((ticks, wall), (100, 1.0));
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
