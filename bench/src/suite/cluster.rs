//! Cross-node fan-out: a publisher on tern node A, subscribers spread over nodes A and B
//! joined by a nats-server, against the same load on one tern node and on nats-server
//! alone (its WebSocket listener), in one run; and the latency a cross-node hop adds (one
//! subscriber on B against one on A).

use std::{fmt::Write as _, process::Command, time::Duration};

use serde::Serialize;

use super::{
    Plan, Tools,
    fanout::write_tern_project,
    process::{Server, free_addr},
};
use crate::fanout::{self, Args, Outcome, Protocol};

/// One measurement.
#[derive(Debug, Clone, Serialize)]
pub struct ClusterCase {
    /// What was measured: `fan-out` or `hop`.
    pub kind: &'static str,
    /// Where: `two nodes`, `one node`, `nats-server`, `same node`, `cross node`.
    pub setup: &'static str,
    /// Subscribers.
    pub subscribers: usize,
    /// Messages per second (0: full speed).
    pub rate: u64,
    /// The figures, or why there are none.
    pub result: Result<Outcome, String>,
}

struct Servers {
    // Kept for their Drop (each kills its process).
    _nats: Server,
    _nodes: Vec<Server>,
    a: String,
    b: String,
    single: String,
    nats_ws: String,
}

fn start(plan: &Plan, tools: &Tools, nats: &std::path::Path) -> anyhow::Result<Servers> {
    let client = free_addr()?;
    let ws = free_addr()?;
    let config = plan.out.join("cluster-nats.conf");
    std::fs::write(
        &config,
        format!("listen: {client}\nwebsocket {{\n  listen: \"{ws}\"\n  no_tls: true\n}}\n"),
    )?;
    let mut command = Command::new(nats);
    command.arg("-c").arg(&config);
    let mut nats_server =
        Server::spawn("nats", command, client, &plan.out.join("cluster-nats.log"))?;
    nats_server.wait_listening(Duration::from_secs(30))?;
    let dir = plan.out.join("cluster-project");
    write_tern_project(&dir)?;
    let mut nodes = Vec::new();
    let mut urls = Vec::new();
    for (name, cluster) in [("node-a", true), ("node-b", true), ("single", false)] {
        let addr = free_addr()?;
        let mut c = Command::new(&tools.tern);
        c.arg("serve").arg(&dir).args(["--listen", &addr.to_string(), "--no-cache"]);
        if cluster {
            c.args(["--nats", &format!("nats://{client}")]);
        }
        c.env("TERN_LOG", "warn");
        let mut node = Server::spawn(name, c, addr, &plan.out.join(format!("cluster-{name}.log")))?;
        node.wait_listening(Duration::from_secs(30))?;
        urls.push(format!("ws://{addr}/ws/channel/bench"));
        nodes.push(node);
    }
    Ok(Servers {
        _nats: nats_server,
        _nodes: nodes,
        a: urls[0].clone(),
        b: urls[1].clone(),
        single: urls[2].clone(),
        nats_ws: format!("ws://{ws}"),
    })
}

fn args(
    protocol: Protocol,
    urls: (&str, &[&str], &str),
    (subscribers, rate, messages): (usize, u64, usize),
) -> Args {
    let (sub_url, more, pub_url) = urls;
    Args {
        sub_url: sub_url.to_owned(),
        pub_url: Some(pub_url.to_owned()),
        protocol,
        subject: "bench".into(),
        subscribers,
        messages,
        size: 64,
        rate,
        timeout: 120,
        more_sub_urls: more.iter().map(|u| u.to_string()).collect(),
        settle_ms: 500,
    }
}

