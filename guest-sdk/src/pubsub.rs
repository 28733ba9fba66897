//! Pub/sub channels: open one by name, publish to it, and hand out its WebSocket URL.
//!
//! ```no_run
//! use tern_sdk::pubsub::Channel;
//!
//! # fn run() -> Result<(), tern_sdk::pubsub::Error> {
//! let channel = Channel::open("chat/rooms/lobby")?;
//! channel.publish_text("hello, everyone")?;
//! let url = channel.websocket_url()?; // ws://host:port/ws/channel/chat/rooms/lobby
//! # Ok(()) }
//! ```

use std::fmt;

use crate::__private::bindings::tern::function::pubsub as wit;

/// Why a pub/sub call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The name is not a valid channel name; says what is wrong with it.
    InvalidName(String),
    /// No messaging config of the project matches this channel name.
    NotConfigured(String),
    /// The messaging config matching this channel does not enable the WebSocket bridge.
    WebSocketDisabled(String),
    /// The payload is larger than the host accepts (the limit, in bytes).
    PayloadTooLarge(u64),
    /// This invocation published more messages than the host allows in one call.
    RateLimited,
    /// The pub/sub layer is not available in this host.
    Unavailable(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidName(why) => write!(f, "invalid channel name: {why}"),
            Error::NotConfigured(name) => {
                write!(f, "no messaging config matches channel `{name}`")
            }
            Error::WebSocketDisabled(name) => {
                write!(f, "the WebSocket bridge is not enabled for channel `{name}`")
            }
            Error::PayloadTooLarge(limit) => write!(f, "payload larger than {limit} bytes"),
            Error::RateLimited => write!(f, "too many messages published in this invocation"),
            Error::Unavailable(why) => write!(f, "pub/sub unavailable: {why}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<wit::Error> for Error {
    fn from(e: wit::Error) -> Self {
        match e {
            wit::Error::InvalidName(s) => Error::InvalidName(s),
            wit::Error::NotConfigured(s) => Error::NotConfigured(s),
            wit::Error::WebsocketDisabled(s) => Error::WebSocketDisabled(s),
            wit::Error::PayloadTooLarge(n) => Error::PayloadTooLarge(n),
            wit::Error::RateLimited => Error::RateLimited,
            wit::Error::Unavailable(s) => Error::Unavailable(s),
        }
    }
}

/// An open pub/sub channel.
pub struct Channel {
    inner: wit::Channel,
}

impl Channel {
    /// Opens the channel `name` (e.g. `chat/rooms/lobby`); a messaging config of the project
    /// must match it.
    pub fn open(name: &str) -> Result<Self, Error> {
        Ok(Self { inner: wit::Channel::open(name)? })
    }

    /// The channel's name.
    pub fn name(&self) -> String {
        self.inner.name()
    }

    /// The WebSocket URL clients connect to in order to join this channel.
    pub fn websocket_url(&self) -> Result<String, Error> {
        Ok(self.inner.websocket_url()?)
    }

    /// The WebSocket URL with a signed token: it works for `options.ttl_seconds`, names its
    /// holder, and lets it read and write as the options say. A config with
    /// `bridges.websocket.require_token` admits only such URLs; elsewhere a URL with
    /// `write` lets its holder publish where anonymous clients may only read.
    pub fn signed_websocket_url(&self, options: &UrlOptions) -> Result<String, Error> {
        let options = wit::UrlOptions {
            ttl_seconds: options.ttl_seconds,
            subject: options.subject.clone(),
            read: options.read,
            write: options.write,
        };
        Ok(self.inner.signed_websocket_url(&options)?)
    }

    /// Publishes binary data to every subscriber (WebSocket clients get a binary frame).
    pub fn publish(&self, data: &[u8]) -> Result<(), Error> {
        Ok(self.inner.publish(data)?)
    }

    /// Publishes text to every subscriber (WebSocket clients get a text frame).
    pub fn publish_text(&self, text: &str) -> Result<(), Error> {
        Ok(self.inner.publish_text(text)?)
    }

    /// How many WebSocket clients are connected to this channel right now (in a cluster, on
    /// every node: the others as they said at most 2 s ago).
    pub fn subscribers(&self) -> Result<u32, Error> {
        Ok(self.inner.subscribers()?)
    }
}

/// A message delivered to a [`pubsub_function!`](crate::pubsub_function) handler.
#[derive(Debug, Clone)]
pub struct Message {
    channel: String,
    data: Vec<u8>,
    binary: bool,
    id: u64,
    published_at_ms: u64,
}

impl Message {
    /// Builds a message from the parts the host passes; used by the export macro and tests.
    #[doc(hidden)]
    pub fn __from_parts(
        channel: String,
        data: Vec<u8>,
        binary: bool,
        id: u64,
        published_at_ms: u64,
    ) -> Self {
        Self { channel, data, binary, id, published_at_ms }
    }

    /// The channel it was published on.
    pub fn channel(&self) -> &str {
        &self.channel
    }

    /// The payload.
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// The payload as text, when it was published as text.
    pub fn text(&self) -> Option<&str> {
        if self.binary { None } else { std::str::from_utf8(&self.data).ok() }
    }

    /// Whether it was published as binary rather than text.
    pub fn is_binary(&self) -> bool {
        self.binary
    }

    /// An id unique among the messages the host published since it started.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// When it was published, in milliseconds since the Unix epoch.
    pub fn published_at_ms(&self) -> u64 {
        self.published_at_ms
    }
}

/// Who published a message: its connection and, when its token named one, its user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publisher {
    /// The publishing connection's id (a Centrifugo-protocol client id, a realtime
    /// connection id).
    pub client_id: String,
    /// The `sub` of the connection's token; None when it connected without one.
    pub user: Option<String>,
}

/// Who published the message being handled, when a client of the Centrifugo protocol or the
/// realtime endpoint did (None in an HTTP function, and for messages from the raw bridge or
/// from functions).
pub fn publisher() -> Option<Publisher> {
    wit::message_publisher().map(|p| Publisher { client_id: p.client_id, user: p.user })
}

/// What a signed WebSocket URL lets its holder do, and for how long.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlOptions {
    ttl_seconds: u32,
    subject: Option<String>,
    read: bool,
    write: bool,
}

impl UrlOptions {
    /// Read and write, for `ttl_seconds` (1 to 604800), for nobody in particular.
    pub fn new(ttl_seconds: u32) -> Self {
        Self { ttl_seconds, subject: None, read: true, write: true }
    }

    /// Names the holder (the token's `sub`: what hooks see as the user).
    pub fn subject(mut self, subject: &str) -> Self {
        self.subject = Some(subject.to_owned());
        self
    }

    /// Lets the holder read but not publish.
    pub fn read_only(mut self) -> Self {
        self.write = false;
        self
    }
}
