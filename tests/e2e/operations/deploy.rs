//! `tern deploy` and `tern rollback` against a running tern, with a client connected
//! throughout; a restarted tern serves what was deployed last.

use std::path::Path;

use futures_util::SinkExt;
use tokio_tungstenite::tungstenite::Message;

use super::reload::{KEY, write};
use crate::harness::{Serve, Tern, TestProject, client, ws_connect, ws_next_text};

const CHAT: &str = "channel: { match: chat }\nbridges: { websocket: { enable: true } }\n";
const HELLO: &str =
    "trigger: { type: https, method: GET, paths: [/hello] }\nsource: {wasm:hello}\n";
const ECHO: &str = "trigger: { type: https, method: POST, paths: [/echo] }\nsource: {wasm:echo}\n";

/// Runs `tern ARGS` with `key` as the admin key: exit code, stdout, stderr.
fn tern_with_key(args: &[&str], key: &str) -> (i32, String, String) {
    crate::harness::tern_cli_with(Path::new("."), args, &[("TERN_ADMIN_KEY", key)])
}

fn project(with_echo: bool) -> TestProject {
    let project = TestProject::new().messaging("chat", CHAT);
    write(project.path(), "functions/hello.yaml", HELLO);
    if with_echo {
        write(project.path(), "functions/echo.yaml", ECHO);
    }
    project
}

async fn echo_status(tern: &Tern) -> u16 {
    let resp = client().post(tern.url("/echo")).body("x").send().await.expect("answer");
    resp.status().as_u16()
}

fn deploy(dir: &Path, admin: &str, extra: &[&str], key: &str) -> (i32, String, String) {
    let dir = dir.to_str().expect("utf-8 path");
    tern_with_key(&[&["deploy", dir, "--to", admin], extra].concat(), key)
}

#[tokio::test]
async fn deploy_and_rollback_keep_every_client_connected() {
    let served = project(false);
    let v1 = project(false);
    let v2 = project(true);
    let tern = Serve::new(served.path()).admin().env("TERN_ADMIN_KEY", KEY).start();
    let admin = tern.admin_url("");
    let room = format!("ws://{}/ws/channel/chat/room", tern.addr);
    let (mut a, mut b) = (ws_connect(&room).await, ws_connect(&room).await);
    let mut say = async |text: &str| {
        a.send(Message::text(text)).await.expect("send");
        assert_eq!(ws_next_text(&mut b).await, text);
    };

    // A dry run says what would change, and changes nothing.
    let (code, out, err) = deploy(v2.path(), &admin, &["--dry-run"], KEY);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("POST /echo") && out.contains("echo"), "{out}");
    assert_eq!(echo_status(&tern).await, 404);
    // A wrong key is refused.
    let (code, _, err) = deploy(v2.path(), &admin, &[], "not-the-key-0123456789");
    assert_ne!(code, 0);
    assert!(err.contains("wrong admin key") && err.contains("401"), "{err}");
    assert_eq!(echo_status(&tern).await, 404);

    let (code, out, err) = deploy(v1.path(), &admin, &[], KEY);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("version 1"), "{out}");
    let (code, out, err) = deploy(v2.path(), &admin, &[], KEY);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("version 2") && out.contains("POST /echo"), "{out}");
    assert_eq!(echo_status(&tern).await, 200);
    say("after the deploy").await;

    let (code, out, err) = tern_with_key(&["rollback", "--to", &admin], KEY);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("version 1") && out.contains("POST /echo"), "{out}");
    assert_eq!(echo_status(&tern).await, 404);
    say("after the rollback").await;
    // Nothing older than version 1.
    let (code, _, err) = tern_with_key(&["rollback", "--to", &admin], KEY);
    assert_ne!(code, 0);
    assert!(err.contains("no earlier deployed version"), "{err}");
    // Back to 2 by number.
    let (code, _, err) = tern_with_key(&["rollback", "--to", &admin, "--version", "2"], KEY);
    assert_eq!(code, 0, "{err}");
    assert_eq!(echo_status(&tern).await, 200);
    say("after rolling forward").await;
    drop(tern);

    // A restarted host serves the version deployed last, not the directory's own files.
    let tern = Serve::new(served.path()).start();
    assert_eq!(echo_status(&tern).await, 200);
    assert!(!tern.log_lines(&["serving the deployed version"]).is_empty(), "{}", tern.logs());
}

#[tokio::test]
async fn a_deploy_with_problems_is_refused_whole() {
    let served = project(false);
    let broken = project(true);
    write(
        broken.path(),
        "functions/echo.yaml",
        "trigger: { type: https, method: POST, paths: [/echo] }\nsource: nowhere.wasm\n",
    );
    write(broken.path(), "messaging/bad.yaml", "channel: { match: '(', regex: true }\n");
    let tern = Serve::new(served.path()).admin().env("TERN_ADMIN_KEY", KEY).start();
    let (code, _, err) = deploy(broken.path(), &tern.admin_url(""), &[], KEY);
    assert_ne!(code, 0);
    assert!(err.contains("functions/echo.yaml") && err.contains("source"), "{err}");
    assert!(err.contains("messaging/bad.yaml"), "{err}");
    assert_eq!(echo_status(&tern).await, 404);
    let resp = client().get(tern.url("/hello?name=x")).send().await.expect("answer");
    assert_eq!(resp.status(), 200);
    // Nothing was kept of the refused version.
    let stored = served.path().join(".tern/deployments");
    let left: Vec<_> = std::fs::read_dir(&stored)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.file_name())).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "left in {}: {left:?}", stored.display());
}
