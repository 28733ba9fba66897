//! Static websites served by the real binary: types, ETags, gzip, redirects, and the
//! requests an attacker sends (traversal in every spelling, methods, hidden files).

use crate::harness::{Serve, Tern, TestProject, client, raw_http};

fn site() -> TestProject {
    let project = TestProject::new().function(
        "hello",
        "trigger: { type: https, method: GET, paths: [/hello] }\nsource: {wasm:hello}\n",
    );
    let www = project.path().join("www");
    std::fs::create_dir_all(www.join("docs")).unwrap();
    std::fs::write(www.join("index.html"), "<h1>tern</h1>".repeat(100)).unwrap();
    std::fs::write(www.join("app.js"), "console.log('tern')").unwrap();
    std::fs::write(www.join("docs/index.html"), "docs").unwrap();
    std::fs::write(www.join(".env"), "SECRET=1").unwrap();
    std::fs::write(project.path().join("secret.txt"), "outside").unwrap();
    let yaml = "paths: [/]\ndirectory: ../www\n";
    std::fs::create_dir_all(project.path().join("websites")).unwrap();
    std::fs::write(project.path().join("websites/www.yaml"), yaml).unwrap();
    project
}

/// `GET path` on a connection of its own, as the raw answer.
fn get(addr: std::net::SocketAddr, path: &str) -> crate::harness::RawAnswer {
    let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    raw_http(addr, request.as_bytes())
}

