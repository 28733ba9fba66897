//! WebSocket fan-out: deliveries per second and publish-to-delivery latency.
//!
//! S subscribers on one channel, one publisher. Each payload starts with the time it was
//! sent (nanoseconds since the run started, in this process), so every subscriber measures
//! its own latency. Speaks tern's raw bridge (one frame = one message), the Centrifugo
//! client protocol (JSON) on tern's `/connection/websocket`, or the NATS client protocol
//! over nats-server's WebSocket listener, so all three are driven by the same code.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use futures_util::{SinkExt, StreamExt, stream::SplitStream};
use serde::Serialize;
use tokio::{sync::Barrier, task::JoinHandle};
use tokio_tungstenite::tungstenite::Message;

use crate::{centrifuge, nats};

/// The WebSocket stream type of a client.
pub type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Which server speaks at the URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// tern's bridge: connecting to `/ws/channel/<name>` subscribes; a frame is a message.
    Tern,
    /// tern's `/connection/websocket`: the Centrifugo client protocol v2 in JSON, an
    /// anonymous connect, then subscribe or publish commands; publications are pushes.
    Centrifuge,
    /// nats-server's WebSocket listener: CONNECT, SUB and PUB of the NATS client protocol.
    Nats,
}

/// What to run.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// The URL subscribers connect to.
    #[arg(long)]
    pub sub_url: String,
    /// The URL the publisher connects to (default: the subscribers' URL).
    #[arg(long)]
    pub pub_url: Option<String>,
    /// The protocol the server speaks.
    #[arg(long, value_enum, default_value_t = Protocol::Tern)]
    pub protocol: Protocol,
    /// The NATS subject (`--protocol nats`) or the channel (`--protocol centrifuge`).
    #[arg(long, default_value = "bench")]
    pub subject: String,
    /// How many subscribers.
    #[arg(long, default_value_t = 100)]
    pub subscribers: usize,
    /// How many messages the publisher sends.
    #[arg(long, default_value_t = 1000)]
    pub messages: usize,
    /// Payload size in bytes (at least 8).
    #[arg(long, default_value_t = 64)]
    pub size: usize,
    /// Messages per second; 0 sends as fast as the socket takes them.
    #[arg(long, default_value_t = 0)]
    pub rate: u64,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 120)]
    pub timeout: u64,
    /// More URLs subscribers connect to: subscriber i takes the i-th of `sub_url` and
    /// these, round robin (the nodes of a cluster).
    #[arg(long = "also-sub-url")]
    pub more_sub_urls: Vec<String>,
    /// Milliseconds to wait between the last subscriber connecting and the first publish
    /// (a cluster node subscribes on the bus a moment after its first subscriber).
    #[arg(long, default_value_t = 0)]
    pub settle_ms: u64,
}

/// The figures of one run.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// Subscribers.
    pub subscribers: usize,
    /// Messages published.
    pub messages: usize,
    /// Payload bytes.
    pub size: usize,
    /// Target publish rate (0: full speed).
    pub rate: u64,
    /// Messages received, summed over subscribers.
    pub deliveries: usize,
    /// From the first publish to the last delivery.
    pub seconds: f64,
    /// `deliveries / seconds`.
    pub deliveries_per_sec: f64,
    /// Median publish-to-delivery latency.
    pub p50_ms: f64,
    /// 99th percentile latency.
    pub p99_ms: f64,
    /// Worst latency.
    pub max_ms: f64,
}

/// Runs the benchmark from the command line and prints its figures as JSON.
pub async fn main(args: Args) -> anyhow::Result<()> {
    let outcome = run(&args).await?;
    println!("{}", serde_json::to_string(&outcome)?);
    Ok(())
}

