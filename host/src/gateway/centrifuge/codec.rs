//! The two wire formats: JSON (commands and replies one per line in a text frame) and
//! protobuf (each varint-length-delimited in a binary frame); and how a broker message
//! becomes a publication in each.

use std::sync::Arc;

use base64::Engine as _;
use bytes::{BufMut, Bytes, BytesMut};
use prost::Message as _;

use super::proto;
use crate::broker::{ClientInfo, Event, Message, Payload};

/// Most commands one frame may carry: a client batching more is not an SDK.
pub const MAX_COMMANDS_PER_FRAME: usize = 512;

/// A connection's wire format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Text frames of `\n`-separated JSON objects.
    Json,
    /// Binary frames of varint-length-delimited protobuf messages.
    Protobuf,
}

/// Why a frame cannot be read: the connection is closed with "bad request".
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// A text frame on a protobuf connection, or binary on a JSON one.
    #[error("a {got} frame on a {format:?} connection")]
    WrongKind {
        /// What arrived.
        got: &'static str,
        /// The connection's format.
        format: Format,
    },
    /// A command that does not decode.
    #[error("command {index} of the frame does not decode: {why}")]
    Undecodable {
        /// Its place in the frame, from 0.
        index: usize,
        /// The decoder's complaint.
        why: String,
    },
    /// Too many commands in one frame.
    #[error("more than {MAX_COMMANDS_PER_FRAME} commands in one frame")]
    TooMany,
}

impl Format {
    /// The commands of a text (`text` true) or binary frame.
    pub fn decode(self, bytes: Bytes, text: bool) -> Result<Vec<proto::Command>, FrameError> {
        match (self, text) {
            (Format::Json, true) => decode_json(&bytes),
            (Format::Protobuf, false) => decode_protobuf(bytes),
            (format, text) => {
                Err(FrameError::WrongKind { got: if text { "text" } else { "binary" }, format })
            }
        }
    }

    /// `reply` in this format, ready to join others in one frame.
    pub fn encode(self, reply: &proto::Reply) -> Bytes {
        match self {
            // The structs serialize infallibly: their raw fields hold JSON tern wrote.
            Format::Json => serde_json::to_vec(reply).map(Bytes::from).unwrap_or_default(),
            Format::Protobuf => Bytes::from(reply.encode_length_delimited_to_vec()),
        }
    }

    /// Joins encoded replies into one frame's bytes.
    pub fn join(self, parts: &[Bytes]) -> Bytes {
        if let [one] = parts {
            return one.clone();
        }
        let mut out = BytesMut::with_capacity(parts.iter().map(|p| p.len() + 1).sum());
        for (i, part) in parts.iter().enumerate() {
            if self == Format::Json && i > 0 {
                out.put_u8(b'\n');
            }
            out.put_slice(part);
        }
        out.freeze()
    }

    /// The push of `message` (a publication, join or leave) in this format, encoded once
    /// per message and shared by every subscriber of this format.
    pub fn push(self, message: &Message) -> Bytes {
        let slot = &message.push_frames[self as usize];
        slot.get_or_init(|| {
            let channel = message.channel.as_str().to_owned();
            let mut push = proto::Push { channel, ..Default::default() };
            match &message.event {
                Event::Publication => push.publication = Some(self.publication(message)),
                Event::Join(info) => {
                    push.join = Some(proto::InfoPush { info: Some(self.info(info)) })
                }
                Event::Leave(info) => {
                    push.leave = Some(proto::InfoPush { info: Some(self.info(info)) })
                }
            }
            self.encode(&proto::Reply { push: Some(push), ..Default::default() })
        })
        .clone()
    }

    /// `message` as a publication (for a push, a subscribe's recovery, a history reply).
    pub fn publication(self, message: &Message) -> proto::Publication {
        let (data, base64) = self.data(&message.payload, message.envelope.json);
        let mut tags = std::collections::HashMap::new();
        if base64 {
            tags.insert("encoding".to_owned(), "base64".to_owned());
        }
        proto::Publication {
            data,
            info: message.envelope.publisher.as_deref().map(|i| self.info(i)),
            offset: message.position.as_ref().map_or(0, |p| p.offset),
            tags,
        }
    }

