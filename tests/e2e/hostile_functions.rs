//! Functions that loop, hoard memory or trap cost only their own request.

use std::time::{Duration, Instant};

use crate::harness::{Tern, TestProject, client};

fn hostile_project() -> TestProject {
    let limits = "timeout: 500ms, memory: 16MiB";
    ["loop", "oom", "trap", "panic", "stack", "counter", "bad-status", "bad-header"]
        .iter()
        .fold(TestProject::new(), |p, path| {
            p.http(&path.replace('-', "_"), "GET", &format!("/{path}"), "hostile", limits)
        })
        .http("hello", "GET", "/hello", "hello", "timeout: 5s")
}

#[tokio::test]
async fn infinite_loop_gets_504_after_its_timeout() {
    let project = hostile_project();
    let tern = Tern::serve(project.path());
    let started = Instant::now();
    let resp = client().get(tern.url("/loop")).send().await.unwrap();
    let took = started.elapsed();
    assert_eq!(resp.status(), 504);
    let body = resp.text().await.unwrap();
    assert!(body.contains("function `loop` timed out after 500ms"), "{body}");
    assert!(took >= Duration::from_millis(500), "answered before the timeout: {took:?}");
    tern.wait_for_log("function=loop error=timed out after 500ms");
}

#[tokio::test]
async fn memory_past_the_cap_gets_500_naming_the_limit() {
    let project = hostile_project();
    let tern = Tern::serve(project.path());
    let resp = client().get(tern.url("/oom")).send().await.unwrap();
    assert_eq!(resp.status(), 500);
    let body = resp.text().await.unwrap();
    assert!(body.contains("function `oom` exceeded its memory limit of 16 MiB"), "{body}");
}

#[tokio::test]
async fn traps_and_panics_get_500_and_the_panic_message_is_logged() {
    let project = hostile_project();
    let tern = Tern::serve(project.path());
    for path in ["/trap", "/panic"] {
        let resp = client().get(tern.url(path)).send().await.unwrap();
        assert_eq!(resp.status(), 500, "{path}");
        let body = resp.text().await.unwrap();
        assert!(body.contains("wasm `unreachable` instruction executed"), "{body}");
    }
    tern.wait_for_log("this function panics on purpose");
}

#[tokio::test]
async fn unbounded_recursion_gets_500() {
    let project = hostile_project();
    let tern = Tern::serve(project.path());
    let resp = client().get(tern.url("/stack")).send().await.unwrap();
    assert_eq!(resp.status(), 500);
    let body = resp.text().await.unwrap();
    // The guest's shadow stack lives in its linear memory: overflowing it runs off the
    // bottom of that memory.
    assert!(body.contains("function `stack` failed: wasm trap"), "{body}");
    tern.wait_for_log("function=stack error=failed");
}

#[tokio::test]
async fn invalid_responses_get_500_saying_what_was_wrong() {
    let project = hostile_project();
    let tern = Tern::serve(project.path());
    let resp = client().get(tern.url("/bad-status")).send().await.unwrap();
    assert_eq!(resp.status(), 500);
    assert!(resp.text().await.unwrap().contains("returned invalid status 1234"));
    let resp = client().get(tern.url("/bad-header")).send().await.unwrap();
    assert_eq!(resp.status(), 500);
    assert!(resp.text().await.unwrap().contains("invalid header name \\\"bad header\\\""));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn good_requests_are_served_while_hostile_ones_run() {
    let project = hostile_project();
    let tern = Tern::serve(project.path());
    let client = client();
    let hostile: Vec<_> = ["/loop", "/loop", "/oom", "/trap", "/panic", "/stack"]
        .into_iter()
        .map(|p| tokio::spawn(client.get(tern.url(p)).send()))
        .collect();
    for i in 0..50 {
        let resp = client.get(tern.url(&format!("/hello?name=n{i}"))).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.text().await.unwrap(), format!("hello, n{i}"));
    }
    let statuses: Vec<u16> = futures_statuses(hostile).await;
    assert_eq!(statuses, [504, 504, 500, 500, 500, 500]);
    // And once they are over, the host still answers.
    let resp = client.get(tern.url("/counter")).send().await.unwrap();
    assert_eq!(resp.text().await.unwrap(), "1");
}

async fn futures_statuses(
    handles: Vec<tokio::task::JoinHandle<reqwest::Result<reqwest::Response>>>,
) -> Vec<u16> {
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap().unwrap().status().as_u16());
    }
    out
}

#[tokio::test]
async fn a_function_publishing_in_a_tight_loop_is_capped_per_invocation() {
    let project = TestProject::new()
        .messaging("flood", "channel: { match: flood }\n")
        .settings("pubsub:\n  max_publishes_per_invocation: 500\n")
        .http("publisher", "GET", "/publish-loop", "hostile", "timeout: 5s");
    let tern = Tern::serve(project.path());
    let resp = client().get(tern.url("/publish-loop")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.text().await.unwrap(),
        "published 500, then: too many messages published in this invocation"
    );
}
