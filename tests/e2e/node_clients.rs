//! The npm client `realtime-pubsub-client`, unmodified, against the real binary: runs the
//! Node test suite in `tests/node/` (Node's built-in test runner), which starts its own
//! `tern serve examples/chat` with this build of tern.

use std::process::{Command, Stdio};

use crate::harness::{cache_dir, guests, kill_with_parent, repo};

#[test]
fn the_npm_realtime_client_passes_the_node_tests() {
    // examples/chat serves the example functions: make sure they are built.
    guests();
    let client = repo().join("tools/node_modules/realtime-pubsub-client");
    assert!(
        client.is_dir(),
        "the npm clients are not installed: run scripts/setup.sh (or `cd tools && npm install`)"
    );
    let mut command = Command::new("node");
    kill_with_parent(&mut command);
    let out = command
        .args(["--test", "--test-concurrency=1", "tests/node/"])
        .current_dir(repo())
        .env("TERN_BIN", env!("CARGO_BIN_EXE_tern"))
        .env("TERN_CACHE_DIR", cache_dir())
        .stdin(Stdio::null())
        .output()
        .expect("run node (Node.js 20 or newer must be on PATH)");
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    assert!(
        out.status.success(),
        "`node --test tests/node/` failed ({}):\n{}\n{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
}
