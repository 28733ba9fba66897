//! One client-protocol connection: one task, one queue for all its channels, one `select!`
//! loop over the socket, the queue, the timers (connect, ping, pong, token expiry) and
//! shutdown. What each command does is in [`super::commands`].

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use arc_swap::ArcSwap;
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use std::net::IpAddr;

use tokio::{
    io::{AsyncRead, AsyncWrite},
    sync::{Semaphore, mpsc},
    time::Instant,
};
use tokio_tungstenite::{
    WebSocketStream,
    tungstenite::{Message as Frame, protocol::frame::coding::CloseCode},
};
use tokio_util::sync::CancellationToken;

use super::{
    codec::Format,
    disconnect::{self, Disconnect},
    proto,
};
use crate::{
    auth::{Grant, TokenAuthority},
    broker::{Attachment, Broker, ClientInfo, Event, Inbox, Message},
    channel_name::ChannelName,
    config::{
        messaging::ChannelRules,
        settings::{CentrifugeSettings, WebSocketSettings},
    },
    gateway::{
        control::{Control, Registered, SessionRegistry},
        rate_limit::TokenBucket,
        session::MAX_BATCH,
        socket::{self, FrameLimits, close_for, data_size},
    },
    hooks::{SessionFunctions, cache::DecisionCache},
    runtime::FunctionRuntime,
};

/// What a session needs from the host.
pub struct Context {
    /// Where publications go and subscriptions are made.
    pub broker: Arc<Broker>,
    /// The serving generation's channel rules (a reload swaps them).
    pub rules: Arc<ArcSwap<ChannelRules>>,
    /// WebSocket limits.
    pub websocket: WebSocketSettings,
    /// The endpoint's settings.
    pub settings: CentrifugeSettings,
    /// Checks connection and subscription tokens.
    pub tokens: Arc<TokenAuthority>,
    /// Cancelled on shutdown.
    pub shutdown: CancellationToken,
    /// Runs RPC handlers and hooks.
    pub runtime: Arc<FunctionRuntime>,
    /// The serving generation's RPC handlers and hooks (a reload swaps them).
    pub functions: Arc<ArcSwap<SessionFunctions>>,
    /// Where the session registers to take orders from functions and the server API.
    pub control: Arc<SessionRegistry>,
    /// The client's address.
    pub peer: IpAddr,
    /// The upgrade request's headers, for connect hooks.
    pub headers: http::HeaderMap,
}

/// An RPC's encoded reply, and the permit it held (released once the reply is taken).
pub(super) type Answered = (Bytes, tokio::sync::OwnedSemaphorePermit);

/// Most connect commands one connection may send (refused ones included).
pub(super) const MAX_CONNECT_ATTEMPTS: u8 = 3;

/// Most RPCs and sends of one connection running at once; more wait their turn.
pub(super) const MAX_CALLS_IN_FLIGHT: usize = 32;

/// Subscribes and unsubscribes one connection may make per second (and in a burst).
pub(super) const SUBSCRIPTION_CHANGES_PER_SECOND: u32 = 100;

/// The most reply bytes one frame's commands may produce before the rest of its commands
/// get error 106 (one history or recovery reply is at most 16 MiB on its own). Clients
/// commonly refuse frames over 16 MiB: the reply that crosses 8 MiB stays under that
/// unless it is a huge one on its own.
const MAX_REPLY_BYTES_PER_FRAME: usize = 8 << 20;

/// A connected client: who it is, and its queue.
pub(super) struct Connected {
    /// What its token grants.
    pub grant: Arc<Grant>,
    /// Who it is to others (no channel info).
    pub info: Arc<ClientInfo>,
    /// Its queue, on every channel it is subscribed to.
    pub inbox: Inbox,
}

/// One channel the client is subscribed to.
pub(super) struct Subscription {
    /// Its place in the broker (dropping it unsubscribes).
    pub attachment: Attachment,
    /// Who the client is on this channel (with its subscription token's info).
    pub info: Arc<ClientInfo>,
    /// Whether the channel keeps presence, and sends joins and leaves.
    pub presence: bool,
    pub join_leave: bool,
    /// Its subscription token's expiry, seconds since the Unix epoch.
    pub expires_at: Option<u64>,
}

