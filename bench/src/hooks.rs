//! `tern-bench hooks`: what functions in the real-time path cost. Starts tern on a project
//! of its own (the test fixtures `hook_publish` and `session_rpc`) and measures, in the
//! same run, sequential round trips (p50, p99):
//! - a raw-bridge message from one client to another on a channel without a hook, and on
//!   one whose config names a wasm publish hook (every message runs the hook);
//! - a client-protocol command answered by tern itself (`ping`), and an RPC answered by a
//!   wasm handler (`echo`).
//!
//! All traffic is on 127.0.0.1; every loop is bounded by `--rounds`.

use std::{
    path::PathBuf,
    process::Command,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::{connect_async, tungstenite::Message};

use crate::suite::process::{Server, free_addr};

/// What to run.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Round trips measured per path (after a tenth as many to warm up).
    #[arg(long, default_value_t = 5000)]
    rounds: usize,
    /// The repository root (the fixtures are in its target/wasm32-wasip2/release).
    #[arg(long, default_value = ".")]
    repo: PathBuf,
    /// Where the project, tern's log and hooks.md go.
    #[arg(long, default_value = "target/bench")]
    out: PathBuf,
}

/// p50 and p99 of one path, in microseconds.
struct Latency {
    p50: f64,
    p99: f64,
}

fn latency(mut samples: Vec<Duration>) -> Latency {
    samples.sort();
    let at = |q: f64| {
        let i = ((samples.len() as f64 - 1.0) * q).round() as usize;
        samples[i].as_secs_f64() * 1e6
    };
    Latency { p50: at(0.50), p99: at(0.99) }
}

/// Runs the benchmark and prints (and writes) its table.
pub async fn main(args: Args) -> anyhow::Result<()> {
    anyhow::ensure!(args.rounds >= 10, "--rounds must be at least 10");
    let wasm = args.repo.join("target/wasm32-wasip2/release");
    let tern = args.repo.join("target/release/tern");
    for needed in [wasm.join("hook_publish.wasm"), wasm.join("session_rpc.wasm"), tern.clone()] {
        anyhow::ensure!(needed.is_file(), "{} is missing: run scripts/setup.sh", needed.display());
    }
    let dir = args.out.join("hooks-project");
    let _ = std::fs::remove_dir_all(&dir);
    let files = [
        ("tern.yaml", "centrifuge: { allow_anonymous: true }\n".to_string()),
        ("messaging/plain.yaml", "channel: { match: plain }\nbridges: { websocket: { enable: true } }\n".into()),
        (
            "messaging/hooked.yaml",
            "channel: { match: hooked }\nbridges: { websocket: { enable: true } }\nhooks: { publish: hook }\n".into(),
        ),
        (
            "functions/hook.yaml",
            format!("trigger: {{ type: publish-hook }}\nsource: {}\n", wasm.join("hook_publish.wasm").canonicalize()?.display()),
        ),
        (
            "functions/rpc.yaml",
            format!("trigger: {{ type: rpc, method: \"*\" }}\nsource: {}\n", wasm.join("session_rpc.wasm").canonicalize()?.display()),
        ),
    ];
    for (rel, text) in &files {
        let path = dir.join(rel);
        std::fs::create_dir_all(path.parent().context("a file has a parent")?)?;
        std::fs::write(&path, text)?;
    }
    let addr = free_addr()?;
    let mut command = Command::new(&tern);
    command.args(["serve"]).arg(&dir).args(["--listen", &addr.to_string()]).env("TERN_LOG", "warn");
    let mut server = Server::spawn("tern", command, addr, &args.out.join("hooks-tern.log"))?;
    server.wait_listening(Duration::from_secs(60))?;
    let warmup = args.rounds / 10;
    let raw_plain = raw_round_trips(addr, "plain/bench", warmup, args.rounds).await?;
    let raw_hooked = raw_round_trips(addr, "hooked/bench", warmup, args.rounds).await?;
    let ping = command_round_trips(addr, false, warmup, args.rounds).await?;
    let rpc = command_round_trips(addr, true, warmup, args.rounds).await?;
    drop(server);
    let row = |what: &str, l: &Latency, base: Option<&Latency>| {
        let added = base.map_or_else(
            || "(baseline)".to_string(),
            |b| {
                format!(
                    "+{:.0} µs p50, +{:.0} µs p99 ({:.2}x p50)",
                    l.p50 - b.p50,
                    l.p99 - b.p99,
                    l.p50 / b.p50
                )
            },
        );
        format!("| {what} | {:.0} | {:.0} | {added} |\n", l.p50, l.p99)
    };
    let mut md = format!(
        "### Functions in the real-time path ({} sequential round trips each, loopback)\n\n\
         | path | p50 µs | p99 µs | against the same without wasm |\n|---|---:|---:|---|\n",
        args.rounds
    );
    md += &row("raw bridge message, no hook", &raw_plain, None);
    md += &row("raw bridge message through a wasm publish hook", &raw_hooked, Some(&raw_plain));
    md += &row("client-protocol `ping` (answered by tern)", &ping, None);
    md += &row("client-protocol RPC (answered by a wasm handler)", &rpc, Some(&ping));
    std::fs::write(args.out.join("hooks.md"), &md)?;
    println!("{md}");
    Ok(())
}

