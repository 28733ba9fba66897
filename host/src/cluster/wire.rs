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
/// The header with the HMAC-SHA256 of the node, the details and the body.
const SIG: &str = "Tern-Sig";
/// The header with the rest of the message's details.
const META: &str = "Tern-Meta";
/// The longest trail taken from another node (the hop limit is far lower).
const MAX_TRAIL: usize = 64;
/// The longest connection or channel info taken from another node (tokens' own limit).
const MAX_INFO: usize = 4096;

/// What nodes sign their messages with: a key derived from the token secret they share,
/// so that a message on the bus that no node wrote is refused. None: unsigned (a cluster
/// without `TERN_AUTH_SECRET`, trusting whoever may publish on its NATS).
#[derive(Clone, Default)]
pub struct BusKey(Option<[u8; 32]>);

impl BusKey {
    /// The key of a cluster whose nodes share token secret `secret`.
    pub fn from_secret(secret: &str) -> BusKey {
        use sha2::Digest;
        BusKey(Some(sha2::Sha256::digest(format!("tern cluster bus\0{secret}")).into()))
    }

    /// Whether messages are signed.
    pub fn signs(&self) -> bool {
        self.0.is_some()
    }

    fn signature(&self, parts: &[&[u8]]) -> Option<String> {
        use hmac::Mac;
        let key = self.0.as_ref()?;
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key).ok()?;
        for part in parts {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        Some(mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect())
    }

    /// Adds the signature of `node`, `meta` and `body` to `headers`.
    fn sign(&self, headers: &mut HeaderMap, parts: &[&[u8]]) {
        if let Some(sig) = self.signature(parts)
            && let Ok(value) = HeaderValue::try_from(sig.as_str())
        {
            headers.insert(SIG, value);
        }
    }

    /// Whether `headers` carry the right signature of `parts` (always, unsigned).
    fn verify(&self, headers: Option<&HeaderMap>, parts: &[&[u8]]) -> bool {
        use hmac::Mac;
        let Some(key) = self.0.as_ref() else { return true };
        let Some(sig) = headers.and_then(|h| h.get(SIG)) else { return false };
        let Some(sig) = hex_bytes(sig.as_str()) else { return false };
        let Ok(mut mac) = hmac::Hmac::<sha2::Sha256>::new_from_slice(key) else { return false };
        for part in parts {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        mac.verify_slice(&sig).is_ok()
    }
}

fn hex_bytes(hex: &str) -> Option<Vec<u8>> {
    if hex.len() != 64 {
        return None;
    }
    (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok()).collect()
}

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
    /// Not signed with the cluster's key: no node of this cluster wrote it.
    #[error("not signed with the cluster's key (nodes sign with their shared TERN_AUTH_SECRET)")]
    BadSignature,
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
        // An info that is not a JSON document would make every presence reply invalid.
        let arc = |s: Option<String>| {
            s.filter(|t| {
                t.len() <= MAX_INFO && serde_json::from_str::<serde::de::IgnoredAny>(t).is_ok()
            })
            .map(Arc::<str>::from)
        };
        Arc::new(ClientInfo {
            user: self.user.into(),
            client: self.client.into(),
            conn_info: arc(self.conn_info),
            chan_info: arc(self.chan_info),
        })
    }
}

/// `message`'s headers (published by `node`, signed with `key`) and body.
pub fn encode(message: &Message, node: &str, key: &BusKey) -> (HeaderMap, Bytes) {
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
    let json = serde_json::to_string(&meta).unwrap_or_default();
    if let Ok(value) = HeaderValue::try_from(&json) {
        headers.insert(META, value);
    }
    let body = message.payload.bytes().clone();
    key.sign(&mut headers, &[node.as_bytes(), json.as_bytes(), &body]);
    (headers, body)
}

/// Headers naming `node`, signed with `key` with `body` (its snapshots).
pub fn node_headers(node: &str, key: &BusKey, body: &[u8]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    if let Ok(value) = HeaderValue::try_from(node) {
        headers.insert(NODE, value);
    }
    key.sign(&mut headers, &[node.as_bytes(), b"", body]);
    headers
}

/// Whether a snapshot's `headers` are signed right for `body` (always, unsigned).
pub fn verify_node(headers: Option<&HeaderMap>, key: &BusKey, body: &[u8]) -> bool {
    let node = node(headers).unwrap_or_default();
    key.verify(headers, &[node.as_bytes(), b"", body])
}

/// The node that published a message from NATS, if it says.
pub fn node(headers: Option<&HeaderMap>) -> Option<&str> {
    headers?.get(NODE).map(HeaderValue::as_str)
}

