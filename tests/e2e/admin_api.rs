//! The admin listener: metrics after known traffic, health, the key, hostile deploy
//! bundles, JSON logs.

use std::{
    collections::BTreeMap,
    io::{BufRead, BufReader, Read, Write},
    net::SocketAddr,
    path::Path,
    process::{Child, ChildStdout, Command, Stdio},
    time::{Duration, Instant},
};

use futures_util::SinkExt;
use sha2::{Digest, Sha256};
use tokio_tungstenite::tungstenite::Message;

use crate::harness::{
    Serve, Tern, TestProject, cache_dir, client, kill_with_parent, raw_http, wasm, ws_connect,
    ws_next_text,
};

/// The admin key the tests start tern with.
const KEY: &str = "e2e-admin-key-0123456789abcdef";

/// `GET /hello` (component `hello`) and a channel `chat` bridged to WebSockets.
fn hello_project() -> TestProject {
    TestProject::new()
        .http("hello", "GET", "/hello", "hello", "timeout: 5s")
        .messaging("chat", "channel: { match: chat }\nbridges: { websocket: { enable: true } }\n")
}

/// Serves `project` with an admin listener keyed by [`KEY`].
fn serve_with_admin(project: &TestProject) -> Tern {
    Serve::new(project.path()).admin().env("TERN_ADMIN_KEY", KEY).start()
}

// ---------------------------------------------------------------------------------------
// The metrics text format.

/// One sample line of the text exposition format: `name{label="value",...} value`.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// A scrape of `/metrics`, parsed.
struct Scrape {
    text: String,
    samples: Vec<Sample>,
}

impl Scrape {
    fn parse(text: String) -> Scrape {
        let samples = text
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
            .map(|l| parse_sample(l).unwrap_or_else(|| panic!("not a sample line: {l:?}")))
            .collect();
        Scrape { text, samples }
    }

    /// The value of the sample `name` whose labels are exactly `labels`, if there is one.
    fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let wanted: BTreeMap<String, String> =
            labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let mut found = self.samples.iter().filter(|s| s.name == name && s.labels == wanted);
        let first = found.next()?;
        assert!(found.next().is_none(), "{name}{labels:?} appears twice in:\n{}", self.text);
        Some(first.value)
    }

    /// Like [`Scrape::get`], but the sample must be there.
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.get(name, labels)
            .unwrap_or_else(|| panic!("no sample {name}{labels:?} in:\n{}", self.text))
    }
}

/// Parses `name{k="v",...} value [timestamp]`; label values may hold `\"`, `\\`, `\n`.
fn parse_sample(line: &str) -> Option<Sample> {
    let name_end = line.find(['{', ' '])?;
    let name = line[..name_end].to_string();
    let mut rest = &line[name_end..];
    let mut labels = BTreeMap::new();
    if let Some(mut inside) = rest.strip_prefix('{') {
        loop {
            if let Some(after) = inside.strip_prefix('}') {
                rest = after;
                break;
            }
            let eq = inside.find('=')?;
            let key = inside[..eq].trim().to_string();
            let quoted = inside[eq + 1..].strip_prefix('"')?;
            let mut value = String::new();
            let mut chars = quoted.char_indices();
            let close = loop {
                let (i, c) = chars.next()?;
                match c {
                    '\\' => match chars.next()?.1 {
                        'n' => value.push('\n'),
                        other => value.push(other),
                    },
                    '"' => break i,
                    c => value.push(c),
                }
            };
            let after = &quoted[close + 1..];
            inside = after.strip_prefix(',').unwrap_or(after);
            if labels.insert(key.clone(), value).is_some() {
                return None; // a label twice
            }
        }
    }
    let value = rest.split_whitespace().next()?.parse().ok()?;
    Some(Sample { name, labels, value })
}

