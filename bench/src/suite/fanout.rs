//! WebSocket fan-out and idle-connection memory: tern's raw bridge and tern's Centrifugo
//! protocol endpoint against nats-server's WebSocket listener, all driven by
//! [`crate::fanout`].

use std::{path::Path, process::Command, time::Duration};

use anyhow::Context;
use serde::Serialize;

use super::{
    Plan, Tools,
    process::{Server, free_addr},
};
use crate::fanout::{self, Args, Outcome, Protocol};

/// tern's settings for the run: room for 10,000 subscribers, all from 127.0.0.1, within
/// the 20,000 open files a process gets here (handshakes hold an HTTP connection only until
/// the upgrade), a publisher at full speed, and a per-subscriber queue comparable to
/// nats-server's default 64 MB of pending data per client (at full speed the publisher
/// outruns 2 cores' worth of readers). The Centrifugo endpoint takes anonymous clients and
/// pings less often than a case lasts (subscribers wait for the others to connect without
/// reading; the publisher's pongs are not sent).
pub(super) const TERN_SETTINGS: &str = "\
http:
  max_connections: 2000
  max_connections_per_ip: 2000
websocket:
  max_connections: 17000
  max_connections_per_ip: 17000
  max_messages_per_second: 1000000
  max_bytes_per_second: 1GiB
  ping_interval: 300s
pubsub:
  subscriber_queue: 100000
centrifuge:
  allow_anonymous: true
  ping_interval: 300s
";

const TERN_CHANNEL: &str = "\
description: the benchmark channel
channel:
  match: bench
bridges:
  websocket:
    enable: true
";

/// One fan-out case run against one server.
#[derive(Debug, Clone, Serialize)]
pub struct Case {
    /// `tern` (the raw bridge), `centrifuge` (tern's Centrifugo endpoint) or `nats`.
    pub server: Protocol,
    /// The figures, or why there are none.
    pub result: Result<Outcome, String>,
    /// What was asked for.
    pub subscribers: usize,
    /// Payload bytes.
    pub size: usize,
    /// Messages per second (0: full speed).
    pub rate: u64,
}

/// Memory held per idle subscribed WebSocket connection.
#[derive(Debug, Clone, Serialize)]
pub struct IdleMemory {
    /// `tern` (the raw bridge), `centrifuge` (tern's Centrifugo endpoint) or `nats`.
    pub server: Protocol,
    /// Connections opened.
    pub connections: usize,
    /// Server RSS before, KiB.
    pub rss_before_kib: u64,
    /// Server RSS with every connection open, KiB.
    pub rss_after_kib: u64,
    /// `(after - before) / connections`, KiB.
    pub kib_per_connection: f64,
}

/// A server to fan out through.
struct Target {
    server: Server,
    protocol: Protocol,
    url: String,
}

impl Target {
    /// A fan-out of `messages` of `size` bytes at `rate` to `subscribers` on this server.
    fn args(&self, subscribers: usize, size: usize, rate: u64, messages: usize) -> Args {
        Args {
            sub_url: self.url.clone(),
            pub_url: None,
            protocol: self.protocol,
            subject: "bench".into(),
            subscribers,
            messages,
            size,
            rate,
            timeout: 120,
            more_sub_urls: Vec::new(),
            settle_ms: 0,
        }
    }
}

fn start(protocol: Protocol, plan: &Plan, tools: &Tools) -> anyhow::Result<Option<Target>> {
    let addr = free_addr()?;
    let name = format!("{protocol:?}").to_lowercase();
    let (command, url) = match protocol {
        Protocol::Tern | Protocol::Centrifuge => {
            // One tern per protocol, each with its own copy of the project.
            let dir = plan.out.join(format!("fanout-project-{name}"));
            write_tern_project(&dir)?;
            let mut c = Command::new(&tools.tern);
            c.arg("serve").arg(&dir).args(["--listen", &addr.to_string(), "--no-cache"]);
            c.env("TERN_LOG", "warn");
            let path = if protocol == Protocol::Tern {
                "ws/channel/bench"
            } else {
                "connection/websocket"
            };
            (c, format!("ws://{addr}/{path}"))
        }
        Protocol::Nats => {
            let Some(nats) = &tools.nats_server else { return Ok(None) };
            let client_port = free_addr()?.port();
            let config = plan.out.join("nats.conf");
            std::fs::write(
                &config,
                format!(
                    "listen: 127.0.0.1:{client_port}\nwebsocket {{\n  listen: \"{addr}\"\n  no_tls: true\n}}\n"
                ),
            )?;
            let mut c = Command::new(nats);
            c.arg("-c").arg(&config);
            (c, format!("ws://{addr}"))
        }
    };
    let log = plan.out.join(format!("fanout-{name}.log"));
    let mut server = Server::spawn(&name, command, addr, &log)?;
    server.wait_listening(Duration::from_secs(30))?;
    Ok(Some(Target { server, protocol, url }))
}

