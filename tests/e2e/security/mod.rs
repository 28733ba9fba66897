//! Attacks on the host, each reproduced against the real binary: the tests of issue 10's
//! audit. Raw sockets where a library would refuse to misbehave; several loopback source
//! addresses (127.0.0.0/8) where a limit is per client address.

mod config;
mod http;
mod logs;
mod runtime;
mod websocket;

use std::{
    io::{Read, Write},
    net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream},
    time::Duration,
};

/// A TCP connection to `addr` from the loopback address `127.0.0.<last>`.
pub async fn connect_from(last: u8, addr: SocketAddr) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    let source = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, last)), 0);
    socket.bind(source).expect("bind a loopback source address");
    let stream = socket.connect(addr).await.expect("connect");
    let stream = stream.into_std().expect("std stream");
    stream.set_nonblocking(false).expect("blocking");
    stream
}

/// What a server sent on a connection, and whether it then closed it.
#[derive(Debug)]
pub struct Answer {
    /// Everything received.
    pub text: String,
    /// True when the server closed the connection; false when it went silent for `quiet`.
    pub closed: bool,
}

/// Reads from `stream` until the server closes it or stays silent for `quiet`.
pub fn read_answer(stream: &mut TcpStream, quiet: Duration) -> Answer {
    stream.set_read_timeout(Some(quiet)).expect("set timeout");
    let mut out = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    let closed = loop {
        match stream.read(&mut buf) {
            Ok(0) => break true,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                break false;
            }
            // A reset after the answer is a close too.
            Err(_) => break true,
        }
    };
    Answer { text: String::from_utf8_lossy(&out).into_owned(), closed }
}

/// Sends `request` on a fresh connection and reads the answer (closed or quiet for 5 s).
pub fn exchange(addr: SocketAddr, request: &[u8]) -> Answer {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.write_all(request).expect("send");
    read_answer(&mut stream, Duration::from_secs(5))
}
