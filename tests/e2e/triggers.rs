//! Functions triggered by pub/sub messages: the chat bot, loops cut at the hop limit,
//! handlers that trap, time out or fall behind, and the default concurrency and queue.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

use crate::harness::{Tern, TestProject, client, repo, room_url, ws_connect, ws_next_text};

#[tokio::test]
async fn the_bot_answers_time_in_the_room_and_both_clients_see_it() {
    let tern = Tern::serve(&repo().join("examples/chat"));
    let url = room_url(&tern, "bots").await;
    let mut asker = ws_connect(&url).await;
    let mut watcher = ws_connect(&url).await;
    asker.send(Message::text("/time")).await.unwrap();
    let answer = ws_next_text(&mut asker).await;
    // RFC 3339 in UTC, to the second: 2026-11-22T19:20:05Z
    let shape = answer.len() == 20
        && answer.as_bytes()[4] == b'-'
        && answer.as_bytes()[10] == b'T'
        && answer.ends_with('Z');
    assert!(shape, "not an RFC 3339 UTC time: {answer:?}");
    let now = std::time::SystemTime::now();
    let then = humantime::parse_rfc3339(&answer).unwrap();
    let skew = now.duration_since(then).unwrap_or_else(|e| e.duration());
    assert!(skew < Duration::from_secs(5), "the bot's time is {skew:?} off");
    assert_eq!(ws_next_text(&mut watcher).await, "/time");
    assert_eq!(ws_next_text(&mut watcher).await, answer);
}

#[tokio::test]
async fn the_bot_counts_the_clients_of_the_room() {
    let tern = Tern::serve(&repo().join("examples/chat"));
    let url = room_url(&tern, "census").await;
    let mut a = ws_connect(&url).await;
    let _b = ws_connect(&url).await;
    let _c = ws_connect(&url).await;
    let _elsewhere = ws_connect(&room_url(&tern, "other").await).await;
    a.send(Message::text("/rooms")).await.unwrap();
    assert_eq!(ws_next_text(&mut a).await, "3 clients connected to this room");
}

fn hostile_pubsub_project(kind: &str, execution: &str) -> TestProject {
    TestProject::new()
        .messaging(
            &format!("{kind}_channel"),
            &format!(
                "channel: {{ match: {kind} }}\nbridges: {{ websocket: {{ enable: true }} }}\n"
            ),
        )
        .function(
            &format!("{kind}_handler"),
            &format!(
                "trigger: {{ type: pubsub, channel: {kind}_channel }}\n\
                 execution: {{ {execution} }}\nsource: {{wasm:hostile_pubsub}}\n"
            ),
        )
        .http("hello", "GET", "/hello", "hello", "timeout: 5s")
}

