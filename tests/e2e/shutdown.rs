//! SIGTERM and SIGINT: stop accepting, finish what is in flight, exit 0.

use std::time::Duration;

use crate::harness::{Tern, TestProject, client, repo};

#[tokio::test]
async fn request_in_flight_at_sigterm_completes_and_tern_exits_0() {
    let project = TestProject::new().http("slow", "GET", "/slow", "hostile", "timeout: 10s");
    let mut tern = Tern::serve(project.path());
    let request = tokio::spawn(client().get(tern.url("/slow?ms=800")).send());
    tern.wait_for_log("serving");
    tokio::time::sleep(Duration::from_millis(300)).await;
    tern.signal("TERM");
    let resp = request.await.unwrap().expect("the in-flight request was answered");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.unwrap(), "slept 800ms");
    let status = tern.wait_exit(Duration::from_secs(10));
    assert_eq!(status.code(), Some(0), "logs:\n{}", tern.logs());
    assert!(tern.logs().contains("SIGTERM: shutting down"));
}

#[tokio::test]
async fn sigint_stops_an_idle_host_with_exit_0_and_refuses_new_connections() {
    let mut tern = Tern::serve(&repo().join("examples/hello"));
    let resp = client().get(tern.url("/hello?name=x")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    tern.signal("INT");
    let status = tern.wait_exit(Duration::from_secs(10));
    assert_eq!(status.code(), Some(0));
    assert!(std::net::TcpStream::connect(tern.addr).is_err(), "still accepting after exit");
}

#[tokio::test]
async fn websocket_clients_get_1001_at_sigterm_and_tern_exits_0() {
    let mut tern = Tern::serve(&repo().join("examples/chat"));
    let url = crate::harness::room_url(&tern, "bye").await;
    let mut a = crate::harness::ws_connect(&url).await;
    let mut b = crate::harness::ws_connect(&url).await;
    tern.signal("TERM");
    assert_eq!(crate::harness::ws_close_code(&mut a).await, 1001);
    assert_eq!(crate::harness::ws_close_code(&mut b).await, 1001);
    let status = tern.wait_exit(Duration::from_secs(10));
    assert_eq!(status.code(), Some(0), "logs:\n{}", tern.logs());
}
