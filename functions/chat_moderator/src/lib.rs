//! The chat rooms' publish hook: a message of more than 32 KiB, or with a banned word,
//! is not published, and its sender is told why (an error reply on the Centrifugo
//! protocol, an error frame on the realtime endpoint, a `{"error": ...}` text frame on the
//! raw bridge). A JSON message is judged by its decoded `text` too (`fr\u0061k` is
//! `frak`), and one claiming to come `from` someone is refused: only functions, whose
//! publications pass no hook, sign their messages that way (the chat page shows the bot's
//! answers by it).

use tern_sdk::session::{PublishDecision, PublishRequest};

/// The largest message the rooms take.
const MAX_MESSAGE: usize = 32 * 1024;
/// Words the rooms do not take, matched case-insensitively.
const BANNED: [&str; 2] = ["frak", "smeg"];

fn moderate(req: PublishRequest) -> PublishDecision {
    if req.data.len() > MAX_MESSAGE {
        return PublishDecision::deny(1413, "messages in the rooms are at most 32 KiB");
    }
    let Some(text) = req.text() else { return PublishDecision::allow() };
    let json = serde_json::from_str::<serde_json::Value>(text).ok();
    if json.as_ref().is_some_and(|v| v.get("from").is_some()) {
        return PublishDecision::deny(1403, "messages may not say who they are `from`");
    }
    let decoded = json.as_ref().and_then(|v| v.get("text")?.as_str()).unwrap_or_default();
    for candidate in [text, decoded] {
        let lower = candidate.to_lowercase();
        if let Some(word) = BANNED.iter().find(|w| lower.contains(*w)) {
            return PublishDecision::deny(
                1400,
                &format!("the word `{word}` is not allowed in the rooms"),
            );
        }
    }
    PublishDecision::allow()
}

tern_sdk::publish_hook!(moderate);
