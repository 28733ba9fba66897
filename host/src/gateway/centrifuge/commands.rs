//! What each command does: checks (channel configured, rules, tokens, limits), the
//! broker's work, the reply. Policy is the `auth` module's and the broker's; this file
//! only asks them and answers in the protocol's terms.

use std::sync::Arc;

use bytes::Bytes;

use super::{
    calls, codec,
    codec::Format,
    disconnect::{self, Disconnect, ErrorCode},
    proto,
    session::{Connected, Session, Subscription, unix_now},
};
use crate::{
    auth::{self, Action, Grant, TokenError},
    broker::{
        ClientInfo, Envelope, Event, HistoryError, HistoryQuery, Message, Origin, StreamPosition,
        SubscriberId,
    },
    channel_name::ChannelName,
    config::messaging::{Anonymous, MessagingSpec},
    hooks::{self, Caller, Verdict},
};

/// Why a command is refused: an error reply, or the end of the connection.
pub(super) enum Refusal {
    Error(ErrorCode),
    Close(Disconnect),
    /// A hook's denial, answered with its own code and reason.
    Hook(hooks::Refusal),
}

impl Refusal {
    /// What a hook's verdict that is not an allow becomes.
    fn of_verdict<T>(verdict: Verdict<T>) -> Result<T, Refusal> {
        match verdict {
            Verdict::Allow(t) => Ok(t),
            Verdict::Deny(r) => Err(Refusal::Hook(r)),
            Verdict::Disconnect(r) => Err(Refusal::Close(calls::refusal_close(r))),
        }
    }
}

impl From<ErrorCode> for Refusal {
    fn from(e: ErrorCode) -> Self {
        Refusal::Error(e)
    }
}

impl From<Disconnect> for Refusal {
    fn from(d: Disconnect) -> Self {
        Refusal::Close(d)
    }
}

type Answer = Result<proto::Reply, Refusal>;

/// tern's name and version, as a connect reply gives it.
const VERSION: &str = concat!("tern ", env!("CARGO_PKG_VERSION"));

