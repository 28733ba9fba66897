//! Hot reload: routes, functions and channels swapped under load, with nothing dropped but
//! what the new version removed; broken versions refused.

use std::{
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use futures_util::SinkExt;
use tokio_tungstenite::tungstenite::Message;

use crate::harness::{
    Serve, Tern, TestProject, client, wasm, ws_close_code, ws_connect, ws_next_text,
};

/// The admin key of the tests' hosts.
pub const KEY: &str = "operations-test-key-0123456789";
const CHAT: &str = "channel: { match: chat }\nbridges: { websocket: { enable: true } }\n";
const OLD: &str = "channel: { match: old }\nbridges: { websocket: { enable: true } }\n";

/// Writes `text` at `rel` in `dir` (`{wasm:X}` becomes component X's path).
pub fn write(dir: &Path, rel: &str, text: &str) {
    let mut text = text.to_string();
    while let Some(start) = text.find("{wasm:") {
        let end = start + text[start..].find('}').expect("closing brace");
        let path = wasm(&text[start + 6..end]);
        text.replace_range(start..=end, &path.display().to_string());
    }
    let path = dir.join(rel);
    std::fs::create_dir_all(path.parent().expect("parent")).expect("create dirs");
    std::fs::write(path, text).expect("write project file");
}

/// `POST /reload` with the key: the status and the JSON answer.
pub async fn reload(tern: &Tern) -> (u16, serde_json::Value) {
    let resp = client()
        .post(tern.admin_url("/reload"))
        .bearer_auth(KEY)
        .send()
        .await
        .expect("admin reachable");
    let status = resp.status().as_u16();
    (status, resp.json().await.expect("a JSON answer"))
}

/// The generation `/readyz` reports.
pub async fn generation(tern: &Tern) -> u64 {
    let resp = client().get(tern.admin_url("/readyz")).send().await.expect("admin reachable");
    let body: serde_json::Value = resp.json().await.expect("JSON");
    body["generation"].as_u64().expect("a generation")
}

fn hello_yaml(timeout: &str) -> String {
    format!(
        "trigger: {{ type: https, method: GET, paths: [/hello] }}\nexecution: {{ timeout: {timeout} }}\nsource: {{wasm:hello}}\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_reloads_under_load_drop_only_what_the_new_version_removed() {
    let project = TestProject::new().messaging("chat", CHAT).messaging("old", OLD);
    let dir = project.path();
    write(dir, "functions/hello.yaml", &hello_yaml("5s"));
    let tern = Serve::new(dir).admin().env("TERN_ADMIN_KEY", KEY).start();
    let ws = |channel: &str| format!("ws://{}/ws/channel/{channel}", tern.addr);
    // 100 WebSocket clients: 80 on a channel every version keeps (one of them publishes),
    // 20 on one that a reload removes.
    let mut publisher = ws_connect(&ws("chat/room")).await;
    let mut stay = Vec::new();
    for _ in 0..79 {
        stay.push(ws_connect(&ws("chat/room")).await);
    }
    let mut gone = Vec::new();
    for _ in 0..20 {
        gone.push(ws_connect(&ws("old/room")).await);
    }
    // Steady HTTP load: /hello always exists and must always answer; /extra comes and goes
    // and may only ever be 200 or 404.
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, bad) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let mut load = Vec::new();
    for worker in 0..4 {
        let (stop, ok, bad, base) = (stop.clone(), ok.clone(), bad.clone(), tern.url(""));
        load.push(tokio::spawn(async move {
            let http = client();
            let mut failures = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let (path, allowed): (&str, &[u16]) = if worker == 0 {
                    ("/extra?name=x", &[200, 404])
                } else {
                    ("/hello?name=x", &[200])
                };
                match http.get(format!("{base}{path}")).send().await {
                    Ok(r) if allowed.contains(&r.status().as_u16()) => {
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(r) => {
                        bad.fetch_add(1, Ordering::Relaxed);
                        failures.push(format!("{path}: {}", r.status()));
                    }
                    Err(e) => {
                        bad.fetch_add(1, Ordering::Relaxed);
                        failures.push(format!("{path}: {e}"));
                    }
                }
            }
            failures
        }));
    }
    for i in 1..=20u64 {
        // Every version replaces `hello` (its settings change); odd ones add /extra, even
        // ones remove it; from the 10th on the `old` channels are gone.
        let timeout = if i % 2 == 0 { "5s" } else { "6s" };
        write(dir, "functions/hello.yaml", &hello_yaml(timeout));
        let extra = dir.join("functions/extra.yaml");
        if i % 2 == 1 {
            write(
                dir,
                "functions/extra.yaml",
                "trigger: { type: https, method: GET, paths: [/extra] }\nsource: {wasm:hello}\n",
            );
        } else {
            std::fs::remove_file(&extra).expect("remove extra");
        }
        if i == 10 {
            std::fs::remove_file(dir.join("messaging/old.yaml")).expect("remove old");
        }
        if i % 4 == 0 {
            tern.signal("HUP");
            for _ in 0..400 {
                if generation(&tern).await == i + 1 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            assert_eq!(generation(&tern).await, i + 1, "SIGHUP reload {i} not applied");
        } else {
            let (status, body) = reload(&tern).await;
            assert_eq!(status, 200, "reload {i}: {body}");
            assert_eq!(body["generation"], i + 1);
            let replaced = body["changes"]["functions_replaced"].as_array().expect("a list");
            assert!(replaced.iter().any(|f| f == "hello"), "reload {i}: {body}");
            let key = if i % 2 == 1 { "routes_added" } else { "routes_removed" };
            assert_eq!(body["changes"][key], serde_json::json!(["GET /extra"]), "{body}");
        }
        let status = client().get(tern.url("/extra?name=x")).send().await.expect("answer").status();
        assert_eq!(status, if i % 2 == 1 { 200 } else { 404 }, "/extra after reload {i}");
        publisher.send(Message::text(format!("m{i}"))).await.expect("publish");
    }
    stop.store(true, Ordering::Relaxed);
    let mut failures = Vec::new();
    for task in load {
        failures.extend(task.await.expect("load task"));
    }
    assert!(
        failures.is_empty(),
        "{} requests failed: {:?}",
        failures.len(),
        &failures[..failures.len().min(10)]
    );
    assert!(ok.load(Ordering::Relaxed) > 100, "the load ran: {}", ok.load(Ordering::Relaxed));
    assert_eq!(bad.load(Ordering::Relaxed), 0);
    for (n, client) in stay.iter_mut().enumerate() {
        for i in 1..=20 {
            assert_eq!(ws_next_text(client).await, format!("m{i}"), "client {n}");
        }
    }
    for client in &mut gone {
        assert_eq!(ws_close_code(client).await, 4404);
    }
    // The clients that stayed are still connected: a message after the reloads arrives.
    publisher.send(Message::text("after")).await.expect("publish");
    for client in &mut stay {
        assert_eq!(ws_next_text(client).await, "after");
    }
    // And a new client of the removed channel is refused before the upgrade.
    assert_eq!(crate::harness::ws_refusal(&ws("old/room")).await, 404);
}

#[tokio::test]
async fn a_broken_reload_is_refused_and_the_running_version_keeps_serving() {
    let project = TestProject::new().messaging("chat", CHAT);
    let dir = project.path();
    write(dir, "functions/hello.yaml", &hello_yaml("5s"));
    let tern = Serve::new(dir).admin().env("TERN_ADMIN_KEY", KEY).start();
    let hello = || async { client().get(tern.url("/hello?name=x")).send().await.expect("answer") };
    // YAML that does not parse: refused, with the file and line.
    write(dir, "functions/hello.yaml", "trigger:\n  type: https\n  paths: [/hello\n");
    let (status, body) = reload(&tern).await;
    assert_eq!(status, 422, "{body}");
    let problems = body["problems"].as_array().expect("problems");
    assert!(
        problems.iter().any(|p| p.as_str().unwrap().contains("functions/hello.yaml:")),
        "{body}"
    );
    assert_eq!(hello().await.text().await.unwrap(), "hello, x");
    // A component that does not exist: refused, naming the `source` field.
    write(
        dir,
        "functions/hello.yaml",
        "trigger: { type: https, method: GET, paths: [/hello] }\nsource: missing.wasm\n",
    );
    let (status, body) = reload(&tern).await;
    assert_eq!(status, 422, "{body}");
    assert!(body["problems"][0].as_str().unwrap().contains("source"), "{body}");
    assert!(body["problems"][0].as_str().unwrap().contains("missing.wasm"), "{body}");
    // A file that is not a component.
    std::fs::write(dir.join("functions/not.wasm"), b"\0asm junk").unwrap();
    write(
        dir,
        "functions/hello.yaml",
        "trigger: { type: https, method: GET, paths: [/hello] }\nsource: not.wasm\n",
    );
    let (status, body) = reload(&tern).await;
    assert_eq!(status, 422, "{body}");
    // SIGHUP with a broken project: logged, refused, still serving.
    tern.signal("HUP");
    tern.wait_for_log("reload refused");
    assert_eq!(hello().await.status(), 200);
    assert_eq!(generation(&tern).await, 1);
    // Fixed: the next reload applies.
    write(dir, "functions/hello.yaml", &hello_yaml("7s"));
    let (status, body) = reload(&tern).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["generation"], 2);
}

#[tokio::test]
async fn watch_reloads_when_the_yaml_changes() {
    let project = TestProject::new().messaging("chat", CHAT);
    let dir = project.path();
    write(dir, "functions/hello.yaml", &hello_yaml("5s"));
    let tern = Serve::new(dir).args(&["--watch"]).start();
    tern.wait_for_log("watching for changes");
    let status_of = |path: &'static str| {
        let url = tern.url(path);
        async move { client().get(url).send().await.expect("answer").status().as_u16() }
    };
    assert_eq!(status_of("/extra?name=x").await, 404);
    write(
        dir,
        "functions/extra.yaml",
        "trigger: { type: https, method: GET, paths: [/extra] }\nsource: {wasm:hello}\n",
    );
    let mut status = 0;
    for _ in 0..200 {
        status = status_of("/extra?name=x").await;
        if status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, 200, "the new route was not served:\n{}", tern.logs());
    // One change, one reload: reading the files must not set off the next one.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let reloads = tern.log_lines(&["reloaded"]).len();
    assert!(reloads <= 2, "{reloads} reloads for one change:\n{}", tern.logs());
    std::fs::remove_file(dir.join("functions/extra.yaml")).unwrap();
    for _ in 0..200 {
        status = status_of("/extra?name=x").await;
        if status == 404 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, 404, "the removed route is still served");
    assert_eq!(status_of("/hello?name=x").await, 200);
}

#[tokio::test]
async fn a_triggered_function_answers_each_message_once_across_reloads() {
    // chat_bot answers `/rooms` in the room: after each reload exactly one answer, never
    // none (the message fell between generations) nor two (both generations ran it).
    let project = TestProject::from_example("chat");
    let tern = Serve::new(project.path()).admin().env("TERN_ADMIN_KEY", KEY).start();
    let mut ws = ws_connect(&crate::harness::room_url(&tern, "reloads").await).await;
    for i in 0..10 {
        let (status, body) = reload(&tern).await;
        assert_eq!(status, 200, "{body}");
        ws.send(Message::text("/rooms")).await.expect("send");
        assert_eq!(ws_next_text(&mut ws).await, "1 client connected to this room", "reload {i}");
    }
    let extra = tokio::time::timeout(Duration::from_millis(500), ws_next_text(&mut ws)).await;
    assert!(extra.is_err(), "a message was answered twice: {extra:?}");
}
