//! What failures reveal and what the log can be made to do: short error bodies with a
//! request id, log lines nobody can forge, and a stderr nobody reads.

use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
    time::Duration,
};

use crate::harness::{Tern, TestProject, cache_dir, client, kill_with_parent};

fn trap_project(settings: &str) -> TestProject {
    TestProject::new().settings(settings).http("trap", "GET", "/trap", "hostile", "timeout: 5s")
}

#[tokio::test]
async fn a_failed_invocation_answers_a_short_body_and_logs_the_cause_with_its_request_id() {
    let project = trap_project("");
    let tern = Tern::serve(project.path());
    let resp = client().get(tern.url("/trap")).send().await.unwrap();
    assert_eq!(resp.status(), 500);
    let id = resp.headers()["x-request-id"].to_str().unwrap().to_string();
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body, serde_json::json!({ "error": "function failed", "request_id": id }));
    let logs = tern.wait_for_log(&format!("request_id={id}"));
    let line = logs.lines().find(|l| l.contains(&format!("request_id={id}"))).unwrap();
    for part in
        ["invocation failed", "function=trap", "route=\"GET /trap\"", "status=500", "unreachable"]
    {
        assert!(line.contains(part), "{part} missing from {line}");
    }
    // A client's own sane request id is kept, so its logs and tern's can be matched.
    let resp =
        client().get(tern.url("/trap")).header("x-request-id", "client-42").send().await.unwrap();
    assert_eq!(resp.headers()["x-request-id"], "client-42");
}

#[tokio::test]
async fn expose_errors_puts_the_cause_in_the_body_for_development() {
    let project = trap_project("http:\n  expose_errors: true\n");
    let tern = Tern::serve(project.path());
    let body = client().get(tern.url("/trap")).send().await.unwrap().text().await.unwrap();
    assert!(body.contains("function `trap` failed: wasm trap"), "{body}");
}

#[tokio::test]
async fn a_function_name_with_a_newline_cannot_forge_a_log_line() {
    let project = TestProject::new().http(
        "evil\n2026-01-01T00:00:00Z  INFO forged",
        "GET",
        "/trap",
        "hostile",
        "timeout: 5s",
    );
    let tern = Tern::serve(project.path());
    client().get(tern.url("/trap")).send().await.unwrap();
    let logs = tern.wait_for_log("invocation failed");
    assert!(logs.contains("function=evil\\n2026-01-01T00:00:00Z  INFO forged"), "{logs}");
    assert!(!logs.lines().any(|l| l.starts_with("2026-01-01")), "a forged line:\n{logs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stderr_nobody_reads_does_not_stall_requests() {
    let project = TestProject::new().http("hello", "GET", "/hello", "hello", "timeout: 5s");
    let mut command = Command::new(env!("CARGO_BIN_EXE_tern"));
    kill_with_parent(&mut command);
    // `trace` writes dozens of lines per request: the pipe's 64 KiB fill within a few.
    let mut child = command
        .arg("serve")
        .arg(project.path())
        .args(["--listen", "127.0.0.1:0"])
        .env("TERN_LOG", "trace")
        .env("TERN_CACHE_DIR", cache_dir())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Held open and never read: a log shipper that hung.
    let _stuck = child.stderr.take().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let base = line.trim().strip_prefix("listening on ").unwrap().to_string();
    let client = reqwest::Client::builder().timeout(Duration::from_secs(20)).build().unwrap();
    for i in 0..300 {
        let resp = client.get(format!("{base}/hello?name={i}")).send().await;
        let resp = resp.unwrap_or_else(|e| panic!("request {i} stalled behind the log: {e}"));
        assert_eq!(resp.text().await.unwrap(), format!("hello, {i}"));
    }
    let _ = child.kill();
    let _ = child.wait();
}
