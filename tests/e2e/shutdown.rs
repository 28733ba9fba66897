//! SIGTERM and SIGINT: stop accepting, finish what is in flight within the grace period,
//! exit 0. A function that says when it runs marks a request as in flight.

use std::{
    io::ErrorKind,
    net::{SocketAddr, TcpStream},
    time::{Duration, Instant},
};

use crate::harness::{
    Serve, Tern, TestProject, client, repo, ws_close_code, ws_connect, ws_next_text,
};

/// `/slow` (hostile), which says `started` on channel `announce/x` when it runs.
fn announcing_project(settings: &str) -> TestProject {
    TestProject::new()
        .settings(settings)
        .messaging(
            "announce",
            "channel: { match: announce }\nbridges: { websocket: { enable: true } }\n",
        )
        .http("slow", "GET", "/slow", "hostile", "timeout: 120s")
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn during_the_grace_period_new_connections_are_refused_and_the_running_call_completes() {
    let project = announcing_project("");
    let mut tern = Tern::serve(project.path());
    let mut announcements = ws_connect(&format!("ws://{}/ws/channel/announce/x", tern.addr)).await;
    // Tern stops listening as soon as it takes the signal: 4 s is far more than that takes.
    let request = tokio::spawn(client().get(tern.url("/slow?ms=4000&announce=announce/x")).send());
    // The function says when it runs: only then is SIGTERM sent.
    assert_eq!(ws_next_text(&mut announcements).await, "started");
    tern.signal("TERM");
    let addr = tern.addr;
    tokio::task::spawn_blocking(move || wait_until_refused(addr)).await.unwrap();
    assert!(!request.is_finished(), "refusal seen only once the request in flight ended");
    assert!(!tern.has_exited(), "refused only because tern had exited: {}", tern.logs());
    let resp = request.await.unwrap().expect("the in-flight request was answered");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.unwrap(), "slept 4000ms");
    let status = tern.wait_exit(Duration::from_secs(20));
    assert_eq!(status.code(), Some(0), "logs:\n{}", tern.logs());
    assert!(tern.logs().contains("SIGTERM: shutting down"), "{}", tern.logs());
}

#[tokio::test]
async fn past_the_shutdown_grace_the_request_in_flight_is_dropped_and_tern_exits_0() {
    let project = announcing_project("http:\n  shutdown_grace: 300ms\n");
    let mut tern = Tern::serve(project.path());
    let mut announcements = ws_connect(&format!("ws://{}/ws/channel/announce/x", tern.addr)).await;
    let request = tokio::spawn(client().get(tern.url("/slow?ms=60000&announce=announce/x")).send());
    assert_eq!(ws_next_text(&mut announcements).await, "started");
    tern.signal("TERM");
    // The call lasts a minute: only the grace period ending lets tern exit within 20 s.
    let status = tern.wait_exit(Duration::from_secs(20));
    assert_eq!(status.code(), Some(0), "logs:\n{}", tern.logs());
    assert!(tern.logs().contains("shutdown grace period over"), "{}", tern.logs());
    let outcome = request.await.unwrap();
    assert!(outcome.is_err(), "answered past the grace period: {outcome:?}");
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
