//! One broker, three doors: the raw bridge, the realtime endpoint and functions reach one
//! another; presence and messages to the backend on the inbound topic; the chat example's
//! wasm backend answering a realtime client.

use std::time::Duration;

use futures_util::SinkExt;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio_tungstenite::tungstenite::Message;

use super::{Rt, SECRET, ack, assert_refusal, broker_id, delivery, project, serve, token};
use crate::harness::{Serve, client, guests, repo, room_url, ws_connect, ws_next, ws_next_text};

#[tokio::test]
async fn realtime_raw_bridge_and_functions_share_one_broker() {
    let project = project();
    let tern = serve(&project);
    let topic = "chat/doors";
    let mut raw = ws_connect(&format!("ws://{}/ws/channel/{topic}", tern.addr)).await;
    let mut publisher = Rt::anonymous(&tern).await;
    let mut subscriber = Rt::anonymous(&tern).await;
    subscriber.subscribe(topic).await;

    // Realtime -> raw: a JSON string goes out as its text, anything else as its JSON text.
    publisher.publish(topic, "text-message", json!("hello raw"), "p1").await;
    assert_eq!(ws_next_text(&mut raw).await, "hello raw");
    assert_eq!(
        subscriber.next().await,
        delivery(topic, "text-message", "p1", json!("hello raw"), &publisher.id)
    );
    let object = json!({ "n": 1, "s": "x", "list": [true, null] });
    publisher.publish(topic, "text-message", object.clone(), "p2").await;
    let text = ws_next_text(&mut raw).await;
    assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), object, "{text}");
    assert_eq!(
        subscriber.next().await,
        delivery(topic, "text-message", "p2", object, &publisher.id)
    );

    // Raw -> realtime: type `message`, the broker's id, the text as a JSON string (even
    // when it looks like JSON), no `client`.
    for text in ["from raw", r#"{"looks":"json"}"#] {
        raw.send(Message::text(text)).await.unwrap();
        let got = subscriber.next().await;
        let id = broker_id(&got);
        assert_eq!(got, unsent_by_realtime(topic, &id, json!(text)));
    }
    // A binary frame: base64 (standard, padded), said so by `encoding`.
    raw.send(Message::binary(vec![0u8, 1, 2, 255])).await.unwrap();
    let got = subscriber.next().await;
    let id = broker_id(&got);
    assert_eq!(
        got,
        json!({
            "topic": topic, "messageType": "message",
            "data": { "id": id, "payload": "AAEC/w==", "encoding": "base64" },
        })
    );
    // The raw client got nothing of its own, and the publisher nothing at all.
    publisher.publish(topic, "text-message", json!("last"), "p3").await;
    assert_eq!(ws_next_text(&mut raw).await, "last");
    publisher.assert_silent(Duration::from_millis(300)).await;
}

/// The delivery of a text message from the raw bridge or a function (`id`: the broker's).
fn unsent_by_realtime(topic: &str, id: &str, payload: Value) -> Value {
    json!({ "topic": topic, "messageType": "message", "data": { "id": id, "payload": payload } })
}

/// A `message` frame of type `echo` to the backend.
fn echo(payload: Value, id: &str) -> Value {
    json!({
        "type": "message",
        "data": { "messageType": "echo", "payload": payload, "id": id },
    })
}

/// The presence message of connection `id` as a subscriber of the inbound topic sees it.
fn presence(frame: &Value, id: &str, status: &str, permissions: Value, user: Value) -> Value {
    let message_id = broker_id(frame);
    json!({
        "topic": "secure/inbound",
        "messageType": "presence",
        "data": {
            "id": message_id,
            "payload": {
                "connectionId": id, "status": status, "permissions": permissions, "user": user,
            },
            "client": { "connectionId": id },
        },
    })
}

#[tokio::test]
async fn the_inbound_topic_carries_presence_and_messages_to_the_backend() {
    let project = project();
    let tern = serve(&project);
    // A backend: a client allowed to read the inbound topic.
    let mut backend = Rt::with_token(&tern, &token(&["secure/inbound"], &[])).await;
    backend.subscribe("secure/inbound").await;

    let claims = json!({
        "exp": super::now() + 3600, "sub": "alice",
        "subscribe": ["chat"], "publish": ["secure/inbound"],
    });
    let permissions = json!({ "subscribe": ["chat"], "publish": ["secure/inbound"] });
    let mut alice = Rt::with_token(&tern, &super::sign(SECRET, &claims)).await;
    let got = backend.next().await;
    assert_eq!(got, presence(&got, &alice.id, "connected", permissions.clone(), json!("alice")));

    // `message`: published on the inbound topic, acked, with the sender's connection.
    alice
        .send(json!({
            "type": "message",
            "data": {
                "messageType": "create", "compress": false, "payload": { "title": "x" }, "id": "c1",
            },
        }))
        .await;
    assert_eq!(alice.next().await, ack("c1"));
    assert_eq!(
        backend.next().await,
        delivery("secure/inbound", "create", "c1", json!({ "title": "x" }), &alice.id)
    );
    // The backend answers as the npm client's `reply` does; Alice gets it privately.
    let priv_alice = format!("priv/{}", alice.id);
    let response = json!({ "data": { "created": true }, "status": "ok", "id": "c1" });
    backend.publish(&priv_alice, "response", response.clone(), "w1").await;
    assert_eq!(alice.next().await, delivery(&priv_alice, "response", "w1", response, &backend.id));
    // No messageType: `message`; no id: no ack, the broker's id.
    alice.send(json!({ "type": "message", "data": { "payload": "bare" } })).await;
    let got = backend.next().await;
    let id = broker_id(&got);
    assert_eq!(got, delivery("secure/inbound", "message", &id, json!("bare"), &alice.id));

    // Alice's connection drops without a close frame.
    let alice_id = alice.id.clone();
    drop(alice);
    let got = backend.next().await;
    assert_eq!(got, presence(&got, &alice_id, "disconnected", permissions, json!("alice")));

    // An anonymous client, which may not publish to the inbound topic, comes and leaves
    // unannounced: presence cannot be used to flood the backend.
    let mut bob = Rt::anonymous(&tern).await;
    bob.ws.close(None).await.unwrap();
    backend.assert_silent(Duration::from_millis(300)).await;
}