/// A connection's state.
pub(super) struct Session<'a> {
    pub ctx: &'a Context,
    pub format: Format,
    /// Its client id.
    pub client: Arc<str>,
    /// Set by a successful connect.
    pub connected: Option<Connected>,
    pub subscriptions: HashMap<ChannelName, Subscription>,
    pub changes: TokenBucket,
    /// When the server's last ping must be answered by.
    pong_due: Option<Instant>,
    /// Orders from functions and the server API, once connected (with its place in the
    /// registry, which it leaves when dropped).
    pub orders: Option<(Registered, mpsc::Receiver<Control>)>,
    /// Replies of RPCs answered in their own tasks, each with its call's permit: a call
    /// counts toward `calls` until the loop has taken its reply, so at most
    /// [`MAX_CALLS_IN_FLIGHT`] replies wait here.
    pub answers: (mpsc::UnboundedSender<Answered>, mpsc::UnboundedReceiver<Answered>),
    /// One permit per RPC or send running.
    pub calls: Arc<Semaphore>,
    /// Subscribe hooks' answers kept for `hooks.cache`.
    pub decisions: DecisionCache,
    /// RPC replies taken from `answers` while a frame waited for a call's permit: they go
    /// out with the frame's replies.
    pub held: Vec<Bytes>,
    /// Connects tried so far: a refused client may try again, a few times, but cannot have
    /// the connect hook run 512 times a frame.
    pub connects_tried: u8,
}

/// Runs the session until the client leaves, breaks a rule, or the host shuts down.
pub async fn run<S>(ws: WebSocketStream<S>, ctx: &Context, format: Format, client: Arc<str>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (mut sink, mut stream) = ws.split();
    let changes = TokenBucket::new(SUBSCRIPTION_CHANGES_PER_SECOND, std::time::Instant::now());
    let mut session = Session {
        ctx,
        format,
        client,
        connected: None,
        subscriptions: HashMap::new(),
        changes,
        pong_due: None,
        orders: None,
        answers: mpsc::unbounded_channel(),
        calls: Arc::new(Semaphore::new(MAX_CALLS_IN_FLIGHT)),
        decisions: DecisionCache::default(),
        held: Vec::new(),
        connects_tried: 0,
    };
    let write_timeout = ctx.websocket.write_timeout.0;
    let mut limits = FrameLimits::new(&ctx.websocket);
    let started = Instant::now();
    let mut next_ping = started + ctx.settings.ping_interval.0;
    let close = loop {
        let deadline = session.deadline(started, next_ping);
        let kicked = session.connected.as_ref().map(|c| c.inbox.kick_signal()).unwrap_or_default();
        tokio::select! {
            biased;
            () = ctx.shutdown.cancelled() => break Some(disconnect::SHUTDOWN),
            () = kicked.cancelled() => break Some(disconnect::SLOW),
            // Timers before frames: a client that never stops sending must still be
            // pinged, and closed when its token or its pong is overdue.
            () = tokio::time::sleep_until(deadline) => {
                let now = Instant::now();
                match session.tick(now, started, &mut next_ping) {
                    Err(d) => break Some(d),
                    Ok(replies) if replies.is_empty() => {}
                    Ok(replies) => {
                        let frame = session.frame(format.join(&replies));
                        if !matches!(tokio::time::timeout(write_timeout, sink.send(frame)).await, Ok(Ok(()))) {
                            break None;
                        }
                    }
                }
            }
            // Replies before frames: a client pipelining RPCs gets its answers as they come.
            Some((answer, permit)) = session.answers.1.recv() => {
                let frame = session.frame(answer);
                let sent = tokio::time::timeout(write_timeout, sink.send(frame)).await;
                drop(permit);
                if !matches!(sent, Ok(Ok(()))) {
                    break None;
                }
            }
            frame = stream.next() => {
                let frame = match frame {
                    None => break None,
                    Some(Err(e)) => break close_for(&e).map(|(code, reason)| Disconnect { code: code.into(), reason: reason.into() }),
                    Some(Ok(frame)) => frame,
                };
                if let Err((code, reason)) = data_size(&frame).map_or(Ok(()), |size| limits.take(size)) {
                    break Some(Disconnect { code: code.into(), reason: reason.into() });
                }
                let (bytes, text) = match frame {
                    Frame::Text(text) => (Bytes::from(text), true),
                    Frame::Binary(bytes) => (bytes, false),
                    Frame::Close(_) => break None, // tungstenite answers the close
                    _ => continue, // ping (answered by tungstenite), pong, raw frame
                };
                let replies = match session.handle_frame(bytes, text).await {
                    Ok(replies) => replies,
                    Err(d) => break Some(d),
                };
                if !replies.is_empty() {
                    let frame = session.frame(format.join(&replies));
                    if !matches!(tokio::time::timeout(write_timeout, sink.send(frame)).await, Ok(Ok(()))) {
                        break None;
                    }
                }
            }
            Some(order) = next_order(&mut session.orders) => {
                let replies = match session.obey(order) {
                    Ok(replies) => replies,
                    Err(d) => break Some(d),
                };
                if !replies.is_empty() {
                    let frame = session.frame(format.join(&replies));
                    if !matches!(tokio::time::timeout(write_timeout, sink.send(frame)).await, Ok(Ok(()))) {
                        break None;
                    }
                }
            }
            message = next_message(&mut session.connected) => {
                let Some(message) = message else { break Some(disconnect::SLOW) };
                let mut pushes = Vec::new();
                session.push_of(&message, &mut pushes);
                while pushes.len() < MAX_BATCH {
                    let Some(next) = session.connected.as_mut().and_then(|c| c.inbox.try_recv()) else { break };
                    session.push_of(&next, &mut pushes);
                }
                if pushes.is_empty() {
                    continue;
                }
                let frame = session.frame(format.join(&pushes));
                if !matches!(tokio::time::timeout(write_timeout, sink.send(frame)).await, Ok(Ok(()))) {
                    tracing::debug!(client = %session.client, "write failed or timed out: dropping the client");
                    break None;
                }
            }
        }
    };
    session.leave_all();
    if let Some(d) = close {
        tracing::debug!(client = %session.client, code = d.code, reason = %d.reason, "closing client-protocol connection");
        socket::close(&mut sink, &mut stream, (CloseCode::from(d.code), &d.reason)).await;
    }
}