/// Sends one message on `loop/room`, whose handler republishes it, and returns how many
/// republished copies a client of the room got before the hop limit stopped the chain.
async fn copies_before_the_hop_limit(settings: &str, hops: usize) -> usize {
    let project = hostile_pubsub_project("loop", "timeout: 5s").settings(settings);
    let tern = Tern::serve(project.path());
    let url = format!("ws://{}/ws/channel/loop/room", tern.addr);
    let mut sender = ws_connect(&url).await;
    let mut listener = ws_connect(&url).await;
    sender.send(Message::text("echo")).await.unwrap();
    let line = tern.wait_for_lines(&["hop limit reached"], 1).remove(0);
    assert!(line.contains("function=loop_handler"), "{line}");
    assert!(line.contains(&format!("hops={hops}")), "{line}");
    let cycle = vec!["loop_handler"; hops].join(" -> ");
    assert!(line.contains(&format!("cycle={cycle}")), "{line}");
    // Each handler prints once it has republished: once all have, every copy is queued for
    // the listener ahead of anything the sender publishes next.
    let done = ["function output", "function=loop_handler", "republished"];
    assert_eq!(tern.wait_for_lines(&done, hops).len(), hops, "{}", tern.logs());
    sender.send(Message::text("stop")).await.unwrap();
    assert_eq!(ws_next_text(&mut listener).await, "echo");
    let mut copies = 0;
    loop {
        match ws_next_text(&mut listener).await.as_str() {
            "echo" => copies += 1,
            "stop" => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    let resp = client().get(tern.url("/hello?name=still")).send().await.unwrap();
    assert_eq!(resp.text().await.unwrap(), "hello, still");
    copies
}

#[tokio::test]
async fn a_function_publishing_to_its_own_trigger_stops_at_the_default_hop_limit_of_8() {
    assert_eq!(copies_before_the_hop_limit("", 8).await, 8);
}

#[tokio::test]
async fn a_configured_max_hops_stops_the_chain_there() {
    assert_eq!(copies_before_the_hop_limit("pubsub:\n  max_hops: 3\n", 3).await, 3);
}

#[tokio::test]
async fn a_handler_that_traps_leaves_the_channel_and_later_messages_working() {
    let project = hostile_pubsub_project("trap", "timeout: 5s");
    let tern = Tern::serve(project.path());
    let url = format!("ws://{}/ws/channel/trap/room", tern.addr);
    let mut a = ws_connect(&url).await;
    let mut b = ws_connect(&url).await;
    for i in 0..20 {
        a.send(Message::text(format!("m{i}"))).await.unwrap();
        assert_eq!(ws_next_text(&mut b).await, format!("m{i}"));
    }
    a.send(Message::text("survive")).await.unwrap();
    // Every message ran the handler: 20 failures, each logged, then one that succeeds.
    let failed = tern.wait_for_lines(&["message handler failed"], 20);
    for line in &failed {
        assert!(line.contains("function=trap_handler"), "{line}");
        assert!(line.contains("channel=trap/room"), "{line}");
    }
    tern.wait_for_lines(&["function output", "function=trap_handler", "survived"], 1);
    assert_eq!(tern.log_lines(&["message handler failed"]).len(), 20, "{}", tern.logs());
    let resp = client().get(tern.url("/hello?name=ok")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn a_handler_past_its_timeout_is_stopped_logged_and_later_messages_run() {
    // `slow/...` takes 200 ms a message.
    let project = hostile_pubsub_project("slow", "timeout: 50ms");
    let tern = Tern::serve(project.path());
    let mut a = ws_connect(&format!("ws://{}/ws/channel/slow/room", tern.addr)).await;
    for i in 0..3 {
        a.send(Message::text(format!("m{i}"))).await.unwrap();
    }
    let failed = tern.wait_for_lines(&["message handler failed"], 3);
    for line in &failed {
        assert!(line.contains("function=slow_handler"), "{line}");
        assert!(line.contains("channel=slow/room"), "{line}");
        assert!(line.contains("timed out after 50ms"), "{line}");
    }
}

#[tokio::test]
async fn overflowing_a_slow_handlers_queue_is_counted_and_logged() {
    let project = hostile_pubsub_project("slow", "timeout: 5s, concurrency: 1, queue: 2");
    let tern = Tern::serve(project.path());
    let url = format!("ws://{}/ws/channel/slow/room", tern.addr);
    let mut a = ws_connect(&url).await;
    let mut b = ws_connect(&url).await;
    for i in 0..30 {
        a.feed(Message::text(format!("m{i}"))).await.unwrap();
    }
    a.flush().await.unwrap();
    // WebSocket clients get everything, however far behind the function is.
    for i in 0..30 {
        assert_eq!(ws_next_text(&mut b).await, format!("m{i}"));
    }
    // At most 4 of the 30 fit (one running, one waiting for it, two queued) while each
    // takes 200 ms: at least 16 are dropped, logged at the 1st, 2nd, 4th, 8th and 16th.
    tern.wait_for_lines(&["function queue full: message dropped", "dropped=16"], 1);
    let lines = tern.log_lines(&["function queue full: message dropped"]);
    for line in &lines {
        assert!(line.contains("function=slow_handler"), "{line}");
        assert!(line.contains("channel=slow/room"), "{line}");
    }
    let counts: Vec<&str> =
        lines.iter().filter_map(|l| l.split("dropped=").nth(1)?.split(' ').next()).collect();
    assert_eq!(counts[..5], ["1", "2", "4", "8", "16"], "{lines:#?}");
}

#[tokio::test]
async fn a_publish_from_an_http_function_triggers_the_pubsub_function() {
    let tern = Tern::serve(&repo().join("examples/chat"));
    let url = room_url(&tern, "relay").await;
    let mut watcher = ws_connect(&url).await;
    let resp =
        client().post(tern.url("/api/notify?room=relay")).body("/rooms").send().await.unwrap();
    assert_eq!(resp.status(), 202);
    // notify's publish reaches the room, and the bot it triggered answers there.
    assert_eq!(ws_next_text(&mut watcher).await, "/rooms");
    assert_eq!(ws_next_text(&mut watcher).await, "1 client connected to this room");
}

/// A project whose `holder` function is triggered by `hold/...` with the default
/// concurrency and queue; see the fixture for `status/started` and `status/hold`.
fn hold_project() -> TestProject {
    let bridged = "bridges: { websocket: { enable: true } }";
    TestProject::new()
        .messaging("hold", &format!("channel: {{ match: hold }}\n{bridged}\n"))
        .messaging("status", &format!("channel: {{ match: status }}\n{bridged}\n"))
        .function(
            "holder",
            "trigger: { type: pubsub, channel: hold }\nexecution: { timeout: 120s }\n\
             source: {wasm:hostile_pubsub}\n",
        )
        // Clients of this test read thousands of messages in bursts.
        .settings("pubsub:\n  subscriber_queue: 8192\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn by_default_16_invocations_run_at_once_and_1024_messages_wait() {
    let project = hold_project();
    let tern = Tern::serve(project.path());
    let ws = |name: &str| format!("ws://{}/ws/channel/{name}", tern.addr);
    // While `holding` is connected, every invocation waits.
    let holding = ws_connect(&ws("status/hold")).await;
    let mut started = ws_connect(&ws("status/started")).await;
    let mut sender = ws_connect(&ws("hold/x")).await;
    let mut echo = ws_connect(&ws("hold/x")).await;
    let mut send = async |from: usize, to: usize| {
        for i in from..to {
            sender.feed(Message::text(i.to_string())).await.unwrap();
        }
        sender.flush().await.unwrap();
        // Messages are offered to functions before clients get them: once `echo` has the
        // last, each has been queued or dropped.
        for i in from..to {
            assert_eq!(ws_next_text(&mut echo).await, i.to_string());
        }
    };
    send(0, 16).await;
    let mut running: Vec<String> = Vec::new();
    for _ in 0..16 {
        running.push(ws_next_text(&mut started).await);
    }
    running.sort_by_key(|s| s.strip_prefix("started ").and_then(|n| n.parse::<usize>().ok()));
    let expected: Vec<String> = (0..16).map(|i| format!("started {i}")).collect();
    assert_eq!(running, expected);
    // The 17th waits for one of the 16 to finish, and 1024 wait in the queue behind it:
    // 1040 in all, or 1041 once the dispatcher has taken the 17th from the queue.
    send(16, 1040).await;
    let full = "function queue full";
    assert!(tern.log_lines(&[full]).is_empty(), "dropped within 1040:\n{}", tern.logs());
    send(1040, 1042).await;
    let dropped = tern.wait_for_lines(&[full, "function=holder", "dropped=1"], 1);
    assert!(dropped[0].contains("channel=hold/x"), "{dropped:?}");
    // Nothing past the 16 started while they were held, though tern handled over a
    // thousand messages since the 17th arrived.
    let extra = futures_util::FutureExt::now_or_never(started.next());
    assert!(extra.is_none(), "more than 16 ran at once: {extra:?}");
    // Released, the waiting messages run, in order.
    drop(holding);
    let next = ws_next_text(&mut started).await;
    let n: usize = next.strip_prefix("started ").and_then(|n| n.parse().ok()).expect(&next);
    assert!(n >= 16, "{next} ran twice");
}

/// A component built against `tern:function@0.1.0`, before 0.1.1 added
/// `pubsub.message-publisher`, still loads and runs: the fixture is kept as built then.
#[tokio::test]
async fn a_function_built_against_wit_0_1_0_still_runs() {
    let fixture = crate::harness::repo().join("tests/fixtures/compat/chat_bot-0.1.0.wasm");
    let project = TestProject::new()
        .messaging("room", "channel: { match: chat }\nbridges: { websocket: { enable: true } }\n")
        .function(
            "old_bot",
            &format!(
                "trigger: {{ type: pubsub, channel: room }}\nexecution: {{ timeout: 5s }}\nsource: {}\n",
                fixture.display()
            ),
        );
    let tern = Tern::serve(project.path());
    let mut a = ws_connect(&format!("ws://{}/ws/channel/chat/lobby", tern.addr)).await;
    a.send(Message::text("/rooms")).await.unwrap();
    assert_eq!(ws_next_text(&mut a).await, "1 client connected to this room");
}

/// A pubsub-triggered function learns who published: the chat example's bot answers
/// `/whoami` with the user of the Centrifugo-protocol client's token and its client id.
#[tokio::test]
async fn a_triggered_function_learns_who_published() {
    use crate::realtime::{SECRET, now, serve, sign};
    let tern = serve(&TestProject::from_example("chat"));
    let mut ws = ws_connect(&format!("ws://{}/connection/websocket", tern.addr)).await;
    let token = sign(SECRET, &serde_json::json!({ "sub": "ada", "exp": now() + 600 }));
    let connect = serde_json::json!({ "id": 1, "connect": { "token": token } });
    ws.send(Message::text(connect.to_string())).await.unwrap();
    let reply: serde_json::Value = serde_json::from_str(&ws_next_text(&mut ws).await).unwrap();
    let client = reply["connect"]["client"].as_str().expect("a client id").to_owned();
    let subscribe = r#"{"id":2,"subscribe":{"channel":"chat/rooms/who"}}"#;
    ws.send(Message::text(subscribe)).await.unwrap();
    let publish = r#"{"id":3,"publish":{"channel":"chat/rooms/who","data":"/whoami"}}"#;
    ws.send(Message::text(publish)).await.unwrap();
    let want = format!("you are ada on connection {client}");
    for _ in 0..10 {
        for line in ws_next_text(&mut ws).await.lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            if v["push"]["pub"]["data"] == want.as_str() {
                return;
            }
        }
    }
    panic!("no `{want}` from the bot:\n{}", tern.logs());
}
