//! A run's samples on their way to the database. The sampler hands each
//! tick's samples to the sink and goes on at once; a task of the sink's own
//! writes them on the writer's own connection. While the database is
//! unavailable the samples wait in memory, up to a bound: past it the
//! scenario fails cleanly, and nothing measured before is lost. Once the
//! run's lease is lost (its writer is fenced) nothing more is stored: what
//! waits is dropped, and so is what comes after.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{watch, Notify};
use tokio_util::sync::CancellationToken;

use crate::store::{SampleBatch, SampleWriter, StoreError};

/// How long the writer waits before trying an unavailable database again.
const RETRY_EVERY: Duration = Duration::from_millis(500);
/// Batches written together when catching up.
const BATCHES_PER_WRITE: usize = 64;
/// Samples wait at most this long to be written together: one transaction
/// a second at most, whatever the sampling interval.
const GATHER_FOR: Duration = Duration::from_secs(1);

/// Samples waiting to be stored: more than the bound allows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the database has been unavailable for {seconds} s ({error}): {waiting} samples wait to be \
     stored, more than the {limit} the lab keeps in memory"
)]
pub struct Overflow {
    pub seconds: u64,
    pub error: String,
    pub waiting: usize,
    pub limit: usize,
}

/// Why samples queued were not all stored.
#[derive(Debug, thiserror::Error)]
pub enum Unflushed {
    #[error("the run's lease was lost: its samples are no longer stored")]
    LeaseLost,
    #[error("{samples} samples could not be stored within {seconds} s{outage}")]
    Backlog {
        samples: usize,
        seconds: u64,
        /// `: why`, while the database is unavailable.
        outage: String,
    },
}

#[derive(Default)]
struct Backlog {
    batches: VecDeque<SampleBatch>,
    samples: usize,
    /// When the oldest batch waiting arrived.
    oldest: Option<Instant>,
    /// Write what waits now (a flush asked for it).
    now: bool,
    /// Since when writes fail, and the latest error.
    outage: Option<(Instant, String)>,
    /// The run's lease was lost: nothing more is stored.
    lost: bool,
}

