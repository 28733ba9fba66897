//! The WebSocket bridge and the chat example: frames between clients, function publishes,
//! refusals before the upgrade, size limits and slow consumers.

use std::time::Duration;

use futures_util::SinkExt;
use tokio_tungstenite::tungstenite::{Bytes, Message};

use crate::harness::{
    Tern, TestProject, client, repo, room_url, ws_close_code, ws_connect, ws_next, ws_next_text,
    ws_refusal,
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_is_dropped_and_the_others_get_everything() {
    let project = TestProject::from_example("chat").settings("pubsub:\n  subscriber_queue: 64\n");
    let tern = Tern::serve(project.path());
    let url = room_url(&tern, "slow").await;
    // Connected, then never read from again.
    let _stalled = ws_connect(&url).await;
    let mut publisher = ws_connect(&url).await;
    let mut reader = ws_connect(&url).await;
    let payload = "z".repeat(16 * 1024);
    // 32 MiB: far more than the socket buffers of the stalled client hold. The publisher
    // waits for the reader after each message, so only the stalled client falls behind.
    for i in 0..2000 {
        publisher.send(Message::text(format!("{i}:{payload}"))).await.unwrap();
        let text = ws_next_text(&mut reader).await;
        assert!(text.starts_with(&format!("{i}:")), "message {i} out of order");
    }
    tern.wait_for_log("slow consumer dropped");
}

#[tokio::test]
async fn idle_clients_are_pinged_and_kept_open() {
    let project =
        TestProject::from_example("chat").settings("websocket:\n  ping_interval: 100ms\n");
    let tern = Tern::serve(project.path());
    let url = room_url(&tern, "idle").await;
    let mut idle = ws_connect(&url).await;
    // Read (and so answer pings) for a while: over 5 ping intervals without data.
    let mut pings = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_millis(600);
    while let Ok(Some(Ok(frame))) =
        tokio::time::timeout_at(deadline, futures_util::StreamExt::next(&mut idle)).await
    {
        if matches!(frame, Message::Ping(_)) {
            pings += 1;
        }
    }
    assert!(pings >= 3, "only {pings} pings in 600ms at a 100ms interval");
    // A fresh client: one that never reads does not answer pings and is closed.
    let mut talker = ws_connect(&url).await;
    talker.send(Message::text("still there?")).await.unwrap();
    assert_eq!(ws_next_text(&mut idle).await, "still there?");
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
