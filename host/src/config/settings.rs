//! Host settings from the project's optional `tern.yaml`: listen address, public URL, limits.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    time::Duration,
};

use serde::Deserialize;

use super::{
    access::{HostPattern, OriginPattern},
    bounds,
    diagnostic::Diagnostic,
    units::{ByteSize, HumanDuration},
    yaml,
};

/// Host settings; every field has a documented default.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Address to listen on. Default `127.0.0.1:8080`; `--listen` overrides it.
    pub listen: SocketAddr,
    /// The origin clients reach this host at (`https://tern.example.com`), used to build
    /// WebSocket URLs. Default: taken from each request's (validated) `Host` header.
    pub public_url: Option<String>,
    /// HTTP limits.
    pub http: HttpSettings,
    /// WebSocket bridge limits.
    pub websocket: WebSocketSettings,
    /// Pub/sub limits.
    pub pubsub: PubsubSettings,
    /// The admin listener: metrics, health, reload, deploy.
    pub admin: AdminSettings,
    /// The realtime-pubsub endpoint (`/realtime`).
    pub realtime: RealtimeSettings,
    /// Where the secret that signs and checks access tokens comes from.
    pub auth: AuthSettings,
    /// The Centrifugo client protocol endpoint (`/connection/websocket`).
    pub centrifuge: CentrifugeSettings,
    /// Channel history kept in memory.
    pub history: HistorySettings,
    /// Hooks for the whole project (`hooks.connect`: every connection, every door).
    pub hooks: ProjectHooks,
    /// The server API (`/api/publish`...): where its keys come from.
    pub api: ApiSettings,
    /// The NATS servers this node shares with the other nodes of its cluster (none: alone).
    pub cluster: Option<super::cluster::ClusterSettings>,
}

/// Hooks for the whole project.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProjectHooks {
    /// A `connect-hook` function asked before any client is admitted, on every door.
    pub connect: Option<String>,
}

/// The server API, Centrifugo's HTTP API for backends.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiSettings {
    /// A YAML file of API keys, each with the methods and channels it may use, relative
    /// to the project directory. With `TERN_API_KEY` (one key for everything) it is what
    /// turns the API on; without either, `/api/*` answers 404.
    pub keys_file: Option<PathBuf>,
}

/// The Centrifugo client protocol endpoint.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CentrifugeSettings {
    /// Whether a client may connect without a token (as user ""). Default false.
    pub allow_anonymous: bool,
    /// How often the server pings each connection. Default 25s.
    pub ping_interval: HumanDuration,
    /// How long a pong may take after a ping before the connection is dropped. Default 8s.
    pub pong_timeout: HumanDuration,
    /// How long a new connection may take to send its connect command. Default 10s.
    pub connect_timeout: HumanDuration,
    /// How long past its token's expiry a connection or subscription that did not refresh
    /// is kept. Default 25s.
    pub expired_close_delay: HumanDuration,
    /// Most channels one connection may be subscribed to. Default 128.
    pub max_channels_per_connection: usize,
}

impl Default for CentrifugeSettings {
    fn default() -> Self {
        let secs = |s| HumanDuration(Duration::from_secs(s));
        Self {
            allow_anonymous: false,
            ping_interval: secs(25),
            pong_timeout: secs(8),
            connect_timeout: secs(10),
            expired_close_delay: secs(25),
            max_channels_per_connection: 128,
        }
    }
}

/// Channel history in memory.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HistorySettings {
    /// Most channels with a history stream at once; past it, the stream idle longest is
    /// dropped (its subscribers cannot recover across it). Default 10000.
    pub max_channels: usize,
    /// Most payload bytes kept by all streams; past it, a stream that grows gives up its
    /// oldest publications, and new streams replace the idlest. Default 64MiB.
    pub max_bytes: ByteSize,
}

impl Default for HistorySettings {
    fn default() -> Self {
        Self { max_channels: 10_000, max_bytes: ByteSize(64 * 1024 * 1024) }
    }
}

/// The realtime-pubsub endpoint.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RealtimeSettings {
    /// The channel that messages to the backend (`type: message`) and presence go to.
    /// Default `secure/inbound`.
    pub inbound_topic: String,
    /// Most topics one connection may be subscribed to. Default 128.
    pub max_topics_per_connection: usize,
}

impl Default for RealtimeSettings {
    fn default() -> Self {
        Self { inbound_topic: "secure/inbound".into(), max_topics_per_connection: 128 }
    }
}

