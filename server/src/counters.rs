//! The CPU's own count of the instructions a process executes, read with
//! `perf_event_open` (the `perf-event2` crate): user space only, every
//! thread of the process, at the sampler's ticks.
//!
//! A counter is opened for each thread the process has when it is first
//! seen, each inheriting to the threads it starts later (the kernel adds a
//! live child's count into its parent's when read), so the process's count
//! is the sum of its counters. Where the kernel exposes no hardware
//! counters (no `cpu` under `/sys/bus/event_source/devices`: most virtual
//! machines) there is nothing to read: the lab says so once, and counts
//! instructions only under Valgrind ([`domain::instrument`]). The same
//! code counts the task clock (nanoseconds of CPU), a software event every
//! kernel has, which is how its tests exercise the path a real host takes.

use std::collections::HashMap;
use std::sync::OnceLock;

use perf_event::events::{Hardware, Software};
use perf_event::{Builder, Counter};

/// What a counter counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// Instructions retired (a hardware counter).
    Instructions,
    /// Nanoseconds on a CPU (a software counter, everywhere).
    TaskClock,
}

#[derive(Debug, thiserror::Error)]
pub enum CounterError {
    #[error("cannot count {event:?} of process {pid}: {source}")]
    Open {
        event: Event,
        pid: u32,
        source: std::io::Error,
    },
    #[error("process {0} has no threads to count (it ended)")]
    Gone(u32),
}

/// Whether this host's kernel counts instructions for the lab (`Err` says
/// why not), found once and said once in the log.
pub fn hardware() -> &'static Result<(), String> {
    static FOUND: OnceLock<Result<(), String>> = OnceLock::new();
    FOUND.get_or_init(|| {
        let found = probe_hardware();
        match &found {
            Ok(()) => tracing::info!(
                "instructions per request counted by the CPU's counters (perf_event_open)"
            ),
            Err(why) => tracing::info!(
                "no instructions counted by the CPU here ({why}): they are counted under \
                 Valgrind only (`run --valgrind --requests N`)"
            ),
        }
        found
    })
}

fn probe_hardware() -> Result<(), String> {
    if !std::path::Path::new("/sys/bus/event_source/devices/cpu").exists() {
        return Err("the kernel exposes no hardware counters: no `cpu` under \
                    /sys/bus/event_source/devices"
            .into());
    }
    let mut counter = Builder::new(Hardware::INSTRUCTIONS)
        .observe_self()
        .any_cpu()
        .build()
        .map_err(|e| format!("perf_event_open refused to count instructions: {e}"))?;
    counter
        .read()
        .map(|_| ())
        .map_err(|e| format!("an instructions counter cannot be read: {e}"))
}

/// One process's counters, one per thread it had when first seen.
pub struct ProcessCounter {
    pid: u32,
    threads: Vec<Counter>,
}

