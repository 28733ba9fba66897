//! The storm: thousands of hostile requests and hundreds of hostile WebSocket clients mixed
//! with good traffic. Every good request succeeds, every good client gets every message,
//! memory comes back, and the host never panics. Loopback only, bounded in count and time.

use std::{sync::Arc, time::Duration};

use futures_util::{SinkExt, StreamExt, stream};
use tokio_tungstenite::tungstenite::Message;

use crate::{
    harness::{Tern, TestProject, client, raw_http, room_url, ws_connect, ws_next_text},
    raw_frames::{PING, RawClient, TEXT},
};

fn storm_project() -> TestProject {
    // A loop runs into its timeout; the others fail fast however loaded the machine is.
    let limits =
        |path: &str| if path == "loop" { "timeout: 300ms" } else { "timeout: 10s, memory: 16MiB" };
    ["loop", "oom", "trap", "panic"]
        .iter()
        .fold(TestProject::from_example("chat"), |p, path| {
            p.http(path, "GET", &format!("/{path}"), "hostile", limits(path))
        })
        .http("hello", "GET", "/hello", "hello", "timeout: 5s")
        .http("echo", "POST", "/echo", "echo", "timeout: 5s")
        .settings("http:\n  max_body: 64KiB\nwebsocket:\n  max_message: 4KiB\n")
}

/// Sends one hostile HTTP request, chosen by `i`, and checks the answer it must get.
fn hostile_request(addr: std::net::SocketAddr, i: usize) {
    let (request, expected): (Vec<u8>, &str) = match i % 8 {
        0 if i.is_multiple_of(40) => {
            (b"GET /loop HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n".to_vec(), "504")
        }
        0 | 1 => (b"GET /oom HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n".to_vec(), "500"),
        2 => (b"GET /trap HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n".to_vec(), "500"),
        3 => (b"GET /panic HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n".to_vec(), "500"),
        4 => {
            let mut r =
                b"POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: 100000\r\n\r\n".to_vec();
            r.extend(vec![b'x'; 100_000]);
            (r, "413")
        }
        5 => {
            let big = format!("GET /hello HTTP/1.1\r\nx-big: {}\r\n\r\n", "a".repeat(70_000));
            (big.into_bytes(), "431")
        }
        6 => (b"\x00\x01garbage\r\n\r\n".to_vec(), "400"),
        _ => (
            b"GET /nowhere/at/all HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n".to_vec(),
            "404",
        ),
    };
    let answer = raw_http(addr, &request);
    let status = answer.lines().next().unwrap_or_default();
    assert!(
        status.starts_with(&format!("HTTP/1.1 {expected} ")),
        "hostile request {i}: expected {expected}, got {answer}"
    );
    if expected == "400" {
        assert!(answer.closed, "hostile request {i}: the connection stayed open: {answer}");
    }
}

/// One hostile WebSocket client, chosen by `i`; checks the close code it must get.
fn hostile_client(tern: &Tern, path: &str, i: usize) {
    let mut c = RawClient::connect(tern, path);
    let expected = match i % 4 {
        0 => {
            c.send(true, TEXT, b"\xff\xfe not utf-8");
            1007
        }
        1 => {
            c.send(true, TEXT, &[b'a'; 5000]);
            1009
        }
        2 => {
            c.send(true, PING, &[0u8; 200]);
            1002
        }
        _ => {
            c.send(false, PING, b"fragmented");
            1002
        }
    };
    assert_eq!(c.close_code(), expected, "hostile client {i}");
}

async fn hostile_wave(tern: &Arc<Tern>, requests: usize, clients: usize, path: &str) {
    let addr = tern.addr;
    let http = stream::iter(0..requests)
        .map(|i| tokio::task::spawn_blocking(move || hostile_request(addr, i)))
        .buffer_unordered(32)
        .for_each(|r| async move { r.unwrap() });
    let ws = stream::iter(0..clients)
        .map(|i| {
            let (tern, path) = (tern.clone(), path.to_string());
            tokio::task::spawn_blocking(move || hostile_client(&tern, &path, i))
        })
        .buffer_unordered(16)
        .for_each(|r| async move { r.unwrap() });
    tokio::join!(http, ws);
}

/// Hostile traffic (`requests` HTTP, `clients` WebSocket) mixed with `good` good requests
/// and `good` messages between two good clients, all of which must succeed.
async fn storm(tern: &Arc<Tern>, url: &str, requests: usize, clients: usize, good: usize) {
    let path = url.split_once(&tern.addr.to_string()).unwrap().1.to_string();
    let mut speaker = ws_connect(url).await;
    let mut listener = ws_connect(url).await;
    let good_ws = async {
        for i in 0..good {
            speaker.send(Message::text(format!("good {i}"))).await.unwrap();
            assert_eq!(ws_next_text(&mut listener).await, format!("good {i}"));
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    let good_http = async {
        let client = client();
        for i in 0..good {
            let resp = client.get(tern.url(&format!("/hello?name=g{i}"))).send().await.unwrap();
            assert_eq!(resp.status(), 200);
            assert_eq!(resp.text().await.unwrap(), format!("hello, g{i}"));
        }
    };
    tokio::join!(hostile_wave(tern, requests, clients, &path), good_ws, good_http);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn good_traffic_survives_a_storm_and_memory_comes_back() {
    let project = storm_project();
    let tern = Arc::new(Tern::serve(project.path()));
    let url = room_url(&tern, "storm").await;

    // Warm up with a storm of the same size, so that the pooled instance slots the storm's
    // concurrency needs are already in use (each keeps its first 2 MiB resident): what is
    // measured is what a storm leaves behind.
    storm(&tern, &url, 2000, 200, 300).await;
    let before = tern.rss_kib();
    storm(&tern, &url, 2000, 200, 300).await;
    let after = tern.rss_kib();
    eprintln!("RSS before the storm {before} KiB, after {after} KiB");
    assert!(
        after as f64 <= before as f64 * 1.2,
        "RSS grew from {before} KiB to {after} KiB during the storm"
    );
    let logs = tern.logs();
    let host_panics: Vec<_> =
        // A panic of the host starts a line of its own (Rust's panic hook); a guest's
        // panic message is a field of a log line, its line breaks escaped.
        logs.lines().filter(|l| l.starts_with("thread '") && l.contains("panicked at")).collect();
    assert!(host_panics.is_empty(), "the host panicked:\n{}", host_panics.join("\n"));
    let mut tern = Arc::into_inner(tern).expect("no other owner left");
    tern.signal("TERM");
    assert_eq!(tern.wait_exit(Duration::from_secs(30)).code(), Some(0));
}
