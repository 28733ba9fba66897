//! Serving HTTP-triggered functions: routing, bodies, limits, fresh instances.

use crate::harness::{Tern, TestProject, client, raw_http, repo};

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
async fn unknown_path_is_404_and_wrong_method_is_405_with_allow() {
    let tern = Tern::serve(&repo().join("examples/hello"));
    let resp = client().get(tern.url("/nowhere")).send().await.unwrap();
    assert_eq!(resp.status(), 404);
    let resp = client().delete(tern.url("/hello")).send().await.unwrap();
    assert_eq!(resp.status(), 405);
    assert_eq!(resp.headers()["allow"], "GET");
    let resp = client().get(tern.url("/echo")).send().await.unwrap();
    assert_eq!(resp.status(), 405);
    assert_eq!(resp.headers()["allow"], "POST");
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
    let tern = Tern::serve(&repo().join("examples/hello"));
    assert_ne!(tern.addr.port(), 0);
    assert!(tern.addr.ip().is_loopback());
}
