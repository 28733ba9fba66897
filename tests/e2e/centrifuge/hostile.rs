//! Runs every case of [`cases::all`] on one tern, each on a connection of its own, and
//! checks after each that the bystanders still talk. Failures are collected so one run
//! shows every case that does not get its documented answer.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use prost::Message as _;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use super::{
    Bystanders,
    cases::{self, Case, Expect, Start, USER, Wire},
    connection_token, endpoint, pb, serve,
};
use crate::harness::{Ws, ws_connect};

/// The id of the command sent after an error or an ignored frame, to show the connection
/// still answers.
const FOLLOW_UP: u32 = 900;

/// What came back on a case's connection.
#[derive(Debug)]
enum Answer {
    /// A reply with this id, and its error code if it is an error.
    Reply { id: u32, error: Option<u32> },
    /// A close frame with this code (1005 when it carried none).
    Close(u16),
    /// Nothing within 5 s.
    Silence,
}

/// One case's connection, JSON or protobuf.
struct Conn {
    ws: Ws,
    wire: Wire,
    /// Answers read but not yet looked at.
    pending: Vec<Answer>,
}

impl Conn {
    async fn open(tern: &crate::harness::Tern, wire: Wire) -> Self {
        let ws = ws_connect(&endpoint(tern, wire == Wire::Protobuf)).await;
        Self { ws, wire, pending: Vec::new() }
    }

    /// Sends a frame; a send error means tern has closed, which the next read shows.
    async fn send(&mut self, frame: Message) {
        let _ = self.ws.send(frame).await;
    }

    /// Sends a ping (after connect) or a connect (before), id [`FOLLOW_UP`].
    async fn send_follow_up(&mut self, connected: bool) {
        let frame = match (self.wire, connected) {
            (Wire::Json, true) => Message::text(json!({ "id": FOLLOW_UP, "ping": {} }).to_string()),
            (Wire::Json, false) => Message::text(
                json!({ "id": FOLLOW_UP, "connect": { "token": connection_token(USER) } })
                    .to_string(),
            ),
            (Wire::Protobuf, true) => Message::binary(pb::frame(&pb::ping(FOLLOW_UP))),
            (Wire::Protobuf, false) => {
                Message::binary(pb::frame(&pb::connect(FOLLOW_UP, &connection_token(USER))))
            }
        };
        self.send(frame).await;
    }

    /// The next answer, within 5 s; `None` if the connection ended without a close frame.
    async fn next(&mut self) -> Option<Answer> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while self.pending.is_empty() {
            let frame = match tokio::time::timeout_at(deadline, self.ws.next()).await {
                Err(_) => return Some(Answer::Silence),
                Ok(None) | Ok(Some(Err(_))) => return None,
                Ok(Some(Ok(frame))) => frame,
            };
            match frame {
                Message::Close(close) => {
                    let code = close.map_or(1005, |c| c.code.into());
                    self.pending.push(Answer::Close(code));
                }
                Message::Text(text) => self.read_json(&text).await,
                Message::Binary(bytes) => self.read_protobuf(&bytes).await,
                _ => {}
            }
        }
        Some(self.pending.remove(0))
    }

    async fn read_json(&mut self, text: &str) {
        for line in text.split('\n') {
            let value: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("tern sent a line that is not JSON ({e}): {line:.200}"));
            if value == json!({}) {
                self.send(Message::text("{}")).await;
                continue;
            }
            let Some(id) = value["id"].as_u64() else { continue }; // a push
            let error = value["error"]["code"].as_u64().map(|c| c as u32);
            self.pending.push(Answer::Reply { id: id as u32, error });
        }
    }

    async fn read_protobuf(&mut self, bytes: &[u8]) {
        for reply in pb::replies(bytes) {
            if reply.id == 0 && reply.error.is_none() {
                // The server's ping is an empty reply; a push has id 0 and a body.
                if reply == pb::Reply::default() {
                    self.send(Message::binary(
                        pb::Reply::default().encode_length_delimited_to_vec(),
                    ))
                    .await;
                }
                continue;
            }
            self.pending.push(Answer::Reply { id: reply.id, error: reply.error.map(|e| e.code) });
        }
    }

    /// The reply to `id`, which must not be an error.
    async fn expect_success(&mut self, id: u32) -> Result<(), String> {
        match self.next().await {
            Some(Answer::Reply { id: got, error: None }) if got == id => Ok(()),
            other => Err(format!("wanted a successful reply to {id}, got {other:?}")),
        }
    }
}

