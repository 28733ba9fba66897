//! The realtime-pubsub wire format: client frames decoded into commands, and the frames
//! tern sends (`{"topic", "messageType", "data"}`), documented in `docs/realtime-pubsub.md`.

use std::borrow::Cow;

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use tokio_tungstenite::tungstenite::Utf8Bytes;

use crate::broker::{Envelope, Message, Payload};

/// Longest `id` or `messageType` accepted, in bytes: both are echoed and stored.
const MAX_LABEL: usize = 256;
/// The message type of messages that have none (raw-bridge frames, function publishes).
pub const DEFAULT_TYPE: &str = "message";

/// What a client frame asks for.
#[derive(Debug)]
pub enum Command<'a> {
    /// `subscribe`.
    Subscribe(Cow<'a, str>),
    /// `unsubscribe`.
    Unsubscribe(Cow<'a, str>),
    /// `publish` to a topic.
    Publish(Cow<'a, str>, Outgoing),
    /// `message`: to the backend (the inbound topic).
    Send(Outgoing),
}

/// A message a client publishes or sends, ready for the broker.
#[derive(Debug)]
pub struct Outgoing {
    /// The client's id for it; acks and replies carry it.
    pub id: Option<String>,
    /// Its payload (text; JSON unless `envelope.json` is false, then a plain string).
    pub payload: Payload,
    /// Its type and id, for the broker (the connection is added by the session).
    pub envelope: Envelope,
}

/// Why a client frame was refused (sent back on `priv/errors`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The frame's id, when it had one.
    pub id: Option<String>,
    /// The frame's `type`, when it had one.
    pub kind: Option<String>,
    /// The topic concerned, when there is one.
    pub topic: Option<String>,
    /// A stable code (`bad-frame`, `forbidden`...).
    pub code: &'static str,
    /// What is wrong, for a person.
    pub message: String,
}

impl Refusal {
    /// A `bad-frame` refusal.
    pub fn bad_frame(message: impl Into<String>) -> Self {
        Self { id: None, kind: None, topic: None, code: "bad-frame", message: message.into() }
    }
}

#[derive(Deserialize)]
struct Frame<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow)]
    data: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct TopicData<'a> {
    #[serde(borrow)]
    topic: Cow<'a, str>,
}

#[derive(Deserialize)]
struct MessageData<'a> {
    #[serde(default, borrow)]
    topic: Option<Cow<'a, str>>,
    #[serde(default, rename = "messageType", borrow)]
    message_type: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    payload: Option<&'a RawValue>,
    #[serde(default)]
    id: Option<Id>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Id {
    Text(String),
    Number(serde_json::Number),
}

/// Decodes one text frame.
pub fn decode(text: &str) -> Result<Command<'_>, Refusal> {
    let frame: Frame = serde_json::from_str(text).map_err(|e| {
        Refusal::bad_frame(format!(
            "expected a JSON object {{\"type\": ..., \"data\": {{...}}}}: {e}"
        ))
    })?;
    let kind = frame.kind;
    let refuse =
        |message: String| Refusal { kind: Some(kind.to_string()), ..Refusal::bad_frame(message) };
    let data = frame.data.map_or("null", RawValue::get);
    match &*kind {
        "subscribe" | "unsubscribe" => {
            let d: TopicData = serde_json::from_str(data)
                .map_err(|e| refuse(format!("`data` must be {{\"topic\": \"...\"}}: {e}")))?;
            Ok(if kind == "subscribe" {
                Command::Subscribe(d.topic)
            } else {
                Command::Unsubscribe(d.topic)
            })
        }
        "publish" | "message" => {
            let d: MessageData = serde_json::from_str(data).map_err(|e| {
                refuse(format!("`data` must be {{\"payload\": ..., \"id\": \"...\", ...}}: {e}"))
            })?;
            let id = label(d.id.as_ref()).ok().flatten();
            let outgoing = outgoing(&d).map_err(|m| Refusal { id: id.clone(), ..refuse(m) })?;
            if kind == "message" {
                return Ok(Command::Send(outgoing));
            }
            match d.topic {
                Some(topic) => Ok(Command::Publish(topic, outgoing)),
                None => {
                    Err(Refusal { id: outgoing.id, ..refuse("`data.topic` is missing".into()) })
                }
            }
        }
        other => {
            let id = serde_json::from_str::<MessageData>(data)
                .ok()
                .and_then(|d| label(d.id.as_ref()).ok());
            Err(Refusal {
                id: id.flatten(),
                kind: Some(other.to_owned()),
                topic: None,
                code: "unknown-type",
                message: format!(
                    "unknown frame type `{other}`: use subscribe, unsubscribe, publish or message"
                ),
            })
        }
    }
}

