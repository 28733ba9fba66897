//! A chat bot triggered by every message in every chat room. It answers two commands in the
//! room they were typed in: `/time` with the current UTC time in RFC 3339, and `/rooms`
//! with how many clients are connected to the room, and `/whoami` with who published it
//! (the user of the sender's token and its connection id, when a client of the Centrifugo
//! protocol or the realtime endpoint sent it).
//!
//! A command comes as plain text (wscat, the raw bridge) or as the chat page's JSON message
//! `{"text": "/time"}`; the answer comes back in the same form: plain text, or
//! `{"text": ..., "from": "chat_bot"}`.

use std::time::SystemTime;

use tern_sdk::pubsub::{Channel, Message};

/// The command a message holds, and whether it came as the page's JSON message.
fn command(msg: &Message) -> Option<(String, bool)> {
    let text = msg.text()?.trim();
    if text.starts_with('{') {
        let value: serde_json::Value = serde_json::from_str(text).ok()?;
        return Some((value.get("text")?.as_str()?.trim().to_owned(), true));
    }
    Some((text.to_owned(), false))
}

fn on_message(msg: Message) {
    let Some((command, json)) = command(&msg) else { return };
    let reply = match command.as_str() {
        "/time" => humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
        "/rooms" => match Channel::open(msg.channel()).and_then(|c| c.subscribers()) {
            Ok(1) => "1 client connected to this room".to_string(),
            Ok(n) => format!("{n} clients connected to this room"),
            Err(e) => format!("cannot count the clients of this room: {e}"),
        },
        "/whoami" => match tern_sdk::pubsub::publisher() {
            Some(p) => format!(
                "you are {} on connection {}",
                p.user.as_deref().unwrap_or("anonymous"),
                p.client_id
            ),
            None => "I cannot tell who you are (raw WebSocket clients are anonymous)".to_string(),
        },
        _ => return,
    };
    let reply = if json {
        serde_json::json!({ "text": reply, "from": "chat_bot" }).to_string()
    } else {
        reply
    };
    if let Err(e) = Channel::open(msg.channel()).and_then(|c| c.publish_text(&reply)) {
        eprintln!("chat_bot cannot answer in {}: {e}", msg.channel());
    }
}

tern_sdk::pubsub_function!(on_message);
