//! A publication as a NATS message: the payload as the body, and beside it two headers:
//! `Tern-Node` (the node that published it, so it ignores its own when NATS hands them
//! back) and `Tern-Meta`, a JSON object with what else subscribers see (text or binary,
//! JSON or not, when, who published it, the realtime envelope, the trail of functions).
//! JSON escapes control characters, so no header value can hold a line break.

use std::sync::Arc;

use async_nats::{HeaderMap, HeaderValue};
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::{
    broker::{ClientInfo, Envelope, Event, Message, Origin, Payload},
    channel_name::ChannelName,
};

/// The header naming the publishing node.
pub const NODE: &str = "Tern-Node";
/// The header with the rest of the message's details.
const META: &str = "Tern-Meta";
/// The longest trail taken from another node (the hop limit is far lower).
const MAX_TRAIL: usize = 64;

#[derive(Serialize, Deserialize)]
struct Meta {
    /// Text (else binary).
    t: bool,
    /// A JSON document (realtime clients get it as JSON).
    #[serde(default, skip_serializing_if = "is_false")]
    j: bool,
    /// Published at, in milliseconds since the Unix epoch.
    at: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    trail: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    mtype: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    mid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    conn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    by: Option<Publisher>,
    /// A join (`j`) or a leave (`l`) of `by`, rather than a publication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ev: Option<char>,
}

/// A client as the wire carries it.
#[derive(Serialize, Deserialize)]
pub(super) struct Publisher {
    user: String,
    client: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    conn_info: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    chan_info: Option<String>,
}

fn is_false(b: &bool) -> bool {
    !b
}

/// Why a message from NATS was not taken.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// No `Tern-Meta` header: not published by tern.
    #[error("no {META} header (not published by a tern node)")]
    NoMeta,
    /// The header is not what tern writes.
    #[error("{META} header: {0}")]
    BadMeta(serde_json::Error),
    /// A text message whose bytes are not UTF-8.
    #[error("a text message that is not UTF-8")]
    NotUtf8,
    /// The trail is longer than any node would send.
    #[error("a trail of more than {MAX_TRAIL} functions")]
    TrailTooLong,
    /// An event tern does not send (or a join or leave without its client).
    #[error("event `{0}` is not one tern sends, or comes without its client")]
    BadEvent(char),
}

impl Publisher {
    pub(super) fn of(p: &ClientInfo) -> Publisher {
        let text = |s: &Option<Arc<str>>| s.as_deref().map(str::to_owned);
        Publisher {
            user: p.user.to_string(),
            client: p.client.to_string(),
            conn_info: text(&p.conn_info),
            chan_info: text(&p.chan_info),
        }
    }

    pub(super) fn into_info(self) -> Arc<ClientInfo> {
        let arc = |s: Option<String>| s.map(Arc::<str>::from);
        Arc::new(ClientInfo {
            user: self.user.into(),
            client: self.client.into(),
            conn_info: arc(self.conn_info),
            chan_info: arc(self.chan_info),
        })
    }
}

/// `message`'s headers (published by `node`) and body.
pub fn encode(message: &Message, node: &str) -> (HeaderMap, Bytes) {
    let envelope = &message.envelope;
    let text = |s: &Option<Arc<str>>| s.as_deref().map(str::to_owned);
    let (ev, by) = match &message.event {
        Event::Publication => (None, envelope.publisher.as_deref().map(Publisher::of)),
        Event::Join(info) => (Some('j'), Some(Publisher::of(info))),
        Event::Leave(info) => (Some('l'), Some(Publisher::of(info))),
    };
    let meta = Meta {
        t: message.payload.is_text(),
        j: envelope.json,
        at: message.published_at_ms,
        trail: message.origin.trail().iter().map(|f| f.to_string()).collect(),
        mtype: text(&envelope.message_type),
        mid: text(&envelope.client_id),
        conn: text(&envelope.connection),
        by,
        ev,
    };
    let mut headers = HeaderMap::new();
    // Node ids and serde_json's output hold no line break, the one thing a value may not.
    if let Ok(value) = HeaderValue::try_from(node) {
        headers.insert(NODE, value);
    }
    if let Ok(json) = serde_json::to_string(&meta)
        && let Ok(value) = HeaderValue::try_from(&json)
    {
        headers.insert(META, value);
    }
    (headers, message.payload.bytes().clone())
}

/// Headers naming `node` only (its snapshots).
pub fn node_headers(node: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    if let Ok(value) = HeaderValue::try_from(node) {
        headers.insert(NODE, value);
    }
    headers
}

/// The node that published a message from NATS, if it says.
pub fn node(headers: Option<&HeaderMap>) -> Option<&str> {
    headers?.get(NODE).map(HeaderValue::as_str)
}

