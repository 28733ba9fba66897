//! One WebSocket client of the bridge: one task, one `select!` loop over the socket, the
//! client's queue of messages, the ping timer and shutdown.

use std::sync::Arc;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::{
    WebSocketStream,
    tungstenite::{Message as Frame, Utf8Bytes},
};
use tokio_util::sync::CancellationToken;

use super::{
    close_code,
    socket::{self, FrameLimits, Keepalive, close_for, data_size},
};
use crate::{
    broker::{Broker, Message, Origin, Payload, Subscription},
    config::settings::WebSocketSettings,
};

/// Most queued messages written before one flush: bounds the write buffer of a burst.
pub(super) const MAX_BATCH: usize = 256;

/// Runs the session until the client leaves, breaks a rule, or the host shuts down. A
/// `read_only` client (`anonymous: subscribe`) is closed if it sends a message.
pub async fn run<S>(
    ws: WebSocketStream<S>,
    (mut subscription, read_only): (Subscription, bool),
    broker: Arc<Broker>,
    settings: &WebSocketSettings,
    shutdown: CancellationToken,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (mut sink, mut stream) = ws.split();
    let write_timeout = settings.write_timeout.0;
    let mut keepalive = Keepalive::new(settings.ping_interval.0);
    let channel = subscription.channel.clone();
    let kicked = subscription.kick_signal();
    let retired = subscription.retire_signal();
    let mut limits = FrameLimits::new(settings);
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
                keepalive.heard();
                let size = frame.as_ref().and_then(|f| f.as_ref().ok()).and_then(data_size);
                if let Some(Err(closing)) = size.map(|size| limits.take(size)) {
                    break Some(closing);
                }
                if read_only && size.is_some() {
                    break Some((close_code::POLICY_VIOLATION, "read-only channel: publishing here needs an access token"));
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
            due = keepalive.due() => {
                if let Err(closing) = due {
                    break Some(closing);
                }
                if !socket::ping(&mut sink, write_timeout).await {
                    break None;
                }
            }
        }
    };
    if let Some((code, reason)) = close {
        tracing::debug!(channel = %channel, code = u16::from(code), reason, "closing WebSocket");
        socket::close(&mut sink, &mut stream, (code, reason)).await;
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
