//! Limits on clients: header size and time, garbage, response size, WebSocket flood and
//! connection count. Each costs only the client that breaks it.

use std::{
    io::{ErrorKind, Read, Write},
    net::TcpStream,
    time::{Duration, Instant},
};

use futures_util::SinkExt;
use tokio_tungstenite::tungstenite::Message;

use crate::harness::{
    Tern, TestProject, client, guests, raw_http, repo, room_url, tern_cli, ws_close_code,
    ws_connect, ws_next_text, ws_refusal,
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
async fn configured_header_limits_are_enforced() {
    let project = hello_project("http:\n  max_header_size: 16KiB\n  max_headers: 10\n");
    let tern = Tern::serve(project.path());
    let with_header_of = |bytes: usize| {
        let big = "a".repeat(bytes);
        format!(
            "GET /hello?name=x HTTP/1.1\r\nhost: x\r\nx-big: {big}\r\nconnection: close\r\n\r\n"
        )
    };
    // Both under the default 64 KiB: only the configured 16 KiB refuses the larger.
    let answer = raw_http(tern.addr, with_header_of(12 * 1024).as_bytes());
    assert!(answer.starts_with("HTTP/1.1 200"), "12 KiB of headers: {answer}");
    let answer = raw_http(tern.addr, with_header_of(20 * 1024).as_bytes());
    assert!(answer.starts_with("HTTP/1.1 431"), "20 KiB of headers: {answer}");
    // Both under the default 100: only the configured 10 refuses the larger count.
    let with_headers = |count: usize| {
        let extra: String = (2..count).map(|i| format!("x-h{i}: v\r\n")).collect();
        format!("GET /hello?name=x HTTP/1.1\r\nhost: x\r\nconnection: close\r\n{extra}\r\n")
    };
    let answer = raw_http(tern.addr, with_headers(10).as_bytes());
    assert!(answer.starts_with("HTTP/1.1 200"), "10 headers: {answer}");
    let answer = raw_http(tern.addr, with_headers(11).as_bytes());
    assert!(answer.starts_with("HTTP/1.1 431"), "11 headers: {answer}");
}

#[test]
fn max_header_size_is_at_least_8_kib() {
    guests();
    let project = hello_project("http:\n  max_header_size: 8191\n");
    let dir = project.path().to_str().unwrap();
    let (code, _, stderr) = tern_cli(repo(), &["check", dir]);
    assert_eq!(code, 1, "8191 bytes accepted: {stderr}");
    assert!(stderr.contains("tern.yaml:2:"), "{stderr}");
    assert!(stderr.contains("field `http.max_header_size`"), "{stderr}");
    assert!(stderr.contains("at least 8 KiB"), "{stderr}");
    let project = hello_project("http:\n  max_header_size: 8KiB\n");
    let (code, _, stderr) = tern_cli(repo(), &["check", project.path().to_str().unwrap()]);
    assert_eq!(code, 0, "8 KiB refused: {stderr}");
}

#[tokio::test]
async fn garbage_gets_400_and_the_connection_closes() {
    let project = hello_project("");
    let tern = Tern::serve(project.path());
    let answer = raw_http(tern.addr, b"\x16\x03\x01 NOT HTTP AT ALL\r\n\r\nGET / HTTP/1.1\r\n\r\n");
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert_eq!(answer.matches("HTTP/1.1").count(), 1, "answered after the garbage: {answer}");
    assert!(answer.closed, "the connection stayed open after the garbage: {answer}");
}

#[tokio::test]
async fn a_client_slow_to_send_its_headers_is_disconnected() {
    let project = hello_project("http:\n  header_read_timeout: 500ms\n");
    let tern = Tern::serve(project.path());
    let mut slow = TcpStream::connect(tern.addr).unwrap();
    slow.write_all(b"GET /hello?name=x HTTP/1.1\r\nhost: x\r\n").unwrap();
    // Far longer than the timeout: only a connection tern keeps runs into it.
    slow.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut buf = Vec::new();
    match slow.read_to_end(&mut buf) {
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
            panic!("the slow client was kept for 30 s")
        }
        Ok(_) | Err(_) => {} // end of stream or reset: disconnected
    }
    let answer = String::from_utf8_lossy(&buf);
    assert!(!answer.contains("200 OK"), "the incomplete request was served: {answer}");
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
    assert!(body.starts_with(r#"{"error":"function returned an invalid response","#), "{body}");
    let line = tern.wait_for_lines(&["invalid response", "function=big"], 1).remove(0);
    assert!(line.contains("returned a body of 2097152 bytes, over the limit of 1048576"), "{line}");
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

#[test]
fn connections_past_the_maximum_wait_their_turn() {
    // A header timeout longer than the test, so that only the test frees a connection.
    let project = hello_project("http:\n  max_connections: 2\n  header_read_timeout: 120s\n");
    let tern = Tern::serve(project.path());
    let idle = TcpStream::connect(tern.addr).unwrap();
    let mut busy = TcpStream::connect(tern.addr).unwrap();
    // The kernel completes the third connection; tern must not take it yet.
    let mut third = TcpStream::connect(tern.addr).unwrap();
    third
        .write_all(b"GET /hello?name=third HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .unwrap();
    // Requests answered on a connection tern holds, all sent after the third's: time in
    // which a host ignoring the limit would have answered the third.
    for i in 0..20 {
        let request = format!("GET /hello?name=b{i} HTTP/1.1\r\nhost: x\r\n\r\n");
        busy.write_all(request.as_bytes()).unwrap();
        assert_eq!(read_response_body(&mut busy), format!("hello, b{i}"));
    }
    third.set_nonblocking(true).unwrap();
    let peeked = third.peek(&mut [0u8; 1]);
    let waiting = matches!(&peeked, Err(e) if e.kind() == ErrorKind::WouldBlock);
    assert!(waiting, "a third connection was served past the limit of 2: {peeked:?}");
    third.set_nonblocking(false).unwrap();
    drop(idle);
    third.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut answer = String::new();
    third.read_to_string(&mut answer).expect("the third connection is served once one frees");
    assert!(answer.starts_with("HTTP/1.1 200") && answer.ends_with("hello, third"), "{answer}");
}

/// Reads one response with a `content-length` from a kept-alive connection; its body.
fn read_response_body(stream: &mut TcpStream) -> String {
    stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).expect("read a response head");
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no content-length in {head}"));
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).expect("read a response body");
    String::from_utf8_lossy(&body).into_owned()
}