fn label(id: Option<&Id>) -> Result<Option<String>, String> {
    let id = match id {
        None => return Ok(None),
        Some(Id::Text(t)) => t.clone(),
        Some(Id::Number(n)) => n.to_string(),
    };
    if id.len() > MAX_LABEL {
        return Err(format!("`data.id` is longer than {MAX_LABEL} bytes"));
    }
    Ok(Some(id))
}

fn outgoing(d: &MessageData) -> Result<Outgoing, String> {
    let id = label(d.id.as_ref())?;
    let message_type = match d.message_type.as_deref() {
        Some(t) if t.len() > MAX_LABEL => {
            return Err(format!("`data.messageType` is longer than {MAX_LABEL} bytes"));
        }
        Some(t) if t.contains(['.', '*']) => {
            // The clients name events `topic.type` and match them with wildcards: a type
            // `*` would fire every listener of the topic.
            return Err("`data.messageType` may not contain `.` or `*`".into());
        }
        Some(t) if !t.is_empty() => t,
        _ => DEFAULT_TYPE,
    };
    let raw = d.payload.map_or("null", RawValue::get);
    // A JSON string travels as its text, so raw-bridge clients and functions get the
    // text itself; anything else travels as its JSON.
    let string = raw.starts_with('"').then(|| serde_json::from_str::<String>(raw).ok()).flatten();
    let (payload, json) = match string {
        Some(text) => (Payload::text(text), false),
        None => (Payload::text(raw.to_owned()), true),
    };
    let envelope = Envelope {
        message_type: Some(message_type.into()),
        client_id: id.as_deref().map(Into::into),
        connection: None,
        json,
        publisher: None,
    };
    Ok(Outgoing { id, payload, envelope })
}

#[derive(Serialize)]
struct Out<'a, D> {
    topic: &'a str,
    #[serde(rename = "messageType")]
    message_type: &'a str,
    data: D,
}

/// A server frame as text.
pub fn frame(topic: &str, message_type: &str, data: impl Serialize) -> String {
    let out = Out { topic, message_type, data };
    // Serializing plain data to a string cannot fail.
    serde_json::to_string(&out).unwrap_or_default()
}

/// The frame of `refusal` (topic `priv/errors`).
pub fn refusal(refusal: &Refusal) -> String {
    let data = serde_json::json!({
        "id": refusal.id, "type": refusal.kind, "topic": refusal.topic,
        "code": refusal.code, "message": refusal.message,
    });
    frame("priv/errors", "error", data)
}

#[derive(Serialize)]
struct Delivery<'a> {
    id: Cow<'a, str>,
    payload: PayloadOut<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client: Option<ClientRef<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    encoding: Option<&'static str>,
}

#[derive(Serialize)]
struct ClientRef<'a> {
    #[serde(rename = "connectionId")]
    connection_id: &'a str,
}

