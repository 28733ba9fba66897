//! The tutorial's `getWebSocketURL`: `GET /api/ws?room=R` opens channel
//! `chat/rooms/<sha256(R) in lowercase hex>` and answers its WebSocket URL as text.

use sha2::{Digest, Sha256};
use tern_sdk::{
    http::{Error, Request, Response},
    pubsub::Channel,
};

fn get_websocket_url(req: Request) -> Result<Response, Error> {
    let room = req.query("room").ok_or_else(|| Error::bad_request("room parameter required"))?;
    let channel = Channel::open(&format!("chat/rooms/{}", hex_sha256(&room)))?;
    Ok(Response::text(channel.websocket_url()?))
}

fn hex_sha256(text: &str) -> String {
    Sha256::digest(text.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

tern_sdk::http_function!(get_websocket_url);
