//! The tutorial's `getWebSocketURL`: `GET /api/ws?room=R` opens channel
//! `chat/rooms/<sha256(R) in lowercase hex>` and answers its WebSocket URL as text: signed,
//! valid one hour, for reading and writing (the raw bridge of a config with
//! `require_token` takes no other), or plain when the host has no token secret.
//!
//! With `&protocol=realtime` it answers a URL of the realtime-pubsub endpoint instead,
//! whose token (valid one hour) may subscribe and publish to that room and send to the
//! backend (the inbound topic, `secure/inbound`).

use sha2::{Digest, Sha256};
use tern_sdk::{
    http::{Error, Request, Response},
    pubsub::{Channel, UrlOptions},
    realtime::Access,
};

/// Where realtime clients' messages to the backend go (tern's default inbound topic).
const INBOUND: &str = "secure/inbound";

fn get_websocket_url(req: Request) -> Result<Response, Error> {
    let room = req.query("room").ok_or_else(|| Error::bad_request("room parameter required"))?;
    let channel = Channel::open(&format!("chat/rooms/{}", hex_sha256(&room)))?;
    match req.query("protocol").as_deref() {
        None | Some("raw") => match channel.signed_websocket_url(&UrlOptions::new(3600)) {
            Ok(url) => Ok(Response::text(url)),
            Err(tern_sdk::pubsub::Error::Unavailable(_)) => {
                Ok(Response::text(channel.websocket_url()?))
            }
            Err(e) => Err(e.into()),
        },
        Some("realtime") => {
            let name = channel.name();
            let access = Access::new().subscribe(&name).publish(&name).publish(INBOUND);
            let url = access.url(3600).map_err(Error::internal)?;
            Ok(Response::text(url))
        }
        Some(other) => {
            Err(Error::bad_request(format!("unknown protocol `{other}`: use raw or realtime")))
        }
    }
}

fn hex_sha256(text: &str) -> String {
    Sha256::digest(text.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

tern_sdk::http_function!(get_websocket_url);