#[derive(Serialize)]
#[serde(untagged)]
enum PayloadOut<'a> {
    Json(&'a RawValue),
    Text(&'a str),
    Base64(String),
}

/// The frame delivering `message`, encoded once and shared by every realtime subscriber.
pub fn delivery(message: &Message) -> Utf8Bytes {
    message.realtime_frame.get_or_init(|| Utf8Bytes::from(encode_delivery(message))).clone()
}

fn encode_delivery(message: &Message) -> String {
    let envelope = &message.envelope;
    let bytes = message.payload.bytes();
    let text = std::str::from_utf8(bytes).ok().filter(|_| message.payload.is_text());
    let json = text.filter(|_| envelope.json).and_then(|t| serde_json::from_str(t).ok());
    let (payload, encoding) = match (json, text) {
        (Some(raw), _) => (PayloadOut::Json(raw), None),
        (None, Some(text)) => (PayloadOut::Text(text), None),
        (None, None) => (
            PayloadOut::Base64(base64::engine::general_purpose::STANDARD.encode(bytes)),
            Some("base64"),
        ),
    };
    let id = match &envelope.client_id {
        Some(id) => Cow::Borrowed(&**id),
        None => Cow::Owned(message.id.to_string()),
    };
    let client = envelope.connection.as_deref().map(|c| ClientRef { connection_id: c });
    let data = Delivery { id, payload, client, encoding };
    let message_type = envelope.message_type.as_deref().unwrap_or(DEFAULT_TYPE);
    frame(message.channel.as_str(), message_type, data)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::{broker::Origin, channel_name::ChannelName};

    #[test]
    fn publish_frames_decode_with_defaults() {
        let c = decode(r#"{"type":"publish","data":{"topic":"chat","payload":{"a":1},"id":7}}"#);
        let Ok(Command::Publish(topic, out)) = c else { panic!("{c:?}") };
        assert_eq!(topic, "chat");
        assert_eq!(out.id.as_deref(), Some("7"));
        assert_eq!(out.payload, Payload::text(r#"{"a":1}"#));
        assert!(out.envelope.json);
        assert_eq!(out.envelope.message_type.as_deref(), Some("message"));
        let c = decode(r#"{"type":"message","data":{"payload":"hi","messageType":"create"}}"#);
        let Ok(Command::Send(out)) = c else { panic!("{c:?}") };
        assert_eq!((out.payload, out.envelope.json), (Payload::text("hi"), false));
    }

    #[test]
    fn bad_frames_say_what_is_wrong() {
        assert_eq!(decode("nope").unwrap_err().code, "bad-frame");
        assert_eq!(decode("[1]").unwrap_err().code, "bad-frame");
        let e = decode(r#"{"type":"subscribe","data":{"topic":5}}"#).unwrap_err();
        assert_eq!((e.code, e.kind.as_deref()), ("bad-frame", Some("subscribe")));
        let e = decode(r#"{"type":"dance","data":{"id":"x1"}}"#).unwrap_err();
        assert_eq!((e.code, e.id.as_deref()), ("unknown-type", Some("x1")));
        let e = decode(r#"{"type":"publish","data":{"payload":1,"id":"p"}}"#).unwrap_err();
        assert_eq!((e.code, e.id.as_deref()), ("bad-frame", Some("p")));
    }

    #[test]
    fn deliveries_carry_type_sender_and_payload() {
        let envelope = Envelope {
            message_type: Some("text-message".into()),
            client_id: Some("m1".into()),
            connection: Some("c1".into()),
            json: false,
            publisher: None,
        };
        let origin = Origin::Function { trail: Arc::from([]) };
        let chat = ChannelName::parse("chat").unwrap();
        let m =
            Message::new(chat.clone(), Payload::text("hi"), origin.clone()).with_envelope(envelope);
        let v: serde_json::Value = serde_json::from_str(&delivery(&m)).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"topic":"chat","messageType":"text-message",
                "data":{"id":"m1","payload":"hi","client":{"connectionId":"c1"}}})
        );
        let raw = Message::new(chat, Payload::binary(vec![0xff]), origin);
        let v: serde_json::Value = serde_json::from_str(&delivery(&raw)).unwrap();
        assert_eq!(v["messageType"], "message");
        assert_eq!(
            (v["data"]["payload"].as_str(), v["data"]["encoding"].as_str()),
            (Some("/w=="), Some("base64"))
        );
    }
}
