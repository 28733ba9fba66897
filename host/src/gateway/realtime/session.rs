//! One realtime-pubsub connection: one task, one queue for all its topics, one `select!`
//! loop over the socket, the queue, the ping timer and shutdown.

use std::{
    collections::{HashMap, HashSet, VecDeque},
    net::IpAddr,
    sync::Arc,
};

use arc_swap::ArcSwap;
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::{WebSocketStream, tungstenite::Message as Frame};
use tokio_util::sync::CancellationToken;

use super::frames::{self, Command, Outgoing, Refusal};
use crate::{
    auth::{self, Action, Grant},
    broker::{
        Attachment, Broker, ClientInfo, Envelope, Inbox, Message, Origin, Payload, SubscriberKind,
    },
    channel_name::ChannelName,
    config::{
        messaging::{ChannelRules, PRIVATE_SEGMENT},
        settings::{RealtimeSettings, WebSocketSettings},
    },
    gateway::{
        close_code,
        control::SessionRegistry,
        rate_limit::TokenBucket,
        session::MAX_BATCH,
        socket::{self, FrameLimits, Keepalive, close_for, data_size},
    },
    hooks::{SessionFunctions, cache::DecisionCache},
    runtime::FunctionRuntime,
};

/// How many senders a connection remembers having heard from (whom it may reply to).
const HEARD_FROM: usize = 1024;

/// What a realtime session needs from the host.
pub struct Context {
    /// Where messages go.
    pub broker: Arc<Broker>,
    /// The serving generation's channel rules (a reload swaps them).
    pub rules: Arc<ArcSwap<ChannelRules>>,
    /// WebSocket limits.
    pub websocket: WebSocketSettings,
    /// The endpoint's settings.
    pub realtime: RealtimeSettings,
    /// Cancelled on shutdown.
    pub shutdown: CancellationToken,
    /// Runs the hooks.
    pub runtime: Arc<FunctionRuntime>,
    /// The serving generation's hooks (a reload swaps them).
    pub functions: Arc<ArcSwap<SessionFunctions>>,
    /// Where the session registers to take orders from functions and the server API.
    pub control: Arc<SessionRegistry>,
}

/// Who is connected: its id, what its token grants, where it is.
pub struct Peer {
    /// The connection id (`priv/<id>` is its private topic).
    pub id: Arc<str>,
    /// What its token grants (empty when anonymous).
    pub grant: Arc<Grant>,
    /// Its address.
    pub address: IpAddr,
}

pub(super) struct Session<'a> {
    pub(super) ctx: &'a Context,
    pub(super) peer: &'a Peer,
    pub(super) inbox: Inbox,
    pub(super) topics: HashMap<ChannelName, Attachment>,
    /// Connections this one received a message from, oldest first: it may publish to their
    /// private topics (that is how replies work).
    heard: (HashSet<Arc<str>>, VecDeque<Arc<str>>),
    /// Subscribes and unsubscribes allowed per second: each takes the broker's write lock.
    changes: TokenBucket,
    /// Whether its coming and going is announced on the inbound topic: only for connections
    /// that may publish there, so anonymous clients cannot flood the backend with presence.
    announced: bool,
    /// Who its publications come from, for functions (`publisher()`).
    publisher: Arc<ClientInfo>,
    /// Subscribe hooks' answers kept for `hooks.cache`.
    pub(super) decisions: DecisionCache,
    /// Set by a hook's disconnect: the loop closes with it.
    pub(super) closing: Option<(u16, String)>,
}

/// Subscribes and unsubscribes one connection may make per second (and in a burst).
const SUBSCRIPTION_CHANGES_PER_SECOND: u32 = 100;