    /// A client's info in this format.
    pub fn info(self, info: &ClientInfo) -> proto::ClientInfo {
        let json = |text: &Option<Arc<str>>| {
            text.as_deref()
                .map_or_else(Bytes::new, |t| one_line(&Bytes::copy_from_slice(t.as_bytes())))
        };
        proto::ClientInfo {
            user: info.user.to_string(),
            client: info.client.to_string(),
            conn_info: json(&info.conn_info),
            chan_info: json(&info.chan_info),
        }
    }

    /// A payload as `data`, and whether it went as base64. Protobuf carries the bytes. JSON
    /// embeds a JSON payload as is; other text goes as a JSON string, binary as a base64
    /// JSON string.
    pub(super) fn data(self, payload: &Payload, json: bool) -> (Bytes, bool) {
        match self {
            Format::Protobuf => (payload.bytes().clone(), false),
            Format::Json if payload.is_text() && (json || is_json(payload.bytes())) => {
                (one_line(payload.bytes()), false)
            }
            Format::Json if payload.is_text() => {
                let text = std::str::from_utf8(payload.bytes()).unwrap_or_default();
                (json_string(text), false)
            }
            Format::Json => {
                let encoded = base64::engine::general_purpose::STANDARD.encode(payload.bytes());
                (json_string(&encoded), true)
            }
        }
    }
}

/// A JSON document on one line. A JSON frame holds one reply per line, so a payload's
/// own line breaks would split its push and let the rest read as replies of the
/// publisher's choosing. Raw CR and LF cannot be inside a JSON string (they must be
/// escaped there), so in a valid document they are whitespace, and a space does as well.
fn one_line(json: &Bytes) -> Bytes {
    if !json.iter().any(|b| matches!(b, b'\n' | b'\r')) {
        return json.clone();
    }
    let flat: Vec<u8> =
        json.iter().map(|&b| if matches!(b, b'\n' | b'\r') { b' ' } else { b }).collect();
    Bytes::from(flat)
}

/// Whether `bytes` are one JSON document.
fn is_json(bytes: &[u8]) -> bool {
    serde_json::from_slice::<&serde_json::value::RawValue>(bytes).is_ok()
}

fn json_string(text: &str) -> Bytes {
    serde_json::to_vec(text).map(Bytes::from).unwrap_or_default()
}

/// The payload a client's `data` becomes: JSON stays JSON text (a JSON string becomes its
/// text, as on the realtime endpoint); protobuf bytes become text when they are UTF-8, so
/// raw-bridge clients get a text frame. Returns the payload and whether it is a JSON
/// document other than a string.
pub fn payload_of(format: Format, data: Bytes) -> (Payload, bool) {
    if format == Format::Json || is_json(&data) {
        if data.first() == Some(&b'"')
            && let Ok(text) = serde_json::from_slice::<String>(&data)
        {
            return (Payload::text(text), false);
        }
        if let Ok(payload) = Payload::text_from_bytes(data.clone()) {
            return (payload, true);
        }
    }
    match Payload::text_from_bytes(data.clone()) {
        Ok(text) => (text, false),
        Err(_) => (Payload::binary(data), false),
    }
}

fn decode_json(bytes: &[u8]) -> Result<Vec<proto::Command>, FrameError> {
    let mut commands = Vec::new();
    let lines = bytes.split(|b| *b == b'\n').filter(|l| !l.iter().all(u8::is_ascii_whitespace));
    for (index, line) in lines.enumerate() {
        if index >= MAX_COMMANDS_PER_FRAME {
            return Err(FrameError::TooMany);
        }
        // serde would read a struct from a JSON array too: a command is an object.
        if line.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            let why = "a command is a JSON object".to_owned();
            return Err(FrameError::Undecodable { index, why });
        }
        let command = serde_json::from_slice(line)
            .map_err(|e| FrameError::Undecodable { index, why: e.to_string() })?;
        commands.push(command);
    }
    if commands.is_empty() {
        let why = "the frame holds no command".to_owned();
        return Err(FrameError::Undecodable { index: 0, why });
    }
    Ok(commands)
}

