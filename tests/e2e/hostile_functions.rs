//! Functions that loop, hoard memory or trap cost only their own request.

use std::time::{Duration, Instant};

use crate::harness::{Tern, TestProject, client, ws_connect, ws_next_text};

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
    assert!(body.starts_with(r#"{"error":"function timed out","request_id":"#), "{body}");
    assert!(took >= Duration::from_millis(500), "answered before the timeout: {took:?}");
    let line = tern.wait_for_lines(&["invocation failed", "function=loop"], 1).remove(0);
    assert!(line.contains("status=504 error=timed out after 500ms"), "{line}");
}

#[tokio::test]
async fn memory_past_the_cap_gets_500_naming_the_limit() {
    let project = hostile_project();
    let tern = Tern::serve(project.path());
    let resp = client().get(tern.url("/oom")).send().await.unwrap();
    assert_eq!(resp.status(), 500);
    let body = resp.text().await.unwrap();
    assert!(body.starts_with(r#"{"error":"function exceeded its memory limit","#), "{body}");
    let line = tern.wait_for_lines(&["invocation failed", "function=oom"], 1).remove(0);
    assert!(line.contains("error=exceeded its memory limit of 16 MiB"), "{line}");
}

#[tokio::test]
async fn traps_and_panics_get_500_and_the_panic_message_is_logged() {
    let project = hostile_project();
    let tern = Tern::serve(project.path());
    for path in ["/trap", "/panic"] {
        let resp = client().get(tern.url(path)).send().await.unwrap();
        assert_eq!(resp.status(), 500, "{path}");
        let body = resp.text().await.unwrap();
        assert!(body.starts_with(r#"{"error":"function failed","#), "{body}");
        assert!(!body.contains("wasm"), "no trap detail in the body: {body}");
        let route = format!("route=\"GET {path}\"");
        let line = tern.wait_for_lines(&["invocation failed", &route], 1).remove(0);
        assert!(line.contains("wasm `unreachable` instruction executed"), "{line}");
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
    assert!(body.starts_with(r#"{"error":"function failed","#), "{body}");
    // The guest's shadow stack lives in its linear memory: overflowing it runs off the
    // bottom of that memory.
    let line = tern.wait_for_lines(&["invocation failed", "function=stack"], 1).remove(0);
    assert!(line.contains("error=failed: wasm trap"), "{line}");
}

#[tokio::test]
async fn invalid_responses_get_500_saying_what_was_wrong() {
    let project = hostile_project();
    let tern = Tern::serve(project.path());
    let resp = client().get(tern.url("/bad-status")).send().await.unwrap();
    assert_eq!(resp.status(), 500);
    let body = resp.text().await.unwrap();
    assert!(body.starts_with(r#"{"error":"function returned an invalid response","#), "{body}");
    let line = tern.wait_for_lines(&["invalid response", "function=bad_status"], 1).remove(0);
    assert!(line.contains("problem=returned invalid status 1234"), "{line}");
    let resp = client().get(tern.url("/bad-header")).send().await.unwrap();
    assert_eq!(resp.status(), 500);
    let line = tern.wait_for_lines(&["invalid response", "function=bad_header"], 1).remove(0);
    assert!(line.contains(r#"problem=returned invalid header name "bad header""#), "{line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn good_requests_are_served_while_hostile_ones_run() {
    let project = hostile_project()
        .messaging("spin", "channel: { match: spin }\nbridges: { websocket: { enable: true } }\n")
        .http("spin", "GET", "/spin", "hostile", "timeout: 120s");
    let tern = Tern::serve(project.path());
    let client = client();
    // Two functions that burn CPU for as long as `holder` stays connected: as many as
    // tern has worker threads on 2 cores.
    let mut holder = ws_connect(&format!("ws://{}/ws/channel/spin/x", tern.addr)).await;
    // They run as long as the rest of the test, which a loaded machine stretches past the
    // usual client timeout.
    let patient = reqwest::Client::builder().timeout(Duration::from_secs(300)).build().unwrap();
    let spinners: Vec<_> = (0..2)
        .map(|_| tokio::spawn(patient.get(tern.url("/spin?channel=spin/x")).send()))
        .collect();
    for _ in 0..2 {
        assert_eq!(ws_next_text(&mut holder).await, "spinning");
    }
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
    // Everything above was served while both spinners ran.
    assert!(spinners.iter().all(|s| !s.is_finished()), "a spinner stopped early");
    drop(holder);
    for spinner in spinners {
        let resp = spinner.await.unwrap().unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.text().await.unwrap(), "stopped");
    }
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_max_concurrent_invocations_callers_wait_and_none_fails() {
    let project = TestProject::new()
        .settings("http:\n  max_concurrent_invocations: 1\n")
        .messaging("spin", "channel: { match: spin }\nbridges: { websocket: { enable: true } }\n")
        .http("spin", "GET", "/spin", "hostile", "timeout: 120s")
        .http("hello", "GET", "/hello", "hello", "timeout: 120s");
    let tern = Tern::serve(project.path());
    let client = client();
    let mut holder = ws_connect(&format!("ws://{}/ws/channel/spin/x", tern.addr)).await;
    let spinner = tokio::spawn(client.get(tern.url("/spin?channel=spin/x")).send());
    assert_eq!(ws_next_text(&mut holder).await, "spinning");
    // The only instance is taken: these wait for it.
    let waiting: Vec<_> = (0..3)
        .map(|i| tokio::spawn(client.get(tern.url(&format!("/hello?name=w{i}"))).send()))
        .collect();
    // Requests that need no instance are answered meanwhile, and give the waiting ones
    // time in which a host without the limit would have answered them.
    for _ in 0..20 {
        let resp = client.get(tern.url("/nowhere")).send().await.unwrap();
        assert_eq!(resp.status(), 404);
    }
    assert!(waiting.iter().all(|w| !w.is_finished()), "served past the limit of 1");
    drop(holder);
    assert_eq!(spinner.await.unwrap().unwrap().status(), 200);
    for (i, request) in waiting.into_iter().enumerate() {
        let resp = request.await.unwrap().unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.text().await.unwrap(), format!("hello, w{i}"));
    }
}

#[tokio::test]
async fn each_pubsub_error_reaches_the_guest_as_its_sdk_variant() {
    let project = TestProject::new()
        .settings("websocket:\n  max_message: 1KiB\n")
        .messaging("quiet", "channel: { match: quiet }\n")
        .http("errors", "GET", "/pubsub-error", "hostile", "timeout: 5s");
    let tern = Tern::serve(project.path());
    for (case, expected) in [
        (
            "invalid-name",
            "InvalidName(\"invalid channel name `bad//name`: empty segment\"): invalid channel \
             name: invalid channel name `bad//name`: empty segment",
        ),
        (
            "not-configured",
            "NotConfigured(\"unconfigured/x\"): no messaging config matches channel \
             `unconfigured/x`",
        ),
        (
            "websocket-disabled",
            "WebSocketDisabled(\"quiet/x\"): the WebSocket bridge is not enabled for channel \
             `quiet/x`",
        ),
        ("payload-too-large", "PayloadTooLarge(1024): payload larger than 1024 bytes"),
    ] {
        let resp = client().get(tern.url(&format!("/pubsub-error?case={case}"))).send().await;
        let resp = resp.unwrap();
        assert_eq!(resp.status(), 200, "{case}");
        assert_eq!(resp.text().await.unwrap(), expected, "{case}");
    }
}

#[tokio::test]
async fn guest_output_is_logged_up_to_4_kib_per_call() {
    let project = TestProject::new().http("printer", "GET", "/print", "hostile", "timeout: 5s");
    let tern = Tern::serve(project.path());
    let resp = client().get(tern.url("/print?bytes=10000&flush=1")).send().await.unwrap();
    assert_eq!(resp.text().await.unwrap(), "printed 10000 bytes");
    let line = tern.wait_for_lines(&["function output", "function=printer"], 1).remove(0);
    let kept = format!("\"{}", "p".repeat(4096));
    assert!(line.contains(&format!("{kept} [5904 more bytes dropped]\"")), "{line}");
    assert!(!line.contains(&format!("{kept}p")), "more than 4 KiB kept");
}

#[tokio::test]
async fn guest_output_without_a_final_newline_is_logged_too() {
    let project = TestProject::new().http("printer", "GET", "/print", "hostile", "timeout: 5s");
    let tern = Tern::serve(project.path());
    let resp = client().get(tern.url("/print?bytes=10")).send().await.unwrap();
    assert_eq!(resp.text().await.unwrap(), "printed 10 bytes");
    // The instance is gone once the call returns: what it printed must be flushed by then.
    let line = tern.wait_for_lines(&["function output", "function=printer"], 1).remove(0);
    assert!(line.contains("output=\"pppppppppp\""), "{line}");
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
