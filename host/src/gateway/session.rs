//! One WebSocket client of the bridge: one task, one `select!` loop over the socket, the
//! client's queue of messages, the ping timer and shutdown.

use std::sync::Arc;

use arc_swap::ArcSwap;

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
    channel_name::ChannelName,
    config::{messaging::ChannelRules, settings::WebSocketSettings},
    hooks::{Caller, SessionFunctions, Verdict},
    runtime::FunctionRuntime,
};

/// The code of the error frame telling a raw-bridge client its message reached this
/// node's subscribers but not the cluster's other nodes.
pub const UNRELAYED: u32 = 1503;

/// Most queued messages written before one flush: bounds the write buffer of a burst.
pub(super) const MAX_BATCH: usize = 256;

/// What passes a frame through its channel config's publish hook: the hook is looked up
/// on every frame, so one a reload adds applies to open sockets too.
pub struct PublishGate {
    /// The serving generation's channel rules (which name the hook).
    pub rules: Arc<ArcSwap<ChannelRules>>,
    /// The serving generation's hooks.
    pub functions: Arc<ArcSwap<SessionFunctions>>,
    /// Runs them.
    pub runtime: Arc<FunctionRuntime>,
    /// The client, as the connect hooks left it.
    pub caller: Caller,
}

/// What a session talks to besides its socket.
pub struct Ends {
    /// Where its frames are published.
    pub broker: Arc<Broker>,
    /// Cancelled on shutdown.
    pub shutdown: CancellationToken,
    /// The publish hook every frame passes, when the channel's config names one.
    pub gate: PublishGate,
}

/// What the publish hook made of a frame.
enum Gated {
    /// Publish this.
    Publish(Payload),
    /// Tell the sender why not (a text frame to it alone).
    Refused(Frame),
    /// Close the connection.
    Close(u16, String),
}

impl PublishGate {
    async fn pass(&self, channel: &ChannelName, payload: Payload, max: usize) -> Gated {
        let hook = self.rules.load().resolve(channel).and_then(|spec| spec.hooks.publish.clone());
        let Some(hook) = hook else { return Gated::Publish(payload) };
        let functions = self.functions.load_full();
        let binary = !payload.is_text();
        let request = (channel.as_str(), payload.bytes().as_ref(), binary);
        let verdict =
            functions.publish(&self.runtime, &hook, &self.caller, request, (max, false)).await;
        match verdict {
            Verdict::Allow(None) => Gated::Publish(payload),
            Verdict::Allow(Some(data)) if binary => Gated::Publish(Payload::binary(data)),
            Verdict::Allow(Some(data)) => match String::from_utf8(data) {
                Ok(text) => Gated::Publish(Payload::text(text)),
                Err(e) => Gated::Publish(Payload::binary(e.into_bytes())),
            },
            Verdict::Deny(r) => {
                let body = serde_json::json!({ "error": { "code": r.code, "reason": r.reason } });
                Gated::Refused(Frame::Text(body.to_string().into()))
            }
            Verdict::Disconnect(r) => Gated::Close(u16::try_from(r.code).unwrap_or(4500), r.reason),
        }
    }
}

/// Runs the session until the client leaves, breaks a rule, or the host shuts down. A
/// `read_only` client (`anonymous: subscribe`) is closed if it sends a message.
pub async fn run<S>(
    ws: WebSocketStream<S>,
    (mut subscription, read_only): (Subscription, bool),
    Ends { broker, shutdown, gate }: Ends,
    settings: &WebSocketSettings,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let max = usize::try_from(settings.max_message.0).unwrap_or(usize::MAX);
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
            () = shutdown.cancelled() => break Some((close_code::GOING_AWAY, "server shutting down".into())),
            () = kicked.cancelled() => {
                break Some((close_code::POLICY_VIOLATION, "slow consumer: messages were not read in time".into()));
            }
            () = retired.cancelled() => {
                break Some((close_code::CHANNEL_GONE, "channel no longer configured".into()));
            }
            frame = stream.next() => {
                keepalive.heard();
                let size = frame.as_ref().and_then(|f| f.as_ref().ok()).and_then(data_size);
                if let Some(Err((code, reason))) = size.map(|size| limits.take(size)) {
                    break Some((code, reason.to_owned()));
                }
                if read_only && size.is_some() {
                    break Some((close_code::POLICY_VIOLATION, "read-only channel: publishing here needs an access token".into()));
                }
                let payload = match frame {
                    None => break None,
                    Some(Ok(Frame::Text(text))) => Payload::text_from_bytes(text.into()).ok(),
                    Some(Ok(Frame::Binary(data))) => Some(Payload::binary(data)),
                    Some(Ok(Frame::Close(_))) => break None, // tungstenite answers the close
                    Some(Ok(_)) => None, // ping (answered by tungstenite), pong, raw frame
                    Some(Err(e)) => break close_for(&e).map(|(c, r)| (c, r.to_owned())),
                };
                let Some(payload) = payload else { continue };
                let payload = match gate.pass(&channel, payload, max).await {
                    Gated::Publish(payload) => payload,
                    Gated::Refused(frame) => {
                        if !matches!(tokio::time::timeout(write_timeout, sink.send(frame)).await, Ok(Ok(()))) {
                            break None;
                        }
                        continue;
                    }
                    Gated::Close(code, reason) => break Some((code.into(), reason)),
                };
                let message = Message::new(channel.clone(), payload, Origin::Subscriber(subscription.id));
                if let Some(why) = broker.send(message).unrelayed {
                    // Told like a hook's refusal, with a code of its own: it did reach this node.
                    let body = serde_json::json!({ "error": { "code": UNRELAYED, "reason": why } });
                    let frame = Frame::Text(body.to_string().into());
                    if !matches!(tokio::time::timeout(write_timeout, sink.send(frame)).await, Ok(Ok(()))) {
                        break None;
                    }
                }
            }
            message = subscription.recv() => {
                let Some(message) = message else {
                    break Some((close_code::POLICY_VIOLATION, "slow consumer: messages were not read in time".into()));
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
                if let Err((code, reason)) = due {
                    break Some((code, reason.to_owned()));
                }
                if !socket::ping(&mut sink, write_timeout).await {
                    break None;
                }
            }
        }
    };
    if let Some((code, reason)) = close {
        tracing::debug!(channel = %channel, code = u16::from(code), reason, "closing WebSocket");
        socket::close(&mut sink, &mut stream, (code, &reason)).await;
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