/// `GET /metrics`: its content type and its samples.
async fn scrape(tern: &Tern) -> (String, Scrape) {
    let resp = client().get(tern.admin_url("/metrics")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let content_type = resp.headers()["content-type"].to_str().unwrap().to_string();
    (content_type, Scrape::parse(resp.text().await.unwrap()))
}

#[test]
fn the_metrics_parser_reads_labels_in_any_order_and_escapes() {
    let s = parse_sample(r#"a_total{status="200",function="x\"y\\z"} 7"#).unwrap();
    assert_eq!(s.name, "a_total");
    assert_eq!(s.labels["function"], "x\"y\\z");
    assert_eq!(s.labels["status"], "200");
    assert_eq!(s.value, 7.0);
    let s = parse_sample("tern_generation 1").unwrap();
    assert!(s.labels.is_empty() && s.value == 1.0);
    let s = parse_sample(r#"h_bucket{le="+Inf",function=""} 3 1700000000"#).unwrap();
    assert_eq!((s.labels["function"].as_str(), s.value), ("", 3.0));
    assert!(parse_sample(r#"x{a="1} 2"#).is_none());
}

// ---------------------------------------------------------------------------------------
// 1. Metrics after known traffic.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_exactly_the_traffic_sent() {
    const N: usize = 7; // GET /hello?name=a: 200
    const M: usize = 3; // GET /hello: 400, answered by the function
    const P: usize = 4; // messages one WebSocket client publishes to two others
    let project = hello_project();
    let tern = serve_with_admin(&project);
    let client = client();
    for _ in 0..N {
        let resp = client.get(tern.url("/hello?name=a")).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.text().await.unwrap(), "hello, a");
    }
    for _ in 0..M {
        let resp = client.get(tern.url("/hello")).send().await.unwrap();
        assert_eq!(resp.status(), 400);
    }
    for path in ["/nowhere", "/not/a/route"] {
        let resp = client.get(tern.url(path)).send().await.unwrap();
        assert_eq!(resp.status(), 404, "{path}");
    }
    let url = format!("ws://{}/ws/channel/chat/x", tern.addr);
    let mut publisher = ws_connect(&url).await;
    let mut a = ws_connect(&url).await;
    let mut b = ws_connect(&url).await;
    for i in 0..P {
        publisher.send(Message::text(format!("m{i}"))).await.unwrap();
    }
    for i in 0..P {
        assert_eq!(ws_next_text(&mut a).await, format!("m{i}"));
        assert_eq!(ws_next_text(&mut b).await, format!("m{i}"));
    }

    let (content_type, m) = scrape(&tern).await;
    assert!(content_type.starts_with("application/openmetrics-text"), "{content_type}");
    assert_eq!(m.text.lines().last(), Some("# EOF"), "OpenMetrics ends with # EOF:\n{}", m.text);
    let requests = "tern_http_requests_total";
    let hello = ("function", "hello");
    assert_eq!(m.value(requests, &[hello, ("status", "200")]), N as f64);
    assert_eq!(m.value(requests, &[hello, ("status", "400")]), M as f64);
    assert_eq!(m.value(requests, &[("function", ""), ("status", "404")]), 2.0);
    assert_eq!(m.get(requests, &[hello, ("status", "404")]), None, "{}", m.text);
    assert_eq!(m.value("tern_instantiations_total", &[hello]), (N + M) as f64);
    assert_eq!(m.value("tern_invocation_duration_seconds_count", &[hello]), (N + M) as f64);
    let inf = m.value("tern_invocation_duration_seconds_bucket", &[hello, ("le", "+Inf")]);
    assert_eq!(inf, (N + M) as f64);
    assert!(m.value("tern_invocation_duration_seconds_sum", &[hello]) > 0.0);
    assert_eq!(m.value("tern_websocket_connections", &[("protocol", "raw")]), 3.0);
    assert_eq!(m.value("tern_websocket_accepted_total", &[("protocol", "raw")]), 3.0);
    assert_eq!(m.value("tern_messages_published_total", &[]), P as f64);
    // The publisher never gets its own messages: two copies each.
    assert_eq!(m.value("tern_messages_delivered_total", &[]), (2 * P) as f64);
    assert_eq!(m.value("tern_generation", &[]), 1.0);
    let compiled = m.value("tern_cache_hits_total", &[]) + m.value("tern_cache_misses_total", &[]);
    assert!(compiled >= 1.0, "hello was compiled or found in the cache:\n{}", m.text);
    assert_eq!(m.value("tern_admin_unauthorized_total", &[]), 0.0);

    // The connection gauge counts clients connected now: it falls back to 0.
    drop((publisher, a, b));
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, m) = scrape(&tern).await;
        let now = m.value("tern_websocket_connections", &[("protocol", "raw")]);
        if now == 0.0 {
            assert_eq!(m.value("tern_websocket_accepted_total", &[("protocol", "raw")]), 3.0);
            break;
        }
        assert!(Instant::now() < deadline, "{now} connections 20 s after all closed:\n{}", m.text);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// ---------------------------------------------------------------------------------------
// 2. Health.

#[tokio::test]
async fn health_readiness_and_metrics_need_no_key() {
    let project = hello_project();
    let mut tern = serve_with_admin(&project);
    let client = client();
    let resp = client.get(tern.admin_url("/healthz")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.unwrap().trim(), "ok");
    let resp = client.get(tern.admin_url("/readyz")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body, serde_json::json!({ "ready": true, "generation": 1 }));
    let resp = client.get(tern.admin_url("/metrics")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    // Only GET.
    let resp = client.post(tern.admin_url("/healthz")).send().await.unwrap();
    assert_eq!(resp.status(), 405);
    assert_eq!(resp.headers()["allow"], "GET");
    // The admin endpoints are not on the public port.
    let resp = client.get(tern.url("/healthz")).send().await.unwrap();
    assert_eq!(resp.status(), 404);

    // Once SIGTERM is taken, /readyz stops saying ready: a 503, or no answer at all once
    // the listener is gone. How soon is not asserted.
    tern.signal("TERM");
    let deadline = Instant::now() + Duration::from_secs(20);
    let fresh = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    loop {
        match fresh.get(tern.admin_url("/readyz")).send().await {
            Ok(resp) if resp.status() == 200 => {
                assert!(Instant::now() < deadline, "still ready 20 s after SIGTERM");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Ok(resp) => {
                assert_eq!(resp.status(), 503);
                let body: serde_json::Value = resp.json().await.unwrap();
                assert_eq!(body["ready"], false, "{body}");
                break;
            }
            Err(_) => break,
        }
    }
    let status = tern.wait_exit(Duration::from_secs(60));
    assert_eq!(status.code(), Some(0), "logs:\n{}", tern.logs());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_answers_503_while_a_draining_host_finishes_its_calls() {
    let project = TestProject::new()
        .messaging(
            "announce",
            "channel: { match: announce }\nbridges: { websocket: { enable: true } }\n",
        )
        .http("slow", "GET", "/slow", "hostile", "timeout: 120s");
    let mut tern = serve_with_admin(&project);
    let mut announcements = ws_connect(&format!("ws://{}/ws/channel/announce/x", tern.addr)).await;
    let patient = reqwest::Client::builder().timeout(Duration::from_secs(120)).build().unwrap();
    let request = tokio::spawn(patient.get(tern.url("/slow?ms=15000&announce=announce/x")).send());
    assert_eq!(ws_next_text(&mut announcements).await, "started");
    tern.signal("TERM");
    let fresh = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    // While the call runs, the host is shutting down but still running: a load balancer
    // asking /readyz must hear 503 (the table in host/src/admin/mod.rs).
    let deadline = Instant::now() + Duration::from_secs(20);
    let seen = loop {
        let outcome = fresh.get(tern.admin_url("/readyz")).send().await;
        let draining = !request.is_finished() && !tern.has_exited();
        match outcome {
            Ok(resp) if resp.status() == 200 && Instant::now() < deadline && draining => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Ok(resp) => {
                let status = resp.status();
                break format!("{status} {}", resp.text().await.unwrap_or_default());
            }
            Err(e) => break format!("no answer ({e:?}), while draining: {draining}"),
        }
    };
    assert!(seen.starts_with("503 "), "/readyz during the grace period: {seen}");
    assert!(seen.contains("shutting down"), "{seen}");
    let resp = request.await.unwrap().expect("the call in flight is answered");
    assert_eq!(resp.status(), 200);
    assert_eq!(tern.wait_exit(Duration::from_secs(60)).code(), Some(0));
}

// ---------------------------------------------------------------------------------------
// 3. The key.

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

/// A tar archive built entry by entry, with names written as given (even ones `tar`'s
/// own checks would refuse), gzipped by [`Bundle::finish`].
struct Bundle {
    tar: tar::Builder<Vec<u8>>,
}

impl Bundle {
    fn new() -> Self {
        Self { tar: tar::Builder::new(Vec::new()) }
    }

    fn header(path: &str, kind: tar::EntryType, size: usize) -> tar::Header {
        let mut header = tar::Header::new_gnu();
        let name = &mut header.as_old_mut().name;
        assert!(path.len() < name.len(), "{path} is too long for a plain header");
        name[..path.len()].copy_from_slice(path.as_bytes());
        header.set_entry_type(kind);
        header.set_size(size as u64);
        header.set_mode(0o644);
        header
    }

    /// A regular file.
    fn file(mut self, path: &str, bytes: &[u8]) -> Self {
        let mut header = Self::header(path, tar::EntryType::Regular, bytes.len());
        header.set_cksum();
        self.tar.append(&header, bytes).unwrap();
        self
    }

    /// A symbolic (or, with `hard`, a hard) link at `path` to `target`.
    fn link(mut self, path: &str, target: &str, hard: bool) -> Self {
        let kind = if hard { tar::EntryType::Link } else { tar::EntryType::Symlink };
        let mut header = Self::header(path, kind, 0);
        header.set_link_name_literal(target).unwrap();
        header.set_cksum();
        self.tar.append(&header, std::io::empty()).unwrap();
        self
    }

    /// The gzipped archive.
    fn finish(self) -> Vec<u8> {
        let tar = self.tar.into_inner().unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&tar).unwrap();
        gz.finish().unwrap()
    }
}

/// `functions/<name>.yaml` serving `GET <path>` with whatever component the manifest names.
fn function_yaml(path: &str) -> String {
    format!(
        "trigger: {{ type: https, method: GET, paths: [{path}] }}\n\
         execution: {{ timeout: 5s }}\n\
         source: ../target/wasm32-wasip2/release/hello.wasm\n"
    )
}

/// `components/<sha256>.wasm` of `bytes`.
fn component_name(bytes: &[u8]) -> String {
    format!("components/{:x}.wasm", Sha256::digest(bytes))
}

/// The manifest mapping `function` to `component`.
fn manifest(function: &str, component: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({ "format": 1, "sources": { function: component } }))
        .unwrap()
}

/// A bundle `tern deploy` could have made: `GET /greet` runs the `hello` component.
fn good_bundle() -> Vec<u8> {
    let hello = std::fs::read(wasm("hello")).unwrap();
    let component = component_name(&hello);
    Bundle::new()
        .file("tern.yaml", b"# deployed\n")
        .file("functions/greet.yaml", function_yaml("/greet").as_bytes())
        .file(&component, &hello)
        .file(".tern-deploy.json", &manifest("functions/greet.yaml", &component))
        .finish()
}

/// POSTs `bundle` to `/deploy` with the key: (status, JSON body).
async fn deploy(tern: &Tern, bundle: Vec<u8>) -> (u16, serde_json::Value) {
    let resp = client()
        .post(tern.admin_url("/deploy"))
        .bearer_auth(KEY)
        .header("content-type", "application/gzip")
        .body(bundle)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    let body = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{status}: not JSON ({e}): {text:?}"));
    (status, body)
}

/// After a refused deploy: the running version still answers, and nothing was stored or
/// left behind anywhere the bundle could have aimed at.
async fn assert_nothing_deployed(tern: &Tern, project: &TestProject, what: &str) {
    let resp = client().get(tern.url("/hello?name=a")).send().await.unwrap();
    assert_eq!(resp.status(), 200, "{what}: /hello after the refusal");
    assert_eq!(resp.text().await.unwrap(), "hello, a", "{what}");
    let dir = project.path().join(".tern/deployments");
    let left: Vec<String> = match std::fs::read_dir(&dir) {
        Ok(entries) => {
            entries.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect()
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => panic!("{what}: cannot read {}: {e}", dir.display()),
    };
    assert!(left.is_empty(), "{what}: left in {}: {left:?}", dir.display());
    for escaped in [
        project.path().join("evil.yaml"),
        project.path().join(".tern/evil.yaml"),
        project.path().join("functions/x.yaml"),
    ] {
        assert!(!escaped.exists(), "{what}: {} was written", escaped.display());
    }
    let resp = client().get(tern.admin_url("/deployments")).bearer_auth(KEY).send().await.unwrap();
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body, serde_json::json!({ "current": null, "versions": [] }), "{what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_deploy_bundles_are_refused_and_leave_nothing_behind() {
    let project = hello_project();
    let tern = serve_with_admin(&project);
    let hello = std::fs::read(wasm("hello")).unwrap();
    let component = component_name(&hello);
    let greet = function_yaml("/greet");
    let greet_manifest = manifest("functions/greet.yaml", &component);
    let absolute = project.path().join("abs-evil.yaml");
    let absolute = absolute.to_str().unwrap();
    // A component named after the hash of other bytes.
    let misnamed = component_name(b"not the component");

    let cases: Vec<(&str, Vec<u8>, u16, Vec<String>)> = vec![
        (
            "not gzip",
            b"PK\x03\x04 this is a zip, not a gzipped tar".to_vec(),
            400,
            vec!["not a tern bundle".into()],
        ),
        (
            "gzip of something that is not a tar",
            {
                let mut gz = flate2::write::GzEncoder::new(Vec::new(), Default::default());
                gz.write_all(&[0x55; 1500]).unwrap();
                gz.finish().unwrap()
            },
            400,
            vec!["not a tern bundle".into()],
        ),
        (
            "../evil.yaml",
            Bundle::new()
                .file("../evil.yaml", b"owned: true\n")
                .file("functions/greet.yaml", greet.as_bytes())
                .file(&component, &hello)
                .file(".tern-deploy.json", &greet_manifest)
                .finish(),
            400,
            vec!["`../evil.yaml`".into(), "not a bundle path".into()],
        ),
        (
            "functions/../../../evil.yaml",
            Bundle::new()
                .file("functions/greet.yaml", greet.as_bytes())
                .file("functions/../../../evil.yaml", b"owned: true\n")
                .finish(),
            400,
            vec!["`functions/../../../evil.yaml`".into(), "not a bundle path".into()],
        ),
        (
            "an absolute path",
            Bundle::new().file(absolute, b"owned: true\n").finish(),
            400,
            vec![format!("`{absolute}`"), "not a bundle path".into()],
        ),
        (
            "a symlink to /etc/passwd",
            Bundle::new()
                .link("functions/x.yaml", "/etc/passwd", false)
                .file("functions/greet.yaml", greet.as_bytes())
                .file(&component, &hello)
                .file(".tern-deploy.json", &greet_manifest)
                .finish(),
            400,
            vec!["`functions/x.yaml`".into(), "only regular files".into()],
        ),
        (
            "a hard link to /etc/passwd",
            Bundle::new().link("functions/x.yaml", "/etc/passwd", true).finish(),
            400,
            vec!["`functions/x.yaml`".into(), "only regular files".into()],
        ),
        (
            "a component whose content does not hash to its name",
            Bundle::new()
                .file("functions/greet.yaml", greet.as_bytes())
                .file(&misnamed, &hello)
                .file(".tern-deploy.json", &manifest("functions/greet.yaml", &misnamed))
                .finish(),
            400,
            vec![format!("`{misnamed}`"), "hash".into()],
        ),
        (
            "no manifest",
            Bundle::new()
                .file("functions/greet.yaml", greet.as_bytes())
                .file(&component, &hello)
                .finish(),
            400,
            vec![".tern-deploy.json".into(), "missing".into()],
        ),
        (
            "a manifest naming a component not in the bundle",
            Bundle::new()
                .file("functions/greet.yaml", greet.as_bytes())
                .file(".tern-deploy.json", &greet_manifest)
                .finish(),
            400,
            vec![".tern-deploy.json".into(), format!("`{component}` is not in the bundle")],
        ),
    ];
    for (what, bundle, status, mentions) in cases {
        let (got, body) = deploy(&tern, bundle).await;
        assert_eq!(got, status, "{what}: {body}");
        let error = body["error"].as_str().unwrap_or_else(|| panic!("{what}: no error: {body}"));
        for mention in &mentions {
            assert!(error.contains(mention.as_str()), "{what}: {mention:?} not in {error:?}");
        }
        assert_nothing_deployed(&tern, &project, what).await;
    }
    assert!(!Path::new(absolute).exists(), "{absolute} was written");

    // A well-formed bundle whose YAML is broken is unpacked, read, and refused with the
    // file and line of the problem; the running version keeps serving.
    let broken = "# a typo in the trigger\nexecution: { timeout: 5s }\ntrigger: [\n";
    let bundle = Bundle::new()
        .file("functions/hello.yaml", broken.as_bytes())
        .file(&component, &hello)
        .file(".tern-deploy.json", &manifest("functions/hello.yaml", &component))
        .finish();
    let (got, body) = deploy(&tern, bundle).await;
    assert_eq!(got, 422, "{body}");
    assert!(body["error"].as_str().unwrap().contains("running version keeps serving"), "{body}");
    let problems: Vec<&str> =
        body["problems"].as_array().unwrap().iter().map(|p| p.as_str().unwrap()).collect();
    let located = problems.iter().any(|p| {
        p.split_once("functions/hello.yaml:").is_some_and(|(_, at)| {
            let line = at.split(':').next().unwrap_or("");
            line == "3"
        })
    });
    assert!(located, "no problem names functions/hello.yaml and its line: {problems:?}");
    assert_nothing_deployed(&tern, &project, "broken YAML").await;
    let (_, m) = scrape(&tern).await;
    assert_eq!(m.value("tern_generation", &[]), 1.0);

    // The bundles above were refused for what is wrong with them: the same builder's
    // well-formed bundle deploys.
    let (got, body) = deploy(&tern, good_bundle()).await;
    assert_eq!(got, 200, "{body}");
    assert_eq!((body["version"].as_u64(), body["generation"].as_u64()), (Some(1), Some(2)));
    let resp = client().get(tern.url("/greet?name=b")).send().await.unwrap();
    assert_eq!(resp.text().await.unwrap(), "hello, b");
    let resp = client().get(tern.url("/hello?name=b")).send().await.unwrap();
    assert_eq!(resp.status(), 404);
    let resp = client().get(tern.admin_url("/deployments")).bearer_auth(KEY).send().await.unwrap();
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body, serde_json::json!({ "current": 1, "versions": [1] }));
}

/// `len` bytes that do not compress (xorshift), as hex text.
fn incompressible_text(len: usize) -> Vec<u8> {
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            b"0123456789abcdef"[(state & 15) as usize]
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bundles_past_max_deploy_size_are_refused() {
    let project = hello_project().settings("admin:\n  max_deploy_size: 4KiB\n");
    let tern = serve_with_admin(&project);

    // An upload larger than the limit: 413, before it is even unpacked.
    let big = Bundle::new()
        .file("tern.yaml", b"# big\n")
        .file("functions/big.yaml", &incompressible_text(24 * 1024))
        .finish();
    assert!(big.len() > 8 * 1024, "{} bytes is not past the limit", big.len());
    let (status, body) = deploy(&tern, big).await;
    assert_eq!(status, 413, "{body}");
    let error = body["error"].as_str().unwrap();
    assert!(error.contains("admin.max_deploy_size") && error.contains("4 KiB"), "{body}");
    assert_nothing_deployed(&tern, &project, "an upload past the limit").await;

    // A small upload that unpacks to more than the limit (a gzip bomb): refused too.
    let mut bomb_yaml = vec![b'#'; 64 * 1024];
    bomb_yaml.push(b'\n');
    let bomb = Bundle::new().file("tern.yaml", &bomb_yaml).finish();
    assert!(bomb.len() < 4096, "{} bytes: the bomb does not fit the upload", bomb.len());
    let (status, body) = deploy(&tern, bomb).await;
    assert_eq!(status, 400, "{body}");
    let error = body["error"].as_str().unwrap();
    assert!(error.contains("too large") && error.contains("admin.max_deploy_size"), "{body}");
    assert_nothing_deployed(&tern, &project, "a gzip bomb").await;
}

// ---------------------------------------------------------------------------------------
// 5. JSON logs.

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
