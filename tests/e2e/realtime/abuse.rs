//! What an attacker tries once the basics hold: getting around tokens through the raw
//! bridge, faking presence or a reply, wildcard message types against the npm client's
//! event names, subscription churn, and subscriptions a reload removed and brought back.

use serde_json::json;

use super::{Rt, SECRET, assert_refusal, delivery, project, serve, sign, token};
use crate::harness::{ws_close_code, ws_connect, ws_next_text, ws_refusal};
use futures_util::SinkExt;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn the_raw_bridge_obeys_anonymous_access() {
    let sealed =
        "channel: { match: sealed }\nbridges: { websocket: { enable: true, anonymous: none } }\n";
    let project = project().messaging("sealed", sealed);
    let tern = serve(&project);
    let raw = |topic: &str| format!("ws://{}/ws/channel/{topic}", tern.addr);
    // `anonymous: none`: the raw bridge carries no token.
    assert_eq!(ws_refusal(&raw("sealed/x")).await, 403);
    // `anonymous: subscribe` (news): it receives, and sending closes it with 1008.
    let mut reader = ws_connect(&raw("news/x")).await;
    let mut writer = Rt::with_token(&tern, &token(&[], &["news"])).await;
    writer.publish("news/x", "text-message", json!("headline"), "n1").await;
    assert_eq!(ws_next_text(&mut reader).await, "headline");
    reader.send(Message::text("forged headline")).await.unwrap();
    assert_eq!(ws_close_code(&mut reader).await, 1008);
    // Not set: open, as before tokens existed.
    let open = project_with_unset_anonymous();
    let tern = serve(&open);
    let mut a = ws_connect(&format!("ws://{}/ws/channel/legacy/x", tern.addr)).await;
    let mut b = ws_connect(&format!("ws://{}/ws/channel/legacy/x", tern.addr)).await;
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    a.send(Message::text("still open")).await.unwrap();
    assert_eq!(ws_next_text(&mut b).await, "still open");
}

fn project_with_unset_anonymous() -> crate::harness::TestProject {
    crate::harness::TestProject::new().messaging(
        "legacy",
        "channel: { match: legacy }\nbridges: { websocket: { enable: true } }\n",
    )
}

#[tokio::test]
async fn presence_comes_from_tern_only_and_only_for_who_may_publish_inbound() {
    let project = project();
    let tern = serve(&project);
    let mut backend = Rt::with_token(&tern, &token(&["secure/inbound"], &[])).await;
    backend.subscribe("secure/inbound").await;
    // Anonymous connections come and go unannounced (no flooding the backend).
    for _ in 0..5 {
        let mut anonymous = Rt::anonymous(&tern).await;
        anonymous.ws.close(None).await.unwrap();
    }
    // A client allowed to send cannot forge somebody's presence.
    let mut mallory = Rt::with_token(&tern, &token(&[], &["secure/inbound"])).await;
    let got = backend.next().await;
    assert_eq!(
        (got["messageType"].as_str(), got["data"]["payload"]["connectionId"].as_str()),
        (Some("presence"), Some(mallory.id.as_str())),
        "the first frame is Mallory's own presence"
    );
    let forged = json!({ "connectionId": "aaaaaaaaaaaaaaaaaaaa", "status": "disconnected" });
    mallory
        .send(json!({ "type": "message", "data": { "messageType": "presence", "payload": forged, "id": "f1" } }))
        .await;
    let answer = mallory.next().await;
    assert_refusal(&answer, Some("f1"), Some("message"), Some("secure/inbound"), "forbidden");
    backend.assert_silent(std::time::Duration::from_millis(300)).await;
}

#[tokio::test]
async fn wildcard_types_and_reply_ids_cannot_fire_every_listener() {
    let project = project();
    let tern = serve(&project);
    let mut victim = Rt::anonymous(&tern).await;
    let mut mallory = Rt::anonymous(&tern).await;
    victim.subscribe("chat/room").await;
    mallory.subscribe("chat/room").await;
    // `*` or `.` in a type would match every `chat/room.<type>` listener of the npm client.
    for bad in ["*", "a.b", "text-message.*"] {
        mallory
            .send(json!({ "type": "publish", "data": { "topic": "chat/room", "messageType": bad, "payload": 1, "id": "w" } }))
            .await;
        let answer = mallory.next().await;
        assert_refusal(&answer, Some("w"), Some("publish"), None, "bad-frame");
    }
    // Once Mallory heard from the victim, a reply with id `*` would answer every request
    // the victim waits on: refused. A plain reply goes through.
    victim.publish("chat/room", "text-message", json!("hi"), "v1").await;
    let _ = mallory.next().await;
    let private = format!("priv/{}", victim.id);
    let forged = json!({ "id": "*", "data": "forged", "status": "ok" });
    mallory.send(super::publish_frame(&private, "response", forged, "r1")).await;
    let answer = mallory.next().await;
    assert_refusal(&answer, Some("r1"), Some("publish"), Some(&private), "bad-frame");
    let reply = json!({ "id": "v1", "data": "hello back", "status": "ok" });
    mallory.publish(&private, "response", reply.clone(), "r2").await;
    assert_eq!(victim.next().await, delivery(&private, "response", "r2", reply, &mallory.id));
}

