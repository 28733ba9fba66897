//! The few lines of the NATS client protocol the fan-out benchmark speaks to nats-server's
//! WebSocket listener: CONNECT, SUB, PUB, PING/PONG, and reading MSG.
//!
//! nats-server may put several protocol lines in one WebSocket frame or split one across
//! frames, so [`Reader`] keeps what it has not parsed yet.

use anyhow::{Context, bail};
use futures_util::StreamExt;
use tokio_tungstenite::tungstenite::Message;

use crate::fanout::Socket;

/// CONNECT (no acks, no headers), SUB to `subject` when given, then PING.
pub fn handshake(subscribe: Option<&str>) -> Vec<u8> {
    let mut out =
        br#"CONNECT {"verbose":false,"pedantic":false,"protocol":1,"headers":false}"#.to_vec();
    out.extend_from_slice(b"\r\n");
    if let Some(subject) = subscribe {
        out.extend_from_slice(format!("SUB {subject} 1\r\n").as_bytes());
    }
    out.extend_from_slice(b"PING\r\n");
    out
}

/// One PUB of `payload` to `subject`.
pub fn publish(subject: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!("PUB {subject} {}\r\n", payload.len()).into_bytes();
    out.extend_from_slice(payload);
    out.extend_from_slice(b"\r\n");
    out
}

/// Parses what the server sends, across frame boundaries.
#[derive(Debug, Default)]
pub struct Reader {
    pending: Vec<u8>,
}

/// One protocol item from the server.
enum Item {
    Msg { payload: std::ops::Range<usize> },
    Ping,
    Pong,
    Other,
}

/// What one [`Reader::feed`] saw besides the messages it handed over.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Seen {
    /// Complete MSGs.
    pub messages: usize,
    /// PINGs, each to be answered with a PONG.
    pub pings: usize,
    /// PONGs (answers to our PING).
    pub pongs: usize,
}

impl Reader {
    /// Adds `data`; calls `on_message` with each complete MSG payload.
    pub fn feed(
        &mut self,
        data: &[u8],
        on_message: &mut impl FnMut(&[u8]) -> anyhow::Result<()>,
    ) -> anyhow::Result<Seen> {
        self.pending.extend_from_slice(data);
        let (mut seen, mut at) = (Seen::default(), 0);
        while let Some((item, next)) = parse(&self.pending, at)? {
            match item {
                Item::Msg { payload } => {
                    on_message(&self.pending[payload])?;
                    seen.messages += 1;
                }
                Item::Ping => seen.pings += 1,
                Item::Pong => seen.pongs += 1,
                Item::Other => {}
            }
            at = next;
        }
        self.pending.drain(..at);
        Ok(seen)
    }

    /// Reads until the server's PONG (the answer to the handshake's PING). Nothing is
    /// published before every client has its PONG, so there are no messages to lose.
    pub async fn wait_for_pong(&mut self, ws: &mut Socket) -> anyhow::Result<()> {
        loop {
            let data = match ws.next().await.context("closed during the handshake")?? {
                Message::Binary(data) => data,
                Message::Text(text) => text.into(),
                Message::Close(frame) => bail!("closed during the handshake: {frame:?}"),
                _ => continue,
            };
            if self.feed(&data, &mut |_| Ok(()))?.pongs > 0 {
                return Ok(());
            }
        }
    }
}

/// The item starting at `at`, and where the next starts; None if incomplete.
fn parse(buf: &[u8], at: usize) -> anyhow::Result<Option<(Item, usize)>> {
    let rest = &buf[at..];
    let Some(eol) = rest.windows(2).position(|w| w == b"\r\n") else { return Ok(None) };
    let line = &rest[..eol];
    let after_line = at + eol + 2;
    if let Some(args) = line.strip_prefix(b"MSG ") {
        let len: usize = std::str::from_utf8(args)
            .ok()
            .and_then(|a| a.split_ascii_whitespace().last())
            .and_then(|n| n.parse().ok())
            .with_context(|| format!("bad MSG line {:?}", String::from_utf8_lossy(line)))?;
        if buf.len() < after_line + len + 2 {
            return Ok(None);
        }
        return Ok(Some((
            Item::Msg { payload: after_line..after_line + len },
            after_line + len + 2,
        )));
    }
    let item = match line {
        b"PING" => Item::Ping,
        b"PONG" => Item::Pong,
        l if l.starts_with(b"-ERR") => {
            bail!("nats-server: {}", String::from_utf8_lossy(l))
        }
        _ => Item::Other,
    };
    Ok(Some((item, after_line)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_split_and_joined_across_frames_are_all_read() {
        let mut reader = Reader::default();
        let mut got = Vec::new();
        let mut on = |p: &[u8]| {
            got.push(p.to_vec());
            Ok(())
        };
        let stream = b"INFO {}\r\nMSG s 1 3\r\nabc\r\nPING\r\nMSG s 1 2\r\nxy\r\n";
        let (first, second) = stream.split_at(25);
        assert_eq!(reader.feed(first, &mut on).unwrap(), Seen { messages: 1, ..Seen::default() });
        assert_eq!(reader.feed(second, &mut on).unwrap(), Seen { messages: 1, pings: 1, pongs: 0 });
        assert_eq!(got, vec![b"abc".to_vec(), b"xy".to_vec()]);
    }

    #[test]
    fn an_error_line_is_an_error() {
        let mut on = |_: &[u8]| Ok(());
        assert!(Reader::default().feed(b"-ERR 'Slow Consumer'\r\n", &mut on).is_err());
    }
}
