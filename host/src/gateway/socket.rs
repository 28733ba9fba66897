//! What every WebSocket session shares, whatever its protocol: the connection settings,
//! the per-client rate limits, the close code of a read error and the closing handshake.

use std::time::{Duration, Instant};

use tokio::time::{Interval, MissedTickBehavior};

use futures_util::{Sink, SinkExt, Stream, StreamExt};
use tokio_tungstenite::tungstenite::{
    self, Message as Frame,
    error::{CapacityError, ProtocolError},
    protocol::{CloseFrame, WebSocketConfig, frame::coding::CloseCode},
};

use super::{close_code, rate_limit::TokenBucket};
use crate::config::settings::WebSocketSettings;

/// How long tern waits to deliver its own close frame.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// Why a session ends with a close frame: its code and reason.
pub type Closing = (CloseCode, &'static str);

/// The tungstenite settings for a client connection.
pub fn websocket_config(settings: &WebSocketSettings) -> WebSocketConfig {
    let max = usize::try_from(settings.max_message.0).unwrap_or(usize::MAX);
    WebSocketConfig::default()
        // Small read buffer: most clients are idle most of the time (memory per connection).
        .read_buffer_size(4096)
        .write_buffer_size(16 * 1024)
        .max_message_size(Some(max))
        .max_frame_size(Some(max))
}

/// A client's allowance of messages and bytes per second.
pub struct FrameLimits {
    messages: TokenBucket,
    bytes: TokenBucket,
}

impl FrameLimits {
    /// The allowance `settings` give each client, full now.
    pub fn new(settings: &WebSocketSettings) -> Self {
        let now = Instant::now();
        // One message of the largest size always fits in a burst.
        let byte_rate = settings.max_bytes_per_second.0 as f64;
        let burst = byte_rate.max(settings.max_message.0 as f64);
        Self {
            messages: TokenBucket::new(settings.max_messages_per_second, now),
            bytes: TokenBucket::with_burst(byte_rate, burst, now),
        }
    }

    /// Takes a text or binary message of `size` bytes from the allowance, or says why the
    /// client must be closed.
    pub fn take(&mut self, size: usize) -> Result<(), Closing> {
        let now = Instant::now();
        if !self.messages.take(now) {
            return Err((close_code::POLICY_VIOLATION, "rate limit exceeded: too many messages"));
        }
        if !self.bytes.take_n(size as f64, now) {
            return Err((close_code::POLICY_VIOLATION, "rate limit exceeded: too many bytes"));
        }
        Ok(())
    }
}

/// The ping timer, and when the client was last heard from.
pub struct Keepalive {
    timer: Interval,
    every: Duration,
    last_heard: tokio::time::Instant,
}

impl Keepalive {
    /// Pings every `every`; a client silent for two intervals is closed.
    pub fn new(every: Duration) -> Self {
        let mut timer = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        timer.set_missed_tick_behavior(MissedTickBehavior::Delay);
        Self { timer, every, last_heard: tokio::time::Instant::now() }
    }

    /// Notes that the client sent something.
    pub fn heard(&mut self) {
        self.last_heard = tokio::time::Instant::now();
    }

    /// Waits until a ping is due, or says why the client must be closed.
    pub async fn due(&mut self) -> Result<(), Closing> {
        self.timer.tick().await;
        if self.last_heard.elapsed() > self.every * 2 {
            return Err((close_code::POLICY_VIOLATION, "no answer to pings"));
        }
        Ok(())
    }
}

/// Sends a ping within `timeout`; false when the client cannot take it.
pub async fn ping<W>(sink: &mut W, timeout: Duration) -> bool
where
    W: Sink<Frame, Error = tungstenite::Error> + Unpin,
{
    let sent = tokio::time::timeout(timeout, sink.send(Frame::Ping(Default::default()))).await;
    matches!(sent, Ok(Ok(())))
}

/// The size of a data frame (None for control frames, which cost nothing).
pub fn data_size(frame: &Frame) -> Option<usize> {
    match frame {
        Frame::Text(t) => Some(t.len()),
        Frame::Binary(b) => Some(b.len()),
        _ => None,
    }
}

/// The close code for a read error, or None when the connection is simply gone.
pub fn close_for(e: &tungstenite::Error) -> Option<Closing> {
    match e {
        tungstenite::Error::Capacity(CapacityError::MessageTooLong { .. }) => {
            Some((close_code::MESSAGE_TOO_BIG, "message too big"))
        }
        tungstenite::Error::Capacity(_) => Some((close_code::MESSAGE_TOO_BIG, "too big")),
        tungstenite::Error::Utf8(_) => {
            Some((close_code::INVALID_PAYLOAD, "text frame is not valid UTF-8"))
        }
        tungstenite::Error::Protocol(ProtocolError::ResetWithoutClosingHandshake) => None,
        tungstenite::Error::Protocol(_) => Some((close_code::PROTOCOL_ERROR, "protocol error")),
        _ => None,
    }
}

/// Sends a close frame and gives the client a moment to answer it, as the protocol expects.
pub async fn close<W, R>(sink: &mut W, stream: &mut R, (code, reason): (CloseCode, &str))
where
    W: Sink<Frame, Error = tungstenite::Error> + Unpin,
    R: Stream<Item = Result<Frame, tungstenite::Error>> + Unpin,
{
    let frame = CloseFrame { code, reason: reason.into() };
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, sink.send(Frame::Close(Some(frame)))).await;
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, async {
        while let Some(Ok(_)) = stream.next().await {}
    })
    .await;
}
