//! The HTTP server mite's journeys load (`mite-perf target`), and the lab's
//! side of reading how many requests a target has served.
//!
//! Any target reports its count as lines `TIMESTAMP: served N requests` on
//! stdout, the format of mite's own Python test servers. The built-in target
//! prints such a line whenever a line arrives on its stdin, so the lab gets an
//! exact count at every sample; an external target prints on its own schedule
//! and the lab uses the latest count it has seen.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::routing::get;
use axum::Router;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{ChildStdin, ChildStdout};
use tokio::sync::watch;

/// The body the target answers `GET /` with.
pub const BODY: &str = "hi";

fn unix_seconds() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

fn report_line(served: u64) -> String {
    format!("{:.6}: served {served} requests\n", unix_seconds())
}

/// Parses `1700000000.123: served 42 requests`.
pub fn parse_report_line(line: &str) -> Option<u64> {
    let (stamp, rest) = line.trim().split_once(": served ")?;
    stamp.parse::<f64>().ok()?;
    rest.strip_suffix(" requests")?.trim().parse().ok()
}

async fn index(State(served): State<Arc<AtomicU64>>) -> &'static str {
    served.fetch_add(1, Ordering::Relaxed);
    BODY
}

/// Runs the target server until SIGINT or SIGTERM, on one thread so that its
/// CPU use is easy to read and stays far below mite's.
pub fn serve(addr: SocketAddr, report_every: Option<Duration>) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let served = Arc::new(AtomicU64::new(0));
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))?;
        let app = Router::new()
            .route("/", get(index))
            .with_state(served.clone());

        // One line on stdin asks for one report line on stdout.
        let on_request = served.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(tokio::io::stdin()).lines();
            while let Ok(Some(_)) = lines.next_line().await {
                print_report(on_request.load(Ordering::Relaxed));
            }
        });
        if let Some(every) = report_every {
            let periodic = served.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(every);
                tick.tick().await;
                loop {
                    tick.tick().await;
                    print_report(periodic.load(Ordering::Relaxed));
                }
            });
        }
        axum::serve(listener, app)
            .with_graceful_shutdown(stop_signal())
            .await?;
        print_report(served.load(Ordering::Relaxed));
        Ok(())
    })
}

fn print_report(served: u64) {
    let mut out = std::io::stdout().lock();
    // A closed stdout (the lab is gone) is not worth dying for.
    let _ = out.write_all(report_line(served).as_bytes());
    let _ = out.flush();
}

async fn stop_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) {
        (Ok(mut int), Ok(mut term)) => {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
        }
        _ => std::future::pending::<()>().await,
    }
}

/// The lab's view of a target's request count.
pub struct RequestCounter {
    ask: Option<ChildStdin>,
    latest: watch::Receiver<Option<u64>>,
}

impl RequestCounter {
    /// Reads report lines from the target's stdout (copying every line to
    /// `log`), and, if `ask` is given, requests a report at each [`Self::count`].
    pub fn new(stdout: ChildStdout, ask: Option<ChildStdin>, log: std::fs::File) -> Self {
        let (tx, rx) = watch::channel(None);
        tokio::spawn(async move {
            // A short line a tick: written straight to the file (it lands in
            // the page cache) rather than through a blocking-pool hop.
            let mut log = std::io::LineWriter::new(log);
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let _ = writeln!(log, "{line}");
                if let Some(n) = parse_report_line(&line) {
                    tx.send_replace(Some(n));
                }
            }
            let _ = log.flush();
        });
        RequestCounter { ask, latest: rx }
    }

    /// The number of requests served so far: fresh from a built-in target
    /// (within `wait`), the latest report from an external one.
    pub async fn count(&mut self, wait: Duration) -> Option<u64> {
        if let Some(ask) = self.ask.as_mut() {
            self.latest.mark_unchanged();
            if ask.write_all(b"\n").await.is_ok() && ask.flush().await.is_ok() {
                let _ = tokio::time::timeout(wait, self.latest.changed()).await;
            }
        }
        *self.latest.borrow()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_lines_round_trip() {
        assert_eq!(parse_report_line(&report_line(1234)), Some(1234));
        assert_eq!(
            parse_report_line("1700000000.5: served 42 requests"),
            Some(42)
        );
        assert_eq!(parse_report_line("served 42 requests"), None);
        assert_eq!(parse_report_line("[INFO] Starting worker"), None);
    }
}
