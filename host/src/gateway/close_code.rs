//! The WebSocket close codes tern sends, and what each means for a client.
//!
//! The set is closed: no other code is sent. In particular there is no 1011 (internal
//! error): nothing inside the host ends a session but the causes below; a connection that
//! fails underneath (a write timing out, the socket gone) is dropped without a close frame.

use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

/// The client closed normally; tern answers in kind.
pub const NORMAL: CloseCode = CloseCode::Normal;
/// The host is shutting down (SIGTERM/SIGINT): reconnect later, possibly elsewhere.
pub const GOING_AWAY: CloseCode = CloseCode::Away;
/// The client broke the WebSocket protocol (a fragmented or oversized control frame, an
/// unmasked frame, reserved bits...).
pub const PROTOCOL_ERROR: CloseCode = CloseCode::Protocol;
/// A text frame was not valid UTF-8.
pub const INVALID_PAYLOAD: CloseCode = CloseCode::Invalid;
/// A policy was violated: the client read too slowly and its queue overflowed, sent
/// faster than `websocket.max_messages_per_second` or `max_bytes_per_second`, or stopped
/// answering pings.
pub const POLICY_VIOLATION: CloseCode = CloseCode::Policy;
/// A frame or message was larger than `websocket.max_message`.
pub const MESSAGE_TOO_BIG: CloseCode = CloseCode::Size;
/// A reload (or deploy) removed the messaging config of the client's channel, or turned
/// its WebSocket bridge off: reconnecting to the same URL will be refused (404 or 403).
pub const CHANNEL_GONE: CloseCode = CloseCode::Library(4404);
