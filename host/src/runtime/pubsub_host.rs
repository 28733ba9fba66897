//! The host side of the WIT `pubsub` interface: what a function's `Channel` calls do.
//!
//! This is the runtime's only way to the broker.

use std::sync::Arc;

use wasmtime::component::Resource;

use super::{
    bindings::pubsub::{Error, Host, HostChannel, Publisher, UrlOptions},
    realtime_host::mint_checked,
    state::InvocationState,
};
use crate::{
    auth::{ChannelPattern, Grant, TokenAuthority},
    broker::{Broker, Envelope, Message, Origin, Payload},
    channel_name::ChannelName,
    config::{Settings, messaging::ChannelRules},
    gateway::control::SessionRegistry,
};

/// What every invocation shares of pub/sub: the broker, the channel rules and the limits.
pub struct Pubsub {
    /// Where messages go.
    pub(crate) broker: Arc<Broker>,
    /// Which channel names exist and which are bridged to WebSockets.
    pub(crate) rules: Arc<ChannelRules>,
    /// Largest payload a function may publish, in bytes.
    max_message: usize,
    /// Most publishes per invocation.
    max_publishes: u32,
    /// `ws://host` from `public_url`, for WebSocket URLs built outside an HTTP request.
    pub(crate) public_origin: Option<Arc<str>>,
    /// Mints the realtime endpoint's access tokens.
    pub(crate) tokens: Arc<TokenAuthority>,
    /// The live sessions a function may subscribe, message or disconnect.
    pub(crate) sessions: Arc<SessionRegistry>,
}

impl Pubsub {
    /// What functions reach of `broker`'s channels under `rules`, within `settings`' limits.
    pub fn new(
        broker: Arc<Broker>,
        rules: Arc<ChannelRules>,
        settings: &Settings,
        (tokens, sessions): (Arc<TokenAuthority>, Arc<SessionRegistry>),
    ) -> Self {
        Self {
            broker,
            rules,
            max_message: usize::try_from(settings.websocket.max_message.0).unwrap_or(usize::MAX),
            max_publishes: settings.pubsub.max_publishes_per_invocation,
            public_origin: settings.public_url.as_deref().map(websocket_origin_of),
            tokens,
            sessions,
        }
    }
}

/// `public_url` as the origin of WebSocket URLs: `https` becomes `wss`, `http` `ws`.
pub fn websocket_origin_of(public_url: &str) -> Arc<str> {
    let url = public_url.trim_end_matches('/');
    match url.strip_prefix("https://") {
        Some(rest) => format!("wss://{rest}").into(),
        None => format!("ws://{}", url.strip_prefix("http://").unwrap_or(url)).into(),
    }
}

/// One invocation's view of pub/sub.
pub struct PubsubContext {
    pub(super) shared: Arc<Pubsub>,
    /// `ws://host:port` (or `wss://...`) for WebSocket URLs; None gives a bare path.
    pub(super) origin: Option<Arc<str>>,
    /// The functions whose publishes led to this invocation, this one last.
    trail: Arc<[Arc<str>]>,
    /// The realtime details of the message being handled (empty for HTTP requests).
    pub(super) trigger: Envelope,
    published: u32,
    /// Channel handles the guest holds now.
    open_channels: usize,
}

/// Most channels one invocation may hold open at once: each is host memory, and a guest
/// opening channels in a loop must get an error, not the host's memory.
pub const MAX_OPEN_CHANNELS: usize = 256;

impl PubsubContext {
    /// The context of one invocation; `trail` names the functions whose publishes led to
    /// it, ending with its own.
    pub fn new(shared: Arc<Pubsub>, origin: Option<Arc<str>>, trail: Arc<[Arc<str>]>) -> Self {
        let trigger = Envelope::default();
        Self { shared, origin, trail, trigger, published: 0, open_channels: 0 }
    }

    /// The context of an invocation handling a message with `envelope`'s realtime details.
    pub fn handling(mut self, envelope: Envelope) -> Self {
        self.trigger = envelope;
        self
    }

    /// Counts one publish (or message to a client) toward this invocation's limits:
    /// `payload_len` bytes against the largest message, one against the most publishes.
    pub(super) fn take_publish(&mut self, payload_len: usize) -> Result<(), Error> {
        if payload_len > self.shared.max_message {
            return Err(Error::PayloadTooLarge(self.shared.max_message as u64));
        }
        if self.published >= self.shared.max_publishes {
            return Err(Error::RateLimited);
        }
        self.published += 1;
        Ok(())
    }

    fn publish(&mut self, handle: &ChannelHandle, payload: Payload) -> Result<(), Error> {
        self.publish_to(handle.name.clone(), payload, Envelope::default())
    }

