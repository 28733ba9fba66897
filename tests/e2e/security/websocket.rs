//! WebSocket attacks: cross-site handshakes, one address taking every slot, byte floods,
//! dot segments, and a flood in one room starving a pubsub-triggered function elsewhere.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use futures_util::SinkExt;
use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest, http::HeaderValue};

use super::{connect_from, exchange};
use crate::harness::{Tern, TestProject, Ws, room_url, ws_close_code, ws_connect, ws_next_text};

/// The HTTP status of a handshake to `url` sending `origin` (101 when accepted).
async fn handshake_status(url: &str, origin: Option<&str>) -> u16 {
    let mut request = url.into_client_request().unwrap();
    if let Some(origin) = origin {
        request.headers_mut().insert("origin", HeaderValue::from_str(origin).unwrap());
    }
    match tokio_tungstenite::connect_async(request).await {
        Ok((_ws, resp)) => resp.status().as_u16(),
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => resp.status().as_u16(),
        Err(e) => panic!("{url}: {e}"),
    }
}

#[tokio::test]
async fn cross_site_pages_cannot_open_websockets() {
    let tern = Tern::serve(&crate::harness::repo().join("examples/chat"));
    let url = room_url(&tern, "origins").await;
    let own = format!("http://{}", tern.addr);
    assert_eq!(handshake_status(&url, Some("https://evil.example")).await, 403);
    assert_eq!(handshake_status(&url, Some("null")).await, 403);
    assert_eq!(handshake_status(&url, Some("http://127.0.0.1:1")).await, 403, "another port");
    assert_eq!(handshake_status(&url, Some(&own)).await, 101, "a page of this host");
    assert_eq!(handshake_status(&url, None).await, 101, "a client that is not a browser");

    let allowing = TestProject::from_example("chat").settings(
        "websocket:\n  allowed_origins: [https://app.example.com, 'https://*.example.org']\n",
    );
    let tern = Tern::serve(allowing.path());
    let url = room_url(&tern, "origins").await;
    assert_eq!(handshake_status(&url, Some("https://app.example.com")).await, 101);
    assert_eq!(handshake_status(&url, Some("https://a.example.org")).await, 101);
    assert_eq!(handshake_status(&url, Some(&format!("http://{}", tern.addr))).await, 403);
    assert_eq!(handshake_status(&url, Some("https://evil.example")).await, 403);
}

/// A WebSocket client of `url` connected from `127.0.0.<last>`, or the refusal's status.
async fn connect_ws_from(last: u8, tern: &Tern, url: &str) -> Result<Ws, u16> {
    let stream = tokio::net::TcpStream::from_std(connect_from(last, tern.addr).await).unwrap();
    let stream = tokio_tungstenite::MaybeTlsStream::Plain(stream);
    match tokio_tungstenite::client_async(url, stream).await {
        Ok((ws, _)) => Ok(ws),
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => Err(resp.status().as_u16()),
        Err(e) => panic!("{url}: {e}"),
    }
}