#[tokio::test]
async fn subscription_churn_is_rate_limited_per_connection() {
    let project = project();
    let tern = serve(&project);
    let mut churner = Rt::anonymous(&tern).await;
    for i in 0..150 {
        let kind = if i % 2 == 0 { "subscribe" } else { "unsubscribe" };
        churner.send(json!({ "type": kind, "data": { "topic": "chat/churn" } })).await;
    }
    let mut refused = 0;
    for _ in 0..150 {
        if churner.next().await["data"]["code"] == "rate-limited" {
            refused += 1;
        }
    }
    assert!(refused >= 40, "100 changes per second, 150 sent at once: {refused} refused");
    // The connection itself is fine.
    let mut other = Rt::anonymous(&tern).await;
    other.subscribe("chat/after").await;
}

#[tokio::test]
async fn a_token_naming_an_audience_is_judged_on_the_rest() {
    let project = project();
    let tern = serve(&project);
    let claims = json!({ "exp": super::now() + 60, "aud": "some-app", "subscribe": ["vault"] });
    let mut holder = Rt::with_token(&tern, &sign(SECRET, &claims)).await;
    holder.subscribe("vault/x").await;
}

#[tokio::test]
async fn a_topic_a_reload_removed_and_restored_can_be_subscribed_again() {
    let project = project().messaging(
        "extra",
        "channel: { match: extra }\nbridges: { websocket: { enable: true, anonymous: publish } }\n",
    );
    let tern = serve(&project);
    let mut reader = Rt::anonymous(&tern).await;
    reader.subscribe("extra/x").await;
    let config = project.path().join("messaging/extra.yaml");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::remove_file(&config).unwrap();
    tern.signal("HUP");
    tern.wait_for_lines(&["reloaded"], 1);
    let mut writer = Rt::anonymous(&tern).await;
    let answer = writer.try_publish("extra/x", json!(1), "gone").await;
    assert_refusal(&answer, Some("gone"), Some("publish"), Some("extra/x"), "not-configured");
    std::fs::write(&config, text).unwrap();
    tern.signal("HUP");
    tern.wait_for_lines(&["reloaded"], 2);
    reader.subscribe("extra/x").await;
    writer.publish("extra/x", "text-message", json!("back"), "b1").await;
    assert_eq!(
        reader.next().await,
        delivery("extra/x", "text-message", "b1", json!("back"), &writer.id)
    );
}

#[tokio::test]
async fn a_reload_that_takes_anonymous_access_away_ends_anonymous_subscriptions() {
    let open =
        "channel: { match: extra }\nbridges: { websocket: { enable: true, anonymous: publish } }\n";
    let project = project().messaging("extra", open);
    let tern = serve(&project);
    let mut anonymous = Rt::anonymous(&tern).await;
    anonymous.subscribe("extra/x").await;
    let mut holder = Rt::with_token(&tern, &token(&["extra"], &["extra"])).await;
    holder.subscribe("extra/x").await;
    let mut raw = ws_connect(&format!("ws://{}/ws/channel/extra/x", tern.addr)).await;
    let sealed = open.replace("anonymous: publish", "anonymous: none");
    std::fs::write(project.path().join("messaging/extra.yaml"), sealed).unwrap();
    tern.signal("HUP");
    tern.wait_for_lines(&["reloaded"], 1);
    // The raw client is closed as for a removed channel; the token holder still receives,
    // the anonymous subscriber no longer does.
    assert_eq!(ws_close_code(&mut raw).await, 4404);
    let mut writer = Rt::with_token(&tern, &token(&[], &["extra"])).await;
    writer.publish("extra/x", "text-message", json!("members only"), "m1").await;
    let expected = delivery("extra/x", "text-message", "m1", json!("members only"), &writer.id);
    assert_eq!(holder.next().await, expected);
    anonymous.assert_silent(std::time::Duration::from_millis(300)).await;
    let answer = anonymous.try_subscribe("extra/x").await;
    assert_refusal(&answer, None, Some("subscribe"), Some("extra/x"), "forbidden");
}