fn decode_protobuf(mut bytes: Bytes) -> Result<Vec<proto::Command>, FrameError> {
    let mut commands = Vec::new();
    while !bytes.is_empty() {
        let index = commands.len();
        if index >= MAX_COMMANDS_PER_FRAME {
            return Err(FrameError::TooMany);
        }
        let command = proto::Command::decode_length_delimited(&mut bytes)
            .map_err(|e| FrameError::Undecodable { index, why: e.to_string() })?;
        commands.push(command);
    }
    if commands.is_empty() {
        let why = "the frame holds no command".to_owned();
        return Err(FrameError::Undecodable { index: 0, why });
    }
    Ok(commands)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_commands_are_one_per_line_and_pongs_are_empty() {
        let frame = Bytes::from_static(b"{\"id\":1,\"subscribe\":{\"channel\":\"a\"}}\n{}\n");
        let commands = Format::Json.decode(frame, true).unwrap();
        assert_eq!(commands.len(), 2);
        assert_eq!(commands[0].subscribe.as_ref().unwrap().channel, "a");
        assert_eq!(commands[1], proto::Command::default());
        assert!(Format::Json.decode(Bytes::from_static(b"[1]"), true).is_err());
        assert!(Format::Json.decode(Bytes::from_static(b"{}"), false).is_err());
    }

    #[test]
    fn protobuf_commands_are_length_delimited() {
        let command = proto::Command {
            id: 7,
            publish: Some(proto::PublishRequest {
                channel: "c".into(),
                data: Bytes::from_static(b"\x00\x01"),
            }),
            ..Default::default()
        };
        let mut frame = command.encode_length_delimited_to_vec();
        frame.extend(proto::Command::default().encode_length_delimited_to_vec());
        let decoded = Format::Protobuf.decode(Bytes::from(frame.clone()), false).unwrap();
        assert_eq!(decoded, [command, proto::Command::default()]);
        frame.truncate(frame.len() - 3);
        assert!(Format::Protobuf.decode(Bytes::from(frame), false).is_err());
    }

    #[test]
    fn server_side_subscriptions_keep_their_empty_results() {
        let entry = proto::SubscribeEntry { key: "a".into(), value: Some(Default::default()) };
        let result = proto::ConnectResult { subs: vec![entry], ..Default::default() };
        let reply = proto::Reply { id: 1, connect: Some(result), ..Default::default() };
        // Entry: key "a" (0a 01 61) and an empty value (12 00), which a map would omit.
        let bytes = Format::Protobuf.encode(&reply);
        assert!(bytes.windows(5).any(|w| w == [0x0a, 0x01, b'a', 0x12, 0x00]), "{bytes:02x?}");
        let json = Format::Json.encode(&reply);
        assert!(std::str::from_utf8(&json).unwrap().contains(r#""subs":{"a":{}}"#));
    }

    #[test]
    fn json_data_is_embedded_text_is_quoted_binary_is_base64() {
        let (data, b64) = Format::Json.data(&Payload::text("{\"a\":1}"), false);
        assert_eq!((&data[..], b64), (&b"{\"a\":1}"[..], false));
        let (data, _) = Format::Json.data(&Payload::text("hi \"you\""), false);
        assert_eq!(&data[..], b"\"hi \\\"you\\\"\"");
        let (data, b64) = Format::Json.data(&Payload::binary(vec![0xff]), false);
        assert_eq!((&data[..], b64), (&b"\"/w==\""[..], true));
        let (payload, json) = payload_of(Format::Json, Bytes::from_static(b"\"text\""));
        assert_eq!((payload, json), (Payload::text("text"), false));
        let (payload, json) = payload_of(Format::Protobuf, Bytes::from_static(b"\xff"));
        assert_eq!((payload.is_text(), json), (false, false));
    }
}
