//! The chat's realtime backend: answers `echo` messages that realtime clients send to the
//! inbound topic (`client.send(payload, {messageType: 'echo'}).waitForReply()`) with
//! `{"echo": <payload>, "by": "wasm"}`. Other types (presence, `create`...) are left to
//! other backends, such as a client subscribed to the inbound topic.

use tern_sdk::{
    pubsub::Message,
    realtime::{self, json_string},
};

fn rt_backend(msg: Message) {
    let Some(sender) = realtime::sender() else { return };
    if sender.message_type != "echo" {
        return;
    }
    let text = String::from_utf8_lossy(msg.data());
    let payload = if sender.json { text.into_owned() } else { json_string(&text) };
    let answer = format!(r#"{{"echo":{payload},"by":"wasm"}}"#);
    if let Err(e) = realtime::reply_json(&answer, "ok") {
        eprintln!("cannot reply to {}: {e}", sender.connection_id);
    }
}

tern_sdk::pubsub_function!(rt_backend);
