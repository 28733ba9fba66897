//! Access tokens: refused with 401 before the upgrade (the body says why), checked at
//! connect only; a host without a secret refuses every token and still takes anonymous
//! clients.

use std::time::Duration;

use jsonwebtoken::Algorithm;
use serde_json::{Value, json};

use super::{
    Rt, SECRET, assert_refusal, now, pair, project, realtime_url, sign, sign_with, still_talking,
    token, unsigned,
};
use crate::harness::{Tern, client, ws_refusal};

/// Asks for a WebSocket upgrade of `/realtime?access_token=TOKEN` and returns the HTTP
/// status and the JSON body of the refusal; checks a real WebSocket client is refused
/// with the same status.
async fn refused(tern: &Tern, token: &str) -> (u16, Value) {
    let url = realtime_url(tern, Some(token));
    let resp = client()
        .get(url.replacen("ws://", "http://", 1))
        .header("upgrade", "websocket")
        .header("connection", "Upgrade")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .header("sec-websocket-version", "13")
        .send()
        .await
        .expect("send the handshake");
    let status = resp.status().as_u16();
    let text = resp.text().await.expect("read the body");
    let body =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("body not JSON ({e}): {text}"));
    assert_eq!(ws_refusal(&url).await, status, "a WebSocket client gets the same answer");
    (status, body)
}

/// Whether `token` gets 401 `{"error": "..."}` whose text contains `reason` and none of
/// `not` (case-insensitively): the problem, if any.
async fn check_401(
    tern: &Tern,
    what: &str,
    token: &str,
    reason: &str,
    not: &[&str],
) -> Option<String> {
    let (status, body) = refused(tern, token).await;
    println!("{what}: {status} {body}");
    if status != 401 {
        return Some(format!("{what}: status {status}, not 401: {body}"));
    }
    let Some(error) = body["error"].as_str() else {
        return Some(format!("{what}: no error text: {body}"));
    };
    if body != json!({ "error": error }) {
        return Some(format!("{what}: the body is not {{\"error\": ...}}: {body}"));
    }
    let lower = error.to_lowercase();
    if !lower.contains(&reason.to_lowercase()) {
        return Some(format!("{what}: the error does not say {reason:?}: {error}"));
    }
    not.iter()
        .find(|wrong| lower.contains(&wrong.to_lowercase()))
        .map(|wrong| format!("{what}: the error blames {wrong:?}: {error}"))
}

/// Checks that `token` gets 401 `{"error": "..."}` whose text contains `reason` and none of
/// `not`, case-insensitively.
async fn assert_401(tern: &Tern, what: &str, token: &str, reason: &str, not: &[&str]) {
    if let Some(problem) = check_401(tern, what, token, reason, not).await {
        panic!("{problem}");
    }
}

#[tokio::test]
async fn tokens_that_are_not_valid_get_401_before_the_upgrade() {
    let project = project();
    let tern = super::serve(&project);
    let (mut a, mut b) = pair(&tern, "chat/tokens").await;
    let all = |exp: u64| json!({ "exp": exp, "subscribe": ["*"], "publish": ["*"] });
    let hour = now() + 3600;
    // (what, token, what the error must say, what it must not blame)
    let other_secret = "another secret, also 32 bytes or more!";
    let cases: &[(&str, String, &str, &[&str])] = &[
        ("expired", sign(SECRET, &all(now() - 60)), "expired", &[]),
        ("another secret", sign(other_secret, &all(hour)), "signature", &[]),
        ("alg none", unsigned(&all(hour)), "HS256", &["claims", "malformed"]),
        ("HS512", sign_with(Algorithm::HS512, SECRET, &all(hour)), "HS256", &[]),
        (
            "no exp",
            sign(SECRET, &json!({ "subscribe": ["*"], "publish": ["*"] })),
            "exp",
            &["expired"],
        ),
        (
            "nbf in the future",
            sign(SECRET, &json!({ "exp": hour, "nbf": now() + 600, "subscribe": ["*"] })),
            "nbf",
            &[],
        ),
        ("garbage", "not-a-token".into(), "malformed", &[]),
        ("three garbage parts", "a.b.c".into(), "malformed", &[]),
    ];
    let mut problems = Vec::new();
    for (what, token, reason, not) in cases {
        problems.extend(check_401(&tern, what, token, reason, not).await);
    }
    // A valid token and no token at all still connect; nobody connected was disturbed.
    let mut holder = Rt::with_token(&tern, &token(&["vault"], &["vault"])).await;
    holder.subscribe("vault/ok").await;
    Rt::anonymous(&tern).await;
    still_talking(&mut a, &mut b, "chat/tokens", "after-1").await;
    still_talking(&mut b, &mut a, "chat/tokens", "after-2").await;
    assert!(problems.is_empty(), "tokens refused for the wrong reason:\n{}", problems.join("\n"));
}

#[tokio::test]
async fn a_token_is_checked_at_connect_only() {
    let project = project();
    let tern = super::serve(&project);
    let exp = now() + 2;
    let short = sign(SECRET, &json!({ "exp": exp, "subscribe": ["vault"], "publish": ["vault"] }));
    let mut holder = Rt::with_token(&tern, &short).await;
    let mut reader = Rt::with_token(&tern, &token(&["vault"], &[])).await;
    reader.subscribe("vault/late").await;
    // Past its expiry: the session goes on, a new connection with it is refused.
    tokio::time::sleep(Duration::from_millis(3500)).await;
    assert!(now() > exp, "the token has expired by now");
    still_talking(&mut holder, &mut reader, "vault/late", "late-1").await;
    assert_401(&tern, "expired since", &short, "expired", &[]).await;
}

#[tokio::test]
async fn a_host_without_a_secret_refuses_every_token_and_takes_anonymous_clients() {
    assert!(
        std::env::var_os("TERN_AUTH_SECRET").is_none(),
        "this test needs TERN_AUTH_SECRET unset in the test's environment"
    );
    let project = project();
    let tern = Tern::serve(project.path());
    let (mut a, mut b) = pair(&tern, "chat/nosecret").await;
    assert_401(&tern, "no secret", &token(&["*"], &["*"]), "secret", &[]).await;
    assert_401(&tern, "no secret, garbage", "not-a-token", "", &[]).await;
    let c = Rt::anonymous(&tern).await;
    assert_eq!(c.welcome["data"]["permissions"], json!({ "subscribe": [], "publish": [] }));
    assert_eq!(c.welcome["data"]["user"], json!(null));
    // Anonymous access is all there is.
    let answer = a.try_subscribe("vault/x").await;
    assert_refusal(&answer, None, Some("subscribe"), Some("vault/x"), "forbidden");
    still_talking(&mut a, &mut b, "chat/nosecret", "after").await;
}
