//! The receiving half of ZeroMQ's wire protocol (ZMTP 3.0 and 3.1, the
//! NULL mechanism, RFC 23 and 37), as a PULL peer on a plain TCP stream:
//! all the lab needs of mite's duplicator, which binds a PUSH socket for it.
//!
//! Why not a ZeroMQ library: the reader sleeps between readings so that
//! mite's messages gather in the kernel's buffers, then takes them all at
//! once. Here that is one `read` of up to [`READ_CHUNK`] bytes per few
//! hundred messages, and each frame is handed over as a slice of the read
//! buffer: no future, allocation or copy per message. The `zeromq` crate
//! cost about twice as much CPU per message, and libzmq's I/O thread is
//! woken by every packet (BENCHMARKS.md, the bus reader).

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// What the lab's side of the bus can fail on.
#[derive(Debug, thiserror::Error)]
pub enum ZmtpError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("the peer does not speak ZMTP 3: {0}")]
    Protocol(String),
    #[error("the peer refused the lab: {0}")]
    Refused(String),
    #[error("no answer in time")]
    Timeout,
}

/// How much one read asks the kernel for.
pub const READ_CHUNK: usize = 256 * 1024;
/// The largest frame accepted: mite's messages are about half a kilobyte;
/// a larger size is a broken stream, not a message.
pub const MAX_FRAME: usize = 16 * 1024 * 1024;
/// The most the read buffer ever holds: the largest frame with its
/// header, and one read after it.
pub const MAX_BUFFER: usize = MAX_FRAME + 9 + READ_CHUNK;
/// How long PONGs may wait for the peer to take them.
const WRITE_TIMEOUT: Duration = Duration::from_secs(1);

const GREETING_LEN: usize = 64;
const FLAG_MORE: u8 = 0x01;
const FLAG_LONG: u8 = 0x02;
const FLAG_COMMAND: u8 = 0x04;

/// The lab's greeting: ZMTP 3.0, the NULL mechanism, as a client.
pub(crate) fn greeting() -> [u8; GREETING_LEN] {
    let mut g = [0u8; GREETING_LEN];
    g[0] = 0xff;
    g[9] = 0x7f;
    g[10] = 3;
    g[11] = 0;
    g[12..16].copy_from_slice(b"NULL");
    g
}

/// A command frame (short form) with `name` and `body`.
pub(crate) fn command(name: &[u8], body: &[u8]) -> Vec<u8> {
    let len = 1 + name.len() + body.len();
    let mut frame = Vec::with_capacity(2 + len);
    frame.push(FLAG_COMMAND);
    // Commands the lab sends are short; a PONG echoes at most 16 bytes.
    frame.push(len as u8);
    frame.push(name.len() as u8);
    frame.extend_from_slice(name);
    frame.extend_from_slice(body);
    frame
}

/// The lab's READY: a PULL socket.
fn ready() -> Vec<u8> {
    let mut body = Vec::new();
    body.push(11);
    body.extend_from_slice(b"Socket-Type");
    body.extend_from_slice(&4u32.to_be_bytes());
    body.extend_from_slice(b"PULL");
    command(b"READY", &body)
}

/// The frame at the front of a buffer.
enum Frame<'a> {
    /// Complete: its flags, its body, and the bytes it took.
    Whole {
        flags: u8,
        body: &'a [u8],
        used: usize,
    },
    /// Incomplete: the bytes it needs at least.
    Short { need: usize },
}

/// The frame at the front of `buf`.
fn frame(buf: &[u8]) -> Result<Frame<'_>, ZmtpError> {
    let Some(&flags) = buf.first() else {
        return Ok(Frame::Short { need: 2 });
    };
    if flags & !(FLAG_MORE | FLAG_LONG | FLAG_COMMAND) != 0 {
        return Err(ZmtpError::Protocol(format!(
            "a frame with reserved flags {flags:#04x}"
        )));
    }
    let (header, size) = if flags & FLAG_LONG == 0 {
        match buf.get(1) {
            Some(&size) => (2, usize::from(size)),
            None => return Ok(Frame::Short { need: 2 }),
        }
    } else {
        match buf.get(1..9) {
            Some(bytes) => {
                let mut be = [0u8; 8];
                be.copy_from_slice(bytes);
                let size = u64::from_be_bytes(be);
                match usize::try_from(size) {
                    Ok(size) if size <= MAX_FRAME => (9, size),
                    _ => {
                        return Err(ZmtpError::Protocol(format!(
                            "a frame of {size} bytes, above the {MAX_FRAME} the lab reads"
                        )))
                    }
                }
            }
            None => return Ok(Frame::Short { need: 9 }),
        }
    };
    Ok(match buf.get(header..header + size) {
        Some(body) => Frame::Whole {
            flags,
            body,
            used: header + size,
        },
        None => Frame::Short {
            need: header + size,
        },
    })
}

