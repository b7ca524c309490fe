//! The lab's reader on mite's message bus: a ZeroMQ PULL peer
//! ([`PullStream`]) on the duplicator's output of the lab's own (PUSH
//! load-balances between its consumers, so the lab never shares the
//! collector's), counting every message into a [`BusTally`], on a thread
//! of its own that wakes every [`GATHER`] and reads all that arrived
//! meanwhile. A runner freezes when its messages are not taken, so the
//! reader only ever counts: never waits on the database or anything else.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::message::decode;
use super::tally::{BusBatch, BusCounts, BusTally};
use super::zmtp::{PullStream, ZmtpError};
use crate::clock::now_ms;
use crate::sandbox::ScenarioNet;

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
    /// already) and starts counting: on the host's loopback, or inside a
    /// sandboxed scenario's network (made there by the lab's binary: see
    /// [`ScenarioNet::connect`]).
    pub async fn connect(
        port: u16,
        timeout: Duration,
        inside: Option<(Arc<ScenarioNet>, PathBuf)>,
    ) -> Result<Self, BusError> {
        let endpoint = endpoint(port);
        let shared = Arc::new(Shared {
            tally: Mutex::new(BusTally::new(now_ms())),
            latest_ms: AtomicI64::new(0),
            cpu_ms: AtomicI64::new(0),
        });
        let stop = CancellationToken::new();
        let (connected_tx, connected) = tokio::sync::oneshot::channel();
        let thread = {
            let (shared, stop) = (shared.clone(), stop.clone());
            let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
            std::thread::Builder::new()
                .name("mite-bus".into())
                .spawn(move || {
                    let stream = match &inside {
                        None => std::net::TcpStream::connect_timeout(&addr, timeout),
                        Some((network, self_exe)) => network.connect(self_exe, port, timeout),
                    };
                    match stream
                        .map_err(ZmtpError::from)
                        .and_then(|stream| PullStream::over(stream, timeout))
                    {
                        // Nobody waits for it any more (the scenario was
                        // stopped meanwhile): nothing to read for.
                        Ok(stream) => {
                            if connected_tx.send(Ok(())).is_ok() {
                                receive(stream, &shared, &stop);
                            }
                        }
                        Err(e) => {
                            let _ = connected_tx.send(Err(e));
                        }
                    }
                    shared.cpu_ms.store(thread_cpu_ms(), Ordering::Relaxed);
                })
                .map_err(|e| BusError::Thread(e.to_string()))?
        };
        let reader = BusReader {
            shared,
            stop,
            thread: Some(thread),
        };
        match connected.await {
            Ok(Ok(())) => Ok(reader),
            Ok(Err(ZmtpError::Timeout)) => Err(BusError::Timeout {
                endpoint,
                seconds: timeout.as_secs(),
            }),
            Ok(Err(e)) => Err(BusError::Connect {
                endpoint,
                reason: e.to_string(),
            }),
            Err(_) => Err(BusError::Thread("the reader thread ended".into())),
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

/// Between readings the reader's thread sleeps this long, so that nothing
/// wakes it while mite's messages gather in the kernel's buffers (1,400 at
/// 28,000 a second, about 450 KB: the duplicator queues 1,000 more before
/// it drops, and the kernel lets a socket's buffer grow to 32 MB here);
/// each reading then takes them all. Each wake-up costs the thread tens of
/// microseconds: 50 ms cost 0.78 times the CPU of 20 ms (BENCHMARKS.md, the
/// bus reader).
const GATHER: Duration = Duration::from_millis(50);

fn receive(mut stream: PullStream, shared: &Shared, stop: &CancellationToken) {
    loop {
        let stopping = stop.is_cancelled();
        // Once stopped, what arrived since the last reading is counted too.
        if !stopping {
            std::thread::sleep(GATHER);
        }
        let mut tally = None;
        let drained = stream.drain(|frame| {
            let tally = tally.get_or_insert_with(|| {
                let mut tally = shared.tally();
                tally.note_now(now_ms());
                tally
            });
            count_frame(frame, tally);
        });
        if tally.is_some() {
            shared.latest_ms.store(now_ms(), Ordering::Relaxed);
        }
        match drained {
            // The duplicator went away (the scenario's teardown): nothing
            // more will come.
            Ok(drained) if drained.closed => return,
            Ok(_) if stopping => return,
            Ok(_) => {}
            // A stream the lab cannot follow: what it still holds is
            // unread, so mite's view says it is short (one unreadable).
            Err(error) => {
                tracing::warn!(%error, "mite's bus: the lab stops reading it");
                shared.tally().add_undecodable();
                return;
            }
        }
    }
}

/// Counts one frame (a frame the lab cannot read counts as undecodable,
/// and the reading goes on). The first such frame of a scenario is logged
/// as a warning, the rest only at debug level: a stream of them cannot
/// flood the log.
pub fn count_frame(frame: &[u8], tally: &mut BusTally) {
    match decode(frame) {
        Ok(decoded) => tally.add(&decoded),
        Err(error) => {
            if tally.counts().undecodable == 0 {
                tracing::warn!(%error, bytes = frame.len(), "mite's bus: a frame the lab cannot read (counted as undecodable)");
            } else {
                tracing::debug!(%error, bytes = frame.len(), "a bus frame the lab cannot read");
            }
            tally.add_undecodable();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mite_bus::peer::{push_greeting, push_ready, scripted_peer};

    /// FAULTS.md 22: a reader that cannot connect says where it tried (the
    /// scenario fails with it).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_reader_that_cannot_connect_says_where() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a port")
            .port();
        let said = match BusReader::connect(port, Duration::from_secs(2), None).await {
            Ok(_) => panic!("nothing listens on {port}"),
            Err(e) => e.to_string(),
        };
        assert!(
            said.starts_with(&format!(
                "cannot read mite's messages on tcp://127.0.0.1:{port}"
            )),
            "{said}"
        );
    }

    /// FAULTS.md 22: a stream that breaks mid-scenario (framing the lab
    /// cannot follow) ends the reading: one unreadable counted, nothing
    /// after it read, the connection closed by the lab.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stream_broken_mid_scenario_ends_the_reading_with_one_unreadable() {
        let (addr, peer) = scripted_peer(vec![
            push_greeting(),
            push_ready(),
            // Reserved flags: no ZMTP frame.
            vec![0x08, 1, 0],
            // Never read: the lab stopped at the break.
            vec![0x00, 1, 9],
        ]);
        let reader = BusReader::connect(addr.port(), Duration::from_secs(5), None)
            .await
            .expect("connects");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while reader.counts().undecodable == 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "the break was not counted"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // The lab closed its side: the peer's read of it ends.
        tokio::task::spawn_blocking(move || peer.join().expect("the peer"))
            .await
            .expect("joins");
        let batch = reader.finish(None, Duration::from_secs(1)).await;
        // The break, counted as one frame the lab could not read; the frame
        // after it (itself no message: it would count twice) never read.
        assert_eq!(batch.counts.undecodable, 1, "{:?}", batch.counts);
        assert_eq!(batch.counts.messages, 1, "{:?}", batch.counts);
    }
}
