//! Serving HTTP-triggered functions: routing, bodies, limits, fresh instances.

use std::time::Duration;

use crate::harness::{Serve, Tern, TestProject, client, raw_http, repo, room_url};

#[tokio::test]
async fn hello_answers_with_the_name_from_the_query() {
    let tern = Tern::serve(&repo().join("examples/hello"));
    let resp = client().get(tern.url("/hello?name=tern")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/plain; charset=utf-8");
    assert_eq!(resp.text().await.unwrap(), "hello, tern");
    let resp = client().get(tern.url("/hello?name=caf%C3%A9+au+lait")).send().await.unwrap();
    assert_eq!(resp.text().await.unwrap(), "hello, café au lait");
}

#[tokio::test]
async fn hello_without_a_name_is_a_400_with_a_json_error() {
    let tern = Tern::serve(&repo().join("examples/hello"));
    let resp = client().get(tern.url("/hello")).send().await.unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(resp.headers()["content-type"], "application/json");
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body, serde_json::json!({ "error": "name parameter required" }));
}

#[tokio::test]
async fn echo_returns_the_body_and_content_type_unchanged() {
    let tern = Tern::serve(&repo().join("examples/hello"));
    let body: Vec<u8> = (0..=255u8).cycle().take(100_000).collect();
    let resp = client()
        .post(tern.url("/echo"))
        .header("content-type", "application/x-tern-test")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/x-tern-test");
    assert_eq!(resp.bytes().await.unwrap().as_ref(), body.as_slice());
}

#[tokio::test]
async fn unknown_path_is_404_with_a_json_error_and_wrong_method_is_405_with_allow() {
    let tern = Tern::serve(&repo().join("examples/hello"));
    let resp = client().get(tern.url("/nowhere")).send().await.unwrap();
    assert_eq!(resp.status(), 404);
    assert_eq!(resp.headers()["content-type"], "application/json");
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body, serde_json::json!({ "error": "no route for /nowhere" }));
    let resp = client().delete(tern.url("/hello")).send().await.unwrap();
    assert_eq!(resp.status(), 405);
    assert_eq!(resp.headers()["allow"], "GET");
    let resp = client().get(tern.url("/echo")).send().await.unwrap();
    assert_eq!(resp.status(), 405);
    assert_eq!(resp.headers()["allow"], "POST");
}

#[tokio::test]
async fn put_patch_head_and_options_routes_reach_their_functions() {
    // One function per method on the same path; `/method` answers the method it got.
    let project = ["PUT", "patch", "Head", "OPTIONS"].iter().fold(TestProject::new(), |p, m| {
        p.http(&format!("on_{}", m.to_lowercase()), m, "/method", "hostile", "timeout: 5s")
    });
    let tern = Tern::serve(project.path());
    let url = tern.url("/method");
    for method in ["PUT", "PATCH", "OPTIONS"] {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let resp = client().request(method.clone(), &url).send().await.unwrap();
        assert_eq!(resp.status(), 200, "{method}");
        assert_eq!(resp.text().await.unwrap(), method.as_str());
    }
    let resp = client().head(&url).send().await.unwrap();
    assert_eq!(resp.status(), 200, "HEAD");
    assert_eq!(resp.text().await.unwrap(), "", "a HEAD answer has no body");
    // Every method the path has, sorted, for one it does not have.
    for method in [reqwest::Method::GET, reqwest::Method::DELETE] {
        let resp = client().request(method.clone(), &url).send().await.unwrap();
        assert_eq!(resp.status(), 405, "{method}");
        assert_eq!(resp.headers()["allow"], "HEAD, OPTIONS, PATCH, PUT", "{method}");
    }
}

fn small_body_limit_project() -> TestProject {
    TestProject::new().settings("http:\n  max_body: 1KiB\n").http(
        "echo",
        "POST",
        "/echo",
        "echo",
        "timeout: 5s",
    )
}