    /// Publishes within this invocation's limits (payload size, number of publishes).
    pub(super) fn publish_to(
        &mut self,
        channel: ChannelName,
        payload: Payload,
        envelope: Envelope,
    ) -> Result<(), Error> {
        self.take_publish(payload.len())?;
        let origin = Origin::Function { trail: self.trail.clone() };
        let message = Message::new(channel, payload, origin).with_envelope(envelope);
        match self.shared.broker.send(message).unrelayed {
            None => Ok(()),
            Some(why) => Err(Error::Unavailable(why)),
        }
    }
}

/// A channel a guest has opened: the row behind its `channel` resource handle.
#[derive(Debug)]
pub struct ChannelHandle {
    name: ChannelName,
    websocket: bool,
}

impl Host for InvocationState {
    fn message_publisher(&mut self) -> wasmtime::Result<Option<Publisher>> {
        Ok(self.pubsub.trigger.publisher.as_ref().map(|p| Publisher {
            client_id: p.client.to_string(),
            user: (!p.user.is_empty()).then(|| p.user.to_string()),
        }))
    }
}

impl HostChannel for InvocationState {
    fn open(&mut self, name: String) -> wasmtime::Result<Result<Resource<ChannelHandle>, Error>> {
        let name = match ChannelName::parse(&name) {
            Ok(n) => n,
            Err(e) => return Ok(Err(Error::InvalidName(e.to_string()))),
        };
        let Some(spec) = self.pubsub.shared.rules.resolve(&name) else {
            return Ok(Err(Error::NotConfigured(name.to_string())));
        };
        if self.pubsub.open_channels >= MAX_OPEN_CHANNELS {
            let msg =
                format!("too many channels open in this invocation (at most {MAX_OPEN_CHANNELS})");
            return Ok(Err(Error::Unavailable(msg)));
        }
        let handle = ChannelHandle { name, websocket: spec.websocket };
        let handle = self.table.push(handle)?;
        self.pubsub.open_channels += 1;
        Ok(Ok(handle))
    }

    fn name(&mut self, channel: Resource<ChannelHandle>) -> wasmtime::Result<String> {
        Ok(self.table.get(&channel)?.name.to_string())
    }

    fn websocket_url(
        &mut self,
        channel: Resource<ChannelHandle>,
    ) -> wasmtime::Result<Result<String, Error>> {
        let handle = self.table.get(&channel)?;
        if !handle.websocket {
            return Ok(Err(Error::WebsocketDisabled(handle.name.to_string())));
        }
        let origin = self.pubsub.origin.as_deref().unwrap_or("");
        Ok(Ok(format!("{origin}/ws/channel/{}", handle.name)))
    }

    fn publish(
        &mut self,
        channel: Resource<ChannelHandle>,
        data: Vec<u8>,
    ) -> wasmtime::Result<Result<(), Error>> {
        let handle = self.table.get(&channel)?;
        Ok(self.pubsub.publish(handle, Payload::binary(data)))
    }

    fn publish_text(
        &mut self,
        channel: Resource<ChannelHandle>,
        text: String,
    ) -> wasmtime::Result<Result<(), Error>> {
        let handle = self.table.get(&channel)?;
        Ok(self.pubsub.publish(handle, Payload::text(text)))
    }

    fn subscribers(
        &mut self,
        channel: Resource<ChannelHandle>,
    ) -> wasmtime::Result<Result<u32, Error>> {
        let handle = self.table.get(&channel)?;
        let n = self.pubsub.shared.broker.cluster_subscriber_count(&handle.name);
        Ok(Ok(u32::try_from(n).unwrap_or(u32::MAX)))
    }

    fn signed_websocket_url(
        &mut self,
        channel: Resource<ChannelHandle>,
        options: UrlOptions,
    ) -> wasmtime::Result<Result<String, Error>> {
        let handle = self.table.get(&channel)?;
        if !handle.websocket {
            return Ok(Err(Error::WebsocketDisabled(handle.name.to_string())));
        }
        let this = ChannelPattern::Prefix(handle.name.clone());
        // The `channel` claim pins the URL to this channel (not the ones below it), and
        // makes the token no connection token for the other doors.
        let grant = Grant {
            subscribe: if options.read { vec![this.clone()] } else { Vec::new() },
            publish: if options.write { vec![this] } else { Vec::new() },
            url_channel: Some(handle.name.clone()),
            ..Grant::default()
        };
        let token = match mint_checked(
            &self.pubsub.shared.tokens,
            grant,
            options.subject,
            options.ttl_seconds,
        ) {
            Ok(token) => token,
            Err(e) => return Ok(Err(Error::Unavailable(e))),
        };
        let origin = self.pubsub.origin.as_deref().unwrap_or("");
        Ok(Ok(format!("{origin}/ws/channel/{}?access_token={token}", handle.name)))
    }

    fn drop(&mut self, channel: Resource<ChannelHandle>) -> wasmtime::Result<()> {
        self.table.delete(channel)?;
        self.pubsub.open_channels -= 1;
        Ok(())
    }
}

impl super::bindings::types::Host for InvocationState {}