/// Runs one fan-out: connects every subscriber, publishes, waits for every delivery.
pub async fn run(args: &Args) -> anyhow::Result<Outcome> {
    if args.size < 8 {
        bail!("--size must be at least 8 (the timestamp)");
    }
    let start = Instant::now();
    let ready = Arc::new(Barrier::new(args.subscribers + 1));
    let mut subscribers = Vec::with_capacity(args.subscribers);
    let urls: Vec<&String> = std::iter::once(&args.sub_url).chain(&args.more_sub_urls).collect();
    for i in 0..args.subscribers {
        let url = urls[i % urls.len()];
        let ws = connect(args, url, true)
            .await
            .with_context(|| format!("subscriber {i} cannot subscribe at {url}"))?;
        let (ready, expected, protocol) = (ready.clone(), args.messages, args.protocol);
        subscribers
            .push(tokio::spawn(async move { receive(ws, protocol, expected, start, ready).await }));
    }
    let pub_url = args.pub_url.as_deref().unwrap_or(&args.sub_url);
    let publisher = connect(args, pub_url, false)
        .await
        .with_context(|| format!("the publisher cannot connect to {pub_url}"))?;
    // The publisher's socket is read all along: a Centrifugo client gets an ack and its own
    // publication for each publish, and a server blocked writing them would stop reading.
    let (mut publisher, incoming) = publisher.split();
    let mut drain = tokio::spawn(drain(incoming, args.protocol));
    tokio::time::sleep(Duration::from_millis(args.settle_ms)).await;
    ready.wait().await;
    let sent_at = Instant::now();
    let interval = (args.rate > 0).then(|| Duration::from_secs_f64(1.0 / args.rate as f64));
    let command = centrifuge::Publish::new(&args.subject)?;
    let mut payload = vec![b'x'; args.size];
    for i in 0..args.messages {
        if let Some(interval) = interval {
            tokio::time::sleep_until((sent_at + interval * i as u32).into()).await;
        }
        stamp(args.protocol, start.elapsed().as_nanos() as u64, &mut payload);
        let frame = match args.protocol {
            Protocol::Tern => Message::binary(payload.clone()),
            Protocol::Nats => Message::binary(nats::publish(&args.subject, &payload)),
            Protocol::Centrifuge => {
                Message::text(command.command(centrifuge::FIRST_PUBLISH_ID + i as u64, &payload)?)
            }
        };
        publisher.feed(frame).await?;
        if interval.is_some() || i % 64 == 63 {
            publisher.flush().await?;
        }
    }
    publisher.flush().await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(args.timeout);
    let waited = tokio::select! {
        got = collect(&mut subscribers, args.subscribers * args.messages, deadline) => got,
        ended = &mut drain => Err(match ended {
            Ok(e) => e.context("the publisher's connection failed"),
            Err(e) => e.into(),
        }),
    };
    let elapsed = sent_at.elapsed();
    drain.abort();
    subscribers.iter().for_each(JoinHandle::abort);
    let _ = publisher.close().await;
    Ok(outcome(args, elapsed, waited?))
}

/// Every subscriber's latencies, all by `deadline`.
async fn collect(
    subscribers: &mut [JoinHandle<anyhow::Result<Vec<u64>>>],
    capacity: usize,
    deadline: tokio::time::Instant,
) -> anyhow::Result<Vec<u64>> {
    let mut latencies = Vec::with_capacity(capacity);
    for s in subscribers {
        let got = tokio::time::timeout_at(deadline, s)
            .await
            .context("subscribers did not receive every message in time")???;
        latencies.extend(got);
    }
    Ok(latencies)
}

/// Reads what the server sends the publisher until the connection fails, which is what it
/// returns: Centrifugo replies are checked (an error reply is a failure); nats-server's
/// and the raw bridge's frames are dropped. The bench's tern sets a ping interval longer
/// than any case, so the publisher is never pinged.
async fn drain(mut incoming: SplitStream<Socket>, protocol: Protocol) -> anyhow::Error {
    while let Some(frame) = incoming.next().await {
        match frame {
            Err(e) => return e.into(),
            Ok(Message::Close(frame)) => return anyhow::anyhow!("closed by the server: {frame:?}"),
            Ok(Message::Text(text)) if protocol == Protocol::Centrifuge => {
                if let Err(e) = centrifuge::feed(&text, &mut |_| Ok(())) {
                    return e;
                }
            }
            Ok(_) => {}
        }
    }
    anyhow::anyhow!("the connection ended")
}

