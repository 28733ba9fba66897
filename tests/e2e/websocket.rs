//! The WebSocket bridge and the chat example: frames between clients, function publishes,
//! refusals before the upgrade, size limits and slow consumers.

use std::time::Duration;

use futures_util::SinkExt;
use tokio_tungstenite::tungstenite::{Bytes, Message};

use crate::{
    harness::{
        Serve, Tern, TestProject, Ws, client, repo, room_url, ws_close_code, ws_connect, ws_next,
        ws_next_text, ws_refusal,
    },
    raw_frames::{PING, RawClient},
};

#[tokio::test]
async fn get_websocket_url_answers_the_rooms_channel_url() {
    let tern = Tern::serve(&repo().join("examples/chat"));
    let url = room_url(&tern, "tau").await;
    // sha256("tau")
    let hex = "2bfcf64c38aeb71a5f36b5aa43dd96cd81c76452533e46061a35e4c46c87eaf1";
    assert_eq!(url, format!("ws://{}/ws/channel/chat/rooms/{hex}", tern.addr));
    let resp = client().get(tern.url("/api/ws")).send().await.unwrap();
    assert_eq!(resp.status(), 400);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body, serde_json::json!({ "error": "room parameter required" }));
}

#[tokio::test]
async fn public_url_sets_the_origin_of_websocket_urls() {
    let tern = Tern::serve_with(
        &repo().join("examples/chat"),
        &["--public-url", "https://chat.example.com/"],
    );
    let url = room_url(&tern, "tau").await;
    assert!(url.starts_with("wss://chat.example.com/ws/channel/chat/rooms/"), "{url}");
}

#[tokio::test]
async fn two_clients_exchange_text_and_binary_frames_and_never_get_their_own() {
    let tern = Tern::serve(&repo().join("examples/chat"));
    let url = room_url(&tern, "lobby").await;
    let mut a = ws_connect(&url).await;
    let mut b = ws_connect(&url).await;

    a.send(Message::text("hello from a")).await.unwrap();
    assert_eq!(ws_next_text(&mut b).await, "hello from a");

    b.send(Message::binary(vec![0u8, 1, 2, 255])).await.unwrap();
    match ws_next(&mut a).await {
        Message::Binary(data) => assert_eq!(data, Bytes::from_static(&[0, 1, 2, 255])),
        other => panic!("expected binary, got {other:?}"),
    }
    // Had `a` received its own frame, it would be queued before this one.
    b.send(Message::text("marker")).await.unwrap();
    assert_eq!(ws_next_text(&mut a).await, "marker");
}

#[tokio::test]
async fn rooms_are_separate_channels() {
    let tern = Tern::serve(&repo().join("examples/chat"));
    let mut red = ws_connect(&room_url(&tern, "red").await).await;
    let mut red2 = ws_connect(&room_url(&tern, "red").await).await;
    let mut blue = ws_connect(&room_url(&tern, "blue").await).await;
    red.send(Message::text("for red")).await.unwrap();
    assert_eq!(ws_next_text(&mut red2).await, "for red");
    let resp =
        client().post(tern.url("/api/notify?room=blue")).body("for blue").send().await.unwrap();
    assert_eq!(resp.status(), 202);
    // The first frame blue sees is its own room's, not red's.
    assert_eq!(ws_next_text(&mut blue).await, "for blue");
}

#[tokio::test]
async fn a_function_publish_reaches_every_client_of_the_room() {
    let tern = Tern::serve(&repo().join("examples/chat"));
    let url = room_url(&tern, "news").await;
    let mut a = ws_connect(&url).await;
    let mut b = ws_connect(&url).await;
    let resp =
        client().post(tern.url("/api/notify?room=news")).body("extra!").send().await.unwrap();
    assert_eq!(resp.status(), 202);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body, serde_json::json!({ "listeners": 2 }));
    assert_eq!(ws_next_text(&mut a).await, "extra!");
    assert_eq!(ws_next_text(&mut b).await, "extra!");
    // A body that is not UTF-8 goes out as a binary frame.
    client().post(tern.url("/api/notify?room=news")).body(vec![0xff, 0xfe]).send().await.unwrap();
    assert_eq!(ws_next(&mut a).await, Message::binary(vec![0xffu8, 0xfe]));
}