#[tokio::test]
async fn the_chat_example_answers_realtime_clients_from_wasm() {
    guests();
    let tern = Serve::new(&repo().join("examples/chat")).env("TERN_AUTH_SECRET", SECRET).start();
    let resp = client().get(tern.url("/api/ws?room=tau&protocol=realtime")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let url = resp.text().await.unwrap();
    let prefix = format!("ws://{}/realtime?access_token=", tern.addr);
    assert!(url.starts_with(&prefix), "{url}");
    let room = format!("chat/rooms/{:x}", Sha256::digest(b"tau"));

    let mut rt = Rt::connect(&tern, Some(&url[prefix.len()..])).await;
    let permissions = &rt.welcome["data"]["permissions"];
    assert_eq!(permissions["subscribe"], json!([room]), "{}", rt.welcome);
    let mut publish: Vec<&str> =
        permissions["publish"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    publish.sort_unstable();
    assert_eq!(publish, [room.as_str(), "secure/inbound"], "{}", rt.welcome);
    rt.subscribe(&room).await;
    let other = format!("chat/rooms/{:x}", Sha256::digest(b"elsewhere"));
    let answer = rt.try_subscribe(&other).await;
    assert_refusal(&answer, None, Some("subscribe"), Some(&other), "forbidden");

    // A raw client of the room and a function publishing there reach the realtime client.
    let mut raw = ws_connect(&room_url(&tern, "tau").await).await;
    raw.send(Message::text("hi from raw")).await.unwrap();
    let got = rt.next().await;
    let id = broker_id(&got);
    assert_eq!(got, unsent_by_realtime(&room, &id, json!("hi from raw")));
    let resp = client().post(tern.url("/api/notify?room=tau")).body("extra!").send().await.unwrap();
    assert_eq!(resp.status(), 202);
    let got = rt.next().await;
    let id = broker_id(&got);
    assert_eq!(got, unsent_by_realtime(&room, &id, json!("extra!")));
    assert_eq!(ws_next_text(&mut raw).await, "extra!");
    // And the other way.
    rt.publish(&room, "text-message", json!("hi from realtime"), "t1").await;
    assert_eq!(ws_next_text(&mut raw).await, "hi from realtime");

    // `echo` to the backend: rt_backend (wasm) replies on the sender's private topic.
    rt.send(echo(json!({ "q": 1 }), "e1")).await;
    assert_eq!(rt.next().await, ack("e1"));
    let own = format!("priv/{}", rt.id);
    let expect_response = |got: &Value, id: &str, payload: Value| {
        let message_id = broker_id(got);
        let expected = json!({
            "topic": own,
            "messageType": "response",
            "data": {
                "id": message_id,
                "payload": { "id": id, "data": { "echo": payload, "by": "wasm" }, "status": "ok" },
            },
        });
        assert_eq!(got, &expected);
    };
    let got = rt.next().await;
    expect_response(&got, "e1", json!({ "q": 1 }));
    // Other types are left to other backends: acked, not answered.
    rt.send(
        json!({ "type": "message", "data": { "messageType": "create", "payload": 1, "id": "c1" } }),
    )
    .await;
    assert_eq!(rt.next().await, ack("c1"));
    rt.send(echo(json!("ping"), "e2")).await;
    assert_eq!(rt.next().await, ack("e2"));
    let got = rt.next().await;
    expect_response(&got, "e2", json!("ping"));
    rt.assert_silent(Duration::from_millis(500)).await;

    // Without a token, nothing reaches the backend.
    let mut anonymous = Rt::anonymous(&tern).await;
    anonymous.send(echo(json!(1), "a1")).await;
    assert_refusal(
        &anonymous.next().await,
        Some("a1"),
        Some("message"),
        Some("secure/inbound"),
        "forbidden",
    );
    // Nothing of the backend traffic reached the room; nobody was disturbed.
    raw.send(Message::text("still here")).await.unwrap();
    let got = rt.next().await;
    assert_eq!(got["data"]["payload"], json!("still here"), "{got}");
    match tokio::time::timeout(Duration::from_millis(300), ws_next(&mut raw)).await {
        Err(_) => {}
        Ok(frame) => panic!("the raw client got {frame:?}"),
    }
}
