//! JSON logs: one object a line, one access line per request.

use crate::harness::{Serve, Tern, client};

use super::hello_project;

/// The lines of `logs`, each parsed as a JSON object; panics on any that is not.
fn json_lines(logs: &str) -> Vec<serde_json::Value> {
    logs.lines()
        .map(|line| match serde_json::from_str::<serde_json::Value>(line) {
            Ok(object) if object.is_object() => object,
            other => panic!("not a JSON object ({other:?}): {line:?}\nin:\n{logs}"),
        })
        .collect()
}

/// Waits for the access line of request `id` and returns it, parsed.
fn access_line(tern: &Tern, id: &str) -> serde_json::Value {
    let lines = tern.wait_for_lines(&["tern::access", id], 1);
    let mut found = json_lines(&lines.join("\n"))
        .into_iter()
        .filter(|l| l["target"] == "tern::access" && l["request_id"] == id)
        .collect::<Vec<_>>();
    assert_eq!(found.len(), 1, "one access line for {id}: {found:?}");
    found.remove(0)
}

#[tokio::test]
async fn json_logs_are_one_object_a_line_with_one_access_line_per_request() {
    let project = hello_project();
    let tern = Serve::new(project.path()).args(&["--log-format", "json"]).start();
    let client = client();

    let resp = client
        .get(tern.url("/hello?name=j"))
        .header("x-request-id", "test-123")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-request-id"], "test-123");
    let line = access_line(&tern, "test-123");
    assert_eq!(line["level"], "INFO", "{line:?}");
    assert_eq!(line["method"], "GET", "{line:?}");
    assert_eq!(line["path"], "/hello", "{line:?}");
    assert_eq!(line["function"], "hello", "{line:?}");
    assert_eq!(line["status"], 200, "{line:?}");
    assert!(line["duration_us"].is_u64(), "{line:?}");
    assert!(line["timestamp"].is_string(), "{line:?}");

    // Without the header, an id is made up, answered and logged.
    let resp = client.get(tern.url("/nowhere")).send().await.unwrap();
    assert_eq!(resp.status(), 404);
    let id = resp.headers()["x-request-id"].to_str().unwrap().to_string();
    assert!(!id.is_empty() && id != "test-123", "{id}");
    let line = access_line(&tern, &id);
    assert_eq!(line["path"], "/nowhere", "{line:?}");
    assert_eq!(line["function"], "", "{line:?}");
    assert_eq!(line["status"], 404, "{line:?}");
    assert!(line["duration_us"].is_u64(), "{line:?}");

    // An id that could forge something is replaced, not echoed.
    let resp = client
        .get(tern.url("/hello?name=k"))
        .header("x-request-id", "a\"b,c")
        .send()
        .await
        .unwrap();
    let replaced = resp.headers()["x-request-id"].to_str().unwrap().to_string();
    assert_ne!(replaced, "a\"b,c");
    access_line(&tern, &replaced);

    // Every line so far, the start-up ones included, is a JSON object; one access line
    // per request.
    let all = json_lines(&tern.logs());
    let access = all.iter().filter(|l| l["target"] == "tern::access").count();
    assert_eq!(access, 3, "{}", tern.logs());
    assert!(all.iter().all(|l| l["level"].is_string() && l["target"].is_string()));
}