impl Session<'_> {
    /// The commands of one frame, carried out in order; the replies to send back.
    async fn handle_frame(&mut self, bytes: Bytes, text: bool) -> Result<Vec<Bytes>, Disconnect> {
        let commands = self.format.decode(bytes, text).map_err(|e| {
            tracing::debug!(client = %self.client, error = %e, "bad frame");
            disconnect::BAD_REQUEST
        })?;
        // Channels a reload removed are told first.
        let mut replies = self.retired_pushes();
        let mut size: usize = replies.iter().map(Bytes::len).sum();
        for command in commands {
            // A few bytes of history or recovery commands can ask for 16 MiB each: past
            // the frame's budget, the rest of the batch is refused, not carried out.
            if size > MAX_REPLY_BYTES_PER_FRAME && command.id != 0 {
                replies.push(self.format.encode(&disconnect::LIMIT_EXCEEDED.reply(command.id)));
                continue;
            }
            if let Some(reply) = self.handle(command).await? {
                let reply = self.format.encode(&reply);
                size += reply.len();
                replies.push(reply);
            }
            for reply in self.held.drain(..) {
                size += reply.len();
                replies.push(reply);
            }
        }
        Ok(replies)
    }

    /// Adds the push of `message` to `pushes`, unless the client left its channel since.
    fn push_of(&mut self, message: &Message, pushes: &mut Vec<Bytes>) {
        if self.subscriptions.contains_key(&message.channel) {
            pushes.push(self.format.push(message));
        }
    }

    fn frame(&self, bytes: Bytes) -> Frame {
        match self.format {
            // JSON replies are UTF-8: serde_json wrote them, or they joined such with `\n`.
            Format::Json => match tokio_tungstenite::tungstenite::Utf8Bytes::try_from(bytes) {
                Ok(text) => Frame::Text(text),
                Err(_) => Frame::Text("{}".into()),
            },
            Format::Protobuf => Frame::Binary(bytes),
        }
    }

    /// When the loop must next wake for a timer.
    fn deadline(&self, started: Instant, next_ping: Instant) -> Instant {
        let mut deadline = next_ping;
        if self.connected.is_none() {
            deadline = deadline.min(started + self.ctx.settings.connect_timeout.0);
        }
        if let Some(due) = self.pong_due {
            deadline = deadline.min(due);
        }
        let expiries = self.connected.iter().filter_map(|c| c.grant.expires_at);
        let sub_expiries = self.subscriptions.values().filter_map(|s| s.expires_at);
        if let Some(first) = expiries.chain(sub_expiries).min() {
            deadline = deadline.min(self.instant_of(first));
        }
        deadline
    }

    /// The instant `expires_at` (Unix seconds) plus the grace delay falls on.
    fn instant_of(&self, expires_at: u64) -> Instant {
        // A token may say it expires in a billion years: the timer wakes within a year at
        // most (and finds nothing due), rather than overflow the instant.
        const MOST: u64 = 365 * 24 * 3600;
        let left = expires_at.saturating_sub(unix_now()).min(MOST);
        Instant::now()
            + Duration::from_secs(left)
            + self.ctx.settings.expired_close_delay.0
            + Duration::from_millis(1)
    }

    /// Whatever timers fell due at `now`: a stale or silent or expired connection is
    /// closed; a ping is sent; an expired subscription is ended with a push.
    fn tick(
        &mut self,
        now: Instant,
        started: Instant,
        next_ping: &mut Instant,
    ) -> Result<Vec<Bytes>, Disconnect> {
        if self.connected.is_none() && now >= started + self.ctx.settings.connect_timeout.0 {
            return Err(disconnect::STALE);
        }
        if self.pong_due.is_some_and(|due| now >= due) {
            return Err(disconnect::NO_PONG);
        }
        let grace = self.ctx.settings.expired_close_delay.0.as_secs();
        let past = |at: u64| unix_now() > at.saturating_add(grace);
        if self.connected.as_ref().and_then(|c| c.grant.expires_at).is_some_and(past) {
            return Err(disconnect::EXPIRED);
        }
        let mut replies = Vec::new();
        let expired: Vec<ChannelName> = self
            .subscriptions
            .iter()
            .filter(|(_, s)| s.expires_at.is_some_and(past))
            .map(|(name, _)| name.clone())
            .collect();
        for name in expired {
            replies.push(self.end_subscription(&name, 2501, "subscription expired"));
        }
        replies.extend(self.retired_pushes());
        if now >= *next_ping {
            *next_ping = now + self.ctx.settings.ping_interval.0;
            if self.connected.is_some() {
                // A ping is an empty reply; the client answers with an empty command.
                self.pong_due.get_or_insert(now + self.ctx.settings.pong_timeout.0);
                replies.push(self.format.encode(&proto::Reply::default()));
            }
        }
        Ok(replies)
    }

    /// Unsubscribe pushes for channels a reload removed (their attachments were retired).
    pub(super) fn retired_pushes(&mut self) -> Vec<Bytes> {
        let retired: Vec<ChannelName> = self
            .subscriptions
            .iter()
            .filter(|(_, s)| s.attachment.is_retired())
            .map(|(name, _)| name.clone())
            .collect();
        retired
            .iter()
            .map(|name| self.end_subscription(name, 2000, "channel no longer configured"))
            .collect()
    }

    /// Notes the client's pong.
    pub(super) fn ponged(&mut self) {
        self.pong_due = None;
    }

    /// Ends the subscription to `name` from the server's side: the unsubscribe push.
    pub(super) fn end_subscription(
        &mut self,
        name: &ChannelName,
        code: u32,
        reason: &str,
    ) -> Bytes {
        self.leave(name);
        let push = proto::Push {
            channel: name.as_str().to_owned(),
            unsubscribe: Some(proto::UnsubscribePush { code, reason: reason.to_owned() }),
            ..Default::default()
        };
        self.format.encode(&proto::Reply { push: Some(push), ..Default::default() })
    }

    /// Leaves `name`: unsubscribes, and tells presence and the channel's subscribers.
    pub(super) fn leave(&mut self, name: &ChannelName) -> bool {
        let Some(sub) = self.subscriptions.remove(name) else { return false };
        drop(sub.attachment);
        if sub.presence {
            self.ctx.broker.presence.remove(name, &sub.info.client);
        }
        if sub.join_leave {
            self.ctx.broker.publish(Message::event(name.clone(), Event::Leave(sub.info)));
        }
        true
    }

    /// Leaves every channel (the connection is ending).
    fn leave_all(&mut self) {
        let names: Vec<ChannelName> = self.subscriptions.keys().cloned().collect();
        for name in names {
            self.leave(&name);
        }
    }
}

/// The next message of the connection's queue (never, before it connects).
async fn next_message(connected: &mut Option<Connected>) -> Option<Arc<Message>> {
    match connected {
        Some(connected) => connected.inbox.recv().await,
        None => std::future::pending().await,
    }
}

/// The next order for a session that takes them (never, before it connects).
async fn next_order(orders: &mut Option<(Registered, mpsc::Receiver<Control>)>) -> Option<Control> {
    match orders {
        Some((_, rx)) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// Seconds since the Unix epoch.
pub(super) fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}
