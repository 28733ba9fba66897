//! The WebSocket doors: the raw bridge, `GET /ws/channel/<name>`, which joins channel
//! `<name>`, and the realtime-pubsub endpoint, `GET /realtime` (see [`realtime`]).
//!
//! Checks happen before the upgrade, as plain HTTP answers: 400 for an invalid name, 404 when
//! no messaging config matches it, 403 when that config does not enable the bridge, 426 for
//! a request that is not a WebSocket handshake. The raw session itself is in [`session`].

pub mod centrifuge;
pub mod close_code;
pub mod control;
pub mod origin;
pub mod rate_limit;
pub mod realtime;
pub mod session;
pub mod socket;

use std::{net::IpAddr, sync::Arc};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use http::{HeaderValue, Method, Request, Response, StatusCode, header, uri::Authority};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio_tungstenite::{
    WebSocketStream,
    tungstenite::{handshake::derive_accept_key, protocol::Role},
};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use prometheus_client::metrics::{counter::Counter, gauge::Gauge};

use self::control::SessionRegistry;
use crate::{
    auth::{self, Action, Grant, TokenAuthority},
    broker::{Broker, SubscriberKind},
    channel_name::ChannelName,
    config::{
        MessagingSpec, Settings,
        messaging::{Anonymous, ChannelRules},
        settings::{CentrifugeSettings, RealtimeSettings, WebSocketSettings},
    },
    hooks::{self, Caller, SessionFunctions, Verdict},
    ip_slots::{IpSlot, IpSlots},
    metrics::{Metrics, ProtocolLabel},
    reply::{Body, error},
    runtime::{FunctionRuntime, pubsub_host::websocket_origin_of},
};

/// The path prefix of the bridge.
pub const PATH_PREFIX: &str = "/ws/channel/";

/// Everything the bridge needs, shared by all its sessions.
pub struct Gateway {
    /// Where frames are published and subscriptions made.
    pub(crate) broker: Arc<Broker>,
    /// Limits.
    pub(crate) settings: WebSocketSettings,
    /// Cancelled on shutdown: sessions close with 1001.
    pub(crate) shutdown: CancellationToken,
    /// Tracks live sessions so shutdown can wait for their close handshakes.
    pub(crate) sessions: TaskTracker,
    /// One permit per connected client, `websocket.max_connections` in all.
    slots: Arc<Semaphore>,
    /// Connected clients per address, `websocket.max_connections_per_ip` each.
    per_ip: Arc<IpSlots>,
    /// `ws://host` of `public_url`, whose pages may connect by default.
    public_origin: Option<Arc<str>>,
    /// The serving generation's channel rules, swapped by a reload before it closes the
    /// sessions of removed channels.
    rules: Arc<arc_swap::ArcSwap<ChannelRules>>,
    /// Checks the realtime endpoint's access tokens.
    tokens: Arc<TokenAuthority>,
    /// The realtime endpoint's settings.
    realtime: RealtimeSettings,
    /// Raw clients connected now, accepted since start.
    raw_count: (Gauge, Counter),
    /// Realtime clients connected now, accepted since start.
    realtime_count: (Gauge, Counter),
    /// The client protocol endpoint's settings.
    centrifuge: CentrifugeSettings,
    /// Client-protocol clients connected now, accepted since start.
    centrifuge_count: (Gauge, Counter),
    /// Runs the hooks and RPC handlers.
    pub(crate) runtime: Arc<FunctionRuntime>,
    /// The serving generation's hooks and RPC handlers, swapped with `rules`.
    pub(crate) functions: Arc<arc_swap::ArcSwap<SessionFunctions>>,
    /// The live sessions that take orders from functions and the server API.
    pub(crate) control: Arc<SessionRegistry>,
}

/// What a client admitted to upgrade holds: its `Sec-WebSocket-Accept` and its places in
/// the connection limits (released when the session ends).
struct Admitted {
    accept: String,
    slots: (OwnedSemaphorePermit, IpSlot),
}

