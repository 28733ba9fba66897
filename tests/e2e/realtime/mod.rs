//! The realtime-pubsub endpoint, `GET /realtime`, frame by frame against the real binary:
//! every answer `docs/realtime-pubsub.md` promises, and that one client's mistakes disturb
//! nobody else (a bystander on the same topic keeps sending and receiving).
//!
//! - `frames`: malformed frames, unknown types, oversized frames, the welcome, acks and
//!   subscription confirmations;
//! - `topics`: which topics a connection may use (configs, tokens, anonymous access,
//!   private topics, the topic limit);
//! - `tokens`: access tokens refused before the upgrade, a host without a secret;
//! - `doors`: one broker behind the raw bridge, the realtime endpoint and functions;
//!   presence and the inbound topic; the chat example's wasm backend.

mod abuse;
mod doors;
mod frames;
mod tokens;
mod topics;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::harness::{Serve, Tern, TestProject, Ws, ws_connect, ws_next_text};

/// The secret the test hosts check tokens with (`TERN_AUTH_SECRET`, 32 bytes or more).
pub const SECRET: &str = "tern e2e realtime secret, 32 bytes or more";

/// Seconds since the Unix epoch.
pub fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("a clock after 1970").as_secs()
}

/// An HS256 token signed with `secret`, carrying `claims` exactly as given.
pub fn sign(secret: &str, claims: &Value) -> String {
    sign_with(jsonwebtoken::Algorithm::HS256, secret, claims)
}

/// A token signed with `secret` by `algorithm` (an HMAC one).
pub fn sign_with(algorithm: jsonwebtoken::Algorithm, secret: &str, claims: &Value) -> String {
    let key = jsonwebtoken::EncodingKey::from_secret(secret.as_bytes());
    jsonwebtoken::encode(&jsonwebtoken::Header::new(algorithm), claims, &key).expect("sign a token")
}

/// A token of the test hosts' secret, valid for an hour, that may subscribe to the
/// `subscribe` patterns and publish to the `publish` ones.
pub fn token(subscribe: &[&str], publish: &[&str]) -> String {
    sign(SECRET, &json!({ "exp": now() + 3600, "subscribe": subscribe, "publish": publish }))
}

/// A token with `alg: none` and an empty signature, as an attacker writes it by hand.
pub fn unsigned(claims: &Value) -> String {
    use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let claims = URL_SAFE_NO_PAD.encode(claims.to_string());
    format!("{header}.{claims}.")
}

/// The messaging configs of [`project`]:
/// - `chat...`: bridged, anyone may subscribe and publish;
/// - `news...`: bridged, anyone may subscribe, publishing needs a token;
/// - `vault...`: bridged, everything needs a token;
/// - `quiet...`: configured, but not bridged;
/// - `secure/inbound` (the default inbound topic): bridged, everything needs a token.
pub const CONFIGS: &[(&str, &str)] = &[
    (
        "open",
        "channel: { match: chat }\n\
         bridges: { websocket: { enable: true, anonymous: publish } }\n",
    ),
    (
        "readonly",
        "channel: { match: news }\n\
         bridges: { websocket: { enable: true, anonymous: subscribe } }\n",
    ),
    ("guarded", "channel: { match: vault }\nbridges: { websocket: { enable: true } }\n"),
    ("quiet", "channel: { match: quiet }\nbridges: { websocket: { enable: false } }\n"),
    ("inbound", "channel: { match: secure/inbound }\nbridges: { websocket: { enable: true } }\n"),
];

/// A project with the messaging configs of [`CONFIGS`] and no functions.
pub fn project() -> TestProject {
    CONFIGS.iter().fold(TestProject::new(), |p, (name, yaml)| p.messaging(name, yaml))
}

/// Serves `project` with [`SECRET`] as its token secret.
pub fn serve(project: &TestProject) -> Tern {
    Serve::new(project.path()).env("TERN_AUTH_SECRET", SECRET).start()
}

/// `ws://ADDR/realtime`, with `?access_token=TOKEN` when there is one.
pub fn realtime_url(tern: &Tern, token: Option<&str>) -> String {
    match token {
        None => format!("ws://{}/realtime", tern.addr),
        Some(token) => format!("ws://{}/realtime?access_token={token}", tern.addr),
    }
}

/// Parses a frame tern sent, which must be JSON.
pub fn parse(text: &str) -> Value {
    serde_json::from_str(text)
        .unwrap_or_else(|e| panic!("tern sent a frame that is not JSON ({e}): {text}"))
}

/// `{"topic":"priv/acks","messageType":"ack","data":{"data":ID}}`.
pub fn ack(id: &str) -> Value {
    json!({ "topic": "priv/acks", "messageType": "ack", "data": { "data": id } })
}

/// `{"topic":"priv/acks","messageType":KIND,"data":{"topic":TOPIC}}` (`subscribed`,
/// `unsubscribed`).
pub fn confirmation(kind: &str, topic: &str) -> Value {
    json!({ "topic": "priv/acks", "messageType": kind, "data": { "topic": topic } })
}

/// The delivery of a message published by realtime connection `from` with id `id`.
pub fn delivery(topic: &str, message_type: &str, id: &str, payload: Value, from: &str) -> Value {
    json!({
        "topic": topic,
        "messageType": message_type,
        "data": { "id": id, "payload": payload, "client": { "connectionId": from } },
    })
}