/// The token secret (HS256): `TERN_AUTH_SECRET` wins over `secret_file`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthSettings {
    /// File holding the secret, relative to the project directory. Default: none (only
    /// `TERN_AUTH_SECRET`; without either, tokens are refused and none can be minted).
    pub secret_file: Option<PathBuf>,
    /// The `kid` tokens signed with the secret carry, and that picks it when a token names
    /// one. Default: none.
    pub kid: Option<String>,
    /// More keys tokens may be signed with, each picked by the `kid` in a token's header:
    /// an old secret during a rotation, an identity provider's public key. Default: none.
    pub keys: Vec<VerifyKeySettings>,
}

/// A key that checks tokens (it mints none).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifyKeySettings {
    /// The `kid` a token names to be checked with this key.
    pub kid: String,
    /// `HS256` (the file holds a secret), `RS256` or `ES256` (it holds a PEM public key).
    pub algorithm: String,
    /// The file, relative to the project directory.
    pub file: PathBuf,
}

/// The admin listener, apart from the public port.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminSettings {
    /// Address of the admin listener (`127.0.0.1:9090`); `--admin-listen` overrides it.
    /// Default: none, no admin listener.
    pub listen: Option<SocketAddr>,
    /// File holding the admin key (reload, deploy, rollback), relative to the project
    /// directory; `TERN_ADMIN_KEY` wins over it. Without a key those endpoints answer 403.
    pub key_file: Option<PathBuf>,
    /// Where deployed versions are stored, relative to the project directory. Default
    /// `.tern/deployments`.
    pub deployments_dir: PathBuf,
    /// How many deployed versions are kept for `tern rollback`. Default 10.
    pub keep_deployments: usize,
    /// Largest deploy upload (the packed project). Default 256 MiB.
    pub max_deploy_size: ByteSize,
}

impl Default for AdminSettings {
    fn default() -> Self {
        Self {
            listen: None,
            key_file: None,
            deployments_dir: PathBuf::from(".tern/deployments"),
            keep_deployments: 10,
            max_deploy_size: ByteSize(256 * 1024 * 1024),
        }
    }
}

/// Limits on WebSocket clients of the bridge.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebSocketSettings {
    /// Largest message (and frame) a client may send; larger closes it with 1009. Default 1 MiB.
    pub max_message: ByteSize,
    /// How often the host pings each client; a client silent for two intervals is closed.
    /// Default 30s.
    pub ping_interval: HumanDuration,
    /// How long a write to a client may take before it is dropped. Default 10s.
    pub write_timeout: HumanDuration,
    /// Most messages one client may send per second (a burst of as many is allowed); past
    /// it the client is closed with 1008. Default 10000.
    pub max_messages_per_second: u32,
    /// Most bytes of messages one client may send per second (a burst of as many, or of
    /// one `max_message`, whichever is larger); past it the client is closed with 1008.
    /// Default 4 MiB.
    pub max_bytes_per_second: ByteSize,
    /// Most WebSocket clients connected at once; more get 503 before the upgrade. Default 10000.
    pub max_connections: usize,
    /// Most WebSocket clients connected at once from one IP address; more get 503 before
    /// the upgrade. Default 1000.
    pub max_connections_per_ip: usize,
    /// Web page origins (`https://app.example.com`) allowed to open WebSockets, `*` for
    /// any. Default (empty): a page of the same origin as the request's `Host`, and clients
    /// that send no `Origin` (non-browsers). Others get 403 before the upgrade.
    pub allowed_origins: Vec<OriginPattern>,
}

/// Limits of the pub/sub layer.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PubsubSettings {
    /// Messages waiting for one subscriber before it counts as a slow consumer and is dropped
    /// (a WebSocket client is closed with 1008). Default 1024.
    pub subscriber_queue: usize,
    /// Most messages one function invocation may publish; past it `publish` fails with
    /// `rate-limited`. Default 1000.
    pub max_publishes_per_invocation: u32,
    /// How many function publishes deep a chain of pubsub-triggered functions may go; a
    /// message past it still reaches WebSocket clients but triggers no function. Default 8.
    pub max_hops: usize,
}

