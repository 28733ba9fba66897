//! HTTP clients that hold connections with slow or absent bodies, take every slot from one
//! address, forge `Host`, or exploit a function's framing headers; and the signals.

use std::{
    io::Write,
    net::TcpStream,
    time::{Duration, Instant},
};

use super::{Answer, connect_from, exchange, read_answer};
use crate::harness::{Tern, TestProject, client, ws_connect, ws_next_text};

fn project(settings: &str) -> TestProject {
    TestProject::new().settings(settings).http("echo", "POST", "/echo", "echo", "timeout: 5s").http(
        "hello",
        "GET",
        "/hello",
        "hello",
        "timeout: 5s",
    )
}

/// Sends `head` and the first bytes of a body on `stream`, announcing a longer body than it
/// sends; false when the server had already closed the connection.
fn start_slow_body(stream: &mut TcpStream, head: &str) -> bool {
    stream.write_all(head.as_bytes()).is_ok() && stream.write_all(b"abc").is_ok()
}

#[tokio::test]
async fn a_body_that_never_arrives_gets_408_and_the_connection_closes() {
    let project = project("http:\n  body_read_timeout: 1s\n");
    let tern = Tern::serve(project.path());
    for head in [
        "POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: 1000\r\n\r\n",
        // A GET announcing a body holds a connection just as well.
        "GET /hello?name=x HTTP/1.1\r\nhost: x\r\ncontent-length: 1000\r\n\r\n",
    ] {
        let mut stream = TcpStream::connect(tern.addr).unwrap();
        assert!(start_slow_body(&mut stream, head));
        let answer = read_answer(&mut stream, Duration::from_secs(15));
        assert!(answer.text.starts_with("HTTP/1.1 408"), "{head}: {answer:?}");
        assert!(answer.text.contains("request body not received within 1s"), "{answer:?}");
        assert!(answer.closed, "the connection stayed open after the 408: {answer:?}");
    }
    // A route with no function does not read the body: its answer comes at once and the
    // connection closes rather than waiting for the body.
    let mut stream = TcpStream::connect(tern.addr).unwrap();
    // (The host may answer and close before the first bytes of the body are even sent.)
    start_slow_body(
        &mut stream,
        "GET /nowhere HTTP/1.1\r\nhost: x\r\ncontent-length: 1000\r\n\r\n",
    );
    let answer = read_answer(&mut stream, Duration::from_secs(15));
    assert!(answer.text.starts_with("HTTP/1.1 404") && answer.closed, "{answer:?}");
}

