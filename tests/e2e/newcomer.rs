//! What a new user trips over (issue 11): a function crate written from the README alone,
//! failures that are logged but not disclosed, warnings `tern check` gives, and a 413 that
//! reaches a client which sends its whole body before reading.

use std::process::Command;

use crate::harness::{Tern, TestProject, client, repo, tern_cli};

/// The fenced code blocks of the README section titled `title`, by their first line
/// (`# Cargo.toml`, `// src/lib.rs`...).
fn readme_blocks(title: &str) -> Vec<(String, String)> {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let start = readme.find(title).unwrap_or_else(|| panic!("no section {title:?} in README"));
    let section = &readme[start..];
    let end =
        section[title.len()..].find("\n## ").or_else(|| section[title.len()..].find("\n### "));
    let section = &section[..end.map_or(section.len(), |e| e + title.len())];
    section
        .split("```")
        .skip(1)
        .step_by(2)
        .filter_map(|block| {
            let body = block.split_once('\n')?.1;
            let first = body.lines().next()?.to_string();
            Some((first, body.to_string()))
        })
        .collect()
}

/// The block whose first line names `file`, with the checkout's path put in.
fn block_for(blocks: &[(String, String)], file: &str) -> String {
    let (_, body) = blocks
        .iter()
        .find(|(first, _)| first.trim_start_matches(['#', '/', ' ']).starts_with(file))
        .unwrap_or_else(|| panic!("the README shows no {file}"));
    body.replace("/path/to/tern", &repo().display().to_string())
}

#[tokio::test]
async fn a_function_crate_outside_the_repository_builds_from_the_readme() {
    let blocks = readme_blocks("### A function outside this repository");
    let dir = tempfile::tempdir().unwrap();
    let krate = dir.path().join("my-function");
    for (file, name) in [
        ("Cargo.toml", "Cargo.toml"),
        (".cargo/config.toml", ".cargo/config.toml"),
        ("src/lib.rs", "src/lib.rs"),
        ("functions/my_function.yaml", "functions/my_function.yaml"),
    ] {
        let path = krate.join(file);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, block_for(&blocks, name)).unwrap();
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let built = Command::new(cargo)
        .args(["build", "--release", "--quiet"])
        .current_dir(&krate)
        .env_remove("CARGO_TARGET_DIR")
        .status()
        .unwrap();
    assert!(built.success(), "the README's crate does not build");
    let wasm = krate.join("target/wasm32-wasip2/release/my_function.wasm");
    assert!(wasm.is_file(), "not where the README says: {}", wasm.display());
    let (code, stdout, stderr) = tern_cli(&krate, &["check", "."]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout, "ok: 1 function(s), 1 route(s), 0 messaging config(s)\n");
    let tern = Tern::serve(&krate);
    let resp = client().get(tern.url("/hi")).send().await.unwrap();
    assert_eq!(resp.text().await.unwrap(), "hi from /hi");
}

#[tokio::test]
async fn a_pubsub_error_is_logged_with_the_request_and_kept_from_the_client() {
    // The chat's URL function in a project with no messaging config: `Channel::open` fails.
    let project =
        TestProject::new().http("get_url", "GET", "/api/ws", "get_websocket_url", "timeout: 5s");
    let tern = Tern::serve(project.path());
    let resp = client().get(tern.url("/api/ws?room=x")).send().await.unwrap();
    assert_eq!(resp.status(), 500);
    let id = resp.headers()["x-request-id"].to_str().unwrap().to_string();
    let body = resp.text().await.unwrap();
    assert_eq!(body, r#"{"error":"internal error"}"#, "no configuration in the body");
    let logs = tern.wait_for_log("function answered with a server error");
    let line = logs.lines().find(|l| l.contains("function answered with a server error")).unwrap();
    for part in
        ["function=get_url", "route=\"GET /api/ws\"", "status=500", &format!("request_id={id}")]
    {
        assert!(line.contains(part), "{part} missing from {line}");
    }
    assert!(line.contains("no messaging config matches channel `chat/rooms/"), "the cause: {line}");
}

#[test]
fn check_warns_of_configs_that_cannot_do_what_they_seem_to() {
    let project = TestProject::new()
        .messaging("a_chat", "channel: { match: chat }\n")
        .messaging("b_chat", "# the same rooms, for the bot\nchannel: { match: chat }\n")
        .messaging("c_shout", "channel: { match: shout, regex: true }\n")
        .messaging("d_rooms", "channel: { match: 'rooms/[a-z]+', regex: true }\n");
    let (code, stdout, stderr) = tern_cli(project.path(), &["check", "."]);
    assert_eq!(code, 0, "warnings do not fail the check: {stderr}");
    assert_eq!(stdout, "ok: 0 function(s), 0 route(s), 4 messaging config(s)\n");
    let warnings: Vec<&str> = stderr.lines().collect();
    assert_eq!(warnings.len(), 2, "{stderr}");
    assert!(warnings[0].starts_with("warning: ./messaging/b_chat.yaml:2:12: field `channel.match`: this config never governs a channel: `a_chat`"), "{stderr}");
    assert!(warnings[1].starts_with("warning: ./messaging/c_shout.yaml:1:12: field `channel.match`: `shout` has no regex metacharacter"), "{stderr}");
}

#[test]
fn a_body_sent_whole_before_reading_still_gets_its_413() {
    let project = TestProject::new().settings("http:\n  max_body: 1MiB\n").http(
        "echo",
        "POST",
        "/echo",
        "echo",
        "timeout: 5s",
    );
    let tern = Tern::serve(project.path());
    // Python's urllib writes the whole body, then reads: the issue's client, as it is.
    let script = format!(
        "import urllib.request, urllib.error\n\
         req = urllib.request.Request('{}', data=b'x' * (11 * 1024 * 1024), method='POST')\n\
         try:\n    urllib.request.urlopen(req, timeout=30)\n    print('no error')\n\
         except urllib.error.HTTPError as e:\n    print('status', e.code)\n\
         except Exception as e:\n    print('failed', type(e).__name__, e)\n",
        tern.url("/echo")
    );
    let out = Command::new("python3").args(["-c", &script]).output().expect("run python3");
    let printed = String::from_utf8_lossy(&out.stdout);
    assert_eq!(printed.trim(), "status 413", "{}", String::from_utf8_lossy(&out.stderr));
}
