//! Hostile WebSocket clients that send frames no well-behaved library would: a raw client
//! writes the bytes itself, and the host must close just that client with the right code.

use std::{
    io::{Read, Write},
    net::TcpStream,
    time::Duration,
};

use futures_util::SinkExt;
use tokio_tungstenite::tungstenite::Message;

use crate::harness::{Tern, TestProject, room_url, ws_connect, ws_next_text};

/// A WebSocket client that writes raw frames.
pub struct RawClient {
    stream: TcpStream,
}

impl RawClient {
    /// Completes a WebSocket handshake on `path`.
    pub fn connect(tern: &Tern, path: &str) -> Self {
        let mut stream = TcpStream::connect(tern.addr).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let handshake = format!(
            "GET {path} HTTP/1.1\r\nhost: x\r\nupgrade: websocket\r\nconnection: Upgrade\r\n\
             sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version: 13\r\n\r\n"
        );
        stream.write_all(handshake.as_bytes()).unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            stream.read_exact(&mut byte).expect("read the handshake answer");
            head.push(byte[0]);
        }
        let head = String::from_utf8_lossy(&head);
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        Self { stream }
    }

    /// Writes one masked frame (client frames must be masked).
    pub fn send(&mut self, fin: bool, opcode: u8, payload: &[u8]) {
        let mut frame = vec![(u8::from(fin) << 7) | opcode];
        let len = payload.len();
        if len < 126 {
            frame.push(0x80 | len as u8);
        } else if len <= 0xffff {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(len as u16).to_be_bytes());
        } else {
            frame.push(0x80 | 127);
            frame.extend_from_slice(&(len as u64).to_be_bytes());
        }
        let mask = [0x12, 0x34, 0x56, 0x78];
        frame.extend_from_slice(&mask);
        frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        // The host may close before reading it all; that is its right.
        let _ = self.stream.write_all(&frame);
    }

    /// Reads frames until a close frame and returns its code.
    pub fn close_code(&mut self) -> u16 {
        self.frames_until_close().1
    }

    /// Reads frames, answering none of them, until a close frame: the opcodes of the
    /// frames before it, and its code.
    pub fn frames_until_close(&mut self) -> (Vec<u8>, u16) {
        let mut opcodes = Vec::new();
        loop {
            let mut head = [0u8; 2];
            self.stream.read_exact(&mut head).expect("a close frame before the connection ends");
            let opcode = head[0] & 0x0f;
            let len = match head[1] & 0x7f {
                126 => {
                    let mut b = [0u8; 2];
                    self.stream.read_exact(&mut b).unwrap();
                    u64::from(u16::from_be_bytes(b))
                }
                127 => {
                    let mut b = [0u8; 8];
                    self.stream.read_exact(&mut b).unwrap();
                    u64::from_be_bytes(b)
                }
                n => u64::from(n),
            };
            let mut payload = vec![0u8; len as usize];
            self.stream.read_exact(&mut payload).unwrap();
            if opcode == 8 {
                return (opcodes, u16::from_be_bytes([payload[0], payload[1]]));
            }
            opcodes.push(opcode);
        }
    }
}

pub const TEXT: u8 = 1;
const CONTINUATION: u8 = 0;
pub const PING: u8 = 9;

fn project() -> TestProject {
    TestProject::from_example("chat").settings("websocket:\n  max_message: 1KiB\n")
}

/// Runs `misbehave` on a raw client and checks it is closed with `code` while two good
/// clients of the same room keep talking.
async fn closes_only_the_offender(code: u16, misbehave: impl FnOnce(&mut RawClient)) {
    let project = project();
    let tern = Tern::serve(project.path());
    let url = room_url(&tern, "raw").await;
    let path = url.split_once(&tern.addr.to_string()).unwrap().1.to_string();
    let mut a = ws_connect(&url).await;
    let mut b = ws_connect(&url).await;
    let mut raw = RawClient::connect(&tern, &path);
    misbehave(&mut raw);
    let got = tokio::task::spawn_blocking(move || raw.close_code()).await.unwrap();
    assert_eq!(got, code);
    a.send(Message::text("unaffected")).await.unwrap();
    assert_eq!(ws_next_text(&mut b).await, "unaffected");
}

#[tokio::test]
async fn invalid_utf8_in_a_text_frame_closes_with_1007() {
    closes_only_the_offender(1007, |c| c.send(true, TEXT, b"caf\xc3")).await;
}

#[tokio::test]
async fn a_control_frame_over_125_bytes_closes_with_1002() {
    closes_only_the_offender(1002, |c| c.send(true, PING, &[0u8; 126])).await;
}

#[tokio::test]
async fn a_fragmented_control_frame_closes_with_1002() {
    closes_only_the_offender(1002, |c| c.send(false, PING, b"part")).await;
}

#[tokio::test]
async fn a_message_over_the_limit_across_fragments_closes_with_1009() {
    closes_only_the_offender(1009, |c| {
        c.send(false, TEXT, &[b'a'; 600]);
        c.send(true, CONTINUATION, &[b'a'; 600]);
    })
    .await;
}

#[tokio::test]
async fn a_frame_announcing_a_huge_length_closes_with_1009() {
    closes_only_the_offender(1009, |c| {
        // Header only: 2^40 bytes announced, none sent.
        let mut frame = vec![0x82, 0x80 | 127];
        frame.extend_from_slice(&(1u64 << 40).to_be_bytes());
        frame.extend_from_slice(&[1, 2, 3, 4]);
        c.stream.write_all(&frame).unwrap();
    })
    .await;
}