#[tokio::test]
async fn refusals_come_before_the_upgrade() {
    let project = TestProject::from_example("chat").messaging(
        "quiet",
        "channel: { match: quiet }\nbridges: { websocket: { enable: false } }\n",
    );
    let tern = Tern::serve(project.path());
    let ws = |path: &str| format!("ws://{}/ws/channel/{path}", tern.addr);
    assert_eq!(ws_refusal(&ws("unknown/room")).await, 404);
    assert_eq!(ws_refusal(&ws("quiet/room")).await, 403);
    assert_eq!(ws_refusal(&ws("chat/rooms//x")).await, 400);
    // Plain HTTP on a bridged channel says to use a WebSocket.
    let resp = client().get(tern.url("/ws/channel/chat/rooms/x")).send().await.unwrap();
    assert_eq!(resp.status(), 426);
}

#[tokio::test]
async fn an_oversized_frame_closes_that_client_with_1009_only() {
    let project = TestProject::from_example("chat").settings("websocket:\n  max_message: 1KiB\n");
    let tern = Tern::serve(project.path());
    let url = room_url(&tern, "big").await;
    let mut big = ws_connect(&url).await;
    let mut a = ws_connect(&url).await;
    let mut b = ws_connect(&url).await;
    big.send(Message::text("x".repeat(2048))).await.unwrap();
    assert_eq!(ws_close_code(&mut big).await, 1009);
    a.send(Message::text("y".repeat(1024))).await.unwrap();
    assert_eq!(ws_next_text(&mut b).await, "y".repeat(1024));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_messages_from_one_publisher_arrive_in_order() {
    let tern = Tern::serve(&repo().join("examples/chat"));
    let url = room_url(&tern, "ordered").await;
    let mut publisher = ws_connect(&url).await;
    let mut readers = vec![ws_connect(&url).await, ws_connect(&url).await];
    for i in 0..1000 {
        publisher.feed(Message::text(format!("message {i}"))).await.unwrap();
    }
    publisher.flush().await.unwrap();
    for reader in &mut readers {
        for i in 0..1000 {
            assert_eq!(ws_next_text(reader).await, format!("message {i}"));
        }
    }
}

/// Settings under which [`publish_until_logged`]'s publisher stays within its rate limits.
const FAST_PUBLISHER: &str = "websocket:\n  max_bytes_per_second: 1GiB\n";

/// Publishes 16 KiB messages from `publisher`, each read by `reader`, until tern logs a
/// line with `needle` (about a client that does not read); returns how many it sent.
async fn publish_until_logged(
    tern: &Tern,
    publisher: &mut Ws,
    reader: &mut Ws,
    needle: &str,
) -> usize {
    let payload = "z".repeat(16 * 1024);
    let mut sent = 0;
    // The publisher waits for the reader after each message, so only a client that does
    // not read falls behind. 20,000 messages (320 MiB) is far more than the socket buffers
    // of a client that does not read hold.
    while tern.log_lines(&[needle]).is_empty() {
        assert!(sent < 20_000, "no {needle:?} after {sent} messages:\n{}", tern.logs());
        publisher.send(Message::text(format!("{sent}:{payload}"))).await.unwrap();
        let text = ws_next_text(reader).await;
        assert!(text.starts_with(&format!("{sent}:")), "message {sent} out of order");
        sent += 1;
    }
    sent
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_is_closed_with_1008_and_the_others_get_everything() {
    // A write timeout longer than the test: the stalled client is dropped for its queue.
    let project = TestProject::from_example("chat").settings(&format!(
        "pubsub:\n  subscriber_queue: 64\n{FAST_PUBLISHER}  write_timeout: 300s\n"
    ));
    let tern = Tern::serve(project.path());
    let url = room_url(&tern, "slow").await;
    // Connected, then not read from until tern gives up on it.
    let mut stalled = ws_connect(&url).await;
    let mut publisher = ws_connect(&url).await;
    let mut reader = ws_connect(&url).await;
    let needle = "slow consumer dropped";
    let sent = publish_until_logged(&tern, &mut publisher, &mut reader, needle).await;
    // Nobody else waits for it.
    publisher.send(Message::text("after")).await.unwrap();
    assert_eq!(ws_next_text(&mut reader).await, "after");
    // What reached its socket, in order, then the close frame saying why.
    let mut received = 0;
    let code = loop {
        match ws_next(&mut stalled).await {
            Message::Text(text) => {
                let in_order = text.starts_with(&format!("{received}:"));
                assert!(in_order, "message {received} out of order");
                received += 1;
            }
            Message::Close(Some(frame)) => break u16::from(frame.code),
            other => panic!("expected text or a close frame, got {other:?}"),
        }
    };
    assert_eq!(code, 1008, "the slow consumer's close code");
    assert!(received < sent, "the slow consumer got all {sent} messages");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_slower_than_the_write_timeout_is_dropped_without_waiting_for_its_queue() {
    // A queue the test never fills: only the write timeout can drop the stalled client.
    let project = TestProject::from_example("chat").settings(&format!(
        "pubsub:\n  subscriber_queue: 1000000\n{FAST_PUBLISHER}  write_timeout: 200ms\n"
    ));
    let tern = Serve::new(project.path()).env("TERN_LOG", "info,tern::gateway=debug").start();
    let url = room_url(&tern, "stalled").await;
    let mut stalled = ws_connect(&url).await;
    let mut publisher = ws_connect(&url).await;
    let mut reader = ws_connect(&url).await;
    let needle = "write timed out: dropping the client";
    publish_until_logged(&tern, &mut publisher, &mut reader, needle).await;
    assert!(tern.log_lines(&["slow consumer dropped"]).is_empty(), "{}", tern.logs());
    publisher.send(Message::text("after")).await.unwrap();
    assert_eq!(ws_next_text(&mut reader).await, "after");
    // Dropped, not closed: what reached its socket, then the end of the connection.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let next = tokio::time::timeout_at(deadline, futures_util::StreamExt::next(&mut stalled))
            .await
            .expect("the dropped client's connection is still open");
        match next {
            Some(Ok(Message::Close(frame))) => {
                panic!("a close frame after a write timeout: {frame:?}")
            }
            Some(Ok(_)) => {}
            Some(Err(_)) | None => break,
        }
    }
}

#[tokio::test]
async fn idle_clients_are_pinged_and_kept_open() {
    let project =
        TestProject::from_example("chat").settings("websocket:\n  ping_interval: 100ms\n");
    let tern = Tern::serve(project.path());
    let url = room_url(&tern, "idle").await;
    let mut idle = ws_connect(&url).await;
    // Reading answers pings. Five pings come five intervals apart at least: longer than
    // the two intervals of silence that close a client that does not answer.
    let mut pings = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while pings < 5 {
        let frame = tokio::time::timeout_at(deadline, futures_util::StreamExt::next(&mut idle))
            .await
            .unwrap_or_else(|_| panic!("{pings} pings in 20 s at a 100ms interval"))
            .expect("the idle client was closed")
            .expect("WebSocket error");
        match frame {
            Message::Ping(_) => pings += 1,
            other => panic!("an idle client got {other:?}"),
        }
    }
    let mut talker = ws_connect(&url).await;
    talker.send(Message::text("still there?")).await.unwrap();
    assert_eq!(ws_next_text(&mut idle).await, "still there?");
}

#[tokio::test]
async fn a_client_that_stops_answering_pings_is_closed_with_1008() {
    let project =
        TestProject::from_example("chat").settings("websocket:\n  ping_interval: 100ms\n");
    let tern = Tern::serve(project.path());
    let url = room_url(&tern, "mute").await;
    let path = url.split_once(&tern.addr.to_string()).unwrap().1.to_string();
    // Reads every frame and answers none.
    let mut mute = RawClient::connect(&tern, &path);
    let (frames, code) =
        tokio::task::spawn_blocking(move || mute.frames_until_close()).await.unwrap();
    // Silent for two intervals: closed at the second tick, after one unanswered ping.
    assert!(frames.contains(&PING), "closed before it was pinged: {frames:?}");
    assert_eq!(code, 1008);
}

#[tokio::test]
async fn a_client_ping_gets_a_pong_with_the_same_payload() {
    let tern = Tern::serve(&repo().join("examples/chat"));
    let mut ws = ws_connect(&room_url(&tern, "ping").await).await;
    ws.send(Message::Ping(Bytes::from_static(b"are you there"))).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let frame = tokio::time::timeout_at(deadline, futures_util::StreamExt::next(&mut ws))
            .await
            .expect("no pong within 10 s")
            .expect("connection ended")
            .expect("WebSocket error");
        if let Message::Pong(payload) = frame {
            assert_eq!(payload, Bytes::from_static(b"are you there"));
            break;
        }
    }
}
