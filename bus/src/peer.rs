//! A ZeroMQ PUSH peer written by hand, byte by byte: what a test of a
//! reader needs to script a duplicator that misbehaves (a frame split
//! anywhere, a hostile length, a stream cut mid-frame).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use crate::zmtp::{command, greeting};

/// A peer written by hand: accepts one connection, reads the lab's
/// greeting and READY, then writes `script` in pieces.
pub fn scripted_peer(script: Vec<Vec<u8>>) -> (SocketAddr, std::thread::JoinHandle<Vec<u8>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binds");
    let addr = listener.local_addr().expect("addr");
    let peer = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().expect("accepts");
        conn.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        for piece in script {
            conn.write_all(&piece).expect("writes");
            std::thread::sleep(Duration::from_millis(20));
        }
        // What the lab wrote.
        let mut got = Vec::new();
        let _ = conn.read_to_end(&mut got);
        got
    });
    (addr, peer)
}

pub fn push_greeting() -> Vec<u8> {
    let mut g = greeting().to_vec();
    g[11] = 1;
    g
}

pub fn push_ready() -> Vec<u8> {
    let mut body = vec![11];
    body.extend_from_slice(b"Socket-Type");
    body.extend_from_slice(&4u32.to_be_bytes());
    body.extend_from_slice(b"PUSH");
    command(b"READY", &body)
}
