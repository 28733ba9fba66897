//! The few commands of the Centrifugo client protocol v2 (JSON) the fan-out benchmark
//! speaks to tern's `/connection/websocket`: connect (anonymous), subscribe, publish, the
//! pong, and reading replies and publication pushes.
//!
//! A text frame from the server holds one or more replies separated by `\n`. A publication
//! is `{"push":{"channel":..,"pub":{"data":..}}}`; a ping is `{}`, answered with `{}`.
//! The benchmark's payloads are ASCII text that is not a JSON document (see
//! [`encode_time`]), so tern sends them back as JSON strings.

use std::borrow::Cow;

use anyhow::{Context, bail};
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use tokio_tungstenite::tungstenite::Message;

use crate::fanout::Socket;

/// The id of the connect command; the subscribe uses the next one.
pub const CONNECT_ID: u64 = 1;
/// The first id a publish may use.
pub const FIRST_PUBLISH_ID: u64 = 3;
/// The pong: an empty command.
pub const PONG: &str = "{}";

/// The URL-safe base64 alphabet: 64 ASCII characters that need no escaping in JSON.
const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Writes the low 48 bits of `nanos` as 8 base64 characters, most significant first.
/// A benchmark's times stay below 2^42 ns (73 minutes), so the first character is `A`
/// and a payload that starts with it is never a JSON document.
pub fn encode_time(nanos: u64, out: &mut [u8; 8]) {
    for (i, c) in out.iter_mut().enumerate() {
        *c = ALPHABET[((nanos >> (42 - 6 * i)) & 63) as usize];
    }
}

/// Reads the time [`encode_time`] wrote at the start of `payload`.
pub fn decode_time(payload: &[u8]) -> anyhow::Result<u64> {
    let head = payload.get(..8).context("short payload")?;
    head.iter().try_fold(0u64, |acc, &c| {
        let digit = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => bail!("payload does not start with a timestamp: {:?}", c as char),
        };
        Ok(acc << 6 | u64::from(digit))
    })
}

/// Builds publish commands for one channel.
#[derive(Debug, Clone)]
pub struct Publish {
    middle: String,
}

