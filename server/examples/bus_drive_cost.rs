//! What reading mite's bus costs per message at a steady rate, for ways of
//! reading it, side by side (`bench/bus-drive-cost`):
//!
//! - `wake`: the `zeromq` crate's socket; its runtime runs all the time
//!   and the reader task sleeps GATHER on it once nothing is waiting (the
//!   reader up to 2026-12-06): every packet that arrives meanwhile still
//!   wakes the runtime's epoll.
//! - `burst`: the `zeromq` crate's socket; the thread sleeps GATHER
//!   outside the runtime, so nothing wakes it while messages gather in the
//!   kernel's buffers, then drives the runtime until everything waiting is
//!   read (the reader on 2026-12-07).
//! - `raw`: the lab's own ZMTP reader on a plain TCP stream
//!   (`bus::zmtp`), the thread sleeping GATHER likewise (the reader now).
//!
//! Each decodes and counts every message as the lab does. It connects to a
//! PUSH socket on PORT (pyzmq, as mite's duplicator), reads COUNT messages,
//! and prints the reading thread's CPU time per message.
//!
//! Usage: cargo run --release --example bus_drive_cost -- MODE GATHER_MS PORT COUNT

use std::time::{Duration, Instant};

use futures_util::FutureExt;
use mite_perf::bus::reader::count_frame;
use mite_perf::bus::tally::BusTally;
use mite_perf::bus::zmtp::PullStream;
use zeromq::{PullSocket, Socket, SocketRecv, ZmqMessage};

fn thread_cpu_ms() -> f64 {
    use nix::sys::resource::{getrusage, UsageWho};
    let Ok(usage) = getrusage(UsageWho::RUSAGE_THREAD) else {
        return 0.0;
    };
    let ms = |t: nix::sys::time::TimeVal| t.tv_sec() as f64 * 1000.0 + t.tv_usec() as f64 / 1000.0;
    ms(usage.user_time()) + ms(usage.system_time())
}

fn count(tally: &mut BusTally, message: &ZmqMessage) {
    for frame in message.iter() {
        count_frame(frame, tally);
    }
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_default();
    let gather = Duration::from_millis(args.next().unwrap_or_default().parse()?);
    let port: u16 = args.next().unwrap_or_default().parse()?;
    let total: u64 = args.next().unwrap_or_default().parse()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    if mode == "raw" {
        return raw(gather, port, total);
    }
    let endpoint = format!("tcp://127.0.0.1:{port}");
    // The pusher binds as it starts: try for ten seconds.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut socket = loop {
        let mut socket = PullSocket::new();
        match runtime.block_on(socket.connect(&endpoint)) {
            Ok(()) => break socket,
            Err(e) if Instant::now() > deadline => return Err(e.into()),
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    };
    let mut tally = BusTally::new(0);
    // The clock starts with the first message.
    let first = runtime.block_on(socket.recv())?;
    count(&mut tally, &first);
    let (cpu0, started) = (thread_cpu_ms(), Instant::now());
    let mut wakes = 0u64;
    match mode.as_str() {
        "wake" => runtime.block_on(async {
            while tally.counts().messages < total {
                let message = match socket.recv().now_or_never() {
                    Some(m) => m,
                    None => {
                        wakes += 1;
                        tokio::time::sleep(gather).await;
                        socket.recv().await
                    }
                };
                if let Ok(m) = message {
                    count(&mut tally, &m);
                }
            }
        }),
        "burst" => {
            while tally.counts().messages < total {
                std::thread::sleep(gather);
                wakes += 1;
                runtime.block_on(async {
                    // The first may need the runtime to see the socket
                    // readable; the rest are waiting already.
                    if let Ok(Ok(m)) = tokio::time::timeout(gather, socket.recv()).await {
                        count(&mut tally, &m);
                        while let Some(Ok(m)) = socket.recv().now_or_never() {
                            count(&mut tally, &m);
                        }
                    }
                });
            }
        }
        other => anyhow::bail!("no mode `{other}`: wake, burst or raw"),
    }
    report(&mode, gather, &tally, cpu0, started, wakes);
    Ok(())
}

/// The lab's own ZMTP reader on a plain TCP stream (`bus::zmtp`): the
/// thread sleeps GATHER, then reads every message waiting.
fn raw(gather: Duration, port: u16, total: u64) -> anyhow::Result<()> {
    let addr = format!("127.0.0.1:{port}").parse()?;
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut stream = loop {
        match PullStream::connect(addr, Duration::from_secs(10)) {
            Ok(stream) => break stream,
            Err(e) if Instant::now() > deadline => return Err(e.into()),
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    };
    let mut tally = BusTally::new(0);
    let count = |tally: &mut BusTally, frame: &[u8]| count_frame(frame, tally);
    // The clock starts with the first message.
    while tally.counts().messages == 0 {
        std::thread::sleep(Duration::from_millis(1));
        stream.drain(|frame| count(&mut tally, frame))?;
    }
    let (cpu0, started) = (thread_cpu_ms(), Instant::now());
    let mut wakes = 0u64;
    while tally.counts().messages < total {
        std::thread::sleep(gather);
        wakes += 1;
        if stream.drain(|frame| count(&mut tally, frame))?.closed {
            break;
        }
    }
    report("raw", gather, &tally, cpu0, started, wakes);
    Ok(())
}

fn report(mode: &str, gather: Duration, tally: &BusTally, cpu0: f64, started: Instant, wakes: u64) {
    let (cpu, seconds) = (thread_cpu_ms() - cpu0, started.elapsed().as_secs_f64());
    let messages = tally.counts().messages - 1;
    println!(
        "{mode} gather {} ms: {messages} messages in {seconds:.1} s ({:.0}/s), {wakes} sleeps; \
         reader CPU {cpu:.0} ms = {:.2} µs a message, {:.2} % of a core",
        gather.as_millis(),
        messages as f64 / seconds,
        cpu * 1000.0 / messages as f64,
        cpu / 10.0 / seconds
    );
}
