//! One WebSocket client of the bridge: one task, one `select!` loop over the socket, the
//! client's queue of messages, the ping timer and shutdown.

use std::{sync::Arc, time::Duration};

use futures_util::{SinkExt, StreamExt};
use tokio::{
    io::{AsyncRead, AsyncWrite},
    time::{Instant, MissedTickBehavior},
};
use tokio_tungstenite::{
    WebSocketStream,
    tungstenite::{
        self, Message as Frame, Utf8Bytes,
        error::{CapacityError, ProtocolError},
        protocol::{CloseFrame, WebSocketConfig, frame::coding::CloseCode},
    },
};
use tokio_util::sync::CancellationToken;

use super::{close_code, rate_limit::TokenBucket};
use crate::{
    broker::{Broker, Message, Origin, Payload, Subscription},
    config::settings::WebSocketSettings,
};

/// Most queued messages written before one flush: bounds the write buffer of a burst.
const MAX_BATCH: usize = 256;
/// How long tern waits to deliver its own close frame.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// The tungstenite settings for a bridge connection.
pub fn websocket_config(settings: &WebSocketSettings) -> WebSocketConfig {
    let max = usize::try_from(settings.max_message.0).unwrap_or(usize::MAX);
    WebSocketConfig::default()
        // Small read buffer: most clients are idle most of the time (memory per connection).
        .read_buffer_size(4096)
        .write_buffer_size(16 * 1024)
        .max_message_size(Some(max))
        .max_frame_size(Some(max))
}

/// Runs the session until the client leaves, breaks a rule, or the host shuts down.
pub async fn run<S>(
    ws: WebSocketStream<S>,
    mut subscription: Subscription,
    broker: Arc<Broker>,
    settings: &WebSocketSettings,
    shutdown: CancellationToken,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (mut sink, mut stream) = ws.split();
    let ping_every = settings.ping_interval.0;
    let write_timeout = settings.write_timeout.0;
    let mut ping = tokio::time::interval_at(Instant::now() + ping_every, ping_every);
    ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut last_heard = Instant::now();
    let channel = subscription.channel.clone();
    let kicked = subscription.kick_signal();
    let retired = subscription.retire_signal();
    let now = std::time::Instant::now();
    let mut messages = TokenBucket::new(settings.max_messages_per_second, now);
    // One message of the largest size always fits in a burst.
    let byte_rate = settings.max_bytes_per_second.0 as f64;
    let mut bytes =
        TokenBucket::with_burst(byte_rate, byte_rate.max(settings.max_message.0 as f64), now);
    let close = loop {
        tokio::select! {
            biased;
            () = shutdown.cancelled() => break Some((close_code::GOING_AWAY, "server shutting down")),
            () = kicked.cancelled() => {
                break Some((close_code::POLICY_VIOLATION, "slow consumer: messages were not read in time"));
            }
            () = retired.cancelled() => {
                break Some((close_code::CHANNEL_GONE, "channel no longer configured"));
            }
            frame = stream.next() => {
                last_heard = Instant::now();
                let size = match &frame {
                    Some(Ok(Frame::Text(t))) => Some(t.len()),
                    Some(Ok(Frame::Binary(b))) => Some(b.len()),
                    _ => None,
                };
                if let Some(size) = size {
                    let now = std::time::Instant::now();
                    if !messages.take(now) {
                        break Some((close_code::POLICY_VIOLATION, "rate limit exceeded: too many messages"));
                    }
                    if !bytes.take_n(size as f64, now) {
                        break Some((close_code::POLICY_VIOLATION, "rate limit exceeded: too many bytes"));
                    }
                }
                match frame {
                    None => break None,
                    Some(Ok(Frame::Text(text))) => {
                        let payload = Payload::text_from_bytes(text.into());
                        if let Ok(payload) = payload {
                            broker.publish(Message::new(channel.clone(), payload, Origin::Subscriber(subscription.id)));
                        }
                    }
                    Some(Ok(Frame::Binary(data))) => {
                        let origin = Origin::Subscriber(subscription.id);
                        broker.publish(Message::new(channel.clone(), Payload::binary(data), origin));
                    }
                    Some(Ok(Frame::Close(_))) => break None, // tungstenite answers the close
                    Some(Ok(_)) => {} // ping (answered by tungstenite), pong, raw frame
                    Some(Err(e)) => break close_for(&e),
                }
            }
            message = subscription.recv() => {
                let Some(message) = message else {
                    break Some((close_code::POLICY_VIOLATION, "slow consumer: messages were not read in time"));
                };
                let write = async {
                    sink.feed(to_frame(&message)).await?;
                    for _ in 1..MAX_BATCH {
                        let Some(next) = subscription.try_recv() else { break };
                        sink.feed(to_frame(&next)).await?;
                    }
                    sink.flush().await
                };
                match tokio::time::timeout(write_timeout, write).await {
                    Ok(Ok(())) => {}
                    Ok(Err(_)) => break None,
                    Err(_) => {
                        tracing::debug!(channel = %channel, "write timed out: dropping the client");
                        break None;
                    }
                }
            }
            _ = ping.tick() => {
                if last_heard.elapsed() > ping_every * 2 {
                    break Some((close_code::POLICY_VIOLATION, "no answer to pings"));
                }
                let sent = tokio::time::timeout(write_timeout, sink.send(Frame::Ping(Default::default()))).await;
                if !matches!(sent, Ok(Ok(()))) {
                    break None;
                }
            }
        }
    };
    if let Some((code, reason)) = close {
        tracing::debug!(channel = %channel, code = u16::from(code), reason, "closing WebSocket");
        let frame = CloseFrame { code, reason: reason.into() };
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, sink.send(Frame::Close(Some(frame)))).await;
        // Give the client a moment to answer the close, as the protocol expects.
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, async {
            while let Some(Ok(_)) = stream.next().await {}
        })
        .await;
    }
}

/// The frame a message goes out as: text stays text, binary stays binary.
fn to_frame(message: &Message) -> Frame {
    let bytes = message.payload.bytes().clone();
    if message.payload.is_text() {
        // Text payloads are valid UTF-8 by construction, so this does not fail.
        match Utf8Bytes::try_from(bytes) {
            Ok(text) => Frame::Text(text),
            Err(_) => Frame::Binary(message.payload.bytes().clone()),
        }
    } else {
        Frame::Binary(bytes)
    }
}

/// The close code for a read error, or None when the connection is simply gone.
fn close_for(e: &tungstenite::Error) -> Option<(CloseCode, &'static str)> {
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
