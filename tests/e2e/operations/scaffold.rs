//! The function author's loop in a fresh directory outside the repository: `tern new`,
//! `tern build`, `tern serve`, then `tern dev` rebuilding and reloading on an edit.

use std::{path::Path, time::Duration};

use crate::harness::{Serve, client, repo};

fn tern(cwd: &Path, args: &[&str]) -> (i32, String, String) {
    crate::harness::tern_cli(cwd, args)
}

async fn get(url: String) -> (u16, String) {
    match client().get(url).send().await {
        Ok(r) => (r.status().as_u16(), r.text().await.unwrap_or_default()),
        Err(e) => (0, e.to_string()),
    }
}

#[tokio::test]
async fn new_build_serve_and_dev_in_a_fresh_directory() {
    let tmp = tempfile::tempdir().unwrap();
    assert!(!tmp.path().starts_with(repo()), "the project must be outside the repository");
    let app = tmp.path().join("app");
    let app_arg = app.to_str().unwrap();
    let (code, out, err) = tern(tmp.path(), &["new", "greet", "--dir", app_arg]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("functions/greet.yaml"), "{out}");
    let (code, _, err) =
        tern(tmp.path(), &["new", "room_bot", "--pubsub", "rooms", "--dir", app_arg]);
    assert_eq!(code, 0, "{err}");
    assert!(app.join("messaging/rooms.yaml").is_file());
    // Mistakes are refused with what to do.
    let (code, _, err) = tern(tmp.path(), &["new", "greet", "--dir", app_arg]);
    assert_ne!(code, 0);
    assert!(err.contains("already exists"), "{err}");
    let (code, _, err) = tern(tmp.path(), &["new", "Bad-Name", "--dir", app_arg]);
    assert_ne!(code, 0);
    assert!(err.contains("not a valid function name"), "{err}");
    // The compiled dependencies are kept between test runs (in the repository's target/),
    // the project itself stays outside.
    let shared = repo().join("target/e2e-new-project");
    std::fs::create_dir_all(&shared).unwrap();
    std::os::unix::fs::symlink(&shared, app.join("code/target")).unwrap();

    let (code, _, err) = tern(tmp.path(), &["build", app_arg]);
    assert_eq!(code, 0, "tern build failed:\n{err}");
    assert!(err.contains("[1/2]") && err.contains("built 2 crate(s)"), "{err}");
    let (code, out, err) = tern(tmp.path(), &["check", app_arg]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "ok: 2 function(s), 1 route(s), 1 messaging config(s)\n");
    let tern_serve = Serve::new(&app).start();
    assert_eq!(get(tern_serve.url("/greet")).await, (200, "hello from greet".into()));
    assert_eq!(get(tern_serve.url("/greet?name=ann")).await, (200, "hello, ann".into()));
    drop(tern_serve);

    // `tern dev`: an edit to the crate is rebuilt and served without a restart.
    let dev = Serve::command("dev", &app).start();
    assert_eq!(get(dev.url("/greet")).await.1, "hello from greet");
    let lib = app.join("code/functions/greet/src/lib.rs");
    let source = std::fs::read_to_string(&lib).unwrap();
    std::fs::write(&lib, source.replace("\"hello from greet\"", "\"howdy from greet\"")).unwrap();
    let mut answer = String::new();
    for _ in 0..600 {
        answer = get(dev.url("/greet")).await.1;
        if answer == "howdy from greet" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(answer, "howdy from greet", "the edit was not served:\n{}", dev.logs());
}