impl Gateway {
    /// The bridge for `broker`'s channels within `settings`, counting into `metrics`.
    pub fn new(
        broker: Arc<Broker>,
        (rules, functions): (Arc<ChannelRules>, Arc<SessionFunctions>),
        settings: &Settings,
        shutdown: CancellationToken,
        metrics: &Metrics,
        (tokens, runtime, control): (
            Arc<TokenAuthority>,
            Arc<FunctionRuntime>,
            Arc<SessionRegistry>,
        ),
    ) -> Self {
        let ws = settings.websocket.clone();
        let count = |protocol| {
            let label = ProtocolLabel { protocol };
            (
                metrics.websocket_connections.get_or_create_owned(&label),
                metrics.websocket_accepted.get_or_create_owned(&label),
            )
        };
        Self {
            broker,
            slots: Arc::new(Semaphore::new(ws.max_connections)),
            per_ip: IpSlots::new(ws.max_connections_per_ip),
            settings: ws,
            shutdown,
            sessions: TaskTracker::new(),
            public_origin: settings.public_url.as_deref().map(websocket_origin_of),
            rules: Arc::new(arc_swap::ArcSwap::new(rules)),
            tokens,
            realtime: settings.realtime.clone(),
            raw_count: count("raw"),
            realtime_count: count("realtime"),
            centrifuge: settings.centrifuge.clone(),
            centrifuge_count: count("centrifuge"),
            runtime,
            functions: Arc::new(arc_swap::ArcSwap::new(functions)),
            control,
        }
    }

    /// Serves the channels `rules` configure, with `functions`' hooks and handlers, from
    /// now on (a reload).
    pub fn set_rules(&self, rules: Arc<ChannelRules>, functions: Arc<SessionFunctions>) {
        self.functions.store(functions);
        self.rules.store(rules);
    }

    /// Answers a request under [`PATH_PREFIX`] from `peer` to `host`: an upgrade, or why not.
    pub async fn handle(
        &self,
        req: Request<Incoming>,
        host: Option<&Authority>,
        peer: IpAddr,
    ) -> Response<Body> {
        let rules = self.rules.load_full();
        let raw = &req.uri().path()[PATH_PREFIX.len()..];
        let name = match ChannelName::parse(raw) {
            Ok(n) => n,
            Err(e) => return error(StatusCode::BAD_REQUEST, &e.to_string()),
        };
        let Some(spec) = rules.resolve(&name) else {
            let msg = format!("no messaging config matches channel `{name}`");
            return error(StatusCode::NOT_FOUND, &msg);
        };
        if !spec.websocket {
            let msg = format!(
                "the WebSocket bridge is not enabled for channel `{name}` (messaging config `{}`)",
                spec.name
            );
            return error(StatusCode::FORBIDDEN, &msg);
        }
        let token = access_token(req.uri().query());
        let (grant, read_only) = match raw_access(&self.tokens, spec, &name, token) {
            Ok(access) => access,
            Err(resp) => return *resp,
        };
        let Admitted { accept, slots } = match self.admit(&req, host, peer) {
            Ok(admitted) => admitted,
            Err(resp) => return *resp,
        };
        let caller = Caller {
            id: centrifuge::client_id(),
            user: grant.user.clone(),
            protocol: "raw",
            info: grant.info.clone(),
            address: peer,
        };
        let functions = self.functions.load_full();
        let caller = match raw_hooks(
            &functions,
            &self.runtime,
            spec,
            (&name, caller),
            req.headers(),
        )
        .await
        {
            Ok(caller) => caller,
            Err(resp) => return *resp,
        };
        // Subscribe before answering 101, so nothing published after the client sees the
        // handshake complete can be missed.
        // A signed URL's grant goes with the subscription: a reload judges the client by it.
        let granted = token.is_some().then(|| Arc::new(grant));
        let subscription =
            self.broker.subscribe_granted(name.clone(), SubscriberKind::WebSocket, granted);
        // A reload may have removed the channel since it was checked above; one that did it
        // after this check closes the session like any other on the channel.
        if !Arc::ptr_eq(&rules, &self.rules.load())
            && self.rules.load().resolve(&name).is_none_or(|spec| !spec.websocket)
        {
            let msg = format!("no messaging config matches channel `{name}`");
            return error(StatusCode::NOT_FOUND, &msg);
        }
        let broker = self.broker.clone();
        let settings = self.settings.clone();
        let shutdown = self.shutdown.clone();
        let connected = self.raw_count.0.clone();
        let gate = session::PublishGate {
            rules: self.rules.clone(),
            functions: self.functions.clone(),
            runtime: self.runtime.clone(),
            caller,
        };
        self.raw_count.1.inc();
        self.sessions.spawn(async move {
            let Some(ws) = upgrade(req, &settings).await else { return };
            connected.inc();
            let ends = session::Ends { broker, shutdown, gate };
            session::run(ws, (subscription, read_only), ends, &settings).await;
            connected.dec();
            drop(slots);
        });
        switching_protocols(&accept)
    }