#[tokio::test]
async fn a_body_trickling_below_the_minimum_rate_gets_408() {
    let project = project("http:\n  body_read_timeout: 10m\n  min_body_rate: 64KiB\n");
    let tern = Tern::serve(project.path());
    let mut stream = TcpStream::connect(tern.addr).unwrap();
    let sent = start_slow_body(
        &mut stream,
        "POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: 1000000\r\n\r\n",
    );
    assert!(sent);
    let started = Instant::now();
    let trickle = std::thread::spawn({
        let mut stream = stream.try_clone().unwrap();
        move || {
            // 10 bytes every 100 ms: far below 64 KiB/s, for at most 60 s.
            for _ in 0..600 {
                if stream.write_all(&[b'x'; 10]).is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    });
    let answer = read_answer(&mut stream, Duration::from_secs(30));
    assert!(answer.text.starts_with("HTTP/1.1 408"), "{answer:?}");
    assert!(answer.text.contains("arriving slower than 64 KiB per second"), "{answer:?}");
    assert!(started.elapsed() < Duration::from_secs(60), "cut by the whole-body timeout instead");
    trickle.join().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_cannot_take_every_connection() {
    let settings =
        "http:\n  max_connections: 20\n  max_connections_per_ip: 5\n  body_read_timeout: 5m\n";
    let project = project(settings);
    let tern = Tern::serve(project.path());
    // 20 slow-body clients from 127.0.0.2: the audit's lock-out with max_connections 20.
    let mut attackers = Vec::new();
    for _ in 0..20 {
        let mut stream = connect_from(2, tern.addr).await;
        start_slow_body(
            &mut stream,
            "POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: 1000\r\n\r\n",
        );
        attackers.push(stream);
    }
    // The 15 past the per-address cap are told so; the 5 others are still held.
    let answers: Vec<Answer> =
        attackers.iter_mut().map(|s| read_answer(s, Duration::from_millis(500))).collect();
    let refused = answers.iter().filter(|a| a.text.starts_with("HTTP/1.1 503")).count();
    let held = answers.iter().filter(|a| a.text.is_empty() && !a.closed).count();
    assert_eq!((refused, held), (15, 5), "{answers:?}");
    assert!(answers.iter().any(|a| a.text.contains("http.max_connections_per_ip = 5")));
    // Someone else is served at once.
    let mut good = connect_from(3, tern.addr).await;
    good.write_all(b"GET /hello?name=other HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .unwrap();
    let answer = read_answer(&mut good, Duration::from_secs(10));
    assert!(
        answer.text.starts_with("HTTP/1.1 200") && answer.text.ends_with("hello, other"),
        "{answer:?}"
    );
}

#[tokio::test]
async fn connection_limits_are_fitted_under_the_open_file_limit() {
    let settings = "http:\n  max_connections: 1000000\nwebsocket:\n  max_connections: 1000000\n";
    let project = project(settings);
    let tern = Tern::serve(project.path());
    let logs = tern.wait_for_log("open-file limit raised to the hard limit");
    assert!(logs.contains("do not fit under the open-file limit: lowered"), "{logs}");
    let resp = client().get(tern.url("/hello?name=fd")).send().await.unwrap();
    assert_eq!(resp.text().await.unwrap(), "hello, fd");
}

#[tokio::test]
async fn shutdown_does_not_wait_for_a_client_stuck_in_its_body() {
    let project = project("http:\n  shutdown_grace: 60s\n  body_read_timeout: 5m\n");
    let mut tern = Tern::serve(project.path());
    let mut stuck = TcpStream::connect(tern.addr).unwrap();
    assert!(start_slow_body(
        &mut stuck,
        "POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: 1000\r\n\r\n"
    ));
    let mut half_head = TcpStream::connect(tern.addr).unwrap();
    half_head.write_all(b"GET /hello HTTP/1.1\r\nhost: x\r\n").unwrap();
    // Both connections are in: the next request is served, so both were accepted before it.
    let resp = client().get(tern.url("/hello?name=before")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let started = Instant::now();
    tern.signal("TERM");
    let status = tern.wait_exit(Duration::from_secs(20));
    assert_eq!(status.code(), Some(0), "logs:\n{}", tern.logs());
    assert!(started.elapsed() < Duration::from_secs(20), "waited for the stuck clients");
    let answer = read_answer(&mut stuck, Duration::from_secs(5));
    assert!(answer.text.starts_with("HTTP/1.1 503") && answer.closed, "{answer:?}");
}

#[tokio::test]
async fn a_second_signal_during_shutdown_exits_at_once() {
    let project = TestProject::new()
        .settings("http:\n  shutdown_grace: 60s\n")
        .messaging(
            "started",
            "channel: { match: started }\nbridges: { websocket: { enable: true } }\n",
        )
        .http("block", "GET", "/block", "attacker", "timeout: 60s");
    let mut tern = Tern::serve(project.path());
    let mut started = ws_connect(&format!("ws://{}/ws/channel/started", tern.addr)).await;
    let slow = tokio::spawn(client().get(tern.url("/block?ms=30000")).send());
    assert_eq!(ws_next_text(&mut started).await, "started", "the request is in flight");
    tern.signal("TERM");
    tern.wait_for_log("SIGTERM: shutting down");
    assert!(!tern.has_exited(), "the first signal waits for the request in flight");
    tern.signal("TERM");
    let status = tern.wait_exit(Duration::from_secs(10));
    assert_eq!(status.code(), Some(1));
    let answer = slow.await.unwrap();
    assert!(answer.is_err(), "the request in flight was cut: {answer:?}");
}

#[tokio::test]
async fn forged_hosts_are_refused_before_anything_runs() {
    let chat = TestProject::from_example("chat")
        .settings("http:\n  allowed_hosts: [127.0.0.1, tern.example.com]\n");
    let tern = Tern::serve(chat.path());
    let port = tern.addr.port();
    let ask = |host_lines: &str| {
        let request =
            format!("GET /api/ws?room=r HTTP/1.1\r\n{host_lines}connection: close\r\n\r\n");
        exchange(tern.addr, request.as_bytes()).text
    };
    assert!(ask("host: evil.example\r\n").starts_with("HTTP/1.1 421"));
    assert!(ask(&format!("host: 127.0.0.1:{port}@evil.example\r\n")).starts_with("HTTP/1.1 400"));
    assert!(ask("host: 127.0.0.1\r\nhost: evil.example\r\n").starts_with("HTTP/1.1 400"));
    assert!(ask("").starts_with("HTTP/1.1 400"), "HTTP/1.1 without Host");
    let ok = ask(&format!("host: 127.0.0.1:{port}\r\n"));
    assert!(ok.contains(&format!("\r\n\r\nws://127.0.0.1:{port}/ws/channel/chat/rooms/")), "{ok}");
    let ok = ask("host: tern.example.com\r\n");
    assert!(ok.contains("\r\n\r\nws://tern.example.com/ws/channel/chat/rooms/"), "{ok}");
    // The same refusals guard the WebSocket bridge.
    let handshake = "GET /ws/channel/chat/rooms/x HTTP/1.1\r\nhost: evil.example\r\nupgrade: websocket\r\n\
                     connection: Upgrade\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
                     sec-websocket-version: 13\r\n\r\n";
    assert!(exchange(tern.addr, handshake.as_bytes()).text.starts_with("HTTP/1.1 421"));
}

#[tokio::test]
async fn a_host_with_user_info_cannot_redirect_websocket_urls() {
    let tern = Tern::serve(&crate::harness::repo().join("examples/chat"));
    let request = format!(
        "GET /api/ws?room=r HTTP/1.1\r\nhost: 127.0.0.1:{}@evil.example\r\nconnection: close\r\n\r\n",
        tern.addr.port()
    );
    let answer = exchange(tern.addr, request.as_bytes()).text;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(!answer.contains("evil.example"), "{answer}");
}

/// Reads one HTTP/1.1 response with a content-length from `buf`: (head, body, rest).
fn split_response(buf: &str) -> (&str, &str, &str) {
    let (head, rest) = buf.split_once("\r\n\r\n").expect("a response head");
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))
        .and_then(|v| v.parse().ok())
        .expect("a content-length");
    (head, &rest[..len], &rest[len..])
}

#[tokio::test]
async fn framing_headers_from_a_function_cannot_split_the_stream() {
    let project = TestProject::new()
        .http("frame", "GET", "/frame", "attacker", "timeout: 5s")
        .http("hello", "GET", "/hello", "hello", "timeout: 5s");
    let tern = Tern::serve(project.path());
    let mut stream = TcpStream::connect(tern.addr).unwrap();
    // Two requests pipelined on one kept-alive connection.
    stream
        .write_all(b"GET /frame HTTP/1.1\r\nhost: x\r\n\r\nGET /hello?name=second HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .unwrap();
    let answer = read_answer(&mut stream, Duration::from_secs(10));
    let (head, body, rest) = split_response(&answer.text);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.contains("x-kept: yes"), "ordinary headers pass: {head}");
    for dropped in ["transfer-encoding", "upgrade", "connection: keep-alive", "content-length: 0"] {
        assert!(!head.contains(dropped), "{dropped} reached the client: {head}");
    }
    assert!(body.ends_with("forged"), "the forged response stays inside the first body: {body}");
    let (head, body, _) = split_response(rest);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(body, "hello, second");
}

#[tokio::test]
async fn a_101_status_and_40000_headers_become_500s() {
    let project = TestProject::new()
        .http("status101", "GET", "/status101", "attacker", "timeout: 5s")
        .http("headers", "GET", "/headers", "attacker", "timeout: 5s")
        .http("hello", "GET", "/hello", "hello", "timeout: 5s");
    let tern = Tern::serve(project.path());
    let resp = client().get(tern.url("/status101")).send().await.unwrap();
    assert_eq!(resp.status(), 500);
    let resp = client().get(tern.url("/headers?n=40000")).send().await.unwrap();
    assert_eq!(resp.status(), 500);
    let resp = client().get(tern.url("/headers?n=50")).send().await.unwrap();
    assert_eq!(resp.status(), 200, "a reasonable number of headers is fine");
    let logs = tern.wait_for_log("returned 40001 headers, over the limit of 100");
    assert!(logs.contains("returned invalid status 101"), "{logs}");
    assert!(!logs.contains("panicked"), "{logs}");
    let resp = client().get(tern.url("/hello?name=after")).send().await.unwrap();
    assert_eq!(resp.text().await.unwrap(), "hello, after");
}
