//! Limits on clients: header size and time, garbage, response size, WebSocket flood and
//! connection count. Each costs only the client that breaks it.

use std::{
    io::{Read, Write},
    net::TcpStream,
    time::{Duration, Instant},
};

use futures_util::SinkExt;
use tokio_tungstenite::tungstenite::Message;

use crate::harness::{
    Tern, TestProject, client, raw_http, room_url, ws_close_code, ws_connect, ws_next_text,
    ws_refusal,
};

/// A project serving `hello` on `GET /hello`, with `settings` as its tern.yaml.
fn hello_project(settings: &str) -> TestProject {
    TestProject::new().settings(settings).http("hello", "GET", "/hello", "hello", "timeout: 5s")
}

#[tokio::test]
async fn oversized_headers_get_431() {
    let project = hello_project("");
    let tern = Tern::serve(project.path());
    let big = "a".repeat(100 * 1024);
    let request = format!("GET /hello?name=x HTTP/1.1\r\nhost: x\r\nx-big: {big}\r\n\r\n");
    let answer = raw_http(tern.addr, request.as_bytes());
    assert!(answer.starts_with("HTTP/1.1 431"), "{}", &answer[..answer.len().min(200)]);
    let many: String = (0..150).map(|i| format!("x-h{i}: v\r\n")).collect();
    let request = format!("GET /hello?name=x HTTP/1.1\r\nhost: x\r\n{many}\r\n");
    let answer = raw_http(tern.addr, request.as_bytes());
    assert!(answer.starts_with("HTTP/1.1 431"), "more than 100 headers: {answer}");
    let resp = client().get(tern.url("/hello?name=ok")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn garbage_gets_400_and_the_connection_closes() {
    let project = hello_project("");
    let tern = Tern::serve(project.path());
    let answer = raw_http(tern.addr, b"\x16\x03\x01 NOT HTTP AT ALL\r\n\r\nGET / HTTP/1.1\r\n\r\n");
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert_eq!(answer.matches("HTTP/1.1").count(), 1, "answered after the garbage: {answer}");
}

#[tokio::test]
async fn a_client_slow_to_send_its_headers_is_disconnected() {
    let project = hello_project("http:\n  header_read_timeout: 500ms\n");
    let tern = Tern::serve(project.path());
    let mut slow = TcpStream::connect(tern.addr).unwrap();
    slow.write_all(b"GET /hello?name=x HTTP/1.1\r\nhost: x\r\n").unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let started = Instant::now();
    let mut buf = Vec::new();
    let _ = slow.read_to_end(&mut buf);
    assert!(started.elapsed() < Duration::from_secs(5), "the slow client was kept");
    let resp = client().get(tern.url("/hello?name=ok")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn a_response_over_the_limit_becomes_a_500() {
    let project = TestProject::new().settings("http:\n  max_response_body: 1MiB\n").http(
        "big",
        "GET",
        "/big",
        "hostile",
        "timeout: 5s, memory: 64MiB",
    );
    let tern = Tern::serve(project.path());
    let resp = client().get(tern.url("/big?mb=2")).send().await.unwrap();
    assert_eq!(resp.status(), 500);
    let body = resp.text().await.unwrap();
    assert!(body.contains("returned a body of 2097152 bytes, over the limit of 1048576"), "{body}");
    let resp = client().get(tern.url("/big?mb=1")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.bytes().await.unwrap().len(), 1 << 20);
}

#[tokio::test]
async fn a_websocket_flood_over_the_rate_limit_closes_with_1008() {
    let project =
        TestProject::from_example("chat").settings("websocket:\n  max_messages_per_second: 10\n");
    let tern = Tern::serve(project.path());
    let url = room_url(&tern, "flood").await;
    let mut flooder = ws_connect(&url).await;
    let mut a = ws_connect(&url).await;
    let mut b = ws_connect(&url).await;
    for i in 0..50 {
        if flooder.feed(Message::text(format!("{i}"))).await.is_err() {
            break;
        }
    }
    let _ = flooder.flush().await;
    // The burst of 10 went through before the limit closed the flooder.
    for i in 0..10 {
        assert_eq!(ws_next_text(&mut a).await, format!("{i}"));
    }
    assert_eq!(ws_close_code(&mut flooder).await, 1008);
    b.send(Message::text("calm")).await.unwrap();
    assert_eq!(ws_next_text(&mut a).await, "calm");
}

#[tokio::test]
async fn websocket_clients_past_the_maximum_get_503() {
    let project = TestProject::from_example("chat").settings("websocket:\n  max_connections: 2\n");
    let tern = Tern::serve(project.path());
    let url = room_url(&tern, "full").await;
    let mut a = ws_connect(&url).await;
    let mut b = ws_connect(&url).await;
    assert_eq!(ws_refusal(&url).await, 503);
    a.send(Message::text("room for two")).await.unwrap();
    assert_eq!(ws_next_text(&mut b).await, "room for two");
    drop(a);
    // The slot frees once the session ends.
    let deadline = Instant::now() + Duration::from_secs(10);
    while tokio_tungstenite::connect_async(&url).await.is_err() {
        assert!(Instant::now() < deadline, "the freed slot was never reused");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_past_the_maximum_wait_their_turn() {
    let project = hello_project("http:\n  max_connections: 2\n");
    let tern = Tern::serve(project.path());
    let idle1 = TcpStream::connect(tern.addr).unwrap();
    let idle2 = TcpStream::connect(tern.addr).unwrap();
    let url = tern.url("/hello?name=third");
    let third = tokio::spawn(async move { client().get(url).send().await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!third.is_finished(), "a third connection was served past the limit of 2");
    drop(idle1);
    let resp =
        tokio::time::timeout(Duration::from_secs(10), third).await.unwrap().unwrap().unwrap();
    assert_eq!(resp.text().await.unwrap(), "hello, third");
    drop(idle2);
}