/// The message another node published on `channel`, from its NATS headers and body,
/// checked against `key`.
pub fn decode(
    channel: ChannelName,
    headers: Option<&HeaderMap>,
    body: Bytes,
    key: &BusKey,
) -> Result<Message, WireError> {
    let meta = headers.and_then(|h| h.get(META)).ok_or(WireError::NoMeta)?;
    let from = node(headers).unwrap_or_default();
    if !key.verify(headers, &[from.as_bytes(), meta.as_str().as_bytes(), &body]) {
        return Err(WireError::BadSignature);
    }
    let meta: Meta = serde_json::from_str(meta.as_str()).map_err(WireError::BadMeta)?;
    if meta.trail.len() > MAX_TRAIL {
        return Err(WireError::TrailTooLong);
    }
    // Trusted only as far as it holds: a JSON flag on a body that is not JSON would make
    // JSON-protocol frames of it invalid.
    let json = meta.j && serde_json::from_slice::<serde::de::IgnoredAny>(&body).is_ok();
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
        json,
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
        let (headers, body) = encode(&sent, "node-1", &BusKey::default());
        assert_eq!(node(Some(&headers)), Some("node-1"));
        let got = decode(name("chat/a.b"), Some(&headers), body, &BusKey::default()).unwrap();
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
            let (headers, body) = encode(&sent, "n", &BusKey::default());
            let got = decode(name("room"), Some(&headers), body, &BusKey::default()).unwrap();
            assert_eq!(got.event, event);
            assert_eq!(got.envelope.publisher, None);
        }
        let mut headers = HeaderMap::new();
        headers.insert(META, HeaderValue::try_from(r#"{"t":false,"at":1,"ev":"j"}"#).unwrap());
        let err = decode(name("room"), Some(&headers), Bytes::new(), &BusKey::default());
        assert!(matches!(err, Err(WireError::BadEvent('j'))), "a join without its client");
    }

    #[test]
    fn a_signed_cluster_refuses_what_its_key_did_not_sign() {
        let key = BusKey::from_secret("a-secret-shared-by-the-nodes-0123456789");
        let other = BusKey::from_secret("another-cluster-secret-0123456789abcdef");
        let sent =
            Message::new(name("c"), Payload::text("hi"), Origin::Function { trail: Arc::from([]) });
        let (headers, body) = encode(&sent, "n1", &key);
        assert!(decode(name("c"), Some(&headers), body.clone(), &key).is_ok());
        let err = decode(name("c"), Some(&headers), body.clone(), &other);
        assert!(matches!(err, Err(WireError::BadSignature)), "another cluster's key");
        let (unsigned, _) = encode(&sent, "n1", &BusKey::default());
        let err = decode(name("c"), Some(&unsigned), body.clone(), &key);
        assert!(matches!(err, Err(WireError::BadSignature)), "unsigned");
        let err = decode(name("c"), Some(&headers), Bytes::from_static(b"tampered"), &key);
        assert!(matches!(err, Err(WireError::BadSignature)), "another body");
        let mut forged = headers.clone();
        forged.insert(NODE, HeaderValue::try_from("n2").unwrap());
        let err = decode(name("c"), Some(&forged), body, &key);
        assert!(matches!(err, Err(WireError::BadSignature)), "another node's name");
        let snapshot = b"{}";
        let h = node_headers("n1", &key, snapshot);
        assert!(verify_node(Some(&h), &key, snapshot));
        assert!(!verify_node(Some(&h), &key, b"{\"bye\":true}"));
        assert!(!verify_node(
            Some(&node_headers("n1", &BusKey::default(), snapshot)),
            &key,
            snapshot
        ));
    }

    #[test]
    fn a_json_flag_on_a_body_that_is_not_json_and_bad_infos_are_dropped() {
        let mut headers = HeaderMap::new();
        let meta =
            r#"{"t":true,"at":1,"j":true,"by":{"user":"u","client":"c","conn_info":"not json"}}"#;
        headers.insert(META, HeaderValue::try_from(meta).unwrap());
        let got =
            decode(name("c"), Some(&headers), Bytes::from_static(b"plain"), &BusKey::default())
                .unwrap();
        assert!(!got.envelope.json);
        assert_eq!(got.envelope.publisher.unwrap().conn_info, None);
    }

    #[test]
    fn binary_stays_binary() {
        let sent = Message::new(
            name("b"),
            Payload::binary(vec![0xff, 0, 1]),
            Origin::Function { trail: Arc::from([]) },
        );
        let (headers, body) = encode(&sent, "n", &BusKey::default());
        let got = decode(name("b"), Some(&headers), body, &BusKey::default()).unwrap();
        assert!(!got.payload.is_text());
        assert_eq!(got.payload.bytes().as_ref(), [0xff, 0, 1]);
    }

    #[test]
    fn foreign_or_broken_messages_are_refused() {
        let body = Bytes::from_static(b"x");
        assert!(matches!(
            decode(name("c"), None, body.clone(), &BusKey::default()),
            Err(WireError::NoMeta)
        ));
        let mut headers = HeaderMap::new();
        headers.insert(META, HeaderValue::try_from("{not json").unwrap());
        assert!(matches!(
            decode(name("c"), Some(&headers), body, &BusKey::default()),
            Err(WireError::BadMeta(_))
        ));
        headers.insert(META, HeaderValue::try_from(r#"{"t":true,"at":1}"#).unwrap());
        let bad = Bytes::from_static(b"\xff");
        assert!(matches!(
            decode(name("c"), Some(&headers), bad, &BusKey::default()),
            Err(WireError::NotUtf8)
        ));
        let trail = format!(r#"{{"t":false,"at":1,"trail":{:?}}}"#, vec!["f"; 65]);
        headers.insert(META, HeaderValue::try_from(trail.as_str()).unwrap());
        let err = decode(name("c"), Some(&headers), Bytes::new(), &BusKey::default());
        assert!(matches!(err, Err(WireError::TrailTooLong)));
    }
}