/// Sequential messages from one raw-bridge client to another on `channel`.
async fn raw_round_trips(
    addr: std::net::SocketAddr,
    channel: &str,
    warmup: usize,
    rounds: usize,
) -> anyhow::Result<Latency> {
    let url = format!("ws://{addr}/ws/channel/{channel}");
    let (mut sender, _) = connect_async(&url).await.context("connect the sender")?;
    let (mut receiver, _) = connect_async(&url).await.context("connect the receiver")?;
    let mut samples = Vec::with_capacity(rounds);
    for i in 0..warmup + rounds {
        let text = format!("message {i}");
        let started = Instant::now();
        sender.send(Message::text(text.clone())).await?;
        loop {
            match tokio::time::timeout(Duration::from_secs(5), receiver.next()).await {
                Ok(Some(Ok(Message::Text(got)))) if got.as_str() == text => break,
                Ok(Some(Ok(_))) => {}
                other => bail!("{channel}: message {i} did not arrive: {other:?}"),
            }
        }
        if i >= warmup {
            samples.push(started.elapsed());
        }
    }
    Ok(latency(samples))
}

/// Sequential client-protocol commands on one JSON connection: pings, or RPCs.
async fn command_round_trips(
    addr: std::net::SocketAddr,
    rpc: bool,
    warmup: usize,
    rounds: usize,
) -> anyhow::Result<Latency> {
    let (mut ws, _) = connect_async(format!("ws://{addr}/connection/websocket")).await?;
    ws.send(Message::text(r#"{"id":1,"connect":{}}"#)).await?;
    reply(&mut ws, 1).await.context("connect")?;
    let mut samples = Vec::with_capacity(rounds);
    for i in 0..warmup + rounds {
        let id = i as u32 + 2;
        let command = if rpc {
            format!(r#"{{"id":{id},"rpc":{{"method":"echo","data":{{"n":{i}}}}}}}"#)
        } else {
            format!(r#"{{"id":{id},"ping":{{}}}}"#)
        };
        let started = Instant::now();
        ws.send(Message::text(command)).await?;
        reply(&mut ws, id).await?;
        if i >= warmup {
            samples.push(started.elapsed());
        }
    }
    Ok(latency(samples))
}

/// Reads frames until the reply to `id` (server pings and pushes are skipped).
async fn reply<S>(ws: &mut S, id: u32) -> anyhow::Result<()>
where
    S: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    let want = format!("\"id\":{id},");
    loop {
        match tokio::time::timeout(Duration::from_secs(5), ws.next()).await {
            Ok(Some(Ok(Message::Text(text)))) => {
                if text.contains("\"error\"") && text.contains(&want) {
                    bail!("command {id} failed: {text}");
                }
                if text.contains(&want) {
                    return Ok(());
                }
            }
            Ok(Some(Ok(_))) => {}
            other => bail!("no reply to command {id}: {other:?}"),
        }
    }
}
