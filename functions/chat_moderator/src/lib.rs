//! The chat rooms' publish hook: a message of more than 32 KiB, or with a banned word,
//! is not published, and its sender is told why (an error reply on the Centrifugo
//! protocol, an error frame on the realtime endpoint, a `{"error": ...}` text frame on the
//! raw bridge).

use tern_sdk::session::{PublishDecision, PublishRequest};

/// The largest message the rooms take.
const MAX_MESSAGE: usize = 32 * 1024;
/// Words the rooms do not take, matched case-insensitively.
const BANNED: [&str; 2] = ["frak", "smeg"];

fn moderate(req: PublishRequest) -> PublishDecision {
    if req.data.len() > MAX_MESSAGE {
        return PublishDecision::deny(1413, "messages in the rooms are at most 32 KiB");
    }
    if let Some(text) = req.text() {
        let lower = text.to_lowercase();
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
