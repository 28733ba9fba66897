//! The npm clients `realtime-pubsub-client` and `centrifuge` (JSON and protobuf),
//! unmodified, against the real binary: runs the Node test suite in `tests/node/` (Node's
//! built-in test runner, one process), whose files start their own `tern serve` with this
//! build of tern.

use std::process::{Command, Stdio};

use crate::harness::{cache_dir, guests, kill_with_parent, repo};

#[test]
fn the_npm_clients_pass_the_node_tests() {
    // examples/chat serves the example functions: make sure they are built.
    guests();
    for package in ["realtime-pubsub-client", "centrifuge"] {
        assert!(
            repo().join("tools/node_modules").join(package).is_dir(),
            "the npm client {package} is not installed: run scripts/setup.sh (or `cd tools && npm install`)"
        );
    }
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
