//! Functions in the real-time path: RPC handlers, `send` handlers, connect, subscribe and
//! publish hooks (see [`rpc_function!`](crate::rpc_function) and the hook macros), and the
//! server-side control of connected clients ([`subscribe`], [`send`], [`disconnect`]...).
//!
//! ```no_run
//! use tern_sdk::session::{self, ConnectDecision, ConnectRequest};
//!
//! fn admit(req: ConnectRequest) -> ConnectDecision {
//!     match req.client.user {
//!         Some(_) => ConnectDecision::allow(),
//!         None => ConnectDecision::allow_as("guest-1234", None),
//!     }
//! }
//! tern_sdk::connect_hook!(admit);
//! # fn main() {}
//! ```

pub use crate::__private::bindings::tern::function::session_types::{
    Client, ConnectChanges, ConnectDecision, ConnectRequest, PublishDecision, PublishRequest,
    Refusal, RpcRequest, SendRequest, SubscribeChanges, SubscribeDecision, SubscribeRequest,
};
use crate::__private::bindings::tern::function::sessions as wit;

impl Refusal {
    /// A refusal with `code` and `reason` (see the WIT for the codes a client sees).
    pub fn new(code: u32, reason: &str) -> Self {
        Refusal { code, reason: reason.to_owned() }
    }
}

impl ConnectDecision {
    /// Admit the connection as it is.
    pub fn allow() -> Self {
        ConnectDecision::Allow(ConnectChanges { user: None, info: None })
    }

    /// Admit it as `user`, with `info` (a JSON document) as its connection info if given.
    pub fn allow_as(user: &str, info: Option<&str>) -> Self {
        ConnectDecision::Allow(ConnectChanges {
            user: Some(user.to_owned()),
            info: info.map(str::to_owned),
        })
    }

    /// Refuse it with `code` and `reason`.
    pub fn deny(code: u32, reason: &str) -> Self {
        ConnectDecision::Deny(Refusal::new(code, reason))
    }
}

impl SubscribeDecision {
    /// Subscribe the client as it asked.
    pub fn allow() -> Self {
        SubscribeDecision::Allow(SubscribeChanges { info: None })
    }

    /// Refuse the subscription with `code` and `reason`.
    pub fn deny(code: u32, reason: &str) -> Self {
        SubscribeDecision::Deny(Refusal::new(code, reason))
    }
}

impl PublishDecision {
    /// Publish as sent.
    pub fn allow() -> Self {
        PublishDecision::Allow(None)
    }

    /// Publish `data` instead of what was sent.
    pub fn rewrite(data: impl Into<Vec<u8>>) -> Self {
        PublishDecision::Allow(Some(data.into()))
    }

    /// Drop it, telling the publisher `reason`.
    pub fn deny(code: u32, reason: &str) -> Self {
        PublishDecision::Deny(Refusal::new(code, reason))
    }
}

impl PublishRequest {
    /// The payload as text, when it is not binary.
    pub fn text(&self) -> Option<&str> {
        if self.binary { None } else { std::str::from_utf8(&self.data).ok() }
    }
}

/// Subscribes client `client_id` to `channel`, server-side.
pub fn subscribe(client_id: &str, channel: &str) -> Result<(), String> {
    wit::subscribe(client_id, channel)
}

/// Unsubscribes client `client_id` from `channel`.
pub fn unsubscribe(client_id: &str, channel: &str) -> Result<(), String> {
    wit::unsubscribe(client_id, channel)
}

/// Sends `data` to client `client_id` alone (a `message` push on the client protocol).
pub fn send(client_id: &str, data: &[u8]) -> Result<(), String> {
    wit::send(client_id, data)
}

/// Closes client `client_id`'s connection with `code` (4000 to 4999) and `reason`.
pub fn disconnect(client_id: &str, code: u32, reason: &str) -> Result<(), String> {
    wit::disconnect(client_id, code, reason)
}
