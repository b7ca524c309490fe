//! Sampling a scenario: at every tick, read each running child's CPU and
//! memory and the target's request count, turn the readings into samples
//! (a pure function), hand them to the sink, and see who has ended.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use super::sink::SampleSink;
use super::verdict::{exit_message, judge_exits, Ending, Failure, TickVerdict};
use super::{RunEvent, RunObserver, LOG_TAIL_LINES};
use crate::bus::BusReader;
use crate::children::Children;
use crate::clock::now_ms;
use crate::counters::{Counters, Event};
use crate::figures::RunningFigures;
use crate::model::{ProcessKind, Sample};
use crate::reports;
use crate::sampler::{other_cpu, MachineSampler, ProcessSampler, Reading};
use crate::store::SampleBatch;
use crate::target::RequestCounter;
use domain::instrument::CounterReading;

/// The target's count, turned into what samples carry: requests since the
/// scenario started, and since the previous tick.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RequestTally {
    baseline: u64,
    previous: u64,
}

impl RequestTally {
    /// Starts counting from the target's count `baseline`.
    pub fn new(baseline: u64) -> Self {
        RequestTally {
            baseline,
            previous: 0,
        }
    }

    /// `(served since the start, served since the previous tick)` for a raw
    /// count, if the target reported one.
    pub fn observe(&mut self, raw: Option<u64>) -> (Option<u64>, Option<u64>) {
        let Some(raw) = raw else {
            return (None, None);
        };
        let served = raw.saturating_sub(self.baseline);
        let in_interval = served.saturating_sub(self.previous);
        self.previous = served;
        (Some(served), Some(in_interval))
    }
}

/// One tick's samples: a sample for each running child that has a reading;
/// request counts go on the target's (`http`) sample only.
pub fn tick_samples(
    at_ms: i64,
    elapsed: Duration,
    running: &[(ProcessKind, u32)],
    readings: &HashMap<u32, Reading>,
    served: (Option<u64>, Option<u64>),
) -> Vec<Sample> {
    running
        .iter()
        .filter_map(|(kind, pid)| {
            let reading = readings.get(pid)?;
            let is_target = *kind == ProcessKind::Target;
            let on_target = |n: Option<u64>| n.filter(|_| is_target).map(|n| n as i64);
            Some(Sample {
                process: *kind,
                pid: i64::from(*pid),
                at_ms,
                elapsed_ms: elapsed.as_millis() as i64,
                cpu: reading.cpu,
                mem: reading.rss as i64,
                requests: on_target(served.0),
                requests_in_interval: on_target(served.1),
                detail: reading.detail,
            })
        })
        .collect()
}

/// What sampling needs from the scenario.
pub struct SamplingContext<'a> {
    pub scenario_id: i64,
    pub position: usize,
    pub interval: Duration,
    pub duration: Duration,
    /// How long past its duration the controller may take to end.
    pub controller_grace: Duration,
    pub collector_dir: &'a std::path::Path,
    pub collector_keep: crate::model::CollectorKeep,
    pub observer: &'a dyn RunObserver,
    pub sink: &'a SampleSink,
    /// mite's own account, counted from its bus: stored with the samples
    /// (none when the run leaves the bus unread).
    pub bus: Option<&'a BusReader>,
    /// Whether to read the CPU's instruction counters of mite's processes
    /// at the ticks (a host that has them, and not under Valgrind).
    pub count_instructions: bool,
}

/// One tick's measuring, shared by the ticks of the loop and the last one.
struct Ticker<'a, 'b> {
    ctx: &'a SamplingContext<'b>,
    start: Instant,
    sampler: ProcessSampler,
    /// The machine's busy CPU, for the load beyond the lab's processes.
    machine: MachineSampler,
    tally: RequestTally,
    count_wait: Duration,
    figures_every: u64,
    ticks: u64,
    /// The CPU's instruction counters of mite's processes (nothing read on
    /// a host without them, or under Valgrind).
    counters: Counters,
}

