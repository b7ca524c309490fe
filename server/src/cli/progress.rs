//! Progress of a run in the terminal: a bar per scenario with elapsed and
//! remaining time and live requests/s; plain lines when not on a terminal.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use mite_perf::model::format_duration;
use mite_perf::run::{RunEvent, RunObserver};

/// How often a plain (non-terminal) progress line is printed.
const PLAIN_EVERY: Duration = Duration::from_secs(10);

pub struct CliProgress {
    multi: Option<MultiProgress>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    bar: Option<ProgressBar>,
    name: String,
    duration: Duration,
    last_line: Option<Instant>,
    /// When the scenario started (a fixed-work one ends before its
    /// duration: what it ran is said from this).
    started: Option<Instant>,
}

impl CliProgress {
    pub fn new() -> Self {
        let multi = std::io::stderr()
            .is_terminal()
            .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
        CliProgress {
            multi,
            state: Mutex::new(State::default()),
        }
    }

    pub fn finish(&self) {
        if let Ok(mut state) = self.state.lock() {
            if let Some(bar) = state.bar.take() {
                bar.abandon();
            }
        }
    }
}

impl RunObserver for CliProgress {
    fn event(&self, event: RunEvent) {
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        match event {
            RunEvent::Preparing { message } => to_stderr!("{message}"),
            RunEvent::ScenarioStarted {
                name,
                concurrency,
                duration,
                ..
            } => {
                state.name = name;
                state.duration = duration;
                state.last_line = None;
                state.started = Some(Instant::now());
                match &self.multi {
                    Some(multi) => {
                        let bar = multi.add(ProgressBar::new(duration.as_millis() as u64));
                        let style =
                            ProgressStyle::with_template("{prefix:<14} [{bar:30.cyan/blue}] {msg}")
                                .unwrap_or_else(|_| ProgressStyle::default_bar())
                                .progress_chars("=> ");
                        bar.set_style(style);
                        bar.set_prefix(state.name.clone());
                        bar.set_message("starting target and mite…");
                        state.bar = Some(bar);
                    }
                    None => to_stderr!("{}: starting ({} journeys)", state.name, concurrency),
                }
            }
            RunEvent::Tick {
                elapsed,
                requests_per_second,
                requests,
                ..
            } => {
                let remaining = state.duration.saturating_sub(elapsed);
                let msg = format!(
                    "{:>5.0}s elapsed, {:>4.0}s left, {:>7.0} req/s, {} requests",
                    elapsed.as_secs_f64(),
                    remaining.as_secs_f64(),
                    requests_per_second,
                    requests
                );
                match &state.bar {
                    Some(bar) => {
                        bar.set_position(
                            (elapsed.as_millis() as u64).min(bar.length().unwrap_or(0)),
                        );
                        bar.set_message(if remaining.is_zero() {
                            format!("{msg} (mite is finishing)")
                        } else {
                            msg
                        });
                    }
                    None => {
                        if state.last_line.is_none_or(|t| t.elapsed() >= PLAIN_EVERY) {
                            to_stderr!("{}: {msg}", state.name);
                            state.last_line = Some(Instant::now());
                        }
                    }
                }
            }
            RunEvent::ScenarioEnded { status, error, .. } => {
                let line = format!(
                    "{status}{}",
                    error.map(|e| format!(": {e}")).unwrap_or_default()
                );
                match state.bar.take() {
                    Some(bar) => bar.finish_with_message(line),
                    None => to_stderr!(
                        "{}: {line} (ran {})",
                        state.name,
                        format_duration(Duration::from_secs(
                            state.started.map_or(0, |t| t.elapsed().as_secs())
                        ))
                    ),
                }
            }
        }
    }
}