/// The message another node published on `channel`, from its NATS headers and body.
pub fn decode(
    channel: ChannelName,
    headers: Option<&HeaderMap>,
    body: Bytes,
) -> Result<Message, WireError> {
    let meta = headers.and_then(|h| h.get(META)).ok_or(WireError::NoMeta)?;
    let meta: Meta = serde_json::from_str(meta.as_str()).map_err(WireError::BadMeta)?;
    if meta.trail.len() > MAX_TRAIL {
        return Err(WireError::TrailTooLong);
    }
    let payload = if meta.t {
        Payload::text_from_bytes(body).map_err(|_| WireError::NotUtf8)?
    } else {
        Payload::binary(body)
    };
    let arc = |s: Option<String>| s.map(Arc::<str>::from);
    let trail: Arc<[Arc<str>]> = meta.trail.into_iter().map(Arc::from).collect();
    let by = meta.by.map(Publisher::into_info);
    let event = match (meta.ev, &by) {
        (None, _) => Event::Publication,
        (Some('j'), Some(info)) => Event::Join(info.clone()),
        (Some('l'), Some(info)) => Event::Leave(info.clone()),
        (Some(other), _) => return Err(WireError::BadEvent(other)),
    };
    let envelope = Envelope {
        message_type: arc(meta.mtype),
        client_id: arc(meta.mid),
        connection: arc(meta.conn),
        json: meta.j,
        publisher: by.filter(|_| event == Event::Publication),
    };
    let mut message =
        Message::new(channel, payload, Origin::Function { trail }).with_envelope(envelope);
    message.event = event;
    message.published_at_ms = meta.at;
    Ok(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> ChannelName {
        ChannelName::parse(s).unwrap()
    }

    #[test]
    fn a_message_survives_the_trip() {
        let info = ClientInfo {
            user: "ada\nlovelace ü".into(),
            client: "c1".into(),
            conn_info: Some(r#"{"x":1}"#.into()),
            chan_info: None,
        };
        let envelope = Envelope {
            message_type: Some("text-message".into()),
            client_id: Some("m1".into()),
            connection: Some("conn".into()),
            json: true,
            publisher: Some(Arc::new(info.clone())),
        };
        let trail: Arc<[Arc<str>]> = Arc::from([Arc::from("bot")]);
        let sent =
            Message::new(name("chat/a.b"), Payload::text("{\"a\":1}"), Origin::Function { trail })
                .with_envelope(envelope.clone());
        let (headers, body) = encode(&sent, "node-1");
        assert_eq!(node(Some(&headers)), Some("node-1"));
        let got = decode(name("chat/a.b"), Some(&headers), body).unwrap();
        assert_eq!(got.payload, sent.payload);
        assert_eq!(got.envelope, envelope);
        assert_eq!(got.published_at_ms, sent.published_at_ms);
        assert_eq!(got.origin.trail(), sent.origin.trail());
    }

    #[test]
    fn joins_and_leaves_travel_with_their_client() {
        let info = Arc::new(ClientInfo {
            user: "ada".into(),
            client: "c1".into(),
            conn_info: None,
            chan_info: Some("{}".into()),
        });
        for event in [Event::Join(info.clone()), Event::Leave(info.clone())] {
            let sent = Message::event(name("room"), event.clone());
            let (headers, body) = encode(&sent, "n");
            let got = decode(name("room"), Some(&headers), body).unwrap();
            assert_eq!(got.event, event);
            assert_eq!(got.envelope.publisher, None);
        }
        let mut headers = HeaderMap::new();
        headers.insert(META, HeaderValue::try_from(r#"{"t":false,"at":1,"ev":"j"}"#).unwrap());
        let err = decode(name("room"), Some(&headers), Bytes::new());
        assert!(matches!(err, Err(WireError::BadEvent('j'))), "a join without its client");
    }

    #[test]
    fn binary_stays_binary() {
        let sent = Message::new(
            name("b"),
            Payload::binary(vec![0xff, 0, 1]),
            Origin::Function { trail: Arc::from([]) },
        );
        let (headers, body) = encode(&sent, "n");
        let got = decode(name("b"), Some(&headers), body).unwrap();
        assert!(!got.payload.is_text());
        assert_eq!(got.payload.bytes().as_ref(), [0xff, 0, 1]);
    }

    #[test]
    fn foreign_or_broken_messages_are_refused() {
        let body = Bytes::from_static(b"x");
        assert!(matches!(decode(name("c"), None, body.clone()), Err(WireError::NoMeta)));
        let mut headers = HeaderMap::new();
        headers.insert(META, HeaderValue::try_from("{not json").unwrap());
        assert!(matches!(decode(name("c"), Some(&headers), body), Err(WireError::BadMeta(_))));
        headers.insert(META, HeaderValue::try_from(r#"{"t":true,"at":1}"#).unwrap());
        let bad = Bytes::from_static(b"\xff");
        assert!(matches!(decode(name("c"), Some(&headers), bad), Err(WireError::NotUtf8)));
        let trail = format!(r#"{{"t":false,"at":1,"trail":{:?}}}"#, vec!["f"; 65]);
        headers.insert(META, HeaderValue::try_from(trail.as_str()).unwrap());
        let err = decode(name("c"), Some(&headers), Bytes::new());
        assert!(matches!(err, Err(WireError::TrailTooLong)));
    }
}
