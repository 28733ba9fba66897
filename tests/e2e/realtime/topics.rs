//! Which topics a connection may use: names no config matches or that are not channel
//! names, what tokens and anonymous access allow, private topics, the topic limit.

use std::time::Duration;

use serde_json::json;

use super::{
    Rt, ack, assert_refusal, confirmation, delivery, pair, project, serve, still_talking, token,
};

#[tokio::test]
async fn topics_no_config_bridges_or_that_are_not_names_are_refused() {
    let project = project();
    let tern = serve(&project);
    let (mut offender, mut bystander) = pair(&tern, "chat/names").await;
    // No messaging config matches; one matches but does not enable the bridge.
    for topic in ["nowhere", "nowhere/x", "quiet/x", "chatx"] {
        let answer = offender.try_subscribe(topic).await;
        assert_refusal(&answer, None, Some("subscribe"), Some(topic), "not-configured");
    }
    let answer = offender.try_publish("nowhere/x", json!(1), "n1").await;
    assert_refusal(&answer, Some("n1"), Some("publish"), Some("nowhere/x"), "not-configured");
    // Not channel names at all.
    let long = format!("chat/{}", "a".repeat(300));
    for topic in ["", "chat//x", "chat/../x", "chat/./x", "/chat", "chat/", "chat/a b", &long] {
        let answer = offender.try_subscribe(topic).await;
        assert_refusal(&answer, None, Some("subscribe"), Some(topic), "invalid-topic");
    }
    let answer = offender.try_publish("chat/a b", json!(1), "n2").await;
    assert_refusal(&answer, Some("n2"), Some("publish"), Some("chat/a b"), "invalid-topic");
    still_talking(&mut offender, &mut bystander, "chat/names", "after-1").await;
    still_talking(&mut bystander, &mut offender, "chat/names", "after-2").await;
}

#[tokio::test]
async fn tokens_cover_topics_by_whole_segments_and_per_action() {
    let project = project();
    let tern = serve(&project);
    let mut holder = Rt::with_token(&tern, &token(&["vault/a"], &["vault/a/out"])).await;
    let mut bystander = Rt::with_token(&tern, &token(&["vault"], &["vault"])).await;
    bystander.subscribe("vault/a/x").await;
    bystander.subscribe("vault/a/out").await;
    holder.subscribe("vault/a").await;
    holder.subscribe("vault/a/x").await;
    for topic in ["vault/ab", "vault", "vault/b", "vault/b/a"] {
        let answer = holder.try_subscribe(topic).await;
        assert_refusal(&answer, None, Some("subscribe"), Some(topic), "forbidden");
    }
    // Subscribing implies nothing about publishing...
    let answer = holder.try_publish("vault/a", json!(1), "f1").await;
    assert_refusal(&answer, Some("f1"), Some("publish"), Some("vault/a"), "forbidden");
    holder.publish("vault/a/out", "text-message", json!("out"), "f2").await;
    assert_eq!(
        bystander.next().await,
        delivery("vault/a/out", "text-message", "f2", json!("out"), &holder.id)
    );
    // ...nor publishing about subscribing.
    let mut writer = Rt::with_token(&tern, &token(&[], &["vault/w"])).await;
    let answer = writer.try_subscribe("vault/w").await;
    assert_refusal(&answer, None, Some("subscribe"), Some("vault/w"), "forbidden");
    writer.publish("vault/w", "text-message", json!("w"), "f3").await;
    // Without a token, nothing here.
    let mut anonymous = Rt::anonymous(&tern).await;
    let answer = anonymous.try_subscribe("vault/a").await;
    assert_refusal(&answer, None, Some("subscribe"), Some("vault/a"), "forbidden");
    // `*` covers every configured topic, not the unconfigured ones.
    let mut star = Rt::with_token(&tern, &token(&["*"], &["*"])).await;
    star.subscribe("vault/anything/below").await;
    star.subscribe("news/today").await;
    let answer = star.try_subscribe("nowhere/x").await;
    assert_refusal(&answer, None, Some("subscribe"), Some("nowhere/x"), "not-configured");
    // The refused client goes on; the bystander got nothing it should not have.
    still_talking(&mut holder, &mut bystander, "vault/a/out", "after-1").await;
    still_talking(&mut bystander, &mut holder, "vault/a/x", "after-2").await;
    bystander.assert_silent(Duration::from_millis(300)).await;
}