pub(super) fn write_tern_project(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir.join("messaging"))?;
    std::fs::write(dir.join("tern.yaml"), TERN_SETTINGS)?;
    std::fs::write(dir.join("messaging/bench.yaml"), TERN_CHANNEL)?;
    Ok(())
}

/// The servers of each comparison, in the order they run.
const PROTOCOLS: [Protocol; 3] = [Protocol::Tern, Protocol::Centrifuge, Protocol::Nats];

/// Runs every fan-out case of `plan` on tern's raw bridge, tern's Centrifugo endpoint and
/// then nats-server (when installed), case by case, so that all see the machine in the
/// same state.
pub async fn run(plan: &Plan, tools: &Tools) -> anyhow::Result<Vec<Case>> {
    let mut targets = Vec::new();
    for protocol in PROTOCOLS {
        match start(protocol, plan, tools)? {
            Some(target) => targets.push(target),
            None => eprintln!("  nats-server: skipped (not installed)"),
        }
    }
    let mut cases = Vec::new();
    for &(subscribers, size, rate, messages) in &plan.fanout_cases {
        for target in &targets {
            let args = target.args(subscribers, size, rate, messages);
            let result = fanout::run(&args).await.map_err(|e| format!("{e:#}"));
            let name = &target.server.name;
            match &result {
                Ok(o) => eprintln!(
                    "  {name:>10} S={subscribers:<5} {size:>4} B rate={rate:<5} {:>10.0} deliveries/s  p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
                    o.deliveries_per_sec, o.p50_ms, o.p99_ms, o.max_ms
                ),
                Err(e) => eprintln!("  {name:>10} S={subscribers} {size} B rate={rate}: {e}"),
            }
            cases.push(Case { server: target.protocol, result, subscribers, size, rate });
            // Let the server finish closing the last run's connections.
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
    Ok(cases)
}

/// Opens `plan.idle_connections` subscribed connections to a fresh server of each kind
/// and reports how much its RSS grew per connection.
pub async fn idle_memory(plan: &Plan, tools: &Tools) -> anyhow::Result<Vec<IdleMemory>> {
    let mut out = Vec::new();
    for protocol in PROTOCOLS {
        let Some(target) = start(protocol, plan, tools)? else { continue };
        let args = target.args(plan.idle_connections, 8, 0, 0);
        // One connection first, so that what every server allocates once is in `before`.
        let first = fanout::connect(&args, &target.url, true).await?;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let before = target.server.rss_kib()?;
        let mut open = Vec::with_capacity(plan.idle_connections);
        for i in 0..plan.idle_connections {
            let ws = fanout::connect(&args, &target.url, true)
                .await
                .with_context(|| format!("idle connection {i} to {}", target.server.name))?;
            open.push(ws);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        let after = target.server.rss_kib()?;
        let per = after.saturating_sub(before) as f64 / plan.idle_connections as f64;
        eprintln!(
            "  {:>10} {} idle connections: RSS {before} -> {after} KiB, {per:.2} KiB each",
            target.server.name, plan.idle_connections
        );
        out.push(IdleMemory {
            server: protocol,
            connections: plan.idle_connections,
            rss_before_kib: before,
            rss_after_kib: after,
            kib_per_connection: per,
        });
        drop(open);
        drop(first);
    }
    Ok(out)
}