    /// Checks that `req` is a WebSocket handshake this host accepts now (method, version,
    /// origin, connection limits), or answers why not.
    fn admit(
        &self,
        req: &Request<Incoming>,
        host: Option<&Authority>,
        peer: IpAddr,
    ) -> Result<Admitted, Box<Response<Body>>> {
        if req.method() != Method::GET {
            let mut resp = error(StatusCode::METHOD_NOT_ALLOWED, "a WebSocket handshake is a GET");
            resp.headers_mut().insert(header::ALLOW, HeaderValue::from_static("GET"));
            return Err(Box::new(resp));
        }
        let accept = handshake_accept(req)?;
        let public_origin = self.public_origin.as_deref();
        if let Err(why) =
            origin::allowed(req.headers(), host, &self.settings.allowed_origins, public_origin)
        {
            // Logged: a page refused here shows only a failed WebSocket in its console, so
            // the operator is the one who can tell which origin to allow.
            crate::throttled_warn!(%peer, path = req.uri().path(), "WebSocket refused: {why}");
            return Err(Box::new(error(StatusCode::FORBIDDEN, &why)));
        }
        let Ok(slot) = self.slots.clone().try_acquire_owned() else {
            let msg = format!(
                "too many WebSocket clients (websocket.max_connections = {})",
                self.settings.max_connections
            );
            return Err(Box::new(error(StatusCode::SERVICE_UNAVAILABLE, &msg)));
        };
        let Some(ip_slot) = self.per_ip.try_acquire(peer) else {
            let msg = format!(
                "too many WebSocket clients from your address (websocket.max_connections_per_ip = {})",
                self.per_ip.max()
            );
            return Err(Box::new(error(StatusCode::SERVICE_UNAVAILABLE, &msg)));
        };
        Ok(Admitted { accept, slots: (slot, ip_slot) })
    }
}

/// The `access_token` query parameter, if there is a non-empty one: how a signed URL (of
/// the raw bridge or the realtime endpoint) carries its token.
pub(crate) fn access_token(query: Option<&str>) -> Option<&str> {
    query?
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(key, _)| *key == "access_token")
        .map(|(_, value)| value)
        .filter(|value| !value.is_empty())
}

/// What a raw-bridge client may do on `name`: its grant (a verified signed URL's, or
/// none) and whether it may only read; or the answer refusing it: 401 for a token that is
/// not valid (or missing where `require_token` wants one), 403 for one that does not let
/// its holder read the channel or a channel tokens cannot open.
fn raw_access(
    tokens: &TokenAuthority,
    spec: &MessagingSpec,
    name: &ChannelName,
    token: Option<&str>,
) -> Result<(Grant, bool), Box<Response<Body>>> {
    let refuse = |status, msg: &str| Err(Box::new(error(status, msg)));
    let Some(token) = token else {
        if spec.require_token {
            let msg = format!(
                "channel `{name}` needs a signed URL (messaging config `{}`: require_token): ask the function that hands out its URL",
                spec.name
            );
            return refuse(StatusCode::UNAUTHORIZED, &msg);
        }
        return match auth::raw_bridge_access(spec, name) {
            Anonymous::None => {
                let msg = format!(
                    "channel `{name}` needs an access token (messaging config `{}`: subscribe: {}, anonymous: {}): use a signed URL, or connect to {} or {} with a token",
                    spec.name,
                    spec.options.subscribe.as_str(),
                    spec.anonymous.map_or("unset", |a| a.as_str()),
                    realtime::PATH,
                    centrifuge::PATH,
                );
                refuse(StatusCode::FORBIDDEN, &msg)
            }
            Anonymous::Subscribe => Ok((Grant::default(), true)),
            Anonymous::Publish => Ok((Grant::default(), false)),
        };
    };
    let grant = match tokens.verify_url(token) {
        Ok(grant) => grant,
        Err(e) => return refuse(StatusCode::UNAUTHORIZED, &e.to_string()),
    };
    if let Some(signed_for) = grant.url_channel.as_ref().filter(|c| *c != name) {
        let msg = format!("this URL's token is for channel `{signed_for}`, not `{name}`");
        return refuse(StatusCode::FORBIDDEN, &msg);
    }
    // A token adds to what anyone may do here, unless the config wants tokens only: then
    // the token alone decides, whatever `anonymous` says.
    let strict;
    let spec = if spec.require_token {
        strict = MessagingSpec { anonymous: Some(Anonymous::None), ..spec.clone() };
        &strict
    } else {
        spec
    };
    let anonymous = if spec.require_token { Anonymous::None } else { Anonymous::Publish };
    let grant = Grant { anonymous, ..grant };
    if !auth::may(&grant, spec, Action::Subscribe, name, true) {
        let msg = format!("this URL's token does not let its holder read channel `{name}`");
        return refuse(StatusCode::FORBIDDEN, &msg);
    }
    let read_only = !auth::may(&grant, spec, Action::Publish, name, true);
    Ok((grant, read_only))
}

