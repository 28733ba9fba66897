//! The realtime-pubsub endpoint (`/realtime`): who sent the message being handled,
//! answering them, and URLs carrying an access token.
//!
//! ```no_run
//! use tern_sdk::realtime::{self, Access};
//!
//! # fn run() -> Result<(), String> {
//! // In a pub/sub function: answer the realtime client that sent this message.
//! if let Some(sender) = realtime::sender() {
//!     if sender.message_type == "echo" {
//!         realtime::reply_json(r#"{"ok": true}"#, "ok")?;
//!     }
//! }
//! // In an HTTP function: hand out a URL that may read and write one room for an hour.
//! let url = Access::new().subscribe("chat/rooms/lobby").publish("chat/rooms/lobby").url(3600)?;
//! # Ok(()) }
//! ```

use crate::__private::bindings::tern::function::realtime as wit;

/// The realtime connection that sent the message being handled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sender {
    /// Its connection id: its private topic is `priv/<connection_id>`.
    pub connection_id: String,
    /// The message type it gave (`message` when it gave none).
    pub message_type: String,
    /// Its id for the message, which a reply carries back.
    pub id: Option<String>,
    /// Whether the message's data is a JSON document; false when the client sent a JSON
    /// string, and the data is that string's text.
    pub json: bool,
}

/// Who sent the message being handled, when a realtime connection did (None in an HTTP
/// function, and for messages from the raw bridge or from functions).
pub fn sender() -> Option<Sender> {
    wit::message_sender().map(|s| Sender {
        connection_id: s.connection_id,
        message_type: s.message_type,
        id: s.id,
        json: s.json,
    })
}

/// Answers the sender of the message being handled, and only it, with `data` (a JSON
/// document) and `status` (`ok`, `error`...): its `waitForReply` resolves with them.
pub fn reply_json(data: &str, status: &str) -> Result<(), String> {
    wit::reply(data, status)
}

/// Like [`reply_json`], with `text` as a JSON string.
pub fn reply_text(text: &str, status: &str) -> Result<(), String> {
    wit::reply(&json_string(text), status)
}

/// What a realtime URL's token lets its holder do.
#[derive(Debug, Clone, Default)]
pub struct Access {
    subscribe: Vec<String>,
    publish: Vec<String>,
    user: Option<String>,
}

impl Access {
    /// No permission at all yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Lets the holder subscribe to `pattern`: a channel name (covering itself and what is
    /// below it) or `*`.
    pub fn subscribe(mut self, pattern: &str) -> Self {
        self.subscribe.push(pattern.to_owned());
        self
    }

    /// Lets the holder publish to `pattern` (as in [`Access::subscribe`]).
    pub fn publish(mut self, pattern: &str) -> Self {
        self.publish.push(pattern.to_owned());
        self
    }

    /// Names the holder (the token's `sub`, shown to others in presence messages).
    pub fn user(mut self, user: &str) -> Self {
        self.user = Some(user.to_owned());
        self
    }

    /// A `ws://.../realtime?access_token=...` URL valid for `ttl_seconds` (1 to 604800).
    pub fn url(&self, ttl_seconds: u32) -> Result<String, String> {
        wit::url(&self.subscribe, &self.publish, self.user.as_deref(), ttl_seconds)
    }

    /// What a client of the Centrifugo protocol (the `centrifuge` npm package in a
    /// browser, say) needs to connect with this access for `ttl_seconds`: the endpoint's
    /// `ws://.../connection/websocket` URL and a connection token. tern has one kind of
    /// access token, which every endpoint takes.
    pub fn client_connection(&self, ttl_seconds: u32) -> Result<ClientConnection, String> {
        let url = self.url(ttl_seconds)?;
        let (origin, token) = url
            .split_once(REALTIME_TOKEN)
            .ok_or_else(|| format!("the host answered an unexpected URL: {url}"))?;
        Ok(ClientConnection { url: format!("{origin}{CENTRIFUGE_PATH}"), token: token.to_owned() })
    }
}

/// How a realtime URL carries its token, after the host's origin.
const REALTIME_TOKEN: &str = "/realtime?access_token=";
/// The Centrifugo-protocol endpoint's path.
const CENTRIFUGE_PATH: &str = "/connection/websocket";

/// Where and how a client of the Centrifugo protocol connects (see
/// [`Access::client_connection`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientConnection {
    /// The endpoint's WebSocket URL, from the request's host (or the host's `public_url`).
    pub url: String,
    /// The connection token: the client's `token` option.
    pub token: String,
}

/// `text` as a JSON string literal (quoted and escaped).
pub fn json_string(text: &str) -> String {
    // Serializing a string cannot fail.
    serde_json::to_string(text).unwrap_or_default()
}

/// Answers with `data` serialized as JSON (see [`reply_json`]).
pub fn reply<T: serde::Serialize + ?Sized>(data: &T, status: &str) -> Result<(), String> {
    let json = serde_json::to_string(data).map_err(|e| e.to_string())?;
    wit::reply(&json, status)
}
