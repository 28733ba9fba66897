//! The admin key: who may reload, deploy and roll back.

use std::{
    io::{BufRead, BufReader, Read},
    net::SocketAddr,
    path::Path,
    process::{Child, ChildStdout, Command, Stdio},
    time::{Duration, Instant},
};

use crate::harness::{Serve, cache_dir, client, kill_with_parent, raw_http};

use super::{
    KEY, hello_project,
    metrics::{Scrape, scrape},
    serve_with_admin,
};

/// A `tern serve` with an admin listener and no admin key in its environment at all.
struct Keyless {
    child: Child,
    admin: SocketAddr,
    _stdout: BufReader<ChildStdout>,
}

impl Keyless {
    fn start(dir: &Path) -> Keyless {
        let mut command = Command::new(env!("CARGO_BIN_EXE_tern"));
        kill_with_parent(&mut command);
        let mut child = command
            .arg("serve")
            .arg(dir)
            .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
            .env("TERN_LOG", "warn")
            .env("TERN_CACHE_DIR", cache_dir())
            .env_remove("TERN_ADMIN_KEY")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start tern");
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        for _ in 0..2 {
            line.clear();
            stdout.read_line(&mut line).unwrap();
            if let Some(addr) = line.trim().strip_prefix("admin on http://") {
                let admin = addr.parse().unwrap();
                return Keyless { child, admin, _stdout: stdout };
            }
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("no admin line on stdout: {line:?}");
    }
}

impl Drop for Keyless {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn without_a_configured_key_the_keyed_endpoints_answer_403() {
    let project = hello_project();
    let tern = Keyless::start(project.path());
    let client = client();
    let url = |path: &str| format!("http://{}{path}", tern.admin);
    for (method, path) in [
        (reqwest::Method::POST, "/reload"),
        (reqwest::Method::POST, "/deploy"),
        (reqwest::Method::POST, "/rollback"),
        (reqwest::Method::GET, "/deployments"),
    ] {
        // Not even a key that would be right elsewhere opens them.
        let resp = client.request(method, url(path)).bearer_auth(KEY).send().await.unwrap();
        assert_eq!(resp.status(), 403, "{path}");
        let body: serde_json::Value = resp.json().await.unwrap();
        let error = body["error"].as_str().unwrap_or_default();
        assert!(error.contains("TERN_ADMIN_KEY"), "{path}: {body}");
    }
    // What needs no key still works.
    let resp = client.get(url("/healthz")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let resp = client.get(url("/metrics")).send().await.unwrap();
    let m = Scrape::parse(resp.text().await.unwrap());
    // Refused for want of a configured key, not for a wrong one.
    assert_eq!(m.value("tern_admin_unauthorized_total", &[]), 0.0);
    assert_eq!(m.value("tern_generation", &[]), 1.0);
}

#[tokio::test]
async fn only_the_exact_bearer_key_opens_the_keyed_endpoints() {
    let project = hello_project();
    let tern = serve_with_admin(&project);
    let client = client();
    let reload = tern.admin_url("/reload");
    let wrong_key = "e2e-admin-key-0123456789abcdeX";
    let mut refused = 0u32;
    let refusals = [
        client.post(&reload),
        client.post(&reload).bearer_auth(wrong_key),
        client.post(&reload).bearer_auth(&KEY[..KEY.len() - 1]),
        client.post(&reload).header("authorization", KEY),
        client.post(&reload).basic_auth("admin", Some(KEY)),
        client.post(&reload).header("authorization", format!("Basic {KEY}")),
        client.post(tern.admin_url("/deploy")).bearer_auth(wrong_key).body("x"),
        client.post(tern.admin_url("/rollback")).bearer_auth(wrong_key),
        client.get(tern.admin_url("/deployments")).bearer_auth(wrong_key),
        // The key is checked before the method: no hint that the path exists.
        client.get(&reload).bearer_auth(wrong_key),
    ];
    for request in refusals {
        let request = request.build().unwrap();
        let what = format!("{} {} {:?}", request.method(), request.url(), request.headers());
        let resp = client.execute(request).await.unwrap();
        assert_eq!(resp.status(), 401, "{what}");
        assert_eq!(resp.headers()["www-authenticate"], "Bearer", "{what}");
        let body: serde_json::Value = resp.json().await.unwrap();
        assert!(body["error"].as_str().unwrap().contains("admin key"), "{what}: {body}");
        refused += 1;
    }
    let (_, m) = scrape(&tern).await;
    assert_eq!(m.value("tern_admin_unauthorized_total", &[]), f64::from(refused));
    assert_eq!(m.value("tern_generation", &[]), 1.0, "a refused request reloaded");

    let resp = client.post(&reload).bearer_auth(KEY).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["generation"], 2, "{body}");
    let resp = client.get(tern.admin_url("/readyz")).send().await.unwrap();
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body, serde_json::json!({ "ready": true, "generation": 2 }));
    let resp = client.get(tern.admin_url("/deployments")).bearer_auth(KEY).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body, serde_json::json!({ "current": null, "versions": [] }));
    // The right key and the wrong method; a path that is not there.
    let resp = client.get(&reload).bearer_auth(KEY).send().await.unwrap();
    assert_eq!(resp.status(), 405);
    assert_eq!(resp.headers()["allow"], "POST");
    let resp = client.get(tern.admin_url("/nothing")).bearer_auth(KEY).send().await.unwrap();
    assert_eq!(resp.status(), 404);
    let resp = client.get(tern.admin_url("/nothing")).send().await.unwrap();
    assert_eq!(resp.status(), 404);