/// Asks the connect hooks (the project's, then the config's) and the subscribe hook of a
/// raw-bridge client joining `name`; the caller as the hooks left it, or the 403 refusing
/// it (a hook that failed refuses too).
async fn raw_hooks(
    functions: &SessionFunctions,
    runtime: &FunctionRuntime,
    spec: &MessagingSpec,
    (name, mut caller): (&ChannelName, Caller),
    headers: &http::HeaderMap,
) -> Result<Caller, Box<Response<Body>>> {
    let refused = |r: hooks::Refusal| {
        let reason = if r.reason.is_empty() { "refused by a hook".to_owned() } else { r.reason };
        Box::new(error(StatusCode::FORBIDDEN, &reason))
    };
    if functions.has_project_connect() || spec.hooks.connect.is_some() {
        let config = spec.hooks.connect.as_deref();
        match functions.connect(runtime, &caller, (&[], headers), config).await {
            Verdict::Allow(admission) => {
                if let Some(user) = admission.user {
                    caller.user = (!user.is_empty()).then_some(user);
                }
                caller.info = admission.info.or(caller.info);
            }
            Verdict::Deny(r) | Verdict::Disconnect(r) => return Err(refused(r)),
        }
    }
    if let Some(hook) = &spec.hooks.subscribe {
        match functions.subscribe(runtime, hook, &caller, (name.as_str(), &[])).await {
            Verdict::Allow(_) => {}
            Verdict::Deny(r) | Verdict::Disconnect(r) => return Err(refused(r)),
        }
    }
    Ok(caller)
}

/// Completes the upgrade of `req` into a WebSocket, or None when the client went away.
async fn upgrade(
    req: Request<Incoming>,
    settings: &WebSocketSettings,
) -> Option<WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>> {
    let upgraded = match hyper::upgrade::on(req).await {
        Ok(u) => u,
        Err(e) => {
            tracing::debug!(error = %e, "WebSocket upgrade failed");
            return None;
        }
    };
    let config = socket::websocket_config(settings);
    Some(WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(config)).await)
}

/// The 101 answer completing a handshake.
fn switching_protocols(accept: &str) -> Response<Body> {
    let mut resp = Response::new(Body::default());
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = resp.headers_mut();
    headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    if let Ok(v) = HeaderValue::from_str(accept) {
        headers.insert(header::SEC_WEBSOCKET_ACCEPT, v);
    }
    resp
}

/// Checks that `req` is a WebSocket handshake and returns its `Sec-WebSocket-Accept`.
fn handshake_accept(req: &Request<Incoming>) -> Result<String, Box<Response<Body>>> {
    let has_token = |name: header::HeaderName, token: &str| {
        req.headers().get_all(name).iter().any(|v| {
            v.to_str().is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
        })
    };
    if !has_token(header::UPGRADE, "websocket") || !has_token(header::CONNECTION, "upgrade") {
        let mut resp = error(
            StatusCode::UPGRADE_REQUIRED,
            "this is a WebSocket endpoint: connect with a WebSocket client",
        );
        resp.headers_mut().insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        return Err(Box::new(resp));
    }
    if req.headers().get(header::SEC_WEBSOCKET_VERSION).is_none_or(|v| v != "13") {
        let mut resp = error(StatusCode::UPGRADE_REQUIRED, "unsupported WebSocket version: use 13");
        resp.headers_mut().insert(header::SEC_WEBSOCKET_VERSION, HeaderValue::from_static("13"));
        return Err(Box::new(resp));
    }
    match req.headers().get(header::SEC_WEBSOCKET_KEY) {
        Some(key) if !key.is_empty() => Ok(derive_accept_key(key.as_bytes())),
        _ => Err(Box::new(error(StatusCode::BAD_REQUEST, "missing Sec-WebSocket-Key"))),
    }
}