#[tokio::test]
async fn anonymous_access_is_what_the_messaging_config_allows() {
    let project = project();
    let tern = serve(&project);
    // `anonymous: subscribe`: subscribing works, publishing is forbidden.
    let mut reader = Rt::anonymous(&tern).await;
    reader.subscribe("news/today").await;
    let answer = reader.try_publish("news/today", json!("no"), "a1").await;
    assert_refusal(&answer, Some("a1"), Some("publish"), Some("news/today"), "forbidden");
    let mut editor = Rt::with_token(&tern, &token(&[], &["news"])).await;
    editor.publish("news/today", "headline", json!({ "title": "t" }), "e1").await;
    assert_eq!(
        reader.next().await,
        delivery("news/today", "headline", "e1", json!({ "title": "t" }), &editor.id)
    );
    // `anonymous: publish`: both.
    let (mut a, mut b) = pair(&tern, "chat/anon").await;
    still_talking(&mut a, &mut b, "chat/anon", "anon-1").await;
    // `anonymous: none` (the default): neither.
    let answer = a.try_subscribe("vault/x").await;
    assert_refusal(&answer, None, Some("subscribe"), Some("vault/x"), "forbidden");
    let answer = a.try_publish("vault/x", json!(1), "a2").await;
    assert_refusal(&answer, Some("a2"), Some("publish"), Some("vault/x"), "forbidden");
    // Sending to the backend is publishing to the inbound topic, whose config allows
    // nothing anonymously.
    a.send(json!({ "type": "message", "data": { "payload": 1, "id": "s1" } })).await;
    assert_refusal(
        &a.next().await,
        Some("s1"),
        Some("message"),
        Some("secure/inbound"),
        "forbidden",
    );
    still_talking(&mut a, &mut b, "chat/anon", "anon-2").await;
    reader.assert_silent(Duration::from_millis(300)).await;
}

#[tokio::test]
async fn private_topics_are_for_replies_to_whoever_was_heard_from() {
    let project = project();
    let tern = serve(&project);
    let mut x = Rt::anonymous(&tern).await;
    let mut y = Rt::anonymous(&tern).await;
    let mut z = Rt::anonymous(&tern).await;
    let priv_x = format!("priv/{}", x.id);
    let priv_y = format!("priv/{}", y.id);
    // Nobody subscribes to another's private topic; one's own is already one's own.
    let answer = y.try_subscribe(&priv_x).await;
    assert_refusal(&answer, None, Some("subscribe"), Some(&priv_x), "forbidden");
    let answer = y.try_subscribe("priv/00000000000000000000").await;
    assert_refusal(
        &answer,
        None,
        Some("subscribe"),
        Some("priv/00000000000000000000"),
        "forbidden",
    );
    x.send(json!({ "type": "subscribe", "data": { "topic": priv_x } })).await;
    assert_eq!(x.next().await, confirmation("subscribed", &priv_x));
    // Y has not heard from X yet: it may not write to X.
    let answer = y.try_publish(&priv_x, json!("hi"), "q1").await;
    assert_refusal(&answer, Some("q1"), Some("publish"), Some(&priv_x), "forbidden");
    // X speaks on a topic Y reads.
    y.subscribe("chat/p").await;
    x.publish("chat/p", "create", json!({ "n": 1 }), "x1").await;
    assert_eq!(y.next().await, delivery("chat/p", "create", "x1", json!({ "n": 1 }), &x.id));
    // Now Y may answer X, and X gets it on its private topic.
    let response = json!({ "data": "pong", "status": "ok", "id": "x1" });
    y.publish(&priv_x, "response", response.clone(), "r1").await;
    assert_eq!(x.next().await, delivery(&priv_x, "response", "r1", response, &y.id));
    // And X, having heard from Y, may answer Y.
    x.publish(&priv_y, "response", json!("back"), "r2").await;
    assert_eq!(y.next().await, delivery(&priv_y, "response", "r2", json!("back"), &x.id));
    // Z never heard from X.
    let answer = z.try_publish(&priv_x, json!("hi"), "z1").await;
    assert_refusal(&answer, Some("z1"), Some("publish"), Some(&priv_x), "forbidden");
    x.assert_silent(Duration::from_millis(300)).await;
    // Everyone still talks.
    z.subscribe("chat/p").await;
    still_talking(&mut x, &mut z, "chat/p", "after-1").await;
    assert_eq!(
        y.next().await,
        delivery(
            "chat/p",
            "check",
            "after-1",
            json!({ "still": "talking", "id": "after-1" }),
            &x.id
        )
    );
}

#[tokio::test]
async fn a_connection_has_at_most_max_topics_per_connection() {
    let project = project().settings("realtime:\n  max_topics_per_connection: 2\n");
    let tern = serve(&project);
    let mut full = Rt::anonymous(&tern).await;
    let mut other = Rt::anonymous(&tern).await;
    full.subscribe("chat/1").await;
    full.subscribe("chat/2").await;
    let answer = full.try_subscribe("chat/3").await;
    assert_refusal(&answer, None, Some("subscribe"), Some("chat/3"), "too-many-topics");
    // A topic it has is no new one; its private topic does not count.
    full.subscribe("chat/1").await;
    let own = format!("priv/{}", full.id);
    full.subscribe(&own).await;
    // Room again after an unsubscribe.
    full.send(json!({ "type": "unsubscribe", "data": { "topic": "chat/1" } })).await;
    assert_eq!(full.next().await, confirmation("unsubscribed", "chat/1"));
    full.subscribe("chat/3").await;
    // The refusal disturbed nothing: its topics and the other client work.
    other.subscribe("chat/2").await;
    other.publish("chat/3", "text-message", json!(3), "o1").await;
    assert_eq!(full.next().await, delivery("chat/3", "text-message", "o1", json!(3), &other.id));
    still_talking(&mut full, &mut other, "chat/2", "after").await;
    assert_eq!(
        full.try_publish("chat/2", json!(2), "f1").await,
        ack("f1"),
        "publishing does not count toward the topics"
    );
}