/// A command's name and the rest of its body.
fn command_parts(body: &[u8]) -> Result<(&[u8], &[u8]), ZmtpError> {
    let (&len, rest) = body
        .split_first()
        .ok_or_else(|| ZmtpError::Protocol("an empty command".into()))?;
    let len = usize::from(len);
    match (rest.get(..len), rest.get(len..)) {
        (Some(name), Some(data)) => Ok((name, data)),
        _ => Err(ZmtpError::Protocol("a command cut short".into())),
    }
}

/// What [`frames`] left of its buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parsed {
    /// The bytes of the complete frames at its front.
    pub used: usize,
    /// The bytes the next frame, incomplete, needs at least (counted from
    /// `used`).
    pub need: usize,
}

/// The complete frames at the front of `buf`, as a PULL peer takes them:
/// each message frame's body to `each` (a multi-part message's parts come
/// as separate frames), each PING's context (16 bytes at most) to `ping`;
/// other commands are passed over. Pure: [`PullStream::drain`] reads with
/// it, and the fuzz target `zmtp_frames` drives it with any bytes.
pub fn frames(
    buf: &[u8],
    mut each: impl FnMut(&[u8]),
    mut ping: impl FnMut(&[u8]),
) -> Result<Parsed, ZmtpError> {
    let mut used = 0;
    loop {
        match frame(&buf[used..])? {
            Frame::Whole {
                flags,
                body,
                used: taken,
            } => {
                if flags & FLAG_COMMAND == 0 {
                    each(body);
                } else if let (b"PING", data) = command_parts(body)? {
                    // A PING's context follows its 2-byte TTL.
                    let context = data.get(2..).unwrap_or_default();
                    ping(&context[..context.len().min(16)]);
                }
                used += taken;
            }
            Frame::Short { need } => return Ok(Parsed { used, need }),
        }
    }
}

/// What one [`PullStream::drain`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Drained {
    /// Message frames handed over.
    pub frames: u64,
    /// The peer closed the connection (nothing more will come).
    pub closed: bool,
}

/// A connected PULL peer: frames are read as they wait, never waited for.
pub struct PullStream {
    stream: TcpStream,
    buf: Vec<u8>,
    /// The unread bytes are `buf[start..end]`.
    start: usize,
    end: usize,
}

impl PullStream {
    /// Connects to a PUSH socket bound at `addr` and completes the
    /// handshake within `timeout`.
    pub fn connect(addr: SocketAddr, timeout: Duration) -> Result<Self, ZmtpError> {
        let stream = TcpStream::connect_timeout(&addr, timeout)?;
        Self::over(stream, timeout)
    }

    /// Completes the handshake with the PUSH socket `stream` is connected
    /// to, within `timeout`.
    pub fn over(stream: TcpStream, timeout: Duration) -> Result<Self, ZmtpError> {
        let deadline = Instant::now() + timeout;
        stream.set_nodelay(true)?;
        let mut pull = PullStream {
            stream,
            buf: vec![0; READ_CHUNK],
            start: 0,
            end: 0,
        };
        pull.handshake(deadline)?;
        pull.stream.set_read_timeout(None)?;
        pull.stream.set_nonblocking(true)?;
        Ok(pull)
    }