/// Runs the session until the client leaves, breaks a rule, or the host shuts down.
/// `inbox` is the connection's queue with its private topic already attached.
pub async fn run<S>(
    ws: WebSocketStream<S>,
    ctx: &Context,
    peer: &Peer,
    (inbox, _private): (Inbox, Option<Attachment>),
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (mut sink, mut stream) = ws.split();
    let changes = TokenBucket::new(SUBSCRIPTION_CHANGES_PER_SECOND, std::time::Instant::now());
    let mut session = Session {
        ctx,
        peer,
        inbox,
        topics: HashMap::new(),
        heard: Default::default(),
        changes,
        announced: false,
        publisher: Arc::new(ClientInfo {
            user: peer.grant.user.clone().unwrap_or_else(|| Arc::from("")),
            client: peer.id.clone(),
            conn_info: peer.grant.info.clone(),
            chan_info: None,
        }),
        decisions: DecisionCache::default(),
        closing: None,
    };
    let user = peer.grant.user.clone().unwrap_or_else(|| Arc::from(""));
    let (_registered, mut orders) = ctx.control.register(peer.id.clone(), user);
    session.announced = session.check(&ctx.realtime.inbound_topic, Action::Publish).is_ok();
    let welcome = serde_json::json!({
        "connection": {"id": &*peer.id, "appId": "tern", "remoteAddress": peer.address.to_string()},
        "permissions": peer.grant.permissions_json(),
        "user": peer.grant.user.as_deref(),
    });
    let settings = &ctx.websocket;
    let write_timeout = settings.write_timeout.0;
    let welcomed = tokio::time::timeout(
        write_timeout,
        sink.send(Frame::Text(frames::frame("main", "welcome", welcome).into())),
    )
    .await;
    if !matches!(welcomed, Ok(Ok(()))) {
        return;
    }
    session.presence("connected");
    let mut keepalive = Keepalive::new(settings.ping_interval.0);
    let kicked = session.inbox.kick_signal();
    let mut limits = FrameLimits::new(settings);
    let slow = || {
        (close_code::POLICY_VIOLATION, "slow consumer: messages were not read in time".to_owned())
    };
    let close = loop {
        tokio::select! {
            biased;
            () = ctx.shutdown.cancelled() => break Some((close_code::GOING_AWAY, "server shutting down".to_owned())),
            () = kicked.cancelled() => break Some(slow()),
            frame = stream.next() => {
                keepalive.heard();
                let frame = match frame {
                    None => break None,
                    Some(Err(e)) => break close_for(&e).map(|(c, r)| (c, r.to_owned())),
                    Some(Ok(frame)) => frame,
                };
                if let Err((c, r)) = data_size(&frame).map_or(Ok(()), |size| limits.take(size)) {
                    break Some((c, r.to_owned()));
                }
                let answer = match frame {
                    Frame::Text(text) => session.handle(text.as_str()).await,
                    Frame::Binary(_) => Some(frames::refusal(&Refusal::bad_frame(
                        "binary frames are not part of this protocol: send JSON text",
                    ))),
                    Frame::Close(_) => break None, // tungstenite answers the close
                    _ => None, // ping (answered by tungstenite), pong, raw frame
                };
                if let Some(answer) = answer {
                    let sent = tokio::time::timeout(write_timeout, sink.send(Frame::Text(answer.into()))).await;
                    if !matches!(sent, Ok(Ok(()))) {
                        break None;
                    }
                }
                if let Some((code, reason)) = session.closing.take() {
                    break Some((code.into(), reason));
                }
            }
            Some(order) = orders.recv() => {
                if let Err((code, reason)) = session.obey(order) {
                    break Some((code.into(), reason));
                }
            }
            message = session.inbox.recv() => {
                let Some(message) = message else { break Some(slow()) };
                let write = async {
                    sink.feed(session.deliver(&message)).await?;
                    for _ in 1..MAX_BATCH {
                        let Some(next) = session.inbox.try_recv() else { break };
                        sink.feed(session.deliver(&next)).await?;
                    }
                    sink.flush().await
                };
                if !matches!(tokio::time::timeout(write_timeout, write).await, Ok(Ok(()))) {
                    tracing::debug!(connection = %peer.id, "write failed or timed out: dropping the client");
                    break None;
                }
            }
            due = keepalive.due() => {
                if let Err((c, r)) = due {
                    break Some((c, r.to_owned()));
                }
                if !socket::ping(&mut sink, write_timeout).await {
                    break None;
                }
            }
        }
    };
    session.topics.clear();
    session.presence("disconnected");
    if let Some((code, reason)) = close {
        tracing::debug!(connection = %peer.id, code = u16::from(code), reason, "closing realtime connection");
        socket::close(&mut sink, &mut stream, (code, &reason)).await;
    }
}

/// `priv/<id>`.
pub fn private_topic(id: &str) -> Option<ChannelName> {
    ChannelName::parse(&format!("{PRIVATE_SEGMENT}/{id}")).ok()
}