impl Session<'_> {
    /// Carries out one command; its reply, if it has one, or why the connection ends.
    pub(super) async fn handle(
        &mut self,
        command: proto::Command,
    ) -> Result<Option<proto::Reply>, Disconnect> {
        let id = command.id;
        if id == 0 {
            // Only two commands go without an id: the pong (empty) and send.
            if command == proto::Command::default() {
                self.ponged();
                return Ok(None);
            }
            if let Some(send) = command.send.filter(|_| self.connected.is_some()) {
                self.send(send.data).await;
                return Ok(None);
            }
            return Err(disconnect::BAD_REQUEST);
        }
        if command.connect.is_some() == self.connected.is_some()
            || (command.connect.is_some()
                && self.connects_tried >= super::session::MAX_CONNECT_ATTEMPTS)
        {
            // A command before connecting, a second connect, or one refused connect too many.
            return Err(disconnect::BAD_REQUEST);
        }
        if let Some(req) = command.rpc {
            return Ok(self.rpc(id, req).await);
        }
        let answer = if let Some(req) = command.connect {
            self.connect(id, req).await
        } else if let Some(req) = command.subscribe {
            self.subscribe(id, req).await
        } else if let Some(req) = command.unsubscribe {
            self.unsubscribe(id, &req.channel)
        } else if let Some(req) = command.publish {
            self.publish(id, req).await
        } else if let Some(req) = command.presence {
            self.presence(id, &req.channel)
        } else if let Some(req) = command.presence_stats {
            self.presence_stats(id, &req.channel)
        } else if let Some(req) = command.history {
            self.history(id, req)
        } else if command.ping.is_some() {
            Ok(proto::Reply { id, ping: Some(proto::Empty {}), ..Default::default() })
        } else if let Some(req) = command.refresh {
            self.refresh(id, &req.token)
        } else if let Some(req) = command.sub_refresh {
            self.sub_refresh(id, req)
        } else {
            Err(disconnect::METHOD_NOT_FOUND.into()) // a send with an id, or nothing known
        };
        match answer {
            Ok(reply) => Ok(Some(reply)),
            Err(Refusal::Error(e)) => Ok(Some(e.reply(id))),
            Err(Refusal::Hook(r)) => {
                Ok(Some(calls::refusal_reply(id, &r, disconnect::PERMISSION_DENIED)))
            }
            Err(Refusal::Close(d)) => Err(d),
        }
    }

    async fn connect(&mut self, id: u32, req: proto::ConnectRequest) -> Answer {
        self.connects_tried = self.connects_tried.saturating_add(1);
        let mut grant = if req.token.is_empty() {
            if !self.ctx.settings.allow_anonymous {
                return Err(disconnect::UNAUTHORIZED.into());
            }
            Grant::anonymous(Anonymous::Publish)
        } else {
            let grant = self.ctx.tokens.verify(&req.token).map_err(|e| self.token_refusal(&e))?;
            Grant { anonymous: Anonymous::Publish, ..grant }
        };
        let functions = self.ctx.functions.load_full();
        if functions.has_project_connect() {
            let caller = Caller {
                id: self.client.clone(),
                user: grant.user.clone(),
                protocol: calls::PROTOCOL,
                info: grant.info.clone(),
                address: self.ctx.peer,
            };
            let verdict = functions
                .connect(&self.ctx.runtime, &caller, (&req.data, &self.ctx.headers), None)
                .await;
            let admission = Refusal::of_verdict(verdict)?;
            if let Some(user) = admission.user {
                grant.user = (!user.is_empty()).then_some(user);
            }
            if let Some(info) = admission.info {
                grant.info = Some(info);
            }
        }
        let user = grant.user.clone().unwrap_or_else(|| Arc::from(""));
        let info = Arc::new(ClientInfo {
            user: user.clone(),
            client: self.client.clone(),
            conn_info: grant.info.clone(),
            chan_info: None,
        });
        let grant = Arc::new(grant);
        let inbox = self.ctx.broker.inbox(Some(grant.clone()));
        self.connected = Some(Connected { grant: grant.clone(), info, inbox });
        self.orders = Some(self.ctx.control.register(self.client.clone(), user));
        // Server-side subscriptions: the token's `channels`, recovering where the client
        // says it was.
        let mut subs = Vec::new();
        let most = self.ctx.settings.max_channels_per_connection;
        for channel in &grant.channels {
            if subs.iter().any(|s: &proto::SubscribeEntry| s.key == channel.as_str()) {
                continue; // named twice: one subscription
            }
            if self.subscriptions.len() >= most {
                tracing::warn!(
                    client = %self.client,
                    %channel,
                    most,
                    "the token's `channels` names more than max_channels_per_connection: the rest skipped"
                );
                break;
            }
            let asked = req.subs.get(channel.as_str());
            let recover = asked.filter(|s| s.recover);
            let since = recover
                .map(|s| StreamPosition { offset: s.offset, epoch: s.epoch.as_str().into() });
            match self.attach(channel, since.as_ref(), None, None) {
                Ok(result) => subs.push(proto::SubscribeEntry {
                    key: channel.as_str().to_owned(),
                    value: Some(result),
                }),
                Err(_) => tracing::warn!(
                    client = %self.client,
                    %channel,
                    "the token's `channels` names a channel no bridged messaging config matches: skipped"
                ),
            }
        }
        let (expires, ttl) = ttl_of(grant.expires_at);
        let result = proto::ConnectResult {
            client: self.client.to_string(),
            version: VERSION.into(),
            expires,
            ttl,
            subs,
            ping: u32::try_from(self.ctx.settings.ping_interval.0.as_secs().max(1))
                .unwrap_or(u32::MAX),
            pong: true,
        };
        Ok(proto::Reply { id, connect: Some(result), ..Default::default() })
    }

    async fn subscribe(&mut self, id: u32, req: proto::SubscribeRequest) -> Answer {
        self.take_change()?;
        let (name, spec) = self.channel(&req.channel)?;
        if self.subscriptions.contains_key(&name) {
            return Err(disconnect::ALREADY_SUBSCRIBED.into());
        }
        let max = self.ctx.settings.max_channels_per_connection;
        if self.subscriptions.len() >= max {
            return Err(disconnect::LIMIT_EXCEEDED.into());
        }
        let connected = self.connected()?;
        let token = if req.token.is_empty() {
            if !auth::may(&connected.grant, &spec, Action::Subscribe, &name, false) {
                return Err(disconnect::PERMISSION_DENIED.into());
            }
            None
        } else {
            if spec.options.subscribe == crate::config::channel_options::Who::Nobody {
                return Err(disconnect::PERMISSION_DENIED.into());
            }
            let user = connected.info.user.clone();
            let sub =
                self.ctx.tokens.verify_subscription(&req.token, &user, name.as_str()).map_err(
                    |e| match e {
                        TokenError::Expired => disconnect::TOKEN_EXPIRED,
                        _ => disconnect::PERMISSION_DENIED,
                    },
                )?;
            Some(sub)
        };
        let since = (req.recover && spec.options.recovery)
            .then(|| StreamPosition { offset: req.offset, epoch: req.epoch.as_str().into() });
        let mut chan_info = token.as_ref().and_then(|t| t.info.clone());
        if let Some(hook) = &spec.hooks.subscribe
            && let Some(info) = self.ask_subscribe(hook, &name, spec.hooks.cache).await?
        {
            chan_info = Some(info);
        }
        let expires_at = token.map(|t| t.expires_at);
        let mut result = self.attach(&name, since.as_ref(), chan_info, expires_at)?;
        result.was_recovering = req.recover;
        Ok(proto::Reply { id, subscribe: Some(result), ..Default::default() })
    }

    /// Subscribes to `name` (checked), recovering after `since`; announces the join.
    pub(super) fn attach(
        &mut self,
        name: &ChannelName,
        since: Option<&StreamPosition>,
        chan_info: Option<Arc<str>>,
        expires_at: Option<u64>,
    ) -> Result<proto::SubscribeResult, Refusal> {
        let spec = self.channel(name.as_str())?.1;
        let connected = self.connected()?;
        let info = Arc::new(ClientInfo { chan_info, ..ClientInfo::clone(&connected.info) });
        let (attachment, recovery) = connected.inbox.attach_client(name.clone(), since);
        let mut result =
            proto::SubscribeResult { recoverable: spec.options.recovery, ..Default::default() };
        (result.expires, result.ttl) = ttl_of(expires_at);
        if let Some(recovery) = recovery {
            result.epoch = recovery.position.epoch.to_string();
            result.offset = recovery.position.offset;
            result.recovered = recovery.recovered;
            result.publications =
                recovery.publications.iter().map(|m| self.format.publication(m)).collect();
        }
        let options = &spec.options;
        if options.presence {
            self.ctx.broker.presence.add(name, info.clone());
        }
        if options.join_leave {
            self.ctx.broker.publish(Message::event(name.clone(), Event::Join(info.clone())));
        }
        let subscription = Subscription {
            attachment,
            info,
            presence: options.presence,
            join_leave: options.join_leave,
            expires_at,
        };
        self.subscriptions.insert(name.clone(), subscription);
        Ok(result)
    }

    fn unsubscribe(&mut self, id: u32, channel: &str) -> Answer {
        self.take_change()?;
        if let Ok(name) = ChannelName::parse(channel) {
            self.leave(&name);
        }
        Ok(proto::Reply { id, unsubscribe: Some(proto::Empty {}), ..Default::default() })
    }

    async fn publish(&mut self, id: u32, req: proto::PublishRequest) -> Answer {
        let (name, spec) = self.channel(&req.channel)?;
        if req.data.is_empty() {
            return Err(disconnect::BAD_REQUEST_ERROR.into());
        }
        let subscription = self.subscriptions.get(&name);
        let connected = self.connected()?;
        if !auth::may(&connected.grant, &spec, Action::Publish, &name, subscription.is_some()) {
            return Err(disconnect::PERMISSION_DENIED.into());
        }
        let publisher = subscription.map_or_else(|| connected.info.clone(), |s| s.info.clone());
        let mut data = req.data;
        if let Some(hook) = &spec.hooks.publish {
            let caller = Caller::of(&publisher, calls::PROTOCOL, self.ctx.peer);
            let binary = self.format == Format::Protobuf && std::str::from_utf8(&data).is_err();
            let max = usize::try_from(self.ctx.websocket.max_message.0).unwrap_or(usize::MAX);
            let functions = self.ctx.functions.load_full();
            let verdict = functions
                .publish(
                    &self.ctx.runtime,
                    hook,
                    &caller,
                    (name.as_str(), &data, binary),
                    (max, self.format == Format::Json),
                )
                .await;
            if let Some(rewritten) = Refusal::of_verdict(verdict)? {
                data = Bytes::from(rewritten);
            }
        }
        let (payload, json) = codec::payload_of(self.format, data);
        let envelope = Envelope {
            connection: Some(self.client.clone()),
            json,
            publisher: Some(publisher),
            ..Envelope::default()
        };
        // Id 0 is no subscriber's: the publisher gets its own publication, as the SDKs expect.
        let message = Message::new(name, payload, Origin::Subscriber(SubscriberId(0)));
        if self.ctx.broker.send(message.with_envelope(envelope)).unrelayed.is_some() {
            return Err(disconnect::UNRELAYED.into());
        }
        Ok(proto::Reply { id, publish: Some(proto::Empty {}), ..Default::default() })
    }

    fn presence(&mut self, id: u32, channel: &str) -> Answer {
        let name = self.subscribed_with(channel, |spec| spec.options.presence)?;
        let presence = self
            .ctx
            .broker
            .presence
            .list(&name)
            .iter()
            .map(|info| (info.client.to_string(), self.format.info(info)))
            .collect();
        let result = proto::PresenceResult { presence };
        Ok(proto::Reply { id, presence: Some(result), ..Default::default() })
    }

    fn presence_stats(&mut self, id: u32, channel: &str) -> Answer {
        let name = self.subscribed_with(channel, |spec| spec.options.presence)?;
        let (clients, users) = self.ctx.broker.presence.stats(&name);
        let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        let result =
            proto::PresenceStatsResult { num_clients: count(clients), num_users: count(users) };
        Ok(proto::Reply { id, presence_stats: Some(result), ..Default::default() })
    }

    fn history(&mut self, id: u32, req: proto::HistoryRequest) -> Answer {
        let name = self.subscribed_with(&req.channel, |spec| spec.options.history.is_some())?;
        let query = HistoryQuery {
            since: req.since.map(|s| StreamPosition { offset: s.offset, epoch: s.epoch.into() }),
            // The protocol: 0 asks for the position only, a negative limit for everything.
            limit: usize::try_from(req.limit).ok(),
            reverse: req.reverse,
        };
        let page = match self.ctx.broker.history(&name, &query) {
            None => return Err(disconnect::NOT_AVAILABLE.into()),
            Some(Err(HistoryError::UnrecoverablePosition { .. })) => {
                return Err(disconnect::UNRECOVERABLE_POSITION.into());
            }
            Some(Ok(page)) => page,
        };
        let result = proto::HistoryResult {
            publications: page.publications.iter().map(|m| self.format.publication(m)).collect(),
            epoch: page.position.epoch.to_string(),
            offset: page.position.offset,
        };
        Ok(proto::Reply { id, history: Some(result), ..Default::default() })
    }

    fn refresh(&mut self, id: u32, token: &str) -> Answer {
        let grant = self.ctx.tokens.verify(token).map_err(|e| self.token_refusal(&e))?;
        let connected = self.connected.as_mut().ok_or(disconnect::BAD_REQUEST)?;
        if grant.user.as_deref().unwrap_or_default() != &*connected.info.user {
            return Err(disconnect::INVALID_TOKEN.into()); // another user's token
        }
        let (expires, ttl) = ttl_of(grant.expires_at);
        connected.grant = Arc::new(Grant { anonymous: Anonymous::Publish, ..grant });
        let result = proto::RefreshResult {
            client: self.client.to_string(),
            version: VERSION.into(),
            expires,
            ttl,
        };
        Ok(proto::Reply { id, refresh: Some(result), ..Default::default() })
    }

    fn sub_refresh(&mut self, id: u32, req: proto::SubRefreshRequest) -> Answer {
        let name = ChannelName::parse(&req.channel).map_err(|_| disconnect::BAD_REQUEST_ERROR)?;
        let user = self.connected()?.info.user.clone();
        let sub =
            self.ctx.tokens.verify_subscription(&req.token, &user, name.as_str()).map_err(|e| {
                match e {
                    TokenError::Expired => disconnect::TOKEN_EXPIRED,
                    _ => disconnect::PERMISSION_DENIED,
                }
            })?;
        let subscription =
            self.subscriptions.get_mut(&name).ok_or(disconnect::PERMISSION_DENIED)?;
        subscription.expires_at = Some(sub.expires_at);
        let (expires, ttl) = ttl_of(Some(sub.expires_at));
        let result = proto::SubRefreshResult { expires, ttl };
        Ok(proto::Reply { id, sub_refresh: Some(result), ..Default::default() })
    }

    /// Asks subscribe hook `hook` whether this connection may subscribe to `name` (or
    /// remembers its answer of less than `cache` ago); the channel info it gave.
    async fn ask_subscribe(
        &mut self,
        hook: &str,
        name: &ChannelName,
        cache: std::time::Duration,
    ) -> Result<Option<Arc<str>>, Refusal> {
        if let Some(info) = self.decisions.get(name) {
            return Ok(info);
        }
        let caller = self.caller().ok_or(Refusal::Close(disconnect::BAD_REQUEST))?;
        let functions = self.ctx.functions.load_full();
        let verdict =
            functions.subscribe(&self.ctx.runtime, hook, &caller, (name.as_str(), &[])).await;
        let info = Refusal::of_verdict(verdict)?;
        self.decisions.put(name, info.clone(), cache);
        Ok(info)
    }

    /// The channel `channel` names, and the bridged config governing it.
    fn channel(&self, channel: &str) -> Result<(ChannelName, MessagingSpec), Refusal> {
        let name = ChannelName::parse(channel).map_err(|_| disconnect::BAD_REQUEST_ERROR)?;
        let rules = self.ctx.rules.load();
        let spec = rules.resolve(&name).filter(|spec| spec.websocket);
        let spec = spec.ok_or(disconnect::UNKNOWN_CHANNEL)?.clone();
        Ok((name, spec))
    }

    /// `channel`, which the client must be subscribed to and whose config `has` the feature.
    fn subscribed_with(
        &self,
        channel: &str,
        has: impl Fn(&MessagingSpec) -> bool,
    ) -> Result<ChannelName, Refusal> {
        let (name, spec) = self.channel(channel)?;
        if !self.subscriptions.contains_key(&name) {
            return Err(disconnect::PERMISSION_DENIED.into());
        }
        if !has(&spec) {
            return Err(disconnect::NOT_AVAILABLE.into());
        }
        Ok(name)
    }

    fn connected(&self) -> Result<&Connected, Refusal> {
        self.connected.as_ref().ok_or(Refusal::Close(disconnect::BAD_REQUEST))
    }

    /// Takes one subscribe or unsubscribe from the connection's allowance.
    fn take_change(&mut self) -> Result<(), Refusal> {
        if self.changes.take(std::time::Instant::now()) {
            Ok(())
        } else {
            Err(disconnect::TOO_MANY_REQUESTS.into())
        }
    }

    /// How a refused connection or refresh token is answered: expired ones with an error
    /// (the SDKs fetch a fresh token), the rest by closing as "invalid token".
    fn token_refusal(&self, e: &TokenError) -> Refusal {
        tracing::debug!(client = %self.client, error = %e, "token refused");
        match e {
            TokenError::Expired => disconnect::TOKEN_EXPIRED.into(),
            _ => disconnect::INVALID_TOKEN.into(),
        }
    }
}

/// Whether a token expires, and in how many seconds (at least 1).
fn ttl_of(expires_at: Option<u64>) -> (bool, u32) {
    match expires_at {
        None => (false, 0),
        Some(at) => {
            let left = at.saturating_sub(unix_now()).max(1);
            (true, u32::try_from(left).unwrap_or(u32::MAX))
        }
    }
}