    let (_, m) = scrape(&tern).await;
    assert_eq!(m.value("tern_admin_unauthorized_total", &[]), f64::from(refused));
    assert_eq!(m.value("tern_generation", &[]), 2.0);
    assert_eq!(m.value("tern_reloads_total", &[("outcome", "applied")]), 1.0);
    // The service still answers after the reload.
    let resp = client.get(tern.url("/hello?name=z")).send().await.unwrap();
    assert_eq!(resp.text().await.unwrap(), "hello, z");
    // Neither key is ever written to the log.
    let logs = tern.logs();
    assert!(logs.contains("admin request refused"), "{logs}");
    assert!(!logs.contains(KEY) && !logs.contains(wrong_key), "a key in the log:\n{logs}");
}

/// Runs `tern serve DIR` with `key` as `TERN_ADMIN_KEY` until it exits, for at most 120 s:
/// (exit code, stdout, stderr).
fn serve_until_exit(dir: &Path, key: &str) -> (Option<i32>, String, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tern"));
    kill_with_parent(&mut command);
    let mut child = command
        .arg("serve")
        .arg(dir)
        .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
        .env("TERN_CACHE_DIR", cache_dir())
        .env("TERN_ADMIN_KEY", key)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start tern");
    let read_all = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        })
    };
    let stdout = read_all(Box::new(child.stdout.take().unwrap()));
    let stderr = read_all(Box::new(child.stderr.take().unwrap()));
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("tern kept running with the admin key {key:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    (status.code(), stdout.join().unwrap(), stderr.join().unwrap())
}

#[test]
fn a_key_shorter_than_16_characters_stops_serve_at_start() {
    let project = hello_project();
    let short = "fifteen-chars-k";
    assert_eq!(short.len(), 15);
    let (code, stdout, stderr) = serve_until_exit(project.path(), short);
    assert_eq!(code, Some(1), "stdout {stdout:?}, stderr:\n{stderr}");
    assert!(!stdout.contains("listening on"), "{stdout}");
    assert!(stderr.contains("TERN_ADMIN_KEY"), "{stderr}");
    assert!(stderr.contains("at least 16 characters"), "{stderr}");
    assert!(!stderr.contains(short), "the key was printed:\n{stderr}");
    // Sixteen is enough.
    let tern = Serve::new(project.path()).admin().env("TERN_ADMIN_KEY", "sixteen-chars-ok").start();
    let admin = tern.admin.unwrap();
    let answer = raw_http(admin, b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

// ---------------------------------------------------------------------------------------
// 4. Hostile deploy bundles.
