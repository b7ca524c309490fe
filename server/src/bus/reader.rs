//! The lab's reader on mite's message bus: a ZeroMQ PULL socket on the
//! duplicator's output of the lab's own (PUSH load-balances between its
//! consumers, so the lab never shares the collector's), counting every
//! message into a [`BusTally`] as it arrives. A runner freezes when its
//! messages are not taken, so the reader only ever counts: never waits on
//! the database or anything else.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use zeromq::{PullSocket, Socket, SocketRecv};

use super::message::decode;
use super::tally::{BusBatch, BusCounts, BusTally};
use crate::store::now_ms;

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("cannot read mite's messages on {endpoint}: {source}")]
    Connect {
        endpoint: String,
        source: zeromq::ZmqError,
    },
    #[error("cannot read mite's messages on {endpoint}: no answer within {seconds} s")]
    Timeout { endpoint: String, seconds: u64 },
}

struct Shared {
    tally: Mutex<BusTally>,
    /// When the latest message arrived (unix ms).
    latest_ms: AtomicI64,
}

impl Shared {
    fn tally(&self) -> MutexGuard<'_, BusTally> {
        // Plain counts behind the lock: a panic elsewhere leaves them usable.
        self.tally.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A running reader. Dropping it stops its task.
pub struct BusReader {
    shared: Arc<Shared>,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

/// The endpoint of the lab's duplicator output on `port`.
pub fn endpoint(port: u16) -> String {
    format!("tcp://127.0.0.1:{port}")
}

impl BusReader {
    /// Connects to the duplicator's output on `port` (which must be bound
    /// already) and starts counting.
    pub async fn connect(port: u16, timeout: Duration) -> Result<Self, BusError> {
        let endpoint = endpoint(port);
        let mut socket = PullSocket::new();
        match tokio::time::timeout(timeout, socket.connect(&endpoint)).await {
            Ok(Ok(())) => {}
            Ok(Err(source)) => return Err(BusError::Connect { endpoint, source }),
            Err(_) => {
                return Err(BusError::Timeout {
                    endpoint,
                    seconds: timeout.as_secs(),
                })
            }
        }
        let shared = Arc::new(Shared {
            tally: Mutex::new(BusTally::new(now_ms())),
            latest_ms: AtomicI64::new(0),
        });
        let stop = CancellationToken::new();
        let task = tokio::spawn(receive(socket, shared.clone(), stop.clone()));
        Ok(BusReader { shared, stop, task })
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

    /// Ends reading and hands out everything counted. With `quiet`, first
    /// waits (at most `limit`) until no message came for that long: the
    /// runner's last messages are on their way when it exits.
    pub async fn finish(self, quiet: Option<Duration>, limit: Duration) -> BusBatch {
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
        let shared = self.shared.clone();
        drop(self);
        let batch = shared.tally().take_all();
        batch
    }
}

impl Drop for BusReader {
    fn drop(&mut self) {
        self.stop.cancel();
        self.task.abort();
    }
}

async fn receive(mut socket: PullSocket, shared: Arc<Shared>, stop: CancellationToken) {
    loop {
        let message = tokio::select! {
            _ = stop.cancelled() => break,
            message = socket.recv() => message,
        };
        match message {
            Ok(message) => {
                shared.latest_ms.store(now_ms(), Ordering::Relaxed);
                let mut tally = shared.tally();
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
            // The duplicator went away (the scenario's teardown): a new
            // one would connect again; until then there is nothing to read.
            Err(error) => {
                tracing::debug!(%error, "mite's bus");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    let _ = socket.close().await;
}
