//! Functions triggered by pub/sub messages: the chat bot, loops cut at the hop limit,
//! handlers that trap or fall behind.

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

#[tokio::test]
async fn a_function_publishing_to_its_own_trigger_stops_at_the_hop_limit() {
    let project = hostile_pubsub_project("loop", "timeout: 5s");
    let tern = Tern::serve(project.path());
    let url = format!("ws://{}/ws/channel/loop/room", tern.addr);
    let mut sender = ws_connect(&url).await;
    let mut listener = ws_connect(&url).await;
    sender.send(Message::text("echo")).await.unwrap();
    let logs = tern.wait_for_log("hop limit reached");
    let line = logs.lines().find(|l| l.contains("hop limit reached")).unwrap();
    assert!(line.contains("function=loop_handler"), "{line}");
    assert!(line.contains("cycle=loop_handler -> loop_handler"), "{line}");
    // The client's message, then the function's 8 republications, then nothing.
    assert_eq!(ws_next_text(&mut listener).await, "echo");
    let mut copies = 0;
    while let Ok(Some(Ok(frame))) =
        tokio::time::timeout(Duration::from_millis(500), listener.next()).await
    {
        if let Message::Text(t) = frame {
            assert_eq!(t.as_str(), "echo");
            copies += 1;
        }
    }
    assert_eq!(copies, 8, "the default hop limit is 8");
    let resp = client().get(tern.url("/hello?name=still")).send().await.unwrap();
    assert_eq!(resp.text().await.unwrap(), "hello, still");
}

#[tokio::test]
async fn a_handler_that_traps_leaves_the_channel_working() {
    let project = hostile_pubsub_project("trap", "timeout: 5s");
    let tern = Tern::serve(project.path());
    let url = format!("ws://{}/ws/channel/trap/room", tern.addr);
    let mut a = ws_connect(&url).await;
    let mut b = ws_connect(&url).await;
    for i in 0..20 {
        a.send(Message::text(format!("m{i}"))).await.unwrap();
        assert_eq!(ws_next_text(&mut b).await, format!("m{i}"));
    }
    let logs = tern.wait_for_log("message handler failed");
    let line = logs.lines().find(|l| l.contains("message handler failed")).unwrap();
    assert!(line.contains("function=trap_handler"), "{line}");
    assert!(line.contains("channel=trap/room"), "{line}");
    let resp = client().get(tern.url("/hello?name=ok")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
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
    let logs = tern.wait_for_log("function queue full: message dropped");
    assert!(logs.contains("function=slow_handler"), "{logs}");
    assert!(logs.contains("dropped=16"), "drops are counted: {logs}");
}
