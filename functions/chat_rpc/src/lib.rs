//! The chat bot's RPCs, for clients of the Centrifugo protocol (`centrifuge.rpc(...)`):
//! `time` answers `{"time": "<RFC 3339, UTC>"}`, `rooms` with `{"room": R}` answers how many
//! clients are in room R (`{"room": R, "clients": N}`); any other method is refused with
//! error 404.

use std::time::SystemTime;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tern_sdk::{
    pubsub::Channel,
    session::{Refusal, RpcRequest},
};

fn answer(req: RpcRequest) -> Result<Vec<u8>, Refusal> {
    let answer = match req.method.as_str() {
        "time" => {
            json!({ "time": humantime::format_rfc3339_seconds(SystemTime::now()).to_string() })
        }
        "rooms" => {
            let asked: Value = serde_json::from_slice(&req.data).unwrap_or(Value::Null);
            let Some(room) = asked.get("room").and_then(Value::as_str) else {
                return Err(Refusal::new(400, r#"rooms wants {"room": "<name>"}"#));
            };
            let channel = format!("chat/rooms/{}", hex_sha256(room));
            let clients = Channel::open(&channel)
                .and_then(|c| c.subscribers())
                .map_err(|e| Refusal::new(500, &format!("cannot count the room's clients: {e}")))?;
            json!({ "room": room, "clients": clients })
        }
        other => {
            return Err(Refusal::new(404, &format!("no RPC `{other}` here: try time or rooms")));
        }
    };
    Ok(answer.to_string().into_bytes())
}

fn hex_sha256(text: &str) -> String {
    Sha256::digest(text.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

tern_sdk::rpc_function!(answer);