#[tokio::test]
async fn one_address_cannot_take_every_websocket_slot() {
    let project =
        TestProject::from_example("chat").settings("websocket:\n  max_connections_per_ip: 2\n");
    let tern = Tern::serve(project.path());
    let url = room_url(&tern, "per-ip").await;
    let mut a = connect_ws_from(2, &tern, &url).await.expect("first");
    let _b = connect_ws_from(2, &tern, &url).await.expect("second");
    assert_eq!(connect_ws_from(2, &tern, &url).await.err(), Some(503));
    let mut other = connect_ws_from(3, &tern, &url).await.expect("another address");
    a.send(Message::text("still here")).await.unwrap();
    assert_eq!(ws_next_text(&mut other).await, "still here");
    drop(a);
    let mut again = None;
    for _ in 0..200 {
        if let Ok(ws) = connect_ws_from(2, &tern, &url).await {
            again = Some(ws);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(again.is_some(), "the freed slot was never given back");
}

#[tokio::test]
async fn a_client_over_its_byte_rate_is_closed_with_1008() {
    let project = TestProject::from_example("chat")
        .settings("websocket:\n  max_message: 4KiB\n  max_bytes_per_second: 8KiB\n");
    let tern = Tern::serve(project.path());
    let url = room_url(&tern, "bytes").await;
    let mut flooder = ws_connect(&url).await;
    let mut a = ws_connect(&url).await;
    let mut b = ws_connect(&url).await;
    for i in 0..4 {
        let _ = flooder.send(Message::text(format!("{i}{}", "x".repeat(4000)))).await;
    }
    // 8 KiB of burst: the first two messages go through, then the flooder is closed.
    assert!(ws_next_text(&mut a).await.starts_with('0'));
    assert!(ws_next_text(&mut a).await.starts_with('1'));
    assert_eq!(ws_close_code(&mut flooder).await, 1008);
    b.send(Message::text("calm")).await.unwrap();
    assert_eq!(ws_next_text(&mut a).await, "calm");
}

#[tokio::test]
async fn dot_segments_are_not_channel_names() {
    let project =
        TestProject::from_example("chat").http("open", "GET", "/open", "attacker", "timeout: 5s");
    let tern = Tern::serve(project.path());
    for path in
        ["/ws/channel/chat/rooms/..", "/ws/channel/chat/rooms/./x", "/ws/channel/chat/rooms/x/.."]
    {
        let request = format!(
            "GET {path} HTTP/1.1\r\nhost: x\r\nupgrade: websocket\r\nconnection: Upgrade\r\n\
             sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version: 13\r\n\r\n"
        );
        let answer = exchange(tern.addr, request.as_bytes()).text;
        assert!(answer.starts_with("HTTP/1.1 400"), "{path}: {answer}");
        assert!(answer.contains("are not allowed as segments"), "{answer}");
    }
    let resp =
        crate::harness::client().get(tern.url("/open?name=chat/rooms/..")).send().await.unwrap();
    let body = resp.text().await.unwrap();
    assert!(body.starts_with("refused: InvalidName"), "{body}");
}

/// A project whose `fair` channels trigger the slow, answering `attacker_pubsub` function,
/// one message at a time from a queue of 8; `fair/private` belongs to another config.
fn fair_project() -> TestProject {
    let bridged = "bridges: { websocket: { enable: true } }";
    TestProject::new()
        .messaging("fair", &format!("channel: {{ match: fair }}\n{bridged}\n"))
        .messaging("fair_private", &format!("channel: {{ match: fair/private }}\n{bridged}\n"))
        .function(
            "answerer",
            "trigger: { type: pubsub, channel: fair }\n\
             execution: { timeout: 5s, concurrency: 1, queue: 8 }\nsource: {wasm:attacker_pubsub}\n",
        )
}

/// The next text frame on `ws` that starts with `prefix`, skipping others.
async fn next_starting_with(ws: &mut Ws, prefix: &str) -> String {
    loop {
        let text = ws_next_text(ws).await;
        if text.starts_with(prefix) {
            return text;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_in_one_room_cannot_starve_the_function_in_another() {
    let project = fair_project();
    let tern = Tern::serve(project.path());
    let ws = |room: &str| format!("ws://{}/ws/channel/fair/{room}", tern.addr);
    let mut flooder = ws_connect(&ws("flooded")).await;
    let mut asker = ws_connect(&ws("quiet")).await;
    let mut listener = ws_connect(&ws("quiet")).await;
    let stop = Arc::new(AtomicBool::new(false));
    // 1,000 messages a second into one room while the function handles 20 a second: its
    // queue stays full of that room for the whole test (bounded: at most 60 s).
    let flood = tokio::spawn({
        let stop = stop.clone();
        async move {
            for i in 0..60_000 {
                if stop.load(Ordering::Relaxed)
                    || flooder.send(Message::text(format!("flood {i}"))).await.is_err()
                {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
    });
    for i in 0..8 {
        asker.send(Message::text(format!("ask {i}"))).await.unwrap();
        let answer = next_starting_with(&mut listener, "answer to").await;
        assert_eq!(answer, format!("answer to ask {i}"));
    }
    stop.store(true, Ordering::Relaxed);
    flood.await.unwrap();
    assert!(
        tern.logs().contains("function queue full: message dropped"),
        "the flood was not dropped"
    );
}

#[tokio::test]
async fn a_trigger_fires_only_on_channels_its_config_governs() {
    let project = fair_project();
    let tern = Tern::serve(project.path());
    let ws = |name: &str| format!("ws://{}/ws/channel/{name}", tern.addr);
    let mut private_a = ws_connect(&ws("fair/private/r")).await;
    let mut private_b = ws_connect(&ws("fair/private/r")).await;
    let mut public_a = ws_connect(&ws("fair/r")).await;
    let mut public_b = ws_connect(&ws("fair/r")).await;
    // `fair/private/r` matches `fair` too, but `fair_private` is more specific: it is that
    // config's channel, and `fair`'s trigger does not run for it.
    private_a.send(Message::text("ask private")).await.unwrap();
    assert_eq!(ws_next_text(&mut private_b).await, "ask private");
    public_a.send(Message::text("ask public")).await.unwrap();
    assert_eq!(next_starting_with(&mut public_b, "answer to").await, "answer to ask public");
    // Had the private message reached the function, which takes messages in turn, its
    // answer would have come first and be queued before this marker.
    private_a.send(Message::text("marker")).await.unwrap();
    assert_eq!(ws_next_text(&mut private_b).await, "marker");
}
