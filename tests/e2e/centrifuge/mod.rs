//! The Centrifugo client protocol, `GET /connection/websocket`, with raw frames against the
//! real binary: what a hostile or broken client sends that no SDK would, each answered as
//! `docs/protocol.md` documents (an error reply with its code, or a close frame with its
//! code), while bystanders on the same host keep publishing and receiving. The SDKs' own
//! behaviour is tested with the real npm `centrifuge` package (`tests/node/`).
//!
//! - `cases`: the table of hostile commands, JSON and protobuf, and what each must get;
//! - `hostile`: runs the table, one connection per case, checking the bystanders after each;
//! - `crowd`: many hostile clients at once while the bystanders chat, and the host's limits
//!   on a whole frame (too big, too many, too fast);
//! - `pb`: just enough protobuf (the schema's field tags) to write and read raw frames.

mod cases;
mod crowd;
mod hostile;
mod pb;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::{
    harness::{Serve, Tern, TestProject, Ws, ws_connect},
    realtime::{now, sign},
};

/// The secret the test host checks tokens with (`TERN_AUTH_SECRET`).
pub const SECRET: &str = "tern e2e centrifuge secret, 32 bytes or more";

/// `tern.yaml` of the test host: no anonymous connections, small limits the cases reach.
const SETTINGS: &str = "\
centrifuge:
  allow_anonymous: false
  max_channels_per_connection: 4
  connect_timeout: 3s
websocket:
  max_message: 64KiB
";

/// The messaging configs: one per kind of channel rule a case tries to get around.
const CONFIGS: &[(&str, &str)] = &[
    ("chat", "channel: { match: chat }\nbridges: { websocket: { enable: true } }\n"),
    (
        "rooms",
        "channel: { match: rooms }\nbridges: { websocket: { enable: true } }\n\
         presence: true\nhistory: { size: 100, ttl: 10m }\nrecovery: true\n",
    ),
    ("quiet", "channel: { match: quiet }\nbridges: { websocket: { enable: false } }\n"),
    (
        "locked",
        "channel: { match: locked }\nbridges: { websocket: { enable: true } }\nsubscribe: token\n",
    ),
    (
        "readonly",
        "channel: { match: readonly }\nbridges: { websocket: { enable: true } }\npublish: nobody\n",
    ),
    (
        "members",
        "channel: { match: members }\nbridges: { websocket: { enable: true } }\n\
         publish: subscribers\n",
    ),
    (
        "sealed",
        "channel: { match: sealed }\nbridges: { websocket: { enable: true } }\n\
         subscribe: nobody\npublish: nobody\n",
    ),
];

/// Serves the test project: [`SETTINGS`], [`CONFIGS`] and [`SECRET`].
pub fn serve() -> (TestProject, Tern) {
    let project = CONFIGS
        .iter()
        .fold(TestProject::new().settings(SETTINGS), |p, (name, yaml)| p.messaging(name, yaml));
    let tern = Serve::new(project.path()).env("TERN_AUTH_SECRET", SECRET).start();
    (project, tern)
}

/// A connection token of user `user`, valid for an hour.
pub fn connection_token(user: &str) -> String {
    sign(SECRET, &json!({ "sub": user, "exp": now() + 3600 }))
}

/// A subscription token of user `user` for `channel`, valid for an hour.
pub fn subscription_token(user: &str, channel: &str) -> String {
    sign(SECRET, &json!({ "sub": user, "channel": channel, "exp": now() + 3600 }))
}

/// `ws://ADDR/connection/websocket`, protobuf when `protobuf`.
pub fn endpoint(tern: &Tern, protobuf: bool) -> String {
    let query = if protobuf { "?format=protobuf" } else { "" };
    format!("ws://{}/connection/websocket{query}", tern.addr)
}

/// A JSON client that writes commands as text and reads replies line by line.
pub struct Client {
    /// The connection.
    pub ws: Ws,
    /// Replies and pushes read but not yet asked for.
    pending: std::collections::VecDeque<Value>,
}