/// Runs one case; `Err` says how tern's answer differs from the documented one.
pub(super) async fn run(tern: &crate::harness::Tern, case: &Case) -> Result<(), String> {
    let mut conn = Conn::open(tern, case.wire).await;
    let connected = case.start == Start::Connected;
    if connected {
        let connect = match case.wire {
            Wire::Json => Message::text(
                json!({ "id": 1, "connect": { "token": connection_token(USER) } }).to_string(),
            ),
            Wire::Protobuf => Message::binary(pb::frame(&pb::connect(1, &connection_token(USER)))),
        };
        conn.send(connect).await;
        conn.expect_success(1).await.map_err(|e| format!("connect: {e}"))?;
    }
    for command in &case.setup {
        conn.send(Message::text(command.to_string())).await;
        let id = command["id"].as_u64().unwrap_or_default() as u32;
        conn.expect_success(id).await.map_err(|e| format!("setup {command}: {e}"))?;
    }
    conn.send(case.frame.clone()).await;
    match case.expect {
        Expect::Error { id, code } => {
            // Commands of a batch before the refused one may succeed; skip their replies.
            loop {
                match conn.next().await {
                    Some(Answer::Reply { id: got, error: None }) if got < id => continue,
                    Some(Answer::Reply { id: got, error: Some(c) }) if got == id && c == code => {
                        break;
                    }
                    other => return Err(format!("wanted error {code} for {id}, got {other:?}")),
                }
            }
            // The rest of a batch is answered too; then the follow-up.
            conn.send_follow_up(connected).await;
            loop {
                match conn.next().await {
                    Some(Answer::Reply { id: FOLLOW_UP, error: None }) => return Ok(()),
                    Some(Answer::Reply { id: got, .. }) if got > id && got != FOLLOW_UP => continue,
                    other => return Err(format!("after the error, the follow-up got {other:?}")),
                }
            }
        }
        Expect::Success(id) => {
            // Commands of a batch before this one succeed first.
            loop {
                match conn.next().await {
                    Some(Answer::Reply { id: got, error: None }) if got < id => continue,
                    Some(Answer::Reply { id: got, error: None }) if got == id => break,
                    other => {
                        return Err(format!("wanted a successful reply to {id}, got {other:?}"));
                    }
                }
            }
            // Only a connect succeeds on a fresh connection: it is connected now.
            conn.send_follow_up(true).await;
            conn.expect_success(FOLLOW_UP).await
        }
        Expect::Ignored => {
            conn.send_follow_up(connected).await;
            match conn.next().await {
                Some(Answer::Reply { id: FOLLOW_UP, error: None }) => Ok(()),
                other => Err(format!("wanted nothing then the follow-up's reply, got {other:?}")),
            }
        }
        Expect::Close(code) => loop {
            match conn.next().await {
                Some(Answer::Close(got)) if got == code => return Ok(()),
                Some(Answer::Close(got)) => {
                    return Err(format!("wanted close {code}, got close {got}"));
                }
                // Commands of a batch before the bad one may be answered first.
                Some(Answer::Reply { error: None, .. }) => continue,
                other => return Err(format!("wanted close {code}, got {other:?}")),
            }
        },
    }
}

/// Every hostile case gets its documented answer, and the bystanders keep talking.
#[tokio::test]
async fn every_hostile_command_gets_its_documented_answer() {
    let (_project, tern) = serve();
    let mut bystanders = Bystanders::join(&tern).await;
    let cases = cases::all();
    assert!(cases.len() >= 40, "only {} cases", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        if let Err(why) = run(&tern, case).await {
            failures.push(format!("{}: {why}", case.name));
        }
        bystanders.still_talking(case.name).await;
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    assert!(!tern.logs().contains("panicked"), "tern panicked:\n{}", tern.logs());
}