/// Writes the send time `nanos` at the start of `payload`: 8 little-endian bytes, or for
/// the Centrifugo protocol 8 characters of ASCII (the payload goes as a JSON string).
fn stamp(protocol: Protocol, nanos: u64, payload: &mut [u8]) {
    match protocol {
        Protocol::Tern | Protocol::Nats => payload[..8].copy_from_slice(&nanos.to_le_bytes()),
        Protocol::Centrifuge => {
            let mut text = [0; 8];
            centrifuge::encode_time(nanos, &mut text);
            payload[..8].copy_from_slice(&text);
        }
    }
}

/// The send time [`stamp`] wrote at the start of `payload`.
fn read_stamp(protocol: Protocol, payload: &[u8]) -> anyhow::Result<u64> {
    match protocol {
        Protocol::Tern | Protocol::Nats => Ok(u64::from_le_bytes(
            payload.get(..8).and_then(|b| b.try_into().ok()).context("short payload")?,
        )),
        Protocol::Centrifuge => centrifuge::decode_time(payload),
    }
}

/// Opens a client; for NATS, also says CONNECT (and SUB for a subscriber) and waits for
/// the server's PONG; for the Centrifugo protocol, connects (and subscribes) and waits for
/// each reply; so the subscription is in place before the first publish.
pub async fn connect(args: &Args, url: &str, subscribe: bool) -> anyhow::Result<Socket> {
    let (mut ws, _) = tokio_tungstenite::connect_async_with_config(url, None, true).await?;
    let sub = subscribe.then_some(args.subject.as_str());
    match args.protocol {
        Protocol::Tern => {}
        Protocol::Nats => {
            ws.send(Message::binary(nats::handshake(sub))).await?;
            nats::Reader::default().wait_for_pong(&mut ws).await?;
        }
        Protocol::Centrifuge => centrifuge::handshake(&mut ws, sub).await?,
    }
    Ok(ws)
}

async fn receive(
    mut ws: Socket,
    protocol: Protocol,
    expected: usize,
    start: Instant,
    ready: Arc<Barrier>,
) -> anyhow::Result<Vec<u64>> {
    ready.wait().await;
    let mut latencies = Vec::with_capacity(expected);
    let mut reader = nats::Reader::default();
    let mut record = |payload: &[u8]| -> anyhow::Result<()> {
        let now = start.elapsed().as_nanos() as u64;
        let sent = read_stamp(protocol, payload)?;
        latencies.push(now.saturating_sub(sent));
        Ok(())
    };
    let mut received = 0;
    while received < expected {
        let frame = ws.next().await.context("connection closed early")??;
        let data: &[u8] = match &frame {
            Message::Binary(data) => data,
            Message::Text(text) => text.as_bytes(),
            Message::Close(frame) => bail!("closed by the server: {frame:?}"),
            _ => continue,
        };
        match protocol {
            Protocol::Tern => {
                record(data)?;
                received += 1;
            }
            Protocol::Centrifuge => {
                let Message::Text(text) = &frame else {
                    bail!("a binary frame on a JSON connection");
                };
                let seen = centrifuge::feed(text, &mut record)?;
                received += seen.publications;
                for _ in 0..seen.pings {
                    ws.send(Message::text(centrifuge::PONG)).await?;
                }
            }
            Protocol::Nats => {
                let seen = reader.feed(data, &mut record)?;
                received += seen.messages;
                for _ in 0..seen.pings {
                    ws.send(Message::binary(&b"PONG\r\n"[..])).await?;
                }
            }
        }
    }
    let _ = ws.close(None).await;
    Ok(latencies)
}

fn outcome(args: &Args, elapsed: Duration, mut latencies: Vec<u64>) -> Outcome {
    latencies.sort_unstable();
    let pct = |p: f64| {
        let i = ((latencies.len() as f64 - 1.0) * p).round() as usize;
        latencies.get(i).copied().unwrap_or(0) as f64 / 1e6
    };
    Outcome {
        subscribers: args.subscribers,
        messages: args.messages,
        size: args.size,
        rate: args.rate,
        deliveries: latencies.len(),
        seconds: elapsed.as_secs_f64(),
        deliveries_per_sec: latencies.len() as f64 / elapsed.as_secs_f64(),
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
        max_ms: pct(1.0),
    }
}