impl Session<'_> {
    /// Carries out one client frame; returns the frame to answer with, if any.
    async fn handle(&mut self, text: &str) -> Option<String> {
        let answer = match frames::decode(text) {
            Err(refusal) => Err(refusal),
            Ok(Command::Subscribe(topic)) => self.subscribe(&topic).await,
            Ok(Command::Unsubscribe(topic)) => self.unsubscribe(&topic),
            Ok(Command::Publish(topic, out)) => self.publish(&topic, out).await,
            Ok(Command::Send(out)) => {
                let ctx = self.ctx; // outlives the session: no copy of the topic per send
                self.publish(&ctx.realtime.inbound_topic, out)
                    .await
                    .map_err(|r| Refusal { kind: Some("message".into()), ..r })
            }
        };
        match answer {
            Ok(frame) => frame,
            Err(refusal) => Some(frames::refusal(&refusal)),
        }
    }

    async fn subscribe(&mut self, topic: &str) -> Result<Option<String>, Refusal> {
        let confirm =
            || frames::frame("priv/acks", "subscribed", serde_json::json!({ "topic": topic }));
        let refuse = |code, message| topic_refusal("subscribe", topic, None, code, message);
        self.take_change().map_err(|(c, m)| refuse(c, m))?;
        let name = self.check(topic, Action::Subscribe).map_err(|(c, m)| refuse(c, m))?;
        if is_private(&name) {
            if private_topic(&self.peer.id).as_ref() == Some(&name) {
                return Ok(Some(confirm())); // already its own
            }
            return Err(refuse(
                "forbidden",
                "a private topic belongs to its connection only".into(),
            ));
        }
        // Topics a reload removed receive nothing more: forget them, so they neither count
        // nor stop a later subscribe from attaching again.
        self.topics.retain(|_, attachment| !attachment.is_retired());
        if !self.topics.contains_key(&name) {
            let max = self.ctx.realtime.max_topics_per_connection;
            if self.topics.len() >= max {
                let why = format!(
                    "at most {max} topics per connection (realtime.max_topics_per_connection)"
                );
                return Err(refuse("too-many-topics", why));
            }
            self.ask_subscribe(&name).await.map_err(|(c, m)| refuse(c, m))?;
            let attachment = self.inbox.attach(name.clone(), SubscriberKind::WebSocket);
            // A reload may have removed the channel between the check and the attach; one
            // after this check retires the attachment like any other.
            self.check(topic, Action::Subscribe).map_err(|(c, m)| refuse(c, m))?;
            self.topics.insert(name, attachment);
        }
        Ok(Some(confirm()))
    }

    fn unsubscribe(&mut self, topic: &str) -> Result<Option<String>, Refusal> {
        self.take_change().map_err(|(c, m)| topic_refusal("unsubscribe", topic, None, c, m))?;
        if let Ok(name) = ChannelName::parse(topic) {
            self.topics.remove(&name);
        }
        Ok(Some(frames::frame("priv/acks", "unsubscribed", serde_json::json!({ "topic": topic }))))
    }

    async fn publish(&mut self, topic: &str, out: Outgoing) -> Result<Option<String>, Refusal> {
        let Outgoing { id, mut payload, mut envelope } = out;
        let refuse = |code, message| topic_refusal("publish", topic, id.clone(), code, message);
        let name = self.check(topic, Action::Publish).map_err(|(c, m)| refuse(c, m))?;
        if envelope.message_type.as_deref() == Some("presence") {
            return Err(refuse("forbidden", "`presence` messages come from tern only".into()));
        }
        if is_private(&name) {
            let to = name.as_str().split_once('/').map_or("", |(_, id)| id);
            if !self.heard.0.contains(to) {
                let why = format!(
                    "you may publish to `{topic}` only after receiving a message from that connection"
                );
                return Err(refuse("forbidden", why));
            }
            if envelope.message_type.as_deref() == Some("response") && !plain_response(&payload) {
                let why =
                    "a `response` needs a payload {\"id\": \"...\"} whose id has no `.` or `*`";
                return Err(refuse("bad-frame", why.into()));
            }
        }
        if !is_private(&name) {
            payload = self
                .ask_publish(&name, payload, envelope.json)
                .await
                .map_err(|(c, m)| refuse(c, m))?;
        }
        envelope.connection = Some(self.peer.id.clone());
        envelope.publisher = Some(self.publisher.clone());
        let message = Message::new(name, payload, Origin::Subscriber(self.inbox.id));
        if let Some(why) = self.ctx.broker.send(message.with_envelope(envelope)).unrelayed {
            return Err(topic_refusal("publish", topic, id, "unavailable", why));
        }
        Ok(id.map(|id| frames::frame("priv/acks", "ack", serde_json::json!({ "data": id }))))
    }

    /// Takes one subscribe or unsubscribe from the connection's allowance.
    fn take_change(&mut self) -> Result<(), (&'static str, String)> {
        if self.changes.take(std::time::Instant::now()) {
            return Ok(());
        }
        let why = format!(
            "at most {SUBSCRIPTION_CHANGES_PER_SECOND} subscribes and unsubscribes per second"
        );
        Err(("rate-limited", why))
    }

    /// The channel `topic` names if this connection may do `action` on it.
    pub(super) fn check(
        &self,
        topic: &str,
        action: Action,
    ) -> Result<ChannelName, (&'static str, String)> {
        let name = ChannelName::parse(topic).map_err(|e| ("invalid-topic", e.to_string()))?;
        if name.as_str() == "main" {
            return Err(("invalid-topic", "`main` is reserved for the welcome frame".into()));
        }
        if is_private(&name) {
            return Ok(name); // the callers apply the private topics' own rules
        }
        let rules = self.ctx.rules.load();
        let spec = rules.resolve(&name).filter(|spec| spec.websocket).ok_or_else(|| {
            (
                "not-configured",
                format!("no messaging config with the WebSocket bridge matches `{topic}`"),
            )
        })?;
        if !auth::may(&self.peer.grant, spec, action, &name, self.topics.contains_key(&name)) {
            let verb = if action == Action::Subscribe { "subscribe to" } else { "publish to" };
            let why = format!(
                "you may not {verb} `{topic}` (messaging config `{}`: {} {})",
                spec.name,
                if action == Action::Subscribe { "subscribe:" } else { "publish:" },
                match action {
                    Action::Subscribe => spec.options.subscribe.as_str(),
                    Action::Publish => spec.options.publish.as_str(),
                }
            );
            return Err(("forbidden", why));
        }
        Ok(name)
    }

    /// The frame of `message`, remembering its sender as one this connection may reply to.
    fn deliver(&mut self, message: &Message) -> Frame {
        if let Some(from) = &message.envelope.connection
            && !self.heard.0.contains(from)
        {
            if self.heard.1.len() >= HEARD_FROM
                && let Some(oldest) = self.heard.1.pop_front()
            {
                self.heard.0.remove(&oldest);
            }
            self.heard.0.insert(from.clone());
            self.heard.1.push_back(from.clone());
        }
        Frame::Text(frames::delivery(message))
    }

    /// Tells the inbound topic's subscribers that this connection came or went.
    fn presence(&self, status: &str) {
        if !self.announced {
            return;
        }
        let Ok(inbound) = ChannelName::parse(&self.ctx.realtime.inbound_topic) else { return };
        let payload = serde_json::json!({
            "connectionId": &*self.peer.id,
            "status": status,
            "permissions": self.peer.grant.permissions_json(),
            "user": self.peer.grant.user.as_deref(),
        });
        let envelope = Envelope {
            message_type: Some("presence".into()),
            client_id: None,
            connection: Some(self.peer.id.clone()),
            json: true,
            publisher: Some(self.publisher.clone()),
        };
        let message = Message::new(
            inbound,
            Payload::text(payload.to_string()),
            Origin::Subscriber(self.inbox.id),
        );
        self.ctx.broker.publish(message.with_envelope(envelope));
    }
}

/// Whether a `response` payload's id is one the clients can match safely: not a string
/// with `.` or `*` (the npm client emits `response.<id>` on a wildcard emitter, so an id
/// `*` would answer every request the receiver is waiting on).
fn plain_response(payload: &Payload) -> bool {
    #[derive(serde::Deserialize)]
    struct Response {
        id: Option<serde_json::Value>,
    }
    match serde_json::from_slice::<Response>(payload.bytes()) {
        Ok(Response { id: Some(serde_json::Value::String(id)) }) => !id.contains(['.', '*']),
        _ => true,
    }
}

pub(super) fn is_private(name: &ChannelName) -> bool {
    name.segments().next() == Some(PRIVATE_SEGMENT)
}

fn topic_refusal(
    kind: &str,
    topic: &str,
    id: Option<String>,
    code: &'static str,
    message: String,
) -> Refusal {
    Refusal { id, kind: Some(kind.into()), topic: Some(topic.into()), code, message }
}
