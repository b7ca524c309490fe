//! The lab's reader on mite's message bus: a ZeroMQ PULL socket on the
//! duplicator's output of the lab's own (PUSH load-balances between its
//! consumers, so the lab never shares the collector's), counting every
//! message into a [`BusTally`], on a thread of its own that wakes every
//! [`GATHER`] and reads all that arrived meanwhile. A runner freezes when
//! its messages are not taken, so the reader only ever counts: never waits
//! on the database or anything else.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use zeromq::{PullSocket, Socket, SocketRecv};

use super::message::decode;
use super::tally::{BusBatch, BusCounts, BusTally};
use crate::clock::now_ms;

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("cannot read mite's messages on {endpoint}: {reason}")]
    Connect { endpoint: String, reason: String },
    #[error("cannot read mite's messages on {endpoint}: no answer within {seconds} s")]
    Timeout { endpoint: String, seconds: u64 },
    #[error("cannot start the lab's reader of mite's messages: {0}")]
    Thread(String),
}

struct Shared {
    tally: Mutex<BusTally>,
    /// When the latest message arrived (unix ms).
    latest_ms: AtomicI64,
    /// The reader thread's CPU time (user + system, ms), set as it ends.
    cpu_ms: AtomicI64,
}

impl Shared {
    fn tally(&self) -> MutexGuard<'_, BusTally> {
        // Plain counts behind the lock: a panic elsewhere leaves them usable.
        self.tally.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A running reader: a thread of its own (so its cost is measured on its
/// own, and it never waits behind the lab's other work). Dropping it stops
/// the thread.
pub struct BusReader {
    shared: Arc<Shared>,
    stop: CancellationToken,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// The endpoint of the lab's duplicator output on `port`.
pub fn endpoint(port: u16) -> String {
    format!("tcp://127.0.0.1:{port}")
}

/// The calling thread's CPU time so far, in milliseconds.
fn thread_cpu_ms() -> i64 {
    use nix::sys::resource::{getrusage, UsageWho};
    let Ok(usage) = getrusage(UsageWho::RUSAGE_THREAD) else {
        return 0;
    };
    let ms = |t: nix::sys::time::TimeVal| t.tv_sec() * 1000 + t.tv_usec() / 1000;
    ms(usage.user_time()) + ms(usage.system_time())
}

impl BusReader {
    /// Connects to the duplicator's output on `port` (which must be bound
    /// already) and starts counting.
    pub async fn connect(port: u16, timeout: Duration) -> Result<Self, BusError> {
        let endpoint = endpoint(port);
        let shared = Arc::new(Shared {
            tally: Mutex::new(BusTally::new(now_ms())),
            latest_ms: AtomicI64::new(0),
            cpu_ms: AtomicI64::new(0),
        });
        let stop = CancellationToken::new();
        let (connected_tx, connected) = tokio::sync::oneshot::channel();
        let thread = {
            let (shared, stop, endpoint) = (shared.clone(), stop.clone(), endpoint.clone());
            std::thread::Builder::new()
                .name("mite-bus".into())
                .spawn(move || {
                    let runtime = match tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                    {
                        Ok(runtime) => runtime,
                        Err(e) => {
                            let _ = connected_tx.send(Err(e.to_string()));
                            return;
                        }
                    };
                    let mut socket = PullSocket::new();
                    let outcome = runtime.block_on(async {
                        tokio::select! {
                            outcome = socket.connect(&endpoint) => Some(outcome),
                            _ = stop.cancelled() => None,
                        }
                    });
                    let Some(outcome) = outcome else {
                        return;
                    };
                    let failed = outcome.is_err();
                    let _ = connected_tx.send(outcome.map_err(|e| e.to_string()));
                    if !failed {
                        receive(&runtime, &mut socket, &shared, &stop);
                    }
                    let _ = runtime.block_on(socket.close());
                    shared.cpu_ms.store(thread_cpu_ms(), Ordering::Relaxed);
                })
                .map_err(|e| BusError::Thread(e.to_string()))?
        };
        let reader = BusReader {
            shared,
            stop,
            thread: Some(thread),
        };
        match tokio::time::timeout(timeout, connected).await {
            Ok(Ok(Ok(()))) => Ok(reader),
            Ok(Ok(Err(reason))) => Err(BusError::Connect { endpoint, reason }),
            Ok(Err(_)) => Err(BusError::Thread("the reader thread ended".into())),
            Err(_) => {
                reader.stop.cancel();
                Err(BusError::Timeout {
                    endpoint,
                    seconds: timeout.as_secs(),
                })
            }
        }
    }

    /// The scenario's start: intervals are counted from it.
    pub fn set_origin(&self, origin_ms: i64) {
        self.shared.tally().set_origin(origin_ms);
    }

    /// What is ready to be stored at `now_ms`.
    pub fn take_ready(&self, now_ms: i64) -> BusBatch {
        self.shared.tally().take_ready(now_ms)
    }

    pub fn counts(&self) -> BusCounts {
        self.shared.tally().counts()
    }

    /// Ends reading and hands out everything counted, with the reader's
    /// CPU time. With `quiet`, first waits (at most `limit`) until no
    /// message came for that long: the runners' last messages are on their
    /// way when they exit.
    pub async fn finish(mut self, quiet: Option<Duration>, limit: Duration) -> BusBatch {
        if let Some(quiet) = quiet {
            let deadline = tokio::time::Instant::now() + limit;
            let quiet_ms = quiet.as_millis() as i64;
            loop {
                let latest = self.shared.latest_ms.load(Ordering::Relaxed);
                if now_ms() - latest >= quiet_ms || tokio::time::Instant::now() >= deadline {
                    break;
                }
                tokio::time::sleep(quiet / 4).await;
            }
        }
        self.stop.cancel();
        if let Some(thread) = self.thread.take() {
            // The thread ends at once once stopped; joining it off the
            // runtime's threads.
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
        let mut batch = self.shared.tally().take_all();
        batch.counts.reader_cpu_ms = self.shared.cpu_ms.load(Ordering::Relaxed);
        batch
    }
}

impl Drop for BusReader {
    fn drop(&mut self) {
        // The thread sees it and ends by itself.
        self.stop.cancel();
    }
}

/// Between readings the reader's thread sleeps this long outside its
/// runtime, so that nothing wakes it while mite's messages gather in the
/// kernel's buffers (320 at 16,000 a second, far below what the duplicator
/// queues before it drops: 1,000 plus those buffers); each reading then
/// takes them all. Sleeping on the runtime instead left its epoll woken by
/// every packet (BENCHMARKS.md, the bus reader).
const GATHER: Duration = Duration::from_millis(20);

fn receive(
    runtime: &tokio::runtime::Runtime,
    socket: &mut PullSocket,
    shared: &Shared,
    stop: &CancellationToken,
) {
    while !stop.is_cancelled() {
        std::thread::sleep(GATHER);
        runtime.block_on(async {
            tokio::select! {
                _ = stop.cancelled() => {}
                _ = drain(socket, shared, GATHER) => {}
            }
        });
    }
    // What arrived since the last reading is counted too.
    runtime.block_on(drain(socket, shared, Duration::from_millis(1)));
}

/// Counts every message waiting, once the first comes (within `wait`).
async fn drain(socket: &mut PullSocket, shared: &Shared, wait: Duration) {
    use futures_util::FutureExt;
    // The first needs the runtime to see the socket readable; the rest
    // are waiting already.
    let Ok(first) = tokio::time::timeout(wait, socket.recv()).await else {
        return;
    };
    shared.latest_ms.store(now_ms(), Ordering::Relaxed);
    let mut tally = shared.tally();
    let mut next = Some(first);
    while let Some(message) = next.take() {
        if !count(message, &mut tally) {
            return;
        }
        next = socket.recv().now_or_never();
    }
}

/// Counts every frame of `message` (a frame the lab cannot read counts as
/// undecodable).
pub fn count_frames(message: &zeromq::ZmqMessage, tally: &mut BusTally) {
    for frame in message.iter() {
        match decode(frame) {
            Ok(decoded) => tally.add(&decoded),
            Err(error) => {
                tally.add_undecodable();
                tracing::debug!(%error, "a bus frame the lab cannot read");
            }
        }
    }
}

/// Counts one message; false when the socket failed (the duplicator went
/// away, in the scenario's teardown: a new one would connect again; until
/// then there is nothing to read).
fn count(message: zeromq::ZmqResult<zeromq::ZmqMessage>, tally: &mut BusTally) -> bool {
    match message {
        Ok(message) => {
            count_frames(&message, tally);
            true
        }
        Err(error) => {
            tracing::debug!(%error, "mite's bus");
            false
        }
    }
}