/// The id of a delivery that carries the broker's message id (the publisher gave none, or
/// was not a realtime connection): checks that it is a decimal string and returns it.
pub fn broker_id(frame: &Value) -> String {
    let id = frame["data"]["id"].as_str().unwrap_or_else(|| panic!("no string data.id: {frame}"));
    assert!(
        !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()),
        "data.id is not the broker's decimal message id: {frame}"
    );
    id.to_owned()
}

/// Checks that `frame` is exactly the `priv/errors` frame with these fields (any non-empty
/// human `message`).
pub fn assert_refusal(
    frame: &Value,
    id: Option<&str>,
    kind: Option<&str>,
    topic: Option<&str>,
    code: &str,
) {
    let message = frame["data"]["message"].as_str().unwrap_or_default();
    assert!(!message.is_empty(), "an error frame without a message: {frame}");
    let expected = json!({
        "topic": "priv/errors",
        "messageType": "error",
        "data": { "id": id, "type": kind, "topic": topic, "code": code, "message": message },
    });
    assert_eq!(frame, &expected, "expected a `{code}` error");
}

/// A realtime client that has read its welcome frame.
pub struct Rt {
    /// The connection.
    pub ws: Ws,
    /// Its connection id, from the welcome frame.
    pub id: String,
    /// The welcome frame.
    pub welcome: Value,
}

impl Rt {
    /// Connects to `/realtime` (with `token` if any) and reads the welcome frame.
    pub async fn connect(tern: &Tern, token: Option<&str>) -> Self {
        let mut ws = ws_connect(&realtime_url(tern, token)).await;
        let welcome = parse(&ws_next_text(&mut ws).await);
        assert_eq!(
            (&welcome["topic"], &welcome["messageType"]),
            (&json!("main"), &json!("welcome")),
            "the first frame is not the welcome: {welcome}"
        );
        let id = welcome["data"]["connection"]["id"]
            .as_str()
            .unwrap_or_else(|| panic!("a welcome without data.connection.id: {welcome}"))
            .to_owned();
        Self { ws, id, welcome }
    }

    /// Connects without a token.
    pub async fn anonymous(tern: &Tern) -> Self {
        Self::connect(tern, None).await
    }

    /// Connects with `token`.
    pub async fn with_token(tern: &Tern, token: &str) -> Self {
        Self::connect(tern, Some(token)).await
    }

    /// Sends `frame` as a JSON text frame.
    pub async fn send(&mut self, frame: Value) {
        self.send_text(&frame.to_string()).await;
    }

    /// Sends a text frame as it is.
    pub async fn send_text(&mut self, text: &str) {
        self.ws.send(Message::text(text)).await.expect("send a text frame");
    }

    /// The next frame, which must be JSON text.
    pub async fn next(&mut self) -> Value {
        parse(&ws_next_text(&mut self.ws).await)
    }

    /// Subscribes to `topic` and checks the `subscribed` confirmation.
    pub async fn subscribe(&mut self, topic: &str) {
        self.send(json!({ "type": "subscribe", "data": { "topic": topic } })).await;
        assert_eq!(self.next().await, confirmation("subscribed", topic), "subscribing to {topic}");
    }

    /// Sends a `subscribe` frame for `topic` and returns the answer.
    pub async fn try_subscribe(&mut self, topic: &str) -> Value {
        self.send(json!({ "type": "subscribe", "data": { "topic": topic } })).await;
        self.next().await
    }

    /// Publishes `payload` to `topic` as `message_type` with `id`, and checks the ack.
    pub async fn publish(&mut self, topic: &str, message_type: &str, payload: Value, id: &str) {
        self.send(publish_frame(topic, message_type, payload, id)).await;
        assert_eq!(self.next().await, ack(id), "publishing {id} to {topic}");
    }

    /// Sends a `publish` frame and returns the answer.
    pub async fn try_publish(&mut self, topic: &str, payload: Value, id: &str) -> Value {
        self.send(publish_frame(topic, "text-message", payload, id)).await;
        self.next().await
    }

    /// Checks that no data frame arrives for `quiet` (pings are answered and skipped).
    pub async fn assert_silent(&mut self, quiet: Duration) {
        let deadline = tokio::time::Instant::now() + quiet;
        loop {
            match tokio::time::timeout_at(deadline, self.ws.next()).await {
                Err(_) => return,
                Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => {}
                Ok(other) => panic!("expected silence, got {other:?}"),
            }
        }
    }
}

/// A `publish` frame.
pub fn publish_frame(topic: &str, message_type: &str, payload: Value, id: &str) -> Value {
    json!({
        "type": "publish",
        "data": { "topic": topic, "messageType": message_type, "payload": payload, "id": id },
    })
}

/// Checks that `from` can still publish to `topic` and that `to`, subscribed to it, gets
/// the message: neither was disturbed by whatever happened before.
pub async fn still_talking(from: &mut Rt, to: &mut Rt, topic: &str, id: &str) {
    let payload = json!({ "still": "talking", "id": id });
    from.publish(topic, "check", payload.clone(), id).await;
    assert_eq!(to.next().await, delivery(topic, "check", id, payload, &from.id));
}

/// Two anonymous clients both subscribed to `topic` (anonymous access must allow it).
pub async fn pair(tern: &Tern, topic: &str) -> (Rt, Rt) {
    let mut a = Rt::anonymous(tern).await;
    let mut b = Rt::anonymous(tern).await;
    a.subscribe(topic).await;
    b.subscribe(topic).await;
    (a, b)
}
