//! The WebSocket close codes tern sends, and what each means for a client.
//!
//! The set is closed: no other code is sent. In particular there is no 1011 (internal
//! error): nothing inside the host ends a session but the causes below; a connection that
//! fails underneath (a write timing out, the socket gone) is dropped without a close frame.

/// The client closed normally; tern answers in kind.
pub const NORMAL: u16 = 1000;
/// The host is shutting down (SIGTERM/SIGINT): reconnect later, possibly elsewhere.
pub const GOING_AWAY: u16 = 1001;
/// The client broke the WebSocket protocol (a fragmented or oversized control frame, an
/// unmasked frame, reserved bits...).
pub const PROTOCOL_ERROR: u16 = 1002;
/// A text frame was not valid UTF-8.
pub const INVALID_PAYLOAD: u16 = 1007;
/// A policy was violated: the client read too slowly and its queue overflowed, sent
/// faster than `websocket.max_messages_per_second`, or stopped answering pings.
pub const POLICY_VIOLATION: u16 = 1008;
/// A frame or message was larger than `websocket.max_message`.
pub const MESSAGE_TOO_BIG: u16 = 1009;
