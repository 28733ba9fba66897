//! What travels through the broker: a payload of a kind, stamped with where it came from.

use std::{
    sync::{
        Arc, OnceLock,
        atomic::{AtomicU64, Ordering},
    },
    time::{SystemTime, UNIX_EPOCH},
};

use bytes::Bytes;

use crate::channel_name::ChannelName;

/// A payload and whether it is text or binary (WebSocket frames keep their kind).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payload {
    bytes: Bytes,
    text: bool,
}

impl Payload {
    /// A binary payload.
    pub fn binary(bytes: impl Into<Bytes>) -> Self {
        Self { bytes: bytes.into(), text: false }
    }

    /// A text payload.
    pub fn text(text: impl Into<String>) -> Self {
        Self { bytes: Bytes::from(text.into()), text: true }
    }

    /// A text payload from bytes, refused unless they are valid UTF-8: a text payload is
    /// always valid UTF-8.
    pub fn text_from_bytes(bytes: Bytes) -> Result<Self, std::str::Utf8Error> {
        std::str::from_utf8(&bytes)?;
        Ok(Self { bytes, text: true })
    }

    /// The bytes.
    pub fn bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// Whether it is text (valid UTF-8) rather than binary.
    pub fn is_text(&self) -> bool {
        self.text
    }

    /// Its length in bytes.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

/// Identifies one subscription, so a publisher can be skipped when its own message fans out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SubscriberId(pub u64);

/// Who published a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A WebSocket client, through its subscription: it does not get its own message back.
    Subscriber(SubscriberId),
    /// A function invocation.
    Function {
        /// The functions whose publishes led here, oldest first, this one last: its length
        /// is the message's hop count, and it names the cycle when a loop is cut.
        trail: Arc<[Arc<str>]>,
    },
}

impl Origin {
    /// How many function publishes led to this message (0 for a WebSocket client's).
    pub fn hops(&self) -> usize {
        match self {
            Origin::Subscriber(_) => 0,
            Origin::Function { trail } => trail.len(),
        }
    }

    /// The trail of functions before this message (empty for a WebSocket client's).
    pub fn trail(&self) -> &[Arc<str>] {
        match self {
            Origin::Subscriber(_) => &[],
            Origin::Function { trail } => trail,
        }
    }
}

/// What the realtime protocol adds to a message: its type, the publisher's id for it and
/// the connection that sent it. Empty for raw-bridge frames and function publishes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Envelope {
    /// The publisher's message type (`text-message`, `presence`, `response`...).
    pub message_type: Option<Arc<str>>,
    /// The publisher's id for the message (what acks and replies refer to).
    pub client_id: Option<Arc<str>>,
    /// The realtime connection that sent it: replies go to `priv/<connection>`.
    pub connection: Option<Arc<str>>,
    /// Whether the (text) payload is a JSON document other than a string, so realtime
    /// clients get it as JSON rather than as a string.
    pub json: bool,
    /// The client that published it, when one of the client protocol did, or its
    /// connection and user for the other doors.
    pub publisher: Option<Arc<ClientInfo>>,
}

/// Who a client of the client protocol is, as others see it (presence, join, leave, and
/// the publications it sends).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientInfo {
    /// Its user (a token's `sub`; "" when anonymous).
    pub user: Arc<str>,
    /// Its connection's id.
    pub client: Arc<str>,
    /// Its connection token's `info`, as JSON text.
    pub conn_info: Option<Arc<str>>,
    /// Its subscription token's `info` for the channel, as JSON text.
    pub chan_info: Option<Arc<str>>,
}

/// Where a publication sits in its channel's history: offsets only increase within an
/// epoch, and the epoch changes when the history is lost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamPosition {
    /// The publication's offset (for a stream: its newest publication's).
    pub offset: u64,
    /// The stream's epoch.
    pub epoch: Arc<str>,
}

/// What a message is: most are publications; the client protocol also tells subscribers
/// who joins and leaves a channel.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Event {
    /// A publication: offered to triggers, kept in history, delivered to every subscriber.
    #[default]
    Publication,
    /// A client subscribed: delivered only to subscribers that take events.
    Join(Arc<ClientInfo>),
    /// A client unsubscribed or went away: delivered only to subscribers that take events.
    Leave(Arc<ClientInfo>),
}

/// A published message, shared (behind an `Arc`) by every subscriber it is delivered to.
#[derive(Debug, Clone)]
pub struct Message {
    /// The channel it was published on.
    pub channel: ChannelName,
    /// Its payload.
    pub payload: Payload,
    /// Unique among the messages this process has published.
    pub id: u64,
    /// When it was published, in milliseconds since the Unix epoch.
    pub published_at_ms: u64,
    /// Who published it.
    pub origin: Origin,
    /// Its realtime-protocol details.
    pub envelope: Envelope,
    /// Its realtime frame, encoded once by the first subscriber that needs it and shared by
    /// the rest (the bytes are the same for every realtime subscriber).
    pub(crate) realtime_frame: OnceLock<tokio_tungstenite::tungstenite::Utf8Bytes>,
    /// What it is: a publication, or a join or leave.
    pub event: Event,
    /// Its place in the channel's history, when the channel keeps one.
    pub position: Option<StreamPosition>,
    /// Its client-protocol push, encoded once per format (JSON, protobuf) and shared.
    pub(crate) push_frames: [OnceLock<Bytes>; 2],
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

impl Message {
    /// A message stamped with a fresh id and the current time.
    pub fn new(channel: ChannelName, payload: Payload, origin: Origin) -> Self {
        let published_at_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        Self {
            channel,
            payload,
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            published_at_ms,
            origin,
            envelope: Envelope::default(),
            realtime_frame: OnceLock::new(),
            event: Event::Publication,
            position: None,
            push_frames: [OnceLock::new(), OnceLock::new()],
        }
    }

    /// A join or leave `event` on `channel`.
    pub fn event(channel: ChannelName, event: Event) -> Self {
        let mut message =
            Self::new(channel, Payload::binary(Bytes::new()), Origin::Subscriber(SubscriberId(0)));
        message.event = event;
        message
    }

    /// The message with `envelope`'s realtime details.
    pub fn with_envelope(mut self, envelope: Envelope) -> Self {
        self.envelope = envelope;
        self
    }
}