impl Ticker<'_, '_> {
    /// Reads the instruction counters of mite's processes (the target is
    /// not mite) and keeps each reading for the steady window's figure.
    fn read_counters(
        &mut self,
        running: &[(ProcessKind, u32)],
        elapsed: Duration,
        figures: &mut RunningFigures,
    ) {
        let mite: Vec<u32> = running
            .iter()
            .filter(|(kind, _)| *kind != ProcessKind::Target)
            .map(|(_, pid)| *pid)
            .collect();
        let counts = self.counters.read(&mite);
        for (kind, pid) in running {
            if let Some(&count) = counts.get(pid) {
                figures.add_counter_reading(CounterReading {
                    process: *kind,
                    pid: i64::from(*pid),
                    elapsed_ms: elapsed.as_millis() as i64,
                    count,
                });
            }
        }
    }

    /// Measures every running child and the target's count, and hands the
    /// samples (with mite's intervals that are complete) to the sink.
    async fn tick(
        &mut self,
        children: &mut Children,
        counter: &mut RequestCounter,
        figures: &mut RunningFigures,
    ) -> Result<(), Failure> {
        let ctx = self.ctx;
        self.ticks += 1;
        let at_ms = now_ms();
        let elapsed = self.start.elapsed();
        let served = self.tally.observe(counter.count(self.count_wait).await);
        let running = children.running();
        let mut pids: Vec<u32> = running.iter().map(|(_, pid)| *pid).collect();
        // The lab itself is one of the lab's processes.
        pids.push(std::process::id());
        let readings = self.sampler.measure(&pids);
        if let Some(machine) = self.machine.measure() {
            figures.add_other_cpu(other_cpu(machine, readings.values().map(|r| r.cpu)));
        }
        let samples = tick_samples(at_ms, elapsed, &running, &readings, served);
        for s in &samples {
            figures.add(s);
        }
        if self.counters.is_counting() {
            self.read_counters(&running, elapsed, figures);
        }
        // The live figures go with the samples about once a second (the
        // final ones are stored when the scenario ends).
        let with_figures = self.ticks == 1 || self.ticks.is_multiple_of(self.figures_every);
        let bus = ctx
            .bus
            .map(|reader| reader.take_ready(at_ms))
            .unwrap_or_default();
        ctx.sink
            .push(SampleBatch {
                scenario_id: ctx.scenario_id,
                samples,
                figures: with_figures.then(|| figures.figures()),
                bus: (!bus.is_empty()).then_some(bus),
            })
            .map_err(|overflow| Failure::new(overflow.to_string()))?;
        ctx.observer.event(RunEvent::Tick {
            position: ctx.position,
            elapsed,
            requests_per_second: served.1.unwrap_or(0) as f64 / ctx.interval.as_secs_f64(),
            requests: served.0.unwrap_or(0),
        });
        if self.ticks.is_multiple_of(5) {
            reports::collector::trim(ctx.collector_dir, ctx.collector_keep, false);
        }
        Ok(())
    }
}