#[tokio::test]
async fn a_site_serves_its_files_with_types_etags_and_gzip() {
    let project = site();
    let tern = Tern::serve(project.path());
    let resp = client().get(tern.url("/")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/html; charset=utf-8");
    assert_eq!(resp.headers()["x-content-type-options"], "nosniff");
    let etag = resp.headers()["etag"].to_str().unwrap().to_owned();
    assert_eq!(resp.text().await.unwrap(), "<h1>tern</h1>".repeat(100));
    let again = client().get(tern.url("/index.html")).header("if-none-match", &etag);
    let again = again.send().await.unwrap();
    assert_eq!(again.status(), 304);
    let gz = client().get(tern.url("/")).header("accept-encoding", "gzip").send().await.unwrap();
    assert_eq!(gz.headers()["content-encoding"], "gzip");
    assert_eq!(gz.headers()["vary"], "accept-encoding");
    assert_ne!(gz.headers()["etag"].to_str().unwrap(), etag);
    assert!(gz.bytes().await.unwrap().len() < 1300);
    let js = client().get(tern.url("/app.js")).send().await.unwrap();
    assert_eq!(js.headers()["content-type"], "text/javascript; charset=utf-8");
    // Functions come first.
    assert_eq!(client().get(tern.url("/hello?name=x")).send().await.unwrap().status(), 200);
}

#[tokio::test]
async fn a_site_answers_what_is_not_there_and_refuses_traversal() {
    let project = site();
    let tern = Tern::serve(project.path());
    let get = |path: &str| get(tern.addr, path);
    let docs = get("/docs?x=1");
    assert!(docs.starts_with("HTTP/1.1 308"), "{docs}");
    assert!(docs.to_ascii_lowercase().contains("location: /docs/?x=1"), "{docs}");
    assert!(get("/docs/").starts_with("HTTP/1.1 200"));
    assert!(get("/nothing.html").starts_with("HTTP/1.1 404"));
    assert!(get("/.env").starts_with("HTTP/1.1 404"), "hidden files are not served");
    for bad in [
        "/../secret.txt",
        "/%2e%2e/secret.txt",
        "/docs/..%2f..%2fsecret.txt",
        "//secret.txt",
        "/a%5c..%5csecret.txt",
        "/%00",
        "/%ff",
    ] {
        let answer = get(bad);
        assert!(answer.starts_with("HTTP/1.1 400"), "{bad}: {answer}");
        assert!(!answer.contains("outside"), "{bad} reached the file");
    }
    let post = raw_http(
        tern.addr,
        b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    );
    assert!(post.starts_with("HTTP/1.1 405"), "{post}");
    assert!(post.contains("GET, HEAD"), "{post}");
    // The host keeps serving.
    assert_eq!(client().get(tern.url("/")).send().await.unwrap().status(), 200);
}

/// The chat page's first call, `/api/chat/session` in examples/chat: what it answers, and
/// what it refuses, with the reason in the body.
#[tokio::test]
async fn the_chat_session_function_answers_a_room_and_refuses_bad_names() {
    let project = TestProject::from_example("chat");
    let secret = "e2e-chat-session-secret-0123456789";
    let tern = Serve::new(project.path()).env("TERN_AUTH_SECRET", secret).start();
    let get = |query: &str| client().get(tern.url(&format!("/api/chat/session?{query}"))).send();

    let resp = get("room=tau&user=alice").await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let body: serde_json::Value = resp.json().await.unwrap();
    let channel = "chat/rooms/2bfcf64c38aeb71a5f36b5aa43dd96cd81c76452533e46061a35e4c46c87eaf1";
    assert_eq!(body["channel"], channel, "{body}");
    assert_eq!(body["url"], format!("ws://{}/connection/websocket", tern.addr), "{body}");
    assert_eq!(body["user"], "alice");
    assert_eq!(body["token"].as_str().map(|t| t.split('.').count()), Some(3), "a JWT: {body}");

    let guest: serde_json::Value = get("room=tau").await.unwrap().json().await.unwrap();
    assert_eq!((guest["token"].is_null(), guest["user"].is_null()), (true, true), "{guest}");
    assert_eq!(guest["channel"], channel);

    // The URL follows the host name the page was loaded from.
    let behind = client()
        .get(tern.url("/api/chat/session?room=tau"))
        .header("host", "chat.example:9000")
        .send()
        .await
        .unwrap();
    let behind: serde_json::Value = behind.json().await.unwrap();
    assert_eq!(behind["url"], "ws://chat.example:9000/connection/websocket");

    let long_room = "r".repeat(65);
    let long_user = "u".repeat(33);
    for (query, field) in [
        ("", "room"),
        ("room=", "room"),
        ("room=%20%20", "room"),
        ("room=a%01b", "room"),
        (&*format!("room={long_room}"), "room"),
        ("room=tau&user=%3Cscript%3E", "user"),
        ("room=tau&user=a%0Ab", "user"),
        (&*format!("room=tau&user={long_user}"), "user"),
    ] {
        let resp = get(query).await.unwrap();
        assert_eq!(resp.status(), 400, "?{query}");
        let text = resp.text().await.unwrap();
        assert!(text.contains(&format!("{field} must be")), "?{query}: {text}");
    }
    let ok = get(&format!("room={}&user={}", "r".repeat(64), "u".repeat(32))).await.unwrap();
    assert_eq!(ok.status(), 200, "at the limits");
}

/// A site under a prefix: `/w` is redirected to `/w/` (so relative links work), `/wx` is
/// not the site's, and a 404 is never cached however long the site's `max_age`.
#[tokio::test]
async fn a_site_under_a_prefix_redirects_its_root_and_keeps_to_its_prefix() {
    let project = TestProject::new();
    let www = project.path().join("www");
    std::fs::create_dir_all(&www).unwrap();
    std::fs::write(www.join("index.html"), "w").unwrap();
    std::fs::create_dir_all(project.path().join("websites")).unwrap();
    let yaml = "paths: [/w]\ndirectory: ../www\nmax_age: 1d\n";
    std::fs::write(project.path().join("websites/w.yaml"), yaml).unwrap();
    let tern = Tern::serve(project.path());
    let get = |path: &str| get(tern.addr, path);
    let root = get("/w?room=a");
    assert!(root.starts_with("HTTP/1.1 308"), "{root}");
    assert!(root.to_ascii_lowercase().contains("location: /w/?room=a"), "{root}");
    let index = get("/w/");
    assert!(index.starts_with("HTTP/1.1 200"), "{index}");
    assert!(index.contains("max-age=86400"), "{index}");
    let missing = get("/w/nothing");
    assert!(missing.starts_with("HTTP/1.1 404"), "{missing}");
    assert!(missing.contains("cache-control: no-cache"), "a 404 is not cached: {missing}");
    let other = get("/wx");
    assert!(other.starts_with("HTTP/1.1 404") && !other.contains("website `w`"), "{other}");
}

/// A site whose directory holds the project (or a secret file) would serve tern.yaml and
/// the secrets: `tern check` refuses it, naming the field.
#[test]
fn a_site_may_not_serve_the_project_or_its_secrets() {
    let project = TestProject::new().settings("auth:\n  secret_file: keys/auth.key\n");
    std::fs::create_dir_all(project.path().join("keys")).unwrap();
    std::fs::write(project.path().join("keys/auth.key"), "a-secret-of-enough-length-0123456789")
        .unwrap();
    std::fs::create_dir_all(project.path().join("websites")).unwrap();
    let site = project.path().join("websites/all.yaml");
    std::fs::write(&site, "paths: [/]\ndirectory: ..\n").unwrap();
    let (code, _, err) = crate::harness::tern_cli(project.path(), &["check", "."]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("all.yaml:2:1: field `directory`"), "{err}");
    assert!(err.contains("holds the project itself"), "{err}");
    std::fs::write(&site, "paths: [/]\ndirectory: ../keys\n").unwrap();
    let (code, _, err) = crate::harness::tern_cli(project.path(), &["check", "."]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("(auth.secret_file): a secret would be served to anyone"), "{err}");
}