struct Shared {
    backlog: Mutex<Backlog>,
    wake: Notify,
    /// Samples waiting, for [`SampleSink::flush`] to watch.
    waiting: watch::Sender<usize>,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Backlog> {
        // A panic while holding the lock leaves plain data behind: keep going.
        self.backlog
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

pub struct SampleSink {
    shared: Arc<Shared>,
    limit: usize,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl SampleSink {
    /// Starts the writing task. At most `limit` samples wait in memory.
    pub fn start(writer: SampleWriter, limit: usize) -> Self {
        let (waiting, _) = watch::channel(0);
        let shared = Arc::new(Shared {
            backlog: Mutex::new(Backlog::default()),
            wake: Notify::new(),
            waiting,
        });
        let stop = CancellationToken::new();
        let task = tokio::spawn(write_loop(writer, shared.clone(), stop.clone()));
        SampleSink {
            shared,
            limit,
            stop,
            task,
        }
    }

    /// Queues one tick's samples. Fails, keeping what was queued before,
    /// when the samples waiting would pass the bound.
    pub fn push(&self, batch: SampleBatch) -> Result<(), Overflow> {
        let mut backlog = self.shared.lock();
        if backlog.lost {
            return Ok(());
        }
        let waiting = backlog.samples + batch.rows();
        if waiting > self.limit {
            let (seconds, error) = backlog
                .outage
                .as_ref()
                .map(|(since, e)| (since.elapsed().as_secs(), e.clone()))
                .unwrap_or((0, "writes are too slow".to_string()));
            return Err(Overflow {
                seconds,
                error,
                waiting,
                limit: self.limit,
            });
        }
        backlog.samples = waiting;
        backlog.batches.push_back(batch);
        let first = backlog.oldest.is_none();
        backlog.oldest.get_or_insert_with(Instant::now);
        drop(backlog);
        if !first {
            // The writer already waits to gather this one in.
            self.shared.waiting.send_replace(waiting);
            return Ok(());
        }
        self.shared.waiting.send_replace(waiting);
        self.shared.wake.notify_one();
        Ok(())
    }

    /// Samples not stored yet.
    pub fn waiting(&self) -> usize {
        self.shared.lock().samples
    }

    /// Waits until every queued sample is stored, up to `timeout`; says how
    /// many could not be stored and why.
    pub async fn flush(&self, timeout: Duration) -> Result<(), Unflushed> {
        self.shared.lock().now = true;
        self.shared.wake.notify_one();
        let mut waiting = self.shared.waiting.subscribe();
        let drained = tokio::time::timeout(timeout, waiting.wait_for(|n| *n == 0)).await;
        if self.shared.lock().lost {
            return Err(Unflushed::LeaseLost);
        }
        if matches!(drained, Ok(Ok(_))) {
            self.shared.lock().now = false;
            return Ok(());
        }
        let backlog = self.shared.lock();
        Err(Unflushed::Backlog {
            samples: backlog.samples,
            seconds: timeout.as_secs(),
            outage: backlog
                .outage
                .as_ref()
                .map(|(_, e)| format!(": {e}"))
                .unwrap_or_default(),
        })
    }

    /// Stops the writing task (after [`SampleSink::flush`], nothing is lost).
    pub async fn close(self) {
        self.stop.cancel();
        self.shared.wake.notify_one();
        let _ = self.task.await;
    }
}

async fn write_loop(writer: SampleWriter, shared: Arc<Shared>, stop: CancellationToken) {
    loop {
        // Gather a second's worth of ticks into one transaction, unless a
        // flush or the end asks for them now.
        let gather_until = {
            let backlog = shared.lock();
            backlog
                .oldest
                .filter(|_| !backlog.now && !stop.is_cancelled())
                .map(|oldest| oldest + GATHER_FOR)
        };
        if let Some(until) = gather_until {
            if until > Instant::now() {
                tokio::select! {
                    _ = tokio::time::sleep_until(until.into()) => {}
                    _ = shared.wake.notified() => {}
                    _ = stop.cancelled() => {}
                }
                continue;
            }
        }
        let batches: Vec<SampleBatch> = shared
            .lock()
            .batches
            .iter()
            .take(BATCHES_PER_WRITE)
            .cloned()
            .collect();
        if batches.is_empty() {
            if stop.is_cancelled() {
                return;
            }
            tokio::select! {
                _ = shared.wake.notified() => {}
                _ = stop.cancelled() => {}
            }
            continue;
        }
        match writer.write(&batches).await {
            Ok(()) => {
                let waiting = {
                    let mut backlog = shared.lock();
                    let written: usize = batches.iter().map(SampleBatch::rows).sum();
                    backlog.batches.drain(..batches.len());
                    backlog.samples = backlog.samples.saturating_sub(written);
                    if backlog.batches.is_empty() {
                        backlog.oldest = None;
                        backlog.now = false;
                    }
                    if let Some((since, _)) = backlog.outage.take() {
                        tracing::warn!(
                            "the database is back after {:.1} s; stored the samples that waited",
                            since.elapsed().as_secs_f64()
                        );
                    }
                    backlog.samples
                };
                shared.waiting.send_replace(waiting);
            }
            Err(StoreError::LeaseLost(run)) => {
                let dropped = {
                    let mut backlog = shared.lock();
                    let dropped = backlog.samples;
                    backlog.batches.clear();
                    backlog.samples = 0;
                    backlog.oldest = None;
                    backlog.lost = true;
                    dropped
                };
                shared.waiting.send_replace(0);
                tracing::error!(
                    "run {run}: its lease was lost: {dropped} samples waiting were not stored, \
                     and none will be"
                );
                return;
            }
            Err(e) => {
                crate::metrics::metrics().database_error();
                {
                    let mut backlog = shared.lock();
                    if backlog.outage.is_none() {
                        tracing::warn!(
                            "cannot store samples, keeping them until the database answers: {e}"
                        );
                    }
                    let since = backlog
                        .outage
                        .as_ref()
                        .map_or_else(Instant::now, |(s, _)| *s);
                    backlog.outage = Some((since, e.to_string()));
                }
                if stop.is_cancelled() {
                    return;
                }
                tokio::select! {
                    _ = tokio::time::sleep(RETRY_EVERY) => {}
                    _ = stop.cancelled() => return,
                }
            }
        }
    }
}
