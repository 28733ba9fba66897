//! `/metrics` after known traffic, health and readiness.

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use futures_util::SinkExt;
use tokio_tungstenite::tungstenite::Message;

use crate::harness::{Tern, TestProject, client, ws_connect, ws_next_text};

use super::{hello_project, serve_with_admin};

// ---------------------------------------------------------------------------------------
// The metrics text format.

/// One sample line of the text exposition format: `name{label="value",...} value`.
#[derive(Debug)]
pub struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// A scrape of `/metrics`, parsed.
pub struct Scrape {
    text: String,
    samples: Vec<Sample>,
}

impl Scrape {
    pub fn parse(text: String) -> Scrape {
        let samples = text
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
            .map(|l| parse_sample(l).unwrap_or_else(|| panic!("not a sample line: {l:?}")))
            .collect();
        Scrape { text, samples }
    }

    /// The value of the sample `name` whose labels are exactly `labels`, if there is one.
    pub fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let wanted: BTreeMap<String, String> =
            labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let mut found = self.samples.iter().filter(|s| s.name == name && s.labels == wanted);
        let first = found.next()?;
        assert!(found.next().is_none(), "{name}{labels:?} appears twice in:\n{}", self.text);
        Some(first.value)
    }

    /// Like [`Scrape::get`], but the sample must be there.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
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
pub async fn scrape(tern: &Tern) -> (String, Scrape) {
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
