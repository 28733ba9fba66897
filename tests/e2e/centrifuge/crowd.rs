//! Many hostile clients at once while the bystanders chat: every publication of the
//! bystanders arrives, in order, and each hostile client still gets its documented answer.
//! And the connection-level timers a hostile client can lean on.

use std::time::Duration;

use futures_util::StreamExt;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use super::{Client, cases, hostile, serve};
use crate::harness::ws_connect;

/// Hostile clients running at once.
const CROWD: usize = 40;
/// Publications the bystanders exchange meanwhile.
const MESSAGES: u64 = 200;

/// 40 clients run the hostile table concurrently (each from its own place in it) while
/// alice publishes 200 messages: bob gets all 200 in order, and every case still gets its
/// documented answer.
#[tokio::test]
async fn a_crowd_of_hostile_clients_does_not_stop_the_chat() {
    let (_project, tern) = serve();
    let tern = std::sync::Arc::new(tern);
    let mut alice = Client::connected(&tern, "alice").await;
    let mut bob = Client::connected(&tern, "bob").await;
    for client in [&mut alice, &mut bob] {
        let reply = client.call(json!({ "id": 2, "subscribe": { "channel": "chat/crowd" } })).await;
        assert!(reply["subscribe"].is_object(), "subscribe: {reply}");
    }

    let crowd: Vec<_> = (0..CROWD)
        .map(|n| {
            let tern = tern.clone();
            tokio::spawn(async move {
                let cases = cases::all();
                let mut failures = Vec::new();
                // Each client takes a different slice of the table, so every kind of
                // hostility is in flight at once.
                for case in cases.iter().cycle().skip(n * 7).take(12) {
                    if let Err(why) = hostile::run(&tern, case).await {
                        failures.push(format!("{}: {why}", case.name));
                    }
                }
                failures
            })
        })
        .collect();

    for n in 0..MESSAGES {
        let ack = alice
            .call(
                json!({ "id": 3 + n, "publish": { "channel": "chat/crowd", "data": { "n": n } } }),
            )
            .await;
        assert_eq!(ack, json!({ "id": 3 + n, "publish": {} }), "ack of message {n}");
    }
    for n in 0..MESSAGES {
        let push = bob.publication("chat/crowd").await;
        assert_eq!(push["push"]["pub"]["data"], json!({ "n": n }), "bob's message {n}");
    }

    let mut failures = Vec::new();
    for task in crowd {
        failures.extend(task.await.expect("a hostile client's task panicked"));
    }
    assert!(failures.is_empty(), "under load, cases failed:\n{}", failures.join("\n"));
    assert!(!tern.logs().contains("panicked"), "tern panicked:\n{}", tern.logs());
}

/// A connection that never sends its connect is closed as stale (3502) after
/// `connect_timeout` (3 s here), JSON and protobuf alike.
#[tokio::test]
async fn a_connection_that_never_connects_is_closed_as_stale() {
    let (_project, tern) = serve();
    let mut silent = ws_connect(&super::endpoint(&tern, false)).await;
    let mut protobuf = ws_connect(&super::endpoint(&tern, true)).await;
    for ws in [&mut silent, &mut protobuf] {
        let frame = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("no close within 10 s of a 3 s connect_timeout")
            .expect("the connection ended without a close frame")
            .expect("a WebSocket error");
        match frame {
            Message::Close(Some(close)) => assert_eq!(u16::from(close.code), 3502, "{close:?}"),
            other => panic!("wanted close 3502, got {other:?}"),
        }
    }
    // The host still takes connections.
    let mut client = Client::connected(&tern, "alice").await;
    assert_eq!(client.call(json!({ "id": 2, "ping": {} })).await, json!({ "id": 2, "ping": {} }));
}

/// A publication whose JSON holds line breaks (pretty-printed, or a string holding a
/// forged reply between them) reaches a JSON subscriber as one push: its lines cannot be
/// read as replies or pushes of the publisher's choosing.
#[tokio::test]
async fn line_breaks_in_a_publication_cannot_forge_replies() {
    let (_project, tern) = serve();
    let mut alice = Client::connected(&tern, "alice").await;
    let mut bob = Client::connected(&tern, "bob").await;
    for client in [&mut alice, &mut bob] {
        let reply = client.call(json!({ "id": 2, "subscribe": { "channel": "chat/forge" } })).await;
        assert!(reply["subscribe"].is_object(), "subscribe: {reply}");
    }
    let forged = "[0,\n{\"id\":7,\"error\":{\"code\":3500,\"message\":\"forged\"}}\r\n]";
    let publish = json!({ "id": 3, "publish": { "channel": "chat/forge", "data": forged } });
    assert_eq!(alice.call(publish).await, json!({ "id": 3, "publish": {} }));
    let push = bob.publication("chat/forge").await;
    let data = json!([0, { "id": 7, "error": { "code": 3500, "message": "forged" } }]);
    assert_eq!(push["push"]["pub"]["data"], data);
    assert!(bob.pending.is_empty(), "lines of the publication read as replies: {:?}", bob.pending);
    // And bob's connection still answers in order.
    assert_eq!(bob.call(json!({ "id": 4, "ping": {} })).await["id"], json!(4));
}

/// A frame of history commands cannot make tern build more than 8 MiB of replies (plus
/// the one that crossed it): the rest of the batch gets error 106.
#[tokio::test]
async fn a_batch_of_history_reads_is_cut_at_the_frames_reply_budget() {
    let (_project, tern) = serve();
    let mut client = Client::connected(&tern, "alice").await;
    let reply = client.call(json!({ "id": 2, "subscribe": { "channel": "rooms/big" } })).await;
    assert!(reply["subscribe"].is_object(), "subscribe: {reply}");
    // 40 publications of 24 KiB: each full history reply is about 1 MiB.
    let pad = "x".repeat(24 * 1024);
    for n in 0..40u64 {
        let publish = json!({ "id": 3 + n, "publish": { "channel": "rooms/big", "data": pad } });
        assert_eq!(client.call(publish).await["publish"], json!({}), "publish {n}");
        client.publication("rooms/big").await;
    }
    let reads: Vec<String> = (0..30u64)
        .map(|i| {
            json!({ "id": 100 + i, "history": { "channel": "rooms/big", "limit": -1 } }).to_string()
        })
        .collect();
    client.send_text(&reads.join("\n")).await;
    let mut served = 0;
    let mut refused = 0;
    for i in 0..30u64 {
        let reply = client.reply(100 + i).await;
        if reply["history"]["publications"].as_array().map(Vec::len) == Some(40) {
            assert_eq!(refused, 0, "a read served after one was refused: {i}");
            served += 1;
        } else {
            assert_eq!(reply["error"]["code"], json!(106), "read {i}: {:.200}", reply.to_string());
            refused += 1;
        }
    }
    assert!((8..=10).contains(&served), "{served} reads of ~1 MiB served in one frame");
    assert_eq!(served + refused, 30);
    assert_eq!(client.call(json!({ "id": 200, "ping": {} })).await["id"], json!(200));
}