impl Publish {
    /// Publishes to `channel`.
    pub fn new(channel: &str) -> anyhow::Result<Self> {
        let channel = serde_json::to_string(channel)?;
        Ok(Self { middle: format!(r#","publish":{{"channel":{channel},"data":""#) })
    }

    /// The command publishing `payload` (JSON-safe ASCII: [`encode_time`] and padding)
    /// with `id`.
    pub fn command(&self, id: u64, payload: &[u8]) -> anyhow::Result<String> {
        let data = std::str::from_utf8(payload).context("the payload is not ASCII")?;
        Ok(format!(r#"{{"id":{id}{}{data}"}}}}"#, self.middle))
    }
}

/// One reply or push as the benchmark reads it; every other field is skipped.
#[derive(Debug, Default, Deserialize)]
struct Line<'a> {
    #[serde(default)]
    id: u64,
    #[serde(default)]
    error: Option<serde_json::Value>,
    #[serde(borrow, default)]
    push: Option<Push<'a>>,
}

#[derive(Debug, Deserialize)]
struct Push<'a> {
    #[serde(borrow, rename = "pub", default)]
    publication: Option<Publication<'a>>,
    #[serde(default)]
    unsubscribe: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
struct Publication<'a> {
    #[serde(borrow)]
    data: Cow<'a, str>,
}

/// What one [`feed`] saw besides the publications it handed over.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Seen {
    /// Publication pushes.
    pub publications: usize,
    /// Pings, each to be answered with [`PONG`].
    pub pings: usize,
    /// Replies to commands (with an id, no error).
    pub replies: usize,
    /// The highest id replied to.
    pub last_id: u64,
}

/// Reads one text frame: calls `on_publication` with the data of each publication; fails
/// on an error reply or an unsubscribe push.
pub fn feed(
    text: &str,
    on_publication: &mut impl FnMut(&[u8]) -> anyhow::Result<()>,
) -> anyhow::Result<Seen> {
    let mut seen = Seen::default();
    for raw in text.split('\n').filter(|l| !l.trim().is_empty()) {
        let line: Line =
            serde_json::from_str(raw).with_context(|| format!("not a reply: {}", excerpt(raw)))?;
        if let Some(error) = &line.error {
            bail!("error reply to command {}: {error}", line.id);
        }
        match line.push {
            Some(Push { publication: Some(p), .. }) => {
                on_publication(p.data.as_bytes())?;
                seen.publications += 1;
            }
            Some(Push { unsubscribe: Some(u), .. }) => bail!("unsubscribed by the server: {u}"),
            Some(_) => {} // join, leave
            None if line.id == 0 => seen.pings += 1,
            None => {
                seen.replies += 1;
                seen.last_id = seen.last_id.max(line.id);
            }
        }
    }
    Ok(seen)
}

fn excerpt(line: &str) -> String {
    line.chars().take(200).collect()
}

/// Sends `command` (with id `id`) and reads until its reply, answering pings; fails on an
/// error reply or a close. Nothing is published before every client has its replies, so
/// there are no publications to lose.
pub async fn call(ws: &mut Socket, command: String, id: u64) -> anyhow::Result<()> {
    ws.send(Message::text(command)).await?;
    loop {
        let text = match ws.next().await.context("closed during the handshake")?? {
            Message::Text(text) => text,
            Message::Close(frame) => bail!("closed during the handshake: {frame:?}"),
            Message::Binary(_) => bail!("a binary frame on a JSON connection"),
            _ => continue,
        };
        let seen = feed(&text, &mut |_| Ok(()))?;
        for _ in 0..seen.pings {
            ws.send(Message::text(PONG)).await?;
        }
        if seen.last_id >= id {
            return Ok(());
        }
    }
}

/// Connects anonymously and, when `channel` is given, subscribes to it.
pub async fn handshake(ws: &mut Socket, channel: Option<&str>) -> anyhow::Result<()> {
    call(ws, format!(r#"{{"id":{CONNECT_ID},"connect":{{}}}}"#), CONNECT_ID)
        .await
        .context("connect")?;
    if let Some(channel) = channel {
        let id = CONNECT_ID + 1;
        let channel = serde_json::to_string(channel)?;
        call(ws, format!(r#"{{"id":{id},"subscribe":{{"channel":{channel}}}}}"#), id)
            .await
            .context("subscribe")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_survive_the_round_trip_and_start_with_a_letter() {
        for nanos in [0, 1, 63, 64, 123_456_789_012, (1 << 42) - 1] {
            let mut out = [0; 8];
            encode_time(nanos, &mut out);
            assert_eq!(out[0], b'A', "{nanos}");
            assert_eq!(decode_time(&out).unwrap(), nanos);
        }
        assert!(decode_time(b"AAAA\"AAA").is_err());
        assert!(decode_time(b"AAA").is_err());
    }

    #[test]
    fn a_publish_command_is_json() {
        let command = Publish::new("bench").unwrap().command(7, b"AAAAAAAZxx").unwrap();
        let value: serde_json::Value = serde_json::from_str(&command).unwrap();
        assert_eq!(
            value,
            serde_json::json!({"id": 7, "publish": {"channel": "bench", "data": "AAAAAAAZxx"}})
        );
    }

    #[test]
    fn a_frame_of_pushes_pings_and_replies_is_read_line_by_line() {
        let frame = concat!(
            r#"{"push":{"channel":"bench","pub":{"data":"AAAAAAAB","info":{"user":""}}}}"#,
            "\n{}\n",
            r#"{"id":5,"publish":{}}"#,
            "\n",
            r#"{"push":{"channel":"bench","pub":{"data":"AAAAAAAC","offset":3}}}"#,
        );
        let mut got = Vec::new();
        let seen = feed(frame, &mut |d| {
            got.push(decode_time(d)?);
            Ok(())
        })
        .unwrap();
        assert_eq!(seen, Seen { publications: 2, pings: 1, replies: 1, last_id: 5 });
        assert_eq!(got, vec![1, 2]);
    }

    #[test]
    fn an_error_reply_or_an_unsubscribe_push_is_an_error() {
        let mut on = |_: &[u8]| Ok(());
        let error = feed(r#"{"id":2,"error":{"code":102,"message":"unknown channel"}}"#, &mut on);
        assert!(error.unwrap_err().to_string().contains("unknown channel"));
        let unsub = r#"{"push":{"channel":"bench","unsubscribe":{"code":2000,"reason":"x"}}}"#;
        assert!(feed(unsub, &mut on).is_err());
        assert!(feed("not json", &mut on).is_err());
    }
}
