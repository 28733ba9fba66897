//! What the chat's web page asks first: `GET /api/chat/session?room=R&user=U` answers
//! `{"url", "token", "channel", "room", "user"}`, the Centrifugo-protocol endpoint's
//! WebSocket URL (built from the host the page was loaded from, so the page works behind
//! any host name) and a connection token, valid one hour, naming `U` and letting it
//! subscribe and publish in room `R`'s channel: `chat/rooms/<sha256(R)>`, the channel
//! `/api/ws?room=R` hands wscat users, so both meet in the same room.
//!
//! Without `user`, or on a host without a token secret, the token is `null`: the page then
//! connects anonymously and the greeter names it `guest-<id>`. The example takes the name
//! typed; an application would take it from its own login.

use sha2::{Digest, Sha256};
use tern_sdk::{
    http::{Error, Request, Response},
    pubsub::Channel,
    realtime::Access,
};

/// Longest room name, in characters.
const MAX_ROOM: usize = 64;
/// Longest user name, in characters.
const MAX_USER: usize = 32;
/// How long a token is valid: the page asks for a new one when it reconnects later.
const TTL_SECONDS: u32 = 3600;

fn chat_session(req: Request) -> Result<Response, Error> {
    let room = req.query("room").map(|r| r.trim().to_owned()).unwrap_or_default();
    if room.is_empty() || room.chars().count() > MAX_ROOM || room.chars().any(char::is_control) {
        return Err(Error::bad_request(format!(
            "room must be 1 to {MAX_ROOM} characters, without control characters"
        )));
    }
    let user = req.query("user").map(|u| u.trim().to_owned()).filter(|u| !u.is_empty());
    if let Some(user) = &user {
        let allowed = |c: char| c.is_alphanumeric() || matches!(c, ' ' | '_' | '-' | '.');
        if user.chars().count() > MAX_USER || !user.chars().all(allowed) {
            return Err(Error::bad_request(format!(
                "user must be at most {MAX_USER} letters, digits, spaces, `_`, `-` or `.`"
            )));
        }
        // Names the room's own voices use: a user may not pass for the bot or a guest.
        let lower = user.to_lowercase();
        if lower == "chat_bot" || lower == "server" || lower.starts_with("guest-") {
            return Err(Error::bad_request(format!(
                "user must not be `{user}`: that name is taken"
            )));
        }
    }
    let channel = Channel::open(&format!("chat/rooms/{}", hex_sha256(&room)))?;
    let name = channel.name();
    let minted = user.as_deref().map(|user| {
        Access::new().subscribe(&name).publish(&name).user(user).client_connection(TTL_SECONDS)
    });
    let (url, token) = match minted {
        Some(Ok(connection)) => (connection.url, Some(connection.token)),
        // No token secret on this host: the page connects anonymously.
        Some(Err(_)) | None => (anonymous_url(&channel)?, None),
    };
    let body = serde_json::json!({
        "url": url,
        "token": token,
        "channel": name,
        "room": room,
        "user": token.as_ref().and(user.as_ref()),
    });
    Ok(Response::json(&body).header("cache-control", "no-store"))
}

/// The Centrifugo-protocol endpoint's URL on the host the request came to.
fn anonymous_url(channel: &Channel) -> Result<String, Error> {
    let bridge = channel.websocket_url()?;
    let origin = bridge.split("/ws/channel/").next().unwrap_or_default();
    Ok(format!("{origin}/connection/websocket"))
}

fn hex_sha256(text: &str) -> String {
    Sha256::digest(text.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

tern_sdk::http_function!(chat_session);
