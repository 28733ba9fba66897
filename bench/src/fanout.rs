//! WebSocket fan-out: deliveries per second and publish-to-delivery latency.
//!
//! Each payload starts with the time it was sent (nanoseconds since the run started, in
//! this process), so every subscriber measures its own latency. Prints one JSON object.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::Barrier;
use tokio_tungstenite::tungstenite::Message;

/// What to run.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The URL subscribers connect to.
    #[arg(long)]
    sub_url: String,
    /// The URL the publisher connects to (default: the subscribers' URL).
    #[arg(long)]
    pub_url: Option<String>,
    /// How many subscribers.
    #[arg(long, default_value_t = 100)]
    subscribers: usize,
    /// How many messages the publisher sends.
    #[arg(long, default_value_t = 1000)]
    messages: usize,
    /// Payload size in bytes (at least 8).
    #[arg(long, default_value_t = 64)]
    size: usize,
    /// Messages per second; 0 sends as fast as the socket takes them.
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 120)]
    timeout: u64,
}

/// Runs the benchmark and prints its figures as JSON.
pub async fn run(args: Args) -> anyhow::Result<()> {
    if args.size < 8 {
        bail!("--size must be at least 8 (the timestamp)");
    }
    let start = Instant::now();
    let ready = Arc::new(Barrier::new(args.subscribers + 1));
    let mut subscribers = Vec::with_capacity(args.subscribers);
    for i in 0..args.subscribers {
        let (ws, _) = tokio_tungstenite::connect_async(&args.sub_url)
            .await
            .with_context(|| format!("subscriber {i} cannot connect to {}", args.sub_url))?;
        let ready = ready.clone();
        let expected = args.messages;
        subscribers.push(tokio::spawn(async move { receive(ws, expected, start, ready).await }));
    }
    let pub_url = args.pub_url.as_deref().unwrap_or(&args.sub_url);
    let (mut publisher, _) = tokio_tungstenite::connect_async(pub_url)
        .await
        .with_context(|| format!("publisher cannot connect to {pub_url}"))?;
    ready.wait().await;
    let sent_at = Instant::now();
    let interval = (args.rate > 0).then(|| Duration::from_secs_f64(1.0 / args.rate as f64));
    let mut padding = vec![b'x'; args.size];
    for i in 0..args.messages {
        if let Some(interval) = interval {
            tokio::time::sleep_until((sent_at + interval * i as u32).into()).await;
        }
        let now = start.elapsed().as_nanos() as u64;
        padding[..8].copy_from_slice(&now.to_le_bytes());
        publisher.feed(Message::binary(padding.clone())).await?;
        if interval.is_some() || i % 64 == 63 {
            publisher.flush().await?;
        }
    }
    publisher.flush().await?;
    let mut latencies = Vec::with_capacity(args.subscribers * args.messages);
    let deadline = Duration::from_secs(args.timeout);
    for s in subscribers {
        let got = tokio::time::timeout(deadline, s).await.context("subscribers timed out")???;
        latencies.extend(got);
    }
    let elapsed = sent_at.elapsed();
    let _ = publisher.close(None).await;
    report(&args, elapsed, latencies);
    Ok(())
}

async fn receive(
    mut ws: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    expected: usize,
    start: Instant,
    ready: Arc<Barrier>,
) -> anyhow::Result<Vec<u64>> {
    ready.wait().await;
    let mut latencies = Vec::with_capacity(expected);
    while latencies.len() < expected {
        let frame = ws.next().await.context("connection closed early")??;
        let data = match frame {
            Message::Binary(data) => data,
            Message::Close(frame) => bail!("closed by the server: {frame:?}"),
            _ => continue,
        };
        let now = start.elapsed().as_nanos() as u64;
        let sent = u64::from_le_bytes(data[..8].try_into().context("short payload")?);
        latencies.push(now.saturating_sub(sent));
    }
    let _ = ws.close(None).await;
    Ok(latencies)
}

fn report(args: &Args, elapsed: Duration, mut latencies: Vec<u64>) {
    latencies.sort_unstable();
    let pct = |p: f64| {
        let i = ((latencies.len() as f64 - 1.0) * p).round() as usize;
        latencies.get(i).copied().unwrap_or(0) as f64 / 1e6
    };
    let deliveries = latencies.len();
    let out = serde_json::json!({
        "subscribers": args.subscribers,
        "messages": args.messages,
        "size": args.size,
        "rate": args.rate,
        "deliveries": deliveries,
        "seconds": elapsed.as_secs_f64(),
        "deliveries_per_sec": deliveries as f64 / elapsed.as_secs_f64(),
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
        "max_ms": pct(1.0),
    });
    println!("{out}");
}