/// Runs the cluster cases of `plan` (skipped without nats-server).
pub async fn run(plan: &Plan, tools: &Tools) -> anyhow::Result<Vec<ClusterCase>> {
    let Some(nats) = &tools.nats_server else {
        eprintln!("  nats-server: not installed, cluster cases skipped");
        return Ok(Vec::new());
    };
    let s = start(plan, tools, nats)?;
    let (subscribers, messages_full, rate, messages_rated, hop_messages) =
        if plan.smoke { (10, 20, 50, 10, 10) } else { (1_000, 2_000, 100, 500, 500) };
    let mut cases = Vec::new();
    for (rate, messages) in [(0, messages_full), (rate, messages_rated)] {
        let load = (subscribers, rate, messages);
        let setups: [(&'static str, Args); 3] = [
            ("two nodes", args(Protocol::Tern, (&s.a, &[&s.b], &s.a), load)),
            ("one node", args(Protocol::Tern, (&s.single, &[], &s.single), load)),
            ("nats-server", args(Protocol::Nats, (&s.nats_ws, &[], &s.nats_ws), load)),
        ];
        for (setup, a) in setups {
            cases.push(measure("fan-out", setup, &a).await);
        }
    }
    let hop = (1, 100, hop_messages);
    for (setup, sub) in [("same node", &s.a), ("cross node", &s.b)] {
        cases.push(measure("hop", setup, &args(Protocol::Tern, (sub, &[], &s.a), hop)).await);
    }
    Ok(cases)
}

async fn measure(kind: &'static str, setup: &'static str, args: &Args) -> ClusterCase {
    let result = fanout::run(args).await.map_err(|e| format!("{e:#}"));
    match &result {
        Ok(o) => eprintln!(
            "  {kind:>7} {setup:>11} S={:<5} rate={:<4} {:>10.0} deliveries/s  p50 {:.2} ms  p99 {:.2} ms",
            args.subscribers, args.rate, o.deliveries_per_sec, o.p50_ms, o.p99_ms
        ),
        Err(e) => eprintln!("  {kind} {setup}: {e}"),
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    ClusterCase { kind, setup, subscribers: args.subscribers, rate: args.rate, result }
}

/// The cases as a markdown section, with the ratios against one node and nats-server.
pub fn markdown(cases: &[ClusterCase], md: &mut String) {
    let _ = writeln!(
        md,
        "## Cluster: cross-node fan-out and the cost of a hop\n\n\
         tern nodes A and B share a nats-server (`--nats`); the publisher is on A, the S \
         subscribers alternate between A and B (raw bridge, 64 B). The same load on one tern \
         node without a cluster, and on nats-server alone (WebSocket), in the same run. The \
         hop rows: one subscriber on A or on B, 100 msg/s from A.\n\n\
         | measure | setup | S | msg/s | deliveries/s | p50 ms | p99 ms | vs one node | vs nats-server |\n\
         |---|---|---|---|---|---|---|---|---|"
    );
    let find = |kind: &str, setup: &str, rate: u64| {
        cases
            .iter()
            .find(|c| c.kind == kind && c.setup == setup && c.rate == rate)?
            .result
            .as_ref()
            .ok()
    };
    for c in cases {
        let rate = if c.rate == 0 { "full".to_string() } else { c.rate.to_string() };
        let Ok(o) = &c.result else {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {rate} | failed | | | | |",
                c.kind, c.setup, c.subscribers
            );
            continue;
        };
        let vs = |other: Option<&Outcome>| match other {
            Some(b) if c.kind == "fan-out" && b.deliveries_per_sec > 0.0 => {
                format!("{:.2}x", o.deliveries_per_sec / b.deliveries_per_sec)
            }
            _ => "-".into(),
        };
        let (one, nats) =
            (find("fan-out", "one node", c.rate), find("fan-out", "nats-server", c.rate));
        let _ = writeln!(
            md,
            "| {} | {} | {} | {rate} | {:.0} | {:.2} | {:.2} | {} | {} |",
            c.kind,
            c.setup,
            c.subscribers,
            o.deliveries_per_sec,
            o.p50_ms,
            o.p99_ms,
            vs(one),
            vs(nats)
        );
    }
    if let (Some(same), Some(cross)) =
        (find("hop", "same node", 100), find("hop", "cross node", 100))
    {
        let _ = writeln!(
            md,
            "\nA cross-node hop adds {:+.2} ms at p50 and {:+.2} ms at p99.\n",
            cross.p50_ms - same.p50_ms,
            cross.p99_ms - same.p99_ms
        );
    }
}