impl Client {
    /// Opens a connection and sends nothing.
    pub async fn open(tern: &Tern) -> Self {
        Self { ws: ws_connect(&endpoint(tern, false)).await, pending: Default::default() }
    }

    /// Opens a connection and connects as `user` (command id 1).
    pub async fn connected(tern: &Tern, user: &str) -> Self {
        let mut client = Self::open(tern).await;
        let reply =
            client.call(json!({ "id": 1, "connect": { "token": connection_token(user) } })).await;
        assert!(reply["connect"]["client"].is_string(), "connect refused: {reply}");
        client
    }

    /// Sends `command` and returns the reply with its id (pushes in between are kept).
    pub async fn call(&mut self, command: Value) -> Value {
        let id = command["id"].as_u64().expect("a command with an id");
        self.send_text(&command.to_string()).await;
        self.reply(id).await
    }

    /// Sends one text frame as it is.
    pub async fn send_text(&mut self, text: &str) {
        self.ws.send(Message::text(text)).await.expect("send a text frame");
    }

    /// The reply to command `id`, within 10 s; fails on a close.
    pub async fn reply(&mut self, id: u64) -> Value {
        loop {
            if let Some(at) = self.pending.iter().position(|v| v["id"].as_u64() == Some(id)) {
                return self.pending.remove(at).expect("the position is in range");
            }
            self.read().await;
        }
    }

    /// The next publication push on `channel`, within 10 s.
    pub async fn publication(&mut self, channel: &str) -> Value {
        loop {
            let push = self.pending.iter().position(|v| {
                v["push"]["channel"] == json!(channel) && v["push"]["pub"].is_object()
            });
            if let Some(at) = push {
                return self.pending.remove(at).expect("the position is in range");
            }
            self.read().await;
        }
    }

    /// Reads one frame into `pending`, answering the server's pings.
    async fn read(&mut self) {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        let frame = tokio::time::timeout_at(deadline, self.ws.next())
            .await
            .expect("no frame within 10 s")
            .expect("the connection ended")
            .expect("a WebSocket error");
        let text = match frame {
            Message::Text(text) => text,
            Message::Close(close) => panic!("closed by tern: {close:?}"),
            Message::Binary(b) => panic!("a binary frame on a JSON connection: {b:?}"),
            _ => return,
        };
        for line in text.split('\n') {
            let value: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("tern sent a line that is not JSON ({e}): {line}"));
            if value == json!({}) {
                self.send_text("{}").await; // the server's ping: pong
            } else {
                self.pending.push_back(value);
            }
        }
    }
}

/// Two bystanders on `chat/lobby`, users `alice` and `bob`, that check after each case that
/// they can still publish to each other.
pub struct Bystanders {
    alice: Client,
    bob: Client,
    next_id: u64,
}

impl Bystanders {
    /// Connects both and subscribes them to `chat/lobby`.
    pub async fn join(tern: &Tern) -> Self {
        let mut alice = Client::connected(tern, "alice").await;
        let mut bob = Client::connected(tern, "bob").await;
        for client in [&mut alice, &mut bob] {
            let reply =
                client.call(json!({ "id": 2, "subscribe": { "channel": "chat/lobby" } })).await;
            assert!(reply["subscribe"].is_object(), "bystander subscribe: {reply}");
        }
        Self { alice, bob, next_id: 3 }
    }

    /// Alice publishes `{"after": case}`: her ack comes, and Bob gets it.
    pub async fn still_talking(&mut self, case: &str) {
        let id = self.next_id;
        self.next_id += 1;
        let data = json!({ "after": case });
        let command = json!({ "id": id, "publish": { "channel": "chat/lobby", "data": data } });
        let ack = self.alice.call(command).await;
        assert_eq!(ack, json!({ "id": id, "publish": {} }), "after `{case}`: alice's ack");
        let push = self.bob.publication("chat/lobby").await;
        assert_eq!(push["push"]["pub"]["data"], data, "after `{case}`: what bob got");
        // Alice gets her own publication too; take it so it does not pile up.
        self.alice.publication("chat/lobby").await;
    }
}