/// Limits on HTTP clients.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpSettings {
    /// Largest request body accepted; larger gets 413. Default 10 MiB.
    pub max_body: ByteSize,
    /// Most connections open at once; more wait in the kernel's accept queue. Default 10000,
    /// lowered at start to what the process's open-file limit allows.
    pub max_connections: usize,
    /// Most connections open at once from one IP address; more get 503. Default 256.
    pub max_connections_per_ip: usize,
    /// How long a client may take to send its request headers. Default 10s.
    pub header_read_timeout: HumanDuration,
    /// How long a client may take to send a request's whole body, counted from the end of
    /// its headers; past it the client gets 408 and the connection closes. Default 30s.
    pub body_read_timeout: HumanDuration,
    /// Slowest average rate a body may arrive at, in bytes per second, after a 5 s grace
    /// period; a slower body gets 408 and the connection closes. Default 1 KiB.
    pub min_body_rate: ByteSize,
    /// How long in-flight requests may take to finish after SIGTERM. Default 30s.
    pub shutdown_grace: HumanDuration,
    /// Most invocations running at once across all functions; more wait their turn. Default 1000.
    pub max_concurrent_invocations: usize,
    /// Largest request head (request line and headers); larger gets 431. Default 64 KiB,
    /// at least 8 KiB. Also the most header bytes a function's response may carry.
    pub max_header_size: ByteSize,
    /// Most headers in a request; more gets 431. Default 100. Also the most headers a
    /// function's response may carry.
    pub max_headers: usize,
    /// Largest response body a function may return; larger becomes a 500. Default 10 MiB.
    pub max_response_body: ByteSize,
    /// Host names (`tern.example.com`, `*.example.com`, with `:port` to pin the port) the
    /// host answers to; others get 421. Default (empty): any well-formed `Host`.
    pub allowed_hosts: Vec<HostPattern>,
    /// Put the cause of a failed invocation (trap, limits, function name) in the 500/504
    /// body instead of only in the log. For development; default false.
    pub expose_errors: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            public_url: None,
            http: HttpSettings::default(),
            websocket: WebSocketSettings::default(),
            pubsub: PubsubSettings::default(),
            admin: AdminSettings::default(),
            realtime: RealtimeSettings::default(),
            centrifuge: CentrifugeSettings::default(),
            history: HistorySettings::default(),
            hooks: ProjectHooks::default(),
            api: ApiSettings::default(),
            auth: AuthSettings::default(),
            cluster: None,
        }
    }
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            max_body: ByteSize(10 * 1024 * 1024),
            max_connections: 10_000,
            max_connections_per_ip: 256,
            header_read_timeout: HumanDuration(Duration::from_secs(10)),
            body_read_timeout: HumanDuration(Duration::from_secs(30)),
            min_body_rate: ByteSize(1024),
            shutdown_grace: HumanDuration(Duration::from_secs(30)),
            max_concurrent_invocations: 1000,
            max_header_size: ByteSize(64 * 1024),
            max_headers: 100,
            max_response_body: ByteSize(10 * 1024 * 1024),
            allowed_hosts: Vec::new(),
            expose_errors: false,
        }
    }
}

impl Default for WebSocketSettings {
    fn default() -> Self {
        Self {
            max_message: ByteSize(1024 * 1024),
            ping_interval: HumanDuration(Duration::from_secs(30)),
            write_timeout: HumanDuration(Duration::from_secs(10)),
            max_messages_per_second: 10_000,
            max_bytes_per_second: ByteSize(4 * 1024 * 1024),
            max_connections: 10_000,
            max_connections_per_ip: 1000,
            allowed_origins: Vec::new(),
        }
    }
}

impl Default for PubsubSettings {
    fn default() -> Self {
        Self { subscriber_queue: 1024, max_publishes_per_invocation: 1000, max_hops: 8 }
    }
}

/// Reads `tern.yaml`; `text` is its contents. Every value out of its range is reported.
pub fn parse(file: &Path, text: &str) -> Result<Settings, Vec<Diagnostic>> {
    if text.trim().is_empty() {
        return Ok(Settings::default());
    }
    let settings: Settings = yaml::parse(file, text).map_err(|d| vec![d])?;
    let problems = bounds::check_settings(&settings, file, text);
    if problems.is_empty() { Ok(settings) } else { Err(problems) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_means_defaults() {
        let s = parse(Path::new("tern.yaml"), "").unwrap();
        assert_eq!(s.http.max_body, ByteSize(10 * 1024 * 1024));
        assert_eq!(s.listen.port(), 8080);
    }

    #[test]
    fn limits_are_read() {
        let s = parse(Path::new("tern.yaml"), "http:\n  max_body: 1KiB\n").unwrap();
        assert_eq!(s.http.max_body, ByteSize(1024));
        assert_eq!(s.http.max_connections, 10_000);
    }

    #[test]
    fn zero_connections_is_rejected_with_its_field() {
        let e = parse(Path::new("tern.yaml"), "http:\n  max_connections: 0\n").unwrap_err();
        assert_eq!(e[0].field.as_deref(), Some("http.max_connections"));
        assert_eq!(e[0].location.map(|l| l.line), Some(2));
    }

    #[test]
    fn every_value_out_of_range_is_reported() {
        let e = parse(
            Path::new("tern.yaml"),
            "pubsub:\n  max_hops: 0\n  subscriber_queue: 100000000\nhttp:\n  max_headers: 0\n",
        )
        .unwrap_err();
        let fields: Vec<_> = e.iter().filter_map(|d| d.field.as_deref()).collect();
        assert_eq!(fields, ["http.max_headers", "pubsub.subscriber_queue", "pubsub.max_hops"]);
    }
}
