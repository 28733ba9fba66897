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

#[tokio::test]
async fn a_closed_stderr_neither_stops_serving_nor_blocks_shutdown() {
    use std::{
        io::{BufRead, BufReader},
        process::{Command, Stdio},
    };
    let project = TestProject::new().http("trap", "GET", "/trap", "hostile", "timeout: 5s").http(
        "hello",
        "GET",
        "/hello",
        "hello",
        "timeout: 5s",
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_tern"))
        .arg("serve")
        .arg(project.path())
        .args(["--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stderr.take()); // whoever read the logs went away
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let base = line.trim().strip_prefix("listening on ").unwrap().to_string();
    // A failing invocation logs a warning, into the closed pipe.
    let resp = client().get(format!("{base}/trap")).send().await.unwrap();
    assert_eq!(resp.status(), 500);
    let resp = client().get(format!("{base}/hello?name=again")).send().await.unwrap();
    assert_eq!(resp.text().await.unwrap(), "hello, again");
    Command::new("kill").arg("-TERM").arg(child.id().to_string()).status().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("tern did not exit after SIGTERM with its stderr closed");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(status.code(), Some(0));
}