/// Samples until the controller ends (or the run is cancelled, a child
/// fails, the deadline passes, or the samples can no longer be kept).
/// Returns the scenario's figures so far along with how it ended.
pub async fn sample(
    ctx: &SamplingContext<'_>,
    children: &mut Children,
    counter: &mut RequestCounter,
    cancel: &CancellationToken,
    figures: &mut RunningFigures,
) -> Result<Ending, Failure> {
    let start = Instant::now();
    if let Some(reader) = ctx.bus {
        reader.set_origin(now_ms());
    }
    let mut sampler = ProcessSampler::new();
    let mut pids = children.pids();
    pids.push(std::process::id());
    sampler.measure(&pids);
    let mut machine = MachineSampler::new();
    machine.measure();
    let count_wait = (ctx.interval / 2).min(Duration::from_millis(200));
    let tally = RequestTally::new(counter.count(count_wait).await.unwrap_or(0));
    let interval_ms = ctx.interval.as_millis() as i64;
    let mut ticker = Ticker {
        ctx,
        start,
        sampler,
        machine,
        tally,
        count_wait,
        figures_every: (1000 / interval_ms.max(1)).max(1) as u64,
        ticks: 0,
        counters: Counters::new(ctx.count_instructions.then_some(Event::Instructions)),
    };

    let mut clock = tokio::time::interval_at(
        tokio::time::Instant::from_std(start + ctx.interval),
        ctx.interval,
    );
    clock.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let deadline = start + ctx.duration + ctx.controller_grace;
    loop {
        tokio::select! {
            due = clock.tick() => {
                crate::metrics::metrics().tick_lag(due.elapsed().as_secs_f64());
            }
            _ = cancel.cancelled() => return Ok(Ending::Cancelled),
        }
        ticker.tick(children, counter, figures).await?;

        match judge_exits(&children.exits()) {
            TickVerdict::Continue => {}
            TickVerdict::ControllerDone => {
                // The runners say goodbye after the controller; give them a
                // moment, then count what their last journeys were served.
                let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
                for runner in children.all(ProcessKind::Runner) {
                    let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                    runner.wait_timeout(left).await;
                }
                ticker.tick(children, counter, figures).await?;
                return Ok(Ending::Finished);
            }
            TickVerdict::Failed(kind, status) => {
                let failure = children
                    .ended(kind, status)
                    .map(|child| Failure {
                        message: exit_message(
                            kind,
                            &status,
                            "during the scenario",
                            &child.command,
                            &child.log_path.display().to_string(),
                        ),
                        log_tail: Some(child.log_tail(LOG_TAIL_LINES)),
                        ends_run: false,
                    })
                    .unwrap_or_else(|| Failure::new(format!("{kind} ended during the scenario")));
                return Err(failure);
            }
        }
        if Instant::now() > deadline {
            return Err(Failure::new(format!(
                "the controller did not end within {} s after the scenario's {} s",
                ctx.controller_grace.as_secs(),
                ctx.duration.as_secs_f64()
            )));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ProcessDetail;

    #[test]
    fn request_tally_counts_from_the_baseline() {
        let mut tally = RequestTally::new(100);
        assert_eq!(tally.observe(Some(150)), (Some(50), Some(50)));
        assert_eq!(tally.observe(None), (None, None));
        assert_eq!(tally.observe(Some(400)), (Some(300), Some(250)));
        // A count that went backwards (a restarted target) never goes negative.
        assert_eq!(tally.observe(Some(10)), (Some(0), Some(0)));
    }

    #[test]
    fn readings_become_samples_with_counts_on_the_target_only() {
        let running = [
            (ProcessKind::Target, 10),
            (ProcessKind::Runner, 11),
            (ProcessKind::Controller, 12),
        ];
        let readings = HashMap::from([
            (
                10,
                Reading {
                    cpu: 9.5,
                    rss: 1000,
                    detail: None,
                },
            ),
            (
                11,
                Reading {
                    cpu: 99.0,
                    rss: 5000,
                    detail: Some(ProcessDetail {
                        threads: 4,
                        fds: 20,
                        cpu_wait: 3.5,
                        voluntary_switches: 10,
                        involuntary_switches: 200,
                        read_bytes: 0,
                        write_bytes: 4096,
                    }),
                },
            ),
            // The controller ended between the listing and the reading: no sample.
        ]);
        let samples = tick_samples(
            1_700_000_000_000,
            Duration::from_millis(2500),
            &running,
            &readings,
            (Some(900), Some(300)),
        );
        assert_eq!(samples.len(), 2);
        assert_eq!(samples[0].process, ProcessKind::Target);
        assert_eq!(samples[0].requests, Some(900));
        assert_eq!(samples[0].requests_in_interval, Some(300));
        assert_eq!(samples[0].elapsed_ms, 2500);
        assert_eq!(samples[1].process, ProcessKind::Runner);
        assert_eq!(samples[1].pid, 11);
        assert_eq!(samples[1].cpu, 99.0);
        assert_eq!(samples[1].mem, 5000);
        assert_eq!(samples[1].requests, None);
        assert_eq!(samples[1].detail.map(|d| d.threads), Some(4));
        assert_eq!(samples[0].detail, None);
    }
}
