//! `POST /api/notify?room=R` publishes the request body to room R's channel, so every client
//! connected to the room receives it (as a text frame when the body is UTF-8, else binary).

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};
use tern_sdk::{
    http::{Error, Request, Response},
    pubsub::Channel,
};

fn notify(req: Request) -> Result<Response, Error> {
    let room = req.query("room").ok_or_else(|| Error::bad_request("room parameter required"))?;
    let channel = Channel::open(&format!("chat/rooms/{}", hex_sha256(&room)))?;
    match std::str::from_utf8(req.body()) {
        Ok(text) => channel.publish_text(text)?,
        Err(_) => channel.publish(req.body())?,
    }
    // 202 {"listeners": N}: how many WebSocket clients the room had when it was published.
    let listeners = BTreeMap::from([("listeners", channel.subscribers()?)]);
    Ok(Response::json(&listeners).with_status(202))
}

fn hex_sha256(text: &str) -> String {
    Sha256::digest(text.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

tern_sdk::http_function!(notify);
