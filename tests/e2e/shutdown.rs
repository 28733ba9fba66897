//! SIGTERM and SIGINT: stop accepting, finish what is in flight within the grace period,
//! exit 0.

use std::{
    io::{ErrorKind, Read, Write},
    net::{SocketAddr, TcpStream},
    time::{Duration, Instant},
};

use crate::harness::{
    Serve, Tern, TestProject, client, repo, ws_close_code, ws_connect, ws_next_text,
};

/// A request tern has started to serve and that waits for the test: `POST /echo` with
/// `Expect: 100-continue`, whose `100 Continue` means tern is reading the body, which the
/// test sends when it chooses.
struct HeldRequest {
    stream: TcpStream,
}

impl HeldRequest {
    fn start(addr: SocketAddr) -> Self {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        stream
            .write_all(
                b"POST /echo HTTP/1.1\r\nhost: x\r\ncontent-type: text/plain\r\n\
                  content-length: 4\r\nexpect: 100-continue\r\n\r\n",
            )
            .unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            stream.read_exact(&mut byte).expect("an interim answer to the held request");
            head.push(byte[0]);
        }
        let head = String::from_utf8_lossy(&head);
        assert!(head.starts_with("HTTP/1.1 100"), "{head}");
        Self { stream }
    }

    /// Sends the body and reads until tern closes the connection.
    fn finish(mut self) -> String {
        self.stream.write_all(b"ping").unwrap();
        let mut answer = String::new();
        self.stream.read_to_string(&mut answer).expect("the held request's answer");
        answer
    }

    /// Reads until the connection ends, returning what came (tern gave up on it).
    fn read_until_closed(mut self) -> Vec<u8> {
        let mut answer = Vec::new();
        match self.stream.read_to_end(&mut answer) {
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                panic!("the held connection is still open")
            }
            Ok(_) | Err(_) => answer,
        }
    }
}

fn echo_project(settings: &str) -> TestProject {
    TestProject::new().settings(settings).http("echo", "POST", "/echo", "echo", "timeout: 5s")
}

/// Waits until connecting to `addr` is refused, for at most 20 s. A connection that is
/// made, or that hangs (a backlog nobody accepts from), is not a refusal.
fn wait_until_refused(addr: SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match TcpStream::connect_timeout(&addr, Duration::from_secs(1)) {
            Err(e) if e.kind() == ErrorKind::ConnectionRefused => return,
            _ => {
                assert!(Instant::now() < deadline, "new connections not refused 20 s after SIGTERM")
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn during_the_grace_period_new_connections_are_refused_and_the_request_in_flight_completes() {
    let project = echo_project("");
    let mut tern = Tern::serve(project.path());
    let held = HeldRequest::start(tern.addr);
    tern.signal("TERM");
    wait_until_refused(tern.addr);
    assert!(!tern.has_exited(), "refused only because tern had exited: {}", tern.logs());
    let answer = held.finish();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with("\r\n\r\nping"), "{answer}");
    let status = tern.wait_exit(Duration::from_secs(20));
    assert_eq!(status.code(), Some(0), "logs:\n{}", tern.logs());
    assert!(tern.logs().contains("SIGTERM: shutting down"));
}

#[tokio::test]
async fn a_function_running_at_sigterm_completes_and_tern_exits_0() {
    let project = TestProject::new()
        .messaging(
            "announce",
            "channel: { match: announce }\nbridges: { websocket: { enable: true } }\n",
        )
        .http("slow", "GET", "/slow", "hostile", "timeout: 10s");
    let mut tern = Tern::serve(project.path());
    let mut announcements = ws_connect(&format!("ws://{}/ws/channel/announce/x", tern.addr)).await;
    let request = tokio::spawn(client().get(tern.url("/slow?ms=800&announce=announce/x")).send());
    // The function says when it runs: only then is SIGTERM sent.
    assert_eq!(ws_next_text(&mut announcements).await, "started");
    tern.signal("TERM");
    let resp = request.await.unwrap().expect("the in-flight request was answered");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.unwrap(), "slept 800ms");
    let status = tern.wait_exit(Duration::from_secs(20));
    assert_eq!(status.code(), Some(0), "logs:\n{}", tern.logs());
}

#[test]
fn past_the_shutdown_grace_the_request_in_flight_is_dropped_and_tern_exits_0() {
    let project = echo_project("http:\n  shutdown_grace: 300ms\n");
    let mut tern = Tern::serve(project.path());
    let held = HeldRequest::start(tern.addr);
    tern.signal("TERM");
    // The held request never completes: only the grace period ending lets tern exit.
    let status = tern.wait_exit(Duration::from_secs(20));
    assert_eq!(status.code(), Some(0), "logs:\n{}", tern.logs());
    assert!(tern.logs().contains("shutdown grace period over"), "{}", tern.logs());
    let answer = held.read_until_closed();
    assert!(answer.is_empty(), "{}", String::from_utf8_lossy(&answer));
}

#[tokio::test]
async fn sigint_stops_an_idle_host_with_exit_0() {
    let mut tern = Tern::serve(&repo().join("examples/hello"));
    let resp = client().get(tern.url("/hello?name=x")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    tern.signal("INT");
    let status = tern.wait_exit(Duration::from_secs(20));
    assert_eq!(status.code(), Some(0));
    assert!(tern.logs().contains("SIGINT: shutting down"), "{}", tern.logs());
}

#[tokio::test]
async fn websocket_clients_get_1001_at_sigterm_and_tern_exits_0() {
    let mut tern = Tern::serve(&repo().join("examples/chat"));
    let url = crate::harness::room_url(&tern, "bye").await;
    let mut a = ws_connect(&url).await;
    let mut b = ws_connect(&url).await;
    tern.signal("TERM");
    assert_eq!(ws_close_code(&mut a).await, 1001);
    assert_eq!(ws_close_code(&mut b).await, 1001);
    let status = tern.wait_exit(Duration::from_secs(20));
    assert_eq!(status.code(), Some(0), "logs:\n{}", tern.logs());
}

#[tokio::test]
async fn a_closed_stderr_neither_stops_serving_nor_blocks_shutdown() {
    let project = TestProject::new().http("trap", "GET", "/trap", "hostile", "timeout: 5s").http(
        "hello",
        "GET",
        "/hello",
        "hello",
        "timeout: 5s",
    );
    // Whoever read the logs went away.
    let mut tern = Serve::new(project.path()).stderr_closed().start();
    // A failing invocation logs a warning, into the closed pipe.
    let resp = client().get(tern.url("/trap")).send().await.unwrap();
    assert_eq!(resp.status(), 500);
    let resp = client().get(tern.url("/hello?name=again")).send().await.unwrap();
    assert_eq!(resp.text().await.unwrap(), "hello, again");
    tern.signal("TERM");
    let status = tern.wait_exit(Duration::from_secs(20));
    assert_eq!(status.code(), Some(0), "tern did not exit cleanly with its stderr closed");
}