#[tokio::test]
async fn body_over_the_limit_is_413_and_at_the_limit_is_served() {
    let project = small_body_limit_project();
    let tern = Tern::serve(project.path());
    let resp = client().post(tern.url("/echo")).body(vec![b'a'; 1025]).send().await.unwrap();
    assert_eq!(resp.status(), 413);
    let resp = client().post(tern.url("/echo")).body(vec![b'a'; 1024]).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.bytes().await.unwrap().len(), 1024);
}

#[tokio::test]
async fn chunked_body_over_the_limit_is_413() {
    let project = small_body_limit_project();
    let tern = Tern::serve(project.path());
    let chunk = "a".repeat(600);
    let request = format!(
        "POST /echo HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n\
         258\r\n{chunk}\r\n258\r\n{chunk}\r\n0\r\n\r\n"
    );
    let answer = raw_http(tern.addr, request.as_bytes());
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
}

#[tokio::test]
async fn every_invocation_gets_a_fresh_instance() {
    let project = TestProject::new().http("counter", "GET", "/counter", "hostile", "timeout: 5s");
    let tern = Tern::serve(project.path());
    for _ in 0..3 {
        let resp = client().get(tern.url("/counter")).send().await.unwrap();
        assert_eq!(resp.text().await.unwrap(), "1", "a static survived between invocations");
    }
}

#[tokio::test]
async fn listening_line_is_the_only_stdout_and_names_the_bound_port() {
    let mut tern = Tern::serve(&repo().join("examples/hello"));
    assert_ne!(tern.addr.port(), 0);
    assert!(tern.addr.ip().is_loopback());
    // Serving, failing and shutting down all log: none of it may reach stdout.
    let resp = client().get(tern.url("/hello?name=x")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let resp = client().get(tern.url("/hello")).send().await.unwrap();
    assert_eq!(resp.status(), 400);
    tern.signal("TERM");
    assert_eq!(tern.wait_exit(Duration::from_secs(20)).code(), Some(0), "{}", tern.logs());
    assert_eq!(tern.stdout_after_listening_line(), "", "more than one line on stdout");
}

#[tokio::test]
async fn listen_and_public_url_are_read_from_tern_yaml() {
    // Another loopback address than the default's, so the line proves where it came from.
    let project = TestProject::from_example("chat")
        .settings("listen: 127.0.0.2:0\npublic_url: https://chat.example.com\n");
    let tern = Serve::new(project.path()).listen_from_settings().start();
    assert_eq!(tern.addr.ip().to_string(), "127.0.0.2");
    let url = room_url(&tern, "tau").await;
    assert!(url.starts_with("wss://chat.example.com/ws/channel/chat/rooms/"), "{url}");
    // The command line wins over both.
    let tern = Serve::new(project.path())
        .args(["--public-url", "http://other.example.com"].as_slice())
        .start();
    assert_eq!(tern.addr.ip().to_string(), "127.0.0.1", "--listen 127.0.0.1:0 wins");
    let url = room_url(&tern, "tau").await;
    assert!(url.starts_with("ws://other.example.com/ws/channel/chat/rooms/"), "{url}");
}

#[tokio::test]
async fn tern_log_filters_by_level_and_by_target() {
    let project = TestProject::new().http("trap", "GET", "/trap", "hostile", "timeout: 5s").http(
        "hello",
        "GET",
        "/hello",
        "hello",
        "timeout: 5s",
    );
    // Warnings only: a failed invocation is logged, the start-up's info lines are not.
    let tern = Serve::new(project.path()).env("TERN_LOG", "warn").start();
    let resp = client().get(tern.url("/trap")).send().await.unwrap();
    assert_eq!(resp.status(), 500);
    tern.wait_for_log("invocation failed");
    let logs = tern.logs();
    assert!(!logs.contains("component loaded") && !logs.contains("serving"), "{logs}");
    drop(tern);
    // Info for the command line's module only: `serving` (tern::cli) but not
    // `component loaded` (tern::runtime).
    let tern = Serve::new(project.path()).env("TERN_LOG", "warn,tern::cli=info").start();
    let resp = client().get(tern.url("/hello?name=x")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let logs = tern.wait_for_log("serving");
    assert!(!logs.contains("component loaded"), "{logs}");
}