    /// Reads at least `n` unread bytes before `deadline`.
    fn fill_to(&mut self, n: usize, deadline: Instant) -> Result<(), ZmtpError> {
        while self.end - self.start < n {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(ZmtpError::Timeout);
            }
            self.stream.set_read_timeout(Some(left))?;
            self.make_room(n);
            match self.stream.read(&mut self.buf[self.end..]) {
                Ok(0) => {
                    return Err(ZmtpError::Protocol(
                        "the connection closed in the handshake".into(),
                    ))
                }
                Ok(read) => self.end += read,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return Err(ZmtpError::Timeout)
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    fn handshake(&mut self, deadline: Instant) -> Result<(), ZmtpError> {
        self.stream.write_all(&greeting())?;
        self.fill_to(GREETING_LEN, deadline)?;
        let peer = &self.buf[self.start..self.start + GREETING_LEN];
        if peer[0] != 0xff || peer[9] & 0x01 != 0x01 {
            return Err(ZmtpError::Protocol("not a ZMTP greeting".into()));
        }
        if peer[10] < 3 {
            return Err(ZmtpError::Protocol(format!("version {}", peer[10])));
        }
        if !peer[12..32].starts_with(b"NULL\0") {
            return Err(ZmtpError::Protocol(
                "a security mechanism other than NULL".into(),
            ));
        }
        self.start += GREETING_LEN;
        self.stream.write_all(&ready())?;
        loop {
            let (flags, body, used) = loop {
                match frame(&self.buf[self.start..self.end])? {
                    Frame::Whole { flags, body, used } => break (flags, body.to_vec(), used),
                    Frame::Short { need } => self.fill_to(need, deadline)?,
                }
            };
            self.start += used;
            if flags & FLAG_COMMAND == 0 {
                return Err(ZmtpError::Protocol("a message before READY".into()));
            }
            let (name, data) = command_parts(&body)?;
            match name {
                b"READY" => return Ok(()),
                b"ERROR" => {
                    let reason = data.get(1..).unwrap_or_default();
                    return Err(ZmtpError::Refused(
                        String::from_utf8_lossy(reason).into_owned(),
                    ));
                }
                // Anything else before READY (none is defined) is skipped.
                _ => {}
            }
        }
    }

    /// Makes room for `n` unread bytes and a read after them. The unread
    /// bytes move to the front whenever that avoids growing the buffer (or
    /// the room after them is short), so the buffer grows only for a
    /// frame larger than it: never past [`MAX_BUFFER`]. Once such a frame
    /// is through, it shrinks back to [`READ_CHUNK`].
    fn make_room(&mut self, n: usize) {
        let unread = self.end - self.start;
        // What the buffer must hold with the unread bytes at its front.
        let want = n.max(unread + READ_CHUNK / 4);
        let fits_here =
            self.start + n <= self.buf.len() && self.end + READ_CHUNK / 4 <= self.buf.len();
        let oversized = self.buf.len() > READ_CHUNK && want <= READ_CHUNK;
        if self.start > 0 && (!fits_here || oversized) {
            self.buf.copy_within(self.start..self.end, 0);
            self.end = unread;
            self.start = 0;
        }
        if oversized {
            // The large frame is through: give its memory back.
            self.buf.truncate(READ_CHUNK);
            self.buf.shrink_to_fit();
        } else if want > self.buf.len() {
            self.buf.resize(want.clamp(READ_CHUNK, MAX_BUFFER), 0);
        }
    }

    /// The read buffer's size (for the tests of its bounds).
    #[cfg(test)]
    fn buffer_len(&self) -> usize {
        self.buf.len()
    }

    /// Writes PONGs, waiting at most [`WRITE_TIMEOUT`] for the peer to
    /// take them: a peer that stops reading cannot hang the reader (and the
    /// sampler waiting on its tally).
    fn write_pong(&mut self, pong: &[u8]) -> Result<(), ZmtpError> {
        self.stream.set_nonblocking(false)?;
        self.stream.set_write_timeout(Some(WRITE_TIMEOUT))?;
        let written = self.stream.write_all(pong);
        self.stream.set_nonblocking(true)?;
        match written {
            Ok(()) => Ok(()),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                Err(ZmtpError::Timeout)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Hands every complete message frame waiting to `each`, without
    /// blocking; answers the peer's PINGs. After `closed`, or an error,
    /// nothing more will come.
    pub fn drain(&mut self, mut each: impl FnMut(&[u8])) -> Result<Drained, ZmtpError> {
        let mut drained = Drained::default();
        loop {
            // Every complete frame in the buffer first; PINGs answered
            // together, in one write, once the frames are through.
            let mut pongs = Vec::new();
            let Parsed { used, need } = frames(
                &self.buf[self.start..self.end],
                |body| {
                    each(body);
                    drained.frames += 1;
                },
                |context| pongs.extend(command(b"PONG", context)),
            )?;
            self.start += used;
            if !pongs.is_empty() {
                self.write_pong(&pongs)?;
            }
            if self.start == self.end {
                self.start = 0;
                self.end = 0;
            }
            self.make_room(need);
            match self.stream.read(&mut self.buf[self.end..]) {
                Ok(0) => {
                    drained.closed = true;
                    return Ok(drained);
                }
                Ok(read) => self.end += read,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(drained),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::peer::{push_greeting, push_ready, scripted_peer};
    use std::net::TcpListener;
    use zeromq::{PushSocket, Socket, SocketSend, ZmqMessage};

    /// A frame of `size` bytes numbered `i`: its first 4 bytes.
    fn numbered(i: u32, size: usize) -> Vec<u8> {
        let mut body = vec![(i % 251) as u8; size.max(4)];
        body[..4].copy_from_slice(&i.to_be_bytes());
        body
    }

    /// Drains until `n` frames came or the peer closed (at most 10 s).
    fn read_frames(stream: &mut PullStream, n: usize) -> (Vec<Vec<u8>>, bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut frames = Vec::new();
        loop {
            let drained = stream.drain(|f| frames.push(f.to_vec())).expect("drains");
            if drained.closed || frames.len() >= n || Instant::now() > deadline {
                return (frames, drained.closed);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn frames_from_a_zeromq_push_socket_arrive_whole_in_order_until_it_closes() {
        let mut push = PushSocket::new();
        let bound = push.bind("tcp://127.0.0.1:0").await.expect("binds");
        let zeromq::Endpoint::Tcp(_, port) = bound else {
            panic!("a TCP endpoint: {bound:?}");
        };
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let reading = tokio::task::spawn_blocking(move || {
            PullStream::connect(addr, Duration::from_secs(5)).expect("connects")
        });
        // Sizes across the short and long forms, and larger than a read.
        let sizes = [0usize, 1, 255, 256, 461, 70_000, 400_000];
        let sent: Vec<Vec<u8>> = (0..600u32)
            .map(|i| numbered(i, sizes[i as usize % sizes.len()]))
            .collect();
        // The socket takes messages once the reader's handshake is done.
        let mut first = Some(ZmqMessage::from(sent[0].clone()));
        while let Some(message) = first.take() {
            if let Err(zeromq::ZmqError::ReturnToSender { message, .. }) = push.send(message).await
            {
                first = Some(message);
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        let mut stream = reading.await.expect("joins");
        for body in &sent[1..] {
            push.send(ZmqMessage::from(body.clone()))
                .await
                .expect("sends");
        }
        let (frames, closed) = tokio::task::spawn_blocking(move || read_frames(&mut stream, 600))
            .await
            .expect("joins");
        assert!(!closed);
        assert_eq!(frames.len(), sent.len());
        assert!(frames == sent, "every frame whole and in order");

        drop(push);

        // The peer going away ends the stream, after what it sent. (A peer
        // of its own: the crate's socket, dropped, may keep a connection
        // it accepted meanwhile open for as long as its runtime lives.)
        let listener = TcpListener::bind("127.0.0.1:0").expect("binds");
        let addr = listener.local_addr().expect("addr");
        let peer = std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().expect("accepts");
            for piece in [push_greeting(), push_ready(), vec![0x00, 2, b'h', b'i']] {
                conn.write_all(&piece).expect("writes");
            }
            // Closed here, once the lab's greeting and its whole READY are
            // read: anything it sent left unread would turn the close into
            // a reset, which drops "hi" unread on the lab's side (a busy
            // machine's READY came after a fixed wait: "closed, with 0
            // frames").
            conn.set_read_timeout(Some(Duration::from_secs(10)))
                .expect("timeout");
            let mut greeting = [0u8; 64];
            conn.read_exact(&mut greeting).expect("the lab's greeting");
            let mut head = [0u8; 2];
            conn.read_exact(&mut head)
                .expect("the READY command's head");
            assert_eq!(head[0], 0x04, "a short command: {head:?}");
            let mut ready = vec![0u8; usize::from(head[1])];
            conn.read_exact(&mut ready).expect("the READY command");
            assert!(ready.starts_with(b"\x05READY"), "{ready:?}");
        });
        let (frames, closed) = tokio::task::spawn_blocking(move || {
            let mut stream = PullStream::connect(addr, Duration::from_secs(5)).expect("connects");
            read_frames(&mut stream, 2)
        })
        .await
        .expect("joins");
        peer.join().expect("the peer");
        assert!(closed, "closed, with {} frames", frames.len());
        assert_eq!(frames, vec![b"hi".to_vec()]);
    }

    #[test]
    fn a_frame_split_across_reads_is_handed_over_once_whole_and_pings_get_pongs() {
        let mut long = vec![FLAG_LONG];
        long.extend_from_slice(&300u64.to_be_bytes());
        long.extend(std::iter::repeat_n(7u8, 300));
        let mut ping = vec![2]; // TTL
        ping.extend_from_slice(&[0, 10]);
        ping.extend_from_slice(b"ctx");
        let script = vec![
            push_greeting(),
            push_ready(),
            vec![0x00, 3, b'a'],
            vec![b'b', b'c', FLAG_MORE, 1, b'x', 0x00],
            vec![1, b'y'],
            long[..5].to_vec(),
            long[5..100].to_vec(),
            long[100..].to_vec(),
            command(b"PING", &ping[1..]),
        ];
        let (addr, peer) = scripted_peer(script);
        let mut stream = PullStream::connect(addr, Duration::from_secs(5)).expect("connects");
        let (frames, _) = read_frames(&mut stream, 4);
        assert_eq!(
            frames,
            vec![
                b"abc".to_vec(),
                b"x".to_vec(),
                b"y".to_vec(),
                vec![7u8; 300]
            ]
        );
        // The PING follows the frames: drain a moment longer to answer it.
        for _ in 0..50 {
            stream.drain(|_| {}).expect("drains");
            std::thread::sleep(Duration::from_millis(10));
        }
        drop(stream);
        let written = peer.join().expect("peer");
        let mut expected = greeting().to_vec();
        expected.extend_from_slice(&ready());
        expected.extend_from_slice(&command(b"PONG", b"ctx"));
        assert_eq!(written, expected);
    }

    /// A long frame of `size` bytes of `byte`.
    fn long_frame(size: usize, byte: u8) -> Vec<u8> {
        let mut frame = vec![FLAG_LONG];
        frame.extend_from_slice(&(size as u64).to_be_bytes());
        frame.extend(std::iter::repeat_n(byte, size));
        frame
    }

    #[test]
    fn the_read_buffer_never_passes_its_cap_and_shrinks_back_after_a_large_frame() {
        // FAULTS.md 51. Three times: small frames filling part of a read,
        // the last one cut short, then the largest frame the lab reads.
        // The buffer once grew by the offset of the cut frame each time
        // and never shrank.
        let small: Vec<u8> = (0..2_400u32)
            .flat_map(|i| {
                let mut f = vec![0x00, 60];
                f.extend(numbered(i, 60));
                f
            })
            .collect();
        let mut script = vec![push_greeting(), push_ready()];
        for _ in 0..3 {
            let big = long_frame(MAX_FRAME, 9);
            let mut piece = small.clone();
            piece.extend_from_slice(&big[..5]);
            script.push(piece);
            script.push(big[5..].to_vec());
        }
        script.push(small.clone());
        let (addr, _peer) = scripted_peer(script);
        let mut stream = PullStream::connect(addr, Duration::from_secs(5)).expect("connects");
        let deadline = Instant::now() + Duration::from_secs(60);
        let (mut big, mut little, mut largest) = (0, 0, 0);
        while big < 3 || little < 4 * 2_400 {
            assert!(
                Instant::now() < deadline,
                "{big} large and {little} small frames"
            );
            stream
                .drain(|f| {
                    if f.len() == MAX_FRAME {
                        big += 1;
                    } else {
                        little += 1;
                    }
                })
                .expect("drains");
            largest = largest.max(stream.buffer_len());
            std::thread::sleep(Duration::from_millis(2));
        }
        assert!(largest >= MAX_FRAME, "the large frame was held whole");
        assert!(
            largest <= MAX_BUFFER,
            "the buffer grew to {largest} bytes, past {MAX_BUFFER}"
        );
        stream.drain(|_| {}).expect("drains");
        assert_eq!(stream.buffer_len(), READ_CHUNK, "shrunk back");
    }

    #[test]
    fn a_peer_that_stops_reading_cannot_hang_the_reader_on_its_pongs() {
        // FAULTS.md 51. A peer sends PINGs and never reads the PONGs: once
        // the kernel's buffers are full, the reader gives up on the peer
        // within its write timeout instead of blocking for good.
        let listener = TcpListener::bind("127.0.0.1:0").expect("binds");
        let addr = listener.local_addr().expect("addr");
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let _peer = std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().expect("accepts");
            let mut pings = push_greeting();
            pings.extend(push_ready());
            let mut ping = vec![0, 10];
            ping.extend_from_slice(&[b'c'; 16]);
            let one = command(b"PING", &ping);
            for _ in 0..1_000_000 {
                pings.extend_from_slice(&one);
            }
            // Written until the reader stops taking them; never read.
            let _ = conn.write_all(&pings);
            let _ = done_rx.recv_timeout(Duration::from_secs(60));
        });
        let (result_tx, result_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut stream = PullStream::connect(addr, Duration::from_secs(5)).expect("connects");
            let deadline = Instant::now() + Duration::from_secs(50);
            let outcome = loop {
                match stream.drain(|_| {}) {
                    Err(e) => break Some(e),
                    Ok(d) if d.closed || Instant::now() > deadline => break None,
                    Ok(_) => {}
                }
            };
            let _ = result_tx.send(outcome);
        });
        let outcome = result_rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the reader came back rather than blocking on its PONGs");
        let _ = done_tx.send(());
        assert!(matches!(outcome, Some(ZmtpError::Timeout)), "{outcome:?}");
    }

    #[test]
    fn peers_that_are_not_zeromq_or_refuse_or_break_the_framing_get_errors() {
        // Not ZMTP at all.
        let (addr, _peer) = scripted_peer(vec![b"HTTP/1.1 400 Bad Request\r\n\r\n".repeat(3)]);
        let err = PullStream::connect(addr, Duration::from_secs(5)).err();
        assert!(
            matches!(&err, Some(ZmtpError::Protocol(m)) if m == "not a ZMTP greeting"),
            "{err:?}"
        );
        // A security mechanism the lab does not speak.
        let mut curve = push_greeting();
        curve[12..17].copy_from_slice(b"CURVE");
        let (addr, _peer) = scripted_peer(vec![curve]);
        let err = PullStream::connect(addr, Duration::from_secs(5)).err();
        assert!(
            matches!(&err, Some(ZmtpError::Protocol(m)) if m.contains("NULL")),
            "{err:?}"
        );
        // The peer says no.
        let (addr, _peer) = scripted_peer(vec![
            push_greeting(),
            command(b"ERROR", b"\x0cnot for you!"),
        ]);
        let err = PullStream::connect(addr, Duration::from_secs(5)).err();
        assert!(
            matches!(&err, Some(ZmtpError::Refused(m)) if m == "not for you!"),
            "{err:?}"
        );
        // Silence.
        let silent = TcpListener::bind("127.0.0.1:0").expect("binds");
        let started = Instant::now();
        let err = PullStream::connect(
            silent.local_addr().expect("addr"),
            Duration::from_millis(300),
        )
        .err();
        assert!(matches!(err, Some(ZmtpError::Timeout)), "{err:?}");
        assert!(started.elapsed() < Duration::from_secs(3));
        // Reserved flags, then a frame larger than the lab reads.
        let mut huge = vec![FLAG_LONG];
        huge.extend_from_slice(&(MAX_FRAME as u64 + 1).to_be_bytes());
        for (bad, says) in [(vec![0x08, 1, 0], "reserved flags"), (huge, "above")] {
            let (addr, _peer) = scripted_peer(vec![push_greeting(), push_ready(), bad]);
            let mut stream = PullStream::connect(addr, Duration::from_secs(5)).expect("connects");
            let deadline = Instant::now() + Duration::from_secs(5);
            let err = loop {
                match stream.drain(|_| {}) {
                    Err(e) => break Some(e),
                    Ok(_) if Instant::now() > deadline => break None,
                    Ok(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            };
            assert!(
                matches!(&err, Some(ZmtpError::Protocol(m)) if m.contains(says)),
                "{err:?}"
            );
        }
    }

    /// A stream of frames as a PUSH peer writes them: each frame's flags
    /// (more, long form) and body. Bodies of 256 bytes or more are long.
    fn encode(frames: &[(bool, bool, Vec<u8>)]) -> Vec<u8> {
        let mut stream = Vec::new();
        for (more, long, body) in frames {
            let more = if *more { FLAG_MORE } else { 0 };
            if *long || body.len() > 255 {
                stream.push(more | FLAG_LONG);
                stream.extend_from_slice(&(body.len() as u64).to_be_bytes());
            } else {
                stream.push(more);
                stream.push(body.len() as u8);
            }
            stream.extend_from_slice(body);
        }
        stream
    }

    /// The frames read from `stream` handed over in `pieces` (the reader's
    /// own loop: whole frames out, a short one waits for more), and the
    /// bytes left unread.
    fn read_in_pieces(stream: &[u8], cuts: &[usize]) -> (Vec<(u8, Vec<u8>)>, usize) {
        let mut buf = Vec::new();
        let (mut start, mut from) = (0, 0);
        let mut out = Vec::new();
        for &cut in cuts.iter().chain(std::iter::once(&stream.len())) {
            buf.extend_from_slice(&stream[from..cut]);
            from = cut;
            loop {
                match frame(&buf[start..]).expect("a valid stream") {
                    Frame::Whole { flags, body, used } => {
                        out.push((flags, body.to_vec()));
                        start += used;
                    }
                    Frame::Short { need } => {
                        assert!(
                            need > buf.len() - start,
                            "short, yet {need} bytes are there"
                        );
                        break;
                    }
                }
            }
        }
        (out, buf.len() - start)
    }

    fn frames_strategy() -> impl Strategy<Value = Vec<(bool, bool, Vec<u8>)>> {
        prop::collection::vec(
            (
                any::<bool>(),
                any::<bool>(),
                prop_oneof![
                    prop::collection::vec(any::<u8>(), 0..300),
                    prop::collection::vec(any::<u8>(), 250..2000),
                ],
            ),
            1..12,
        )
    }

    use proptest::prelude::*;

    proptest! {
        /// However a valid stream is split across reads, every frame comes
        /// out once, whole, in order, with its flags; nothing is left.
        #[test]
        fn frames_come_out_whole_however_the_stream_is_split(
            frames in frames_strategy(),
            cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..40),
        ) {
            let stream = encode(&frames);
            let mut cuts: Vec<usize> = cuts.iter().map(|i| i.index(stream.len() + 1)).collect();
            cuts.sort_unstable();
            let (out, left) = read_in_pieces(&stream, &cuts);
            prop_assert_eq!(left, 0);
            prop_assert_eq!(out.len(), frames.len());
            for ((flags, body), (more, long, sent)) in out.iter().zip(&frames) {
                prop_assert_eq!(flags & FLAG_MORE != 0, *more);
                prop_assert_eq!(flags & FLAG_LONG != 0, *long || sent.len() > 255);
                prop_assert_eq!(body, sent);
            }
        }

        /// A stream cut anywhere gives the frames before the cut and no
        /// part of the one it cuts.
        #[test]
        fn a_truncated_stream_gives_no_part_of_a_frame(
            frames in frames_strategy(),
            at in any::<prop::sample::Index>(),
        ) {
            let stream = encode(&frames);
            let at = at.index(stream.len() + 1);
            let (out, left) = read_in_pieces(&stream[..at], &[]);
            let whole: usize = (0..=frames.len())
                .take_while(|n| encode(&frames[..*n]).len() <= at)
                .last()
                .unwrap_or(0);
            prop_assert_eq!(out.len(), whole);
            prop_assert_eq!(left, at - encode(&frames[..whole]).len());
        }

        /// A length above what the lab reads is refused before anything is
        /// allocated for it, whatever the length.
        #[test]
        fn a_huge_length_prefix_is_refused(size in (MAX_FRAME as u64 + 1)..=u64::MAX, more in any::<bool>()) {
            let mut buf = vec![FLAG_LONG | if more { FLAG_MORE } else { 0 }];
            buf.extend_from_slice(&size.to_be_bytes());
            let refused = matches!(frame(&buf), Err(ZmtpError::Protocol(m)) if m.contains("above"));
            prop_assert!(refused);
        }

        /// Any bytes at all: an error, a short frame, or a whole one within
        /// the bytes given; never a panic.
        #[test]
        fn any_bytes_are_read_or_refused(buf in prop::collection::vec(any::<u8>(), 0..64)) {
            match frame(&buf) {
                Ok(Frame::Whole { used, body, .. }) => {
                    prop_assert!(used <= buf.len() && body.len() < used);
                }
                Ok(Frame::Short { need }) => prop_assert!(need > buf.len()),
                Err(ZmtpError::Protocol(why)) => prop_assert!(!why.is_empty()),
                Err(other) => prop_assert!(false, "{other}"),
            }
        }
    }
}
