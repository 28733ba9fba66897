//! The admin listener: metrics after known traffic, health, the key, hostile deploy
//! bundles, JSON logs.

mod bundles;
mod key;
mod logs;
mod metrics;

use crate::harness::{Serve, Tern, TestProject};

/// The admin key the tests start tern with.
pub const KEY: &str = "e2e-admin-key-0123456789abcdef";

/// `GET /hello` (component `hello`) and a channel `chat` bridged to WebSockets.
pub fn hello_project() -> TestProject {
    TestProject::new()
        .http("hello", "GET", "/hello", "hello", "timeout: 5s")
        .messaging("chat", "channel: { match: chat }\nbridges: { websocket: { enable: true } }\n")
}

/// Serves `project` with an admin listener keyed by [`KEY`].
pub fn serve_with_admin(project: &TestProject) -> Tern {
    Serve::new(project.path()).admin().env("TERN_ADMIN_KEY", KEY).start()
}