impl ProcessCounter {
    /// Opens and starts counting `event` in every thread of `pid`.
    pub fn open(pid: u32, event: Event) -> Result<Self, CounterError> {
        let tasks =
            std::fs::read_dir(format!("/proc/{pid}/task")).map_err(|_| CounterError::Gone(pid))?;
        let mut threads = Vec::new();
        for task in tasks.flatten() {
            let Some(tid) = task
                .file_name()
                .to_str()
                .and_then(|t| t.parse::<i32>().ok())
            else {
                continue;
            };
            let mut builder = match event {
                Event::Instructions => Builder::new(Hardware::INSTRUCTIONS),
                Event::TaskClock => Builder::new(Software::TASK_CLOCK),
            };
            let opened = builder
                .observe_pid(tid)
                .any_cpu()
                .inherit(true)
                .enabled(true)
                .build();
            match opened {
                Ok(counter) => threads.push(counter),
                // A thread that ended meanwhile has nothing left to count.
                Err(e) if e.raw_os_error() == Some(nix::libc::ESRCH) => {}
                Err(source) => return Err(CounterError::Open { event, pid, source }),
            }
        }
        if threads.is_empty() {
            return Err(CounterError::Gone(pid));
        }
        Ok(ProcessCounter { pid, threads })
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The count so far, every thread together (`None` if a counter could
    /// not be read).
    pub fn read(&mut self) -> Option<u64> {
        let mut total = 0u64;
        for counter in &mut self.threads {
            total = total.checked_add(counter.read().ok()?)?;
        }
        Some(total)
    }
}

/// The counters of a scenario's processes, opened as each is first seen.
#[derive(Default)]
pub struct Counters {
    event: Option<Event>,
    open: HashMap<u32, ProcessCounter>,
    /// Processes that could not be counted (not tried again).
    refused: Vec<u32>,
}

impl Counters {
    /// Counters of `event`, or none at all (`None`: a host without them).
    pub fn new(event: Option<Event>) -> Self {
        Counters {
            event,
            ..Counters::default()
        }
    }

    /// Whether anything is counted (a host with counters).
    pub fn is_counting(&self) -> bool {
        self.event.is_some()
    }

    /// Each of `pids`' count so far (opening counters for those not seen
    /// before: a process is counted from then on).
    pub fn read(&mut self, pids: &[u32]) -> HashMap<u32, u64> {
        let Some(event) = self.event else {
            return HashMap::new();
        };
        let mut counts = HashMap::new();
        for &pid in pids {
            if self.refused.contains(&pid) {
                continue;
            }
            let counter = match self.open.entry(pid) {
                std::collections::hash_map::Entry::Occupied(open) => open.into_mut(),
                std::collections::hash_map::Entry::Vacant(slot) => {
                    match ProcessCounter::open(pid, event) {
                        Ok(counter) => slot.insert(counter),
                        Err(e) => {
                            tracing::warn!("{e}");
                            self.refused.push(pid);
                            continue;
                        }
                    }
                }
            };
            if let Some(count) = counter.read() {
                counts.insert(pid, count);
            }
        }
        counts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// CPU seconds of `pid` so far, from /proc (user + system).
    fn cpu_seconds(pid: u32) -> f64 {
        let stat = procfs::process::Process::new(pid as i32)
            .expect("process")
            .stat()
            .expect("stat");
        (stat.utime + stat.stime) as f64 / procfs::ticks_per_second() as f64
    }

    /// The path a host with counters takes, on the task clock: a Python
    /// process whose only busy thread starts after the counters opened
    /// (inherited) is counted as /proc says it ran. Without inheritance
    /// the count would be near zero: the main thread only waits.
    #[test]
    fn a_process_is_counted_in_every_thread_even_those_it_starts_later() {
        use std::io::{BufRead, Write};
        let script = "import threading, time, sys\n\
                      def spin():\n    while time.thread_time() < 1.0:\n        pass\n\
                      print('ready', flush=True)\n\
                      sys.stdin.readline()\n\
                      t = threading.Thread(target=spin); t.start(); t.join()\n\
                      print('spun', flush=True)\n\
                      sys.stdin.readline()\n";
        let mut child = std::process::Command::new("python3")
            .args(["-c", script])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("python3");
        let pid = child.id();
        let mut stdout = std::io::BufReader::new(child.stdout.take().expect("stdout"));
        let mut said = String::new();
        stdout
            .read_line(&mut said)
            .expect("it says when it is ready");
        assert_eq!(said.trim(), "ready");
        let mut counters = Counters::new(Some(Event::TaskClock));
        let before_cpu = cpu_seconds(pid);
        let before = counters.read(&[pid])[&pid];
        // Go: it starts its thread now, after the counters opened.
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(b"go\n").expect("go");
        said.clear();
        stdout
            .read_line(&mut said)
            .expect("it says when it has spun");
        assert_eq!(said.trim(), "spun");
        let counted = (counters.read(&[pid])[&pid] - before) as f64 / 1e9;
        let ran = cpu_seconds(pid) - before_cpu;
        stdin.write_all(b"done\n").expect("done");
        let _ = child.wait();
        // The new thread spun for one CPU second (its own clock): counted
        // with the rest, as /proc's coarser ticks roughly agree.
        assert!(
            (0.95..1.25).contains(&counted),
            "counted {counted:.3} s of CPU for a thread that spun 1 s"
        );
        assert!(
            (counted / ran - 1.0).abs() < 0.2,
            "counted {counted:.2} s of CPU, /proc says {ran:.2} s"
        );
    }

    #[test]
    fn a_host_without_hardware_counters_says_why() {
        let has_cpu_pmu = std::path::Path::new("/sys/bus/event_source/devices/cpu").exists();
        match hardware() {
            Ok(()) => assert!(has_cpu_pmu),
            Err(why) => {
                assert!(!why.is_empty());
                if !has_cpu_pmu {
                    assert!(why.contains("no hardware counters"), "{why}");
                }
            }
        }
        // Without counters nothing is read, and nothing fails.
        assert!(Counters::new(None).read(&[std::process::id()]).is_empty());
        // A process that is gone is refused once, then passed over.
        let mut counters = Counters::new(Some(Event::TaskClock));
        assert!(counters.read(&[u32::MAX - 1]).is_empty());
        assert_eq!(counters.refused, [u32::MAX - 1]);
    }
}
