//! The protocol's error and disconnect codes tern uses, with the protocol's own messages,
//! so the SDKs react to tern as they do to Centrifugo: codes below 3500 make them
//! reconnect, 3500 to 3999 stop them; an error marked temporary makes them retry.

use std::borrow::Cow;

use super::proto;

/// A reason to close the connection: a close frame with this code and reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disconnect {
    /// The close code.
    pub code: u16,
    /// The close reason.
    pub reason: Cow<'static, str>,
}

const fn close(code: u16, reason: &'static str) -> Disconnect {
    Disconnect { code, reason: Cow::Borrowed(reason) }
}

/// The host is shutting down: reconnect (elsewhere, later).
pub const SHUTDOWN: Disconnect = close(3001, "shutdown");
/// The connection token expired and was not refreshed: reconnect with a fresh one.
pub const EXPIRED: Disconnect = close(3005, "connection expired");
/// The client read too slowly: its queue overflowed.
pub const SLOW: Disconnect = close(3008, "slow");
/// The client did not answer a ping in time.
pub const NO_PONG: Disconnect = close(3012, "no pong");
/// The connection token is not valid (bad signature, algorithm, claims).
pub const INVALID_TOKEN: Disconnect = close(3500, "invalid token");
/// The client sent what the protocol does not allow.
pub const BAD_REQUEST: Disconnect = close(3501, "bad request");
/// The client did not connect in time.
pub const STALE: Disconnect = close(3502, "stale");

/// An error the client may handle without losing its connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorCode {
    /// The code.
    pub code: u32,
    /// The protocol's message for it.
    pub message: &'static str,
    /// Whether retrying may succeed.
    pub temporary: bool,
}

const fn error(code: u32, message: &'static str) -> ErrorCode {
    ErrorCode { code, message, temporary: false }
}

/// Something went wrong inside tern.
pub const INTERNAL: ErrorCode =
    ErrorCode { code: 100, message: "internal server error", temporary: true };
/// A connect without a token where anonymous connections are not allowed.
pub const UNAUTHORIZED: ErrorCode = error(101, "unauthorized");
/// No messaging config with the WebSocket bridge matches the channel.
pub const UNKNOWN_CHANNEL: ErrorCode = error(102, "unknown channel");
/// The channel's rules or the client's token do not allow it.
pub const PERMISSION_DENIED: ErrorCode = error(103, "permission denied");
/// A method tern does not serve (rpc, send, or none).
pub const METHOD_NOT_FOUND: ErrorCode = error(104, "method not found");
/// Subscribing twice to a channel.
pub const ALREADY_SUBSCRIBED: ErrorCode = error(105, "already subscribed");
/// Too many channels on one connection.
pub const LIMIT_EXCEEDED: ErrorCode = error(106, "limit exceeded");
/// A malformed request (an invalid channel name, no data...).
pub const BAD_REQUEST_ERROR: ErrorCode = error(107, "bad request");
/// The channel does not keep presence or history.
pub const NOT_AVAILABLE: ErrorCode = error(108, "not available");
/// The token has expired: get a fresh one.
pub const TOKEN_EXPIRED: ErrorCode = error(109, "token expired");
/// Too many subscribes and unsubscribes: retry later.
pub const TOO_MANY_REQUESTS: ErrorCode =
    ErrorCode { code: 111, message: "too many requests", temporary: true };
/// A history position of another epoch.
pub const UNRECOVERABLE_POSITION: ErrorCode = error(112, "unrecoverable position");
/// A publication that reached this node's subscribers but not the cluster's other nodes
/// (its bus is unreachable or behind): temporary, as the cluster reconnects by itself.
pub const UNRELAYED: ErrorCode = ErrorCode {
    code: 100,
    message: "internal server error: published on this node only, the cluster bus is unreachable",
    temporary: true,
};

impl ErrorCode {
    /// The reply to command `id` carrying this error.
    pub fn reply(self, id: u32) -> proto::Reply {
        let error = proto::Error {
            code: self.code,
            message: self.message.to_owned(),
            temporary: self.temporary,
        };
        proto::Reply { id, error: Some(error), ..Default::default() }
    }
}
