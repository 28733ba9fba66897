//! Client frames tern refuses or answers: malformed frames, unknown types, frames over the
//! size limit; the welcome frame, acks and subscription confirmations.

use std::time::Duration;

use futures_util::SinkExt;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use super::{
    Rt, ack, assert_refusal, broker_id, confirmation, delivery, pair, project, serve, still_talking,
};
use crate::harness::ws_close_code;

#[tokio::test]
async fn malformed_frames_get_bad_frame_and_the_connection_stays_usable() {
    let project = project();
    let tern = serve(&project);
    let (mut offender, mut bystander) = pair(&tern, "chat/bad").await;
    // (frame, id echoed, type echoed)
    let cases: &[(&str, Option<&str>, Option<&str>)] = &[
        // Not JSON.
        ("not json", None, None),
        (r#"{"type":"subscribe","data":{"topic":"chat/x"}"#, None, None),
        // JSON, not an object.
        ("[1,2,3]", None, None),
        (r#""subscribe""#, None, None),
        ("42", None, None),
        ("null", None, None),
        // No `type`, or not a string.
        ("{}", None, None),
        (r#"{"data":{"topic":"chat/x"}}"#, None, None),
        (r#"{"type":7,"data":{"topic":"chat/x"}}"#, None, None),
        // No `data`, no `data.topic`, or ill-typed.
        (r#"{"type":"subscribe"}"#, None, Some("subscribe")),
        (r#"{"type":"subscribe","data":{}}"#, None, Some("subscribe")),
        (r#"{"type":"subscribe","data":{"topic":5}}"#, None, Some("subscribe")),
        (r#"{"type":"unsubscribe","data":"chat/x"}"#, None, Some("unsubscribe")),
        (r#"{"type":"publish"}"#, None, Some("publish")),
        (r#"{"type":"publish","data":{"payload":1,"id":"p1"}}"#, Some("p1"), Some("publish")),
        (r#"{"type":"publish","data":{"topic":["chat/x"],"payload":1}}"#, None, Some("publish")),
        (
            r#"{"type":"publish","data":{"topic":"chat/x","messageType":7,"payload":1}}"#,
            None,
            Some("publish"),
        ),
        (
            r#"{"type":"publish","data":{"topic":"chat/x","payload":1,"id":{"n":1}}}"#,
            None,
            Some("publish"),
        ),
        (r#"{"type":"message","data":[1]}"#, None, Some("message")),
    ];
    for (frame, id, kind) in cases {
        offender.send_text(frame).await;
        let answer = offender.next().await;
        println!("{frame} -> {answer}");
        assert_refusal(&answer, *id, *kind, None, "bad-frame");
    }
    // Binary frames are not part of the protocol.
    offender.ws.send(Message::binary(b"{\"type\":\"subscribe\"}".to_vec())).await.unwrap();
    assert_refusal(&offender.next().await, None, None, None, "bad-frame");
    // Nothing reached the topic, and both still talk both ways.
    still_talking(&mut offender, &mut bystander, "chat/bad", "after-1").await;
    still_talking(&mut bystander, &mut offender, "chat/bad", "after-2").await;
}

#[tokio::test]
async fn an_unknown_type_gets_unknown_type_with_its_id_echoed() {
    let project = project();
    let tern = serve(&project);
    let (mut offender, mut bystander) = pair(&tern, "chat/unknown").await;
    offender
        .send(json!({ "type": "dance", "data": { "id": "d1", "topic": "chat/unknown" } }))
        .await;
    assert_refusal(&offender.next().await, Some("d1"), Some("dance"), None, "unknown-type");
    // A number id is echoed as its decimal text; no id, no data: null.
    offender.send(json!({ "type": "dance", "data": { "id": 7 } })).await;
    assert_refusal(&offender.next().await, Some("7"), Some("dance"), None, "unknown-type");
    offender.send(json!({ "type": "dance" })).await;
    assert_refusal(&offender.next().await, None, Some("dance"), None, "unknown-type");
    // Types are case-sensitive.
    offender.send(json!({ "type": "Subscribe", "data": { "topic": "chat/x" } })).await;
    assert_refusal(&offender.next().await, None, Some("Subscribe"), None, "unknown-type");
    still_talking(&mut offender, &mut bystander, "chat/unknown", "after-1").await;
    still_talking(&mut bystander, &mut offender, "chat/unknown", "after-2").await;
}

#[tokio::test]
async fn a_frame_over_max_message_closes_only_its_sender_with_1009() {
    let project = project().settings("websocket:\n  max_message: 1KiB\n");
    let tern = serve(&project);
    let mut big = Rt::anonymous(&tern).await;
    big.subscribe("chat/big").await;
    let (mut a, mut b) = pair(&tern, "chat/big").await;
    let payload = "x".repeat(2048);
    big.send(json!({ "type": "publish", "data": { "topic": "chat/big", "payload": payload } }))
        .await;
    assert_eq!(ws_close_code(&mut big.ws).await, 1009);
    // Nothing of it reached the topic; the others go on.
    still_talking(&mut a, &mut b, "chat/big", "after-1").await;
    still_talking(&mut b, &mut a, "chat/big", "after-2").await;
}

#[tokio::test]
async fn the_welcome_frame_says_who_the_connection_is_and_what_it_may_do() {
    let project = project();
    let tern = serve(&project);
    let anonymous = Rt::anonymous(&tern).await;
    let id = &anonymous.id;
    assert!(
        id.len() == 20 && id.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
        "a connection id is 20 characters of [0-9a-f]: {id:?}"
    );
    assert_eq!(
        anonymous.welcome,
        json!({
            "topic": "main",
            "messageType": "welcome",
            "data": {
                "connection": { "id": id, "appId": "tern", "remoteAddress": "127.0.0.1" },
                "permissions": { "subscribe": [], "publish": [] },
                "user": null,
            },
        })
    );
    let token = super::sign(
        super::SECRET,
        &json!({
            "exp": super::now() + 3600,
            "sub": "alice",
            "subscribe": ["chat", "vault/a"],
            "publish": ["*"],
        }),
    );
    let alice = Rt::with_token(&tern, &token).await;
    assert_ne!(alice.id, anonymous.id, "two connections, one id");
    assert_eq!(
        alice.welcome,
        json!({
            "topic": "main",
            "messageType": "welcome",
            "data": {
                "connection": { "id": alice.id, "appId": "tern", "remoteAddress": "127.0.0.1" },
                "permissions": { "subscribe": ["chat", "vault/a"], "publish": ["*"] },
                "user": "alice",
            },
        })
    );
}

#[tokio::test]
async fn publishes_are_acked_by_id_only_when_they_have_one() {
    let project = project();
    let tern = serve(&project);
    let (mut publisher, mut bystander) = pair(&tern, "chat/acks").await;
    let topic = "chat/acks";
    // Everything the client sends: compress (ignored) and unknown fields (ignored).
    publisher
        .send(json!({
            "type": "publish",
            "extra": true,
            "data": {
                "topic": topic, "messageType": "text-message", "compress": true,
                "payload": { "a": 1 }, "id": "m1", "extra": [1],
            },
        }))
        .await;
    assert_eq!(publisher.next().await, ack("m1"));
    assert_eq!(
        bystander.next().await,
        delivery(topic, "text-message", "m1", json!({ "a": 1 }), &publisher.id)
    );
    // No id: no ack, and the delivery carries the broker's id; no messageType: `message`.
    publisher
        .send(json!({ "type": "publish", "data": { "topic": topic, "payload": "plain" } }))
        .await;
    let got = bystander.next().await;
    let id = broker_id(&got);
    assert_eq!(got, delivery(topic, "message", &id, json!("plain"), &publisher.id));
    // A number id is taken as its decimal text.
    publisher
        .send(json!({ "type": "publish", "data": { "topic": topic, "payload": null, "id": 42 } }))
        .await;
    // The publisher's next frame is this ack: none for the publish without an id, and
    // none of its own messages although it is subscribed.
    assert_eq!(publisher.next().await, ack("42"));
    assert_eq!(
        bystander.next().await,
        delivery(topic, "message", "42", json!(null), &publisher.id)
    );
    bystander.publish(topic, "text-message", json!("marker"), "b1").await;
    assert_eq!(
        publisher.next().await,
        delivery(topic, "text-message", "b1", json!("marker"), &bystander.id)
    );
    publisher.assert_silent(Duration::from_millis(300)).await;
}

#[tokio::test]
async fn subscribe_and_unsubscribe_are_confirmed() {
    let project = project();
    let tern = serve(&project);
    let mut reader = Rt::anonymous(&tern).await;
    let mut writer = Rt::anonymous(&tern).await;
    reader.subscribe("chat/s").await;
    // Again: confirmed again, and still one subscription (one delivery per message).
    reader.subscribe("chat/s").await;
    reader.subscribe("chat/t").await;
    writer.publish("chat/s", "text-message", json!("one"), "w1").await;
    assert_eq!(
        reader.next().await,
        delivery("chat/s", "text-message", "w1", json!("one"), &writer.id)
    );
    reader.send(json!({ "type": "unsubscribe", "data": { "topic": "chat/s" } })).await;
    assert_eq!(reader.next().await, confirmation("unsubscribed", "chat/s"));
    // Unsubscribing from a topic it is not subscribed to is not an error.
    reader.send(json!({ "type": "unsubscribe", "data": { "topic": "chat/never" } })).await;
    assert_eq!(reader.next().await, confirmation("unsubscribed", "chat/never"));
    // chat/s no longer reaches it; chat/t still does.
    writer.publish("chat/s", "text-message", json!("gone"), "w2").await;
    writer.publish("chat/t", "text-message", json!("here"), "w3").await;
    assert_eq!(
        reader.next().await,
        delivery("chat/t", "text-message", "w3", json!("here"), &writer.id)
    );
    reader.assert_silent(Duration::from_millis(300)).await;
}
