//! The hostile commands, each with the answer `docs/protocol.md` documents for it: an
//! error reply (the connection stays and keeps answering), a close frame with a code,
//! nothing at all (ignored, and the connection keeps answering), or, for input that only
//! looks hostile, the ordinary reply.

use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::{
    Message,
    protocol::frame::{
        Frame,
        coding::{Data, OpCode},
    },
};

use super::{SECRET, connection_token, pb, subscription_token};
use crate::realtime::{now, sign, sign_with, unsigned};

/// The wire format of a case's connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wire {
    Json,
    Protobuf,
}

/// Where a case's connection is when the hostile frame goes out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// Just opened: nothing sent yet.
    Fresh,
    /// Connected as user `mallory` (command id 1).
    Connected,
}

/// What tern must answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// An error reply to command `id` with `code`; the connection stays.
    Error { id: u32, code: u32 },
    /// A close frame with this code.
    Close(u16),
    /// No reply; the connection stays.
    Ignored,
    /// A successful reply to command `id`: hostile-looking, but valid.
    Success(u32),
}

/// One hostile command and its documented answer.
pub struct Case {
    pub name: &'static str,
    pub wire: Wire,
    pub start: Start,
    /// JSON commands sent first, one frame each, each of which must succeed.
    pub setup: Vec<Value>,
    /// The hostile frame.
    pub frame: Message,
    pub expect: Expect,
}

/// The user the hostile connections connect as.
pub const USER: &str = "mallory";

const BAD_REQUEST: Expect = Expect::Close(3501);
const INVALID_TOKEN: Expect = Expect::Close(3500);

const fn error(id: u32, code: u32) -> Expect {
    Expect::Error { id, code }
}

fn case(name: &'static str, wire: Wire, start: Start, frame: Message, expect: Expect) -> Case {
    Case { name, wire, start, setup: Vec::new(), frame, expect }
}

/// A JSON text frame on a fresh connection.
fn fresh(name: &'static str, text: impl Into<String>, expect: Expect) -> Case {
    case(name, Wire::Json, Start::Fresh, Message::text(text.into()), expect)
}

/// A JSON command on a connected connection.
fn connected(name: &'static str, command: Value, expect: Expect) -> Case {
    case(name, Wire::Json, Start::Connected, Message::text(command.to_string()), expect)
}

/// A JSON command on a connected connection, after `setup` succeeded.
fn after(name: &'static str, setup: Vec<Value>, command: Value, expect: Expect) -> Case {
    Case { setup, ..connected(name, command, expect) }
}

/// A binary frame on a protobuf connection.
fn protobuf(name: &'static str, start: Start, bytes: Vec<u8>, expect: Expect) -> Case {
    case(name, Wire::Protobuf, start, Message::binary(bytes), expect)
}

fn connect_with(token: &str) -> String {
    json!({ "id": 1, "connect": { "token": token } }).to_string()
}

fn subscribe(id: u32, channel: &str) -> Value {
    json!({ "id": id, "subscribe": { "channel": channel } })
}

fn subscribe_with(id: u32, channel: &str, token: &str) -> Value {
    json!({ "id": id, "subscribe": { "channel": channel, "token": token } })
}

fn publish(id: u32, channel: &str, data: Value) -> Value {
    json!({ "id": id, "publish": { "channel": channel, "data": data } })
}

/// Claims of `mallory`'s connection token, with `extra` merged in.
fn claims(extra: Value) -> Value {
    let mut claims = json!({ "sub": USER, "exp": now() + 3600 });
    if let (Some(claims), Some(extra)) = (claims.as_object_mut(), extra.as_object()) {
        claims.extend(extra.clone());
    }
    claims
}

/// Every case. Ids above 1 are free: the connect of [`Start::Connected`] is id 1.
pub fn all() -> Vec<Case> {
    let mut cases = before_connect();
    cases.extend(tokens());
    cases.extend(methods());
    cases.extend(subscriptions());
    cases.extend(publishing_and_reading());
    cases.extend(refreshes());
    cases.extend(protobuf_frames());
    cases
}

/// Frames that do not decode, or that come before the connect.
fn before_connect() -> Vec<Case> {
    let token = connection_token(USER);
    let invalid_utf8 = Frame::message(vec![b'{', 0xff, 0xfe, b'}'], OpCode::Data(Data::Text), true);
    let many: Vec<String> =
        (1..=513).map(|id| json!({ "id": id, "ping": {} }).to_string()).collect();
    vec![
        fresh("not JSON", r#"{"id":1,"connect":"#, BAD_REQUEST),
        fresh("a JSON array", r#"[{"id":1,"connect":{}}]"#, BAD_REQUEST),
        fresh("a JSON string", r#""connect""#, BAD_REQUEST),
        fresh("a JSON number", "42", BAD_REQUEST),
        fresh("JSON null", "null", BAD_REQUEST),
        fresh("an empty frame", "", BAD_REQUEST),
        fresh("only blank lines", "\n \n\t\n", BAD_REQUEST),
        case(
            "a binary frame on a JSON connection",
            Wire::Json,
            Start::Fresh,
            Message::binary(connect_with(&token).into_bytes()),
            BAD_REQUEST,
        ),
        case(
            "a text frame that is not UTF-8",
            Wire::Json,
            Start::Fresh,
            Message::Frame(invalid_utf8),
            Expect::Close(1007),
        ),
        fresh("subscribe before connect", subscribe(1, "chat/a").to_string(), BAD_REQUEST),
        fresh("publish before connect", publish(1, "chat/a", json!(1)).to_string(), BAD_REQUEST),
        fresh(
            "connect without an id",
            json!({ "connect": { "token": token } }).to_string(),
            BAD_REQUEST,
        ),
        fresh(
            "connect with id 0",
            json!({ "id": 0, "connect": { "token": token } }).to_string(),
            BAD_REQUEST,
        ),
        fresh(
            "an id that is a string",
            json!({ "id": "1", "connect": { "token": token } }).to_string(),
            BAD_REQUEST,
        ),
        fresh(
            "a negative id",
            json!({ "id": -1, "connect": { "token": token } }).to_string(),
            BAD_REQUEST,
        ),
        fresh(
            "an id past 32 bits",
            json!({ "id": 1u64 << 40, "connect": { "token": token } }).to_string(),
            BAD_REQUEST,
        ),
        fresh(
            "a field given twice",
            format!(r#"{{"id":1,"id":2,"connect":{{"token":"{token}"}}}}"#),
            BAD_REQUEST,
        ),
        fresh("garbage after the command", format!("{} x", connect_with(&token)), BAD_REQUEST),
        fresh("a token that is a number", r#"{"id":1,"connect":{"token":42}}"#, BAD_REQUEST),
        fresh("513 commands in one frame (the limit is 512)", many.join("\n"), BAD_REQUEST),
        fresh(
            "a frame past websocket.max_message (64 KiB)",
            "x".repeat(100 * 1024),
            Expect::Close(1009),
        ),
    ]
}

/// Connection tokens that must not connect.
fn tokens() -> Vec<Case> {
    let expired = sign(SECRET, &json!({ "sub": USER, "exp": now() - 60 }));
    let future = sign(SECRET, &claims(json!({ "nbf": now() + 3600 })));
    let big_info = claims(json!({ "info": { "pad": "x".repeat(5000) } }));
    vec![
        fresh(
            "connect without a token (anonymous not allowed)",
            r#"{"id":1,"connect":{}}"#,
            error(1, 101),
        ),
        fresh("an expired connection token", connect_with(&expired), error(1, 109)),
        fresh(
            "a token signed with another secret",
            connect_with(&sign("another secret, also 32 bytes long", &claims(json!({})))),
            INVALID_TOKEN,
        ),
        fresh(
            "an unsigned token (alg none)",
            connect_with(&unsigned(&claims(json!({})))),
            INVALID_TOKEN,
        ),
        fresh(
            "a token signed with HS512",
            connect_with(&sign_with(jsonwebtoken::Algorithm::HS512, SECRET, &claims(json!({})))),
            INVALID_TOKEN,
        ),
        fresh(
            "a token without exp",
            connect_with(&sign(SECRET, &json!({ "sub": USER }))),
            INVALID_TOKEN,
        ),
        fresh("a token not valid yet (nbf)", connect_with(&future), INVALID_TOKEN),
        fresh("a token that is not a JWT", connect_with("not.a.jwt"), INVALID_TOKEN),
        fresh(
            "a subscription token used to connect",
            connect_with(&subscription_token(USER, "chat/a")),
            INVALID_TOKEN,
        ),
        fresh(
            "a token whose info is over 4 KiB",
            connect_with(&sign(SECRET, &big_info)),
            INVALID_TOKEN,
        ),
        fresh(
            "a token whose sub is not a string",
            connect_with(&sign(SECRET, &claims(json!({ "sub": 7 })))),
            INVALID_TOKEN,
        ),
        fresh(
            "a token expiring in 300 billion years, then a subscribe in the same frame",
            format!(
                "{}\n{}",
                connect_with(&sign(
                    SECRET,
                    &claims(json!({ "exp": 10_000_000_000_000_000_000u64 }))
                )),
                subscribe(2, "rooms/forever")
            ),
            Expect::Success(2),
        ),
        connected(
            "a second connect",
            json!({ "id": 2, "connect": { "token": connection_token(USER) } }),
            BAD_REQUEST,
        ),
    ]
}

/// Methods tern does not serve, and commands without an id.
fn methods() -> Vec<Case> {
    vec![
        connected("an unknown method", json!({ "id": 2, "frobnicate": {} }), error(2, 104)),
        connected("an id and no method", json!({ "id": 2 }), error(2, 104)),
        connected(
            "rpc (no function serves it yet)",
            json!({ "id": 2, "rpc": { "method": "x", "data": {} } }),
            error(2, 104),
        ),
        connected("send with an id", json!({ "id": 2, "send": { "data": {} } }), error(2, 104)),
        connected("send without an id", json!({ "send": { "data": {} } }), Expect::Ignored),
        connected("a pong nobody asked for", json!({}), Expect::Ignored),
        connected(
            "subscribe without an id",
            json!({ "subscribe": { "channel": "chat/a" } }),
            BAD_REQUEST,
        ),
        connected("ping with id 0", json!({ "id": 0, "ping": {} }), BAD_REQUEST),
    ]
}

/// Subscribes that must be refused.
fn subscriptions() -> Vec<Case> {
    let flood: Vec<String> = (0..120)
        .map(|i| {
            let id = i + 2;
            if i % 2 == 0 {
                subscribe(id, "chat/flood")
            } else {
                json!({ "id": id, "unsubscribe": { "channel": "chat/flood" } })
            }
            .to_string()
        })
        .collect();
    let other_secret = sign(
        "another secret, also 32 bytes long",
        &json!({ "sub": USER, "channel": "locked/a", "exp": now() + 3600 }),
    );
    let expired = sign(SECRET, &json!({ "sub": USER, "channel": "locked/a", "exp": now() - 60 }));
    let four = (2..6).map(|id| subscribe(id, &format!("chat/many{id}"))).collect();
    vec![
        connected(
            "subscribe: an empty segment in the channel",
            subscribe(2, "chat//a"),
            error(2, 107),
        ),
        connected("subscribe: an empty channel", subscribe(2, ""), error(2, 107)),
        connected(
            "subscribe: a channel of 300 bytes",
            subscribe(2, &format!("chat/{}", "a".repeat(295))),
            error(2, 107),
        ),
        connected("subscribe: a space in the channel", subscribe(2, "chat/a b"), error(2, 107)),
        connected(
            "subscribe: no messaging config matches",
            subscribe(2, "nowhere/a"),
            error(2, 102),
        ),
        connected(
            "subscribe: a config without the WebSocket bridge",
            subscribe(2, "quiet/a"),
            error(2, 102),
        ),
        connected(
            "subscribe: another connection's private topic",
            subscribe(2, "priv/abc"),
            error(2, 102),
        ),
        after(
            "subscribe twice",
            vec![subscribe(2, "chat/a")],
            subscribe(3, "chat/a"),
            error(3, 105),
        ),
        after(
            "a fifth channel (max_channels_per_connection: 4)",
            four,
            subscribe(6, "chat/many6"),
            error(6, 106),
        ),
        case(
            "a subscribe flood: 120 changes in one frame (100 per second)",
            Wire::Json,
            Start::Connected,
            Message::text(flood.join("\n")),
            error(102, 111),
        ),
        connected("subscribe: token, without one", subscribe(2, "locked/a"), error(2, 103)),
        connected(
            "subscribe: a subscription token of another secret",
            subscribe_with(2, "locked/a", &other_secret),
            error(2, 103),
        ),
        connected(
            "subscribe: a subscription token for another channel",
            subscribe_with(2, "locked/a", &subscription_token(USER, "locked/b")),
            error(2, 103),
        ),
        connected(
            "subscribe: a subscription token of another user",
            subscribe_with(2, "locked/a", &subscription_token("alice", "locked/a")),
            error(2, 103),
        ),
        connected(
            "subscribe: an expired subscription token",
            subscribe_with(2, "locked/a", &expired),
            error(2, 109),
        ),
        connected(
            "subscribe: a connection token as subscription token",
            subscribe_with(2, "locked/a", &connection_token(USER)),
            error(2, 103),
        ),
        connected(
            "subscribe: an unsigned subscription token",
            subscribe_with(
                2,
                "locked/a",
                &unsigned(&json!({ "sub": USER, "channel": "locked/a", "exp": now() + 3600 })),
            ),
            error(2, 103),
        ),
        connected(
            "subscribe: nobody, even with a subscription token",
            subscribe_with(2, "sealed/a", &subscription_token(USER, "sealed/a")),
            error(2, 103),
        ),
    ]
}

/// Publish, presence and history that must be refused.
fn publishing_and_reading() -> Vec<Case> {
    let deep = format!(
        r#"{{"id":2,"publish":{{"channel":"chat/deep","data":{}{}}}}}"#,
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    let since = json!({ "id": 3, "history": { "channel": "rooms/h", "limit": 10, "since": { "offset": 1, "epoch": "not-the-epoch" } } });
    vec![
        connected("publish: nobody", publish(2, "readonly/a", json!("hi")), error(2, 103)),
        connected(
            "publish: subscribers, while not subscribed",
            publish(2, "members/a", json!("hi")),
            error(2, 103),
        ),
        connected(
            "publish: to a channel no config matches",
            publish(2, "nowhere/a", json!("hi")),
            error(2, 102),
        ),
        connected(
            "publish: to an invalid channel",
            publish(2, "chat/../a", json!("hi")),
            error(2, 107),
        ),
        connected(
            "publish: without data",
            json!({ "id": 2, "publish": { "channel": "chat/a" } }),
            error(2, 107),
        ),
        connected(
            "publish: data nested 10,000 deep (relayed as it is)",
            Value::Null,
            Expect::Success(2),
        )
        .with_text(deep),
        connected(
            "presence: while not subscribed",
            json!({ "id": 2, "presence": { "channel": "rooms/p" } }),
            error(2, 103),
        ),
        after(
            "presence: a channel without presence",
            vec![subscribe(2, "chat/a")],
            json!({ "id": 3, "presence": { "channel": "chat/a" } }),
            error(3, 108),
        ),
        after(
            "presence_stats: a channel without presence",
            vec![subscribe(2, "chat/a")],
            json!({ "id": 3, "presence_stats": { "channel": "chat/a" } }),
            error(3, 108),
        ),
        after(
            "history: a channel without history",
            vec![subscribe(2, "chat/a")],
            json!({ "id": 3, "history": { "channel": "chat/a", "limit": 10 } }),
            error(3, 108),
        ),
        connected(
            "history: while not subscribed",
            json!({ "id": 2, "history": { "channel": "rooms/h", "limit": -1 } }),
            error(2, 103),
        ),
        after(
            "history: since a position of another epoch",
            vec![subscribe(2, "rooms/h")],
            since,
            error(3, 112),
        ),
    ]
}

/// Refreshes that must be refused.
fn refreshes() -> Vec<Case> {
    let expired = sign(SECRET, &json!({ "sub": USER, "exp": now() - 60 }));
    let refresh = |token: &str| json!({ "id": 2, "refresh": { "token": token } });
    let sub_refresh = |channel: &str, token: &str| json!({ "id": 2, "sub_refresh": { "channel": channel, "token": token } });
    vec![
        connected(
            "refresh: another user's token",
            refresh(&connection_token("alice")),
            INVALID_TOKEN,
        ),
        connected("refresh: a token that is not a JWT", refresh("garbage"), INVALID_TOKEN),
        connected("refresh: an expired token", refresh(&expired), error(2, 109)),
        connected(
            "sub_refresh: a channel not subscribed",
            sub_refresh("locked/a", &subscription_token(USER, "locked/a")),
            error(2, 103),
        ),
        connected(
            "sub_refresh: a token that is not a JWT",
            sub_refresh("locked/a", "garbage"),
            error(2, 103),
        ),
        connected(
            "sub_refresh: an invalid channel",
            sub_refresh("locked//a", "garbage"),
            error(2, 107),
        ),
    ]
}

/// Protobuf frames that do not decode, and refused protobuf commands.
fn protobuf_frames() -> Vec<Case> {
    use Start::{Connected, Fresh};
    // Command { id: 5, subscribe: { channel: ff fe } }: a string field that is not UTF-8.
    let not_utf8 = vec![0x08, 0x05, 0x2a, 0x04, 0x0a, 0x02, 0xff, 0xfe];
    let mut delimited = vec![not_utf8.len() as u8];
    delimited.extend(not_utf8);
    let many: Vec<u8> = (1..=513).flat_map(|id| pb::frame(&pb::ping(id))).collect();
    let rpc = pb::Command { id: 2, rpc: Some(pb::Empty {}), ..Default::default() };
    let readonly = pb::Command {
        id: 2,
        publish: Some(pb::PublishRequest { channel: "readonly/a".into(), data: vec![0xff].into() }),
        ..Default::default()
    };
    let bad_name = pb::Command {
        id: 2,
        subscribe: Some(pb::ChannelRequest { channel: "chat/\u{e9}".into() }),
        ..Default::default()
    };
    vec![
        protobuf("protobuf: a truncated length", Fresh, vec![0xff], BAD_REQUEST),
        protobuf("protobuf: a length past the frame", Fresh, vec![0x10, 0x08, 0x01], BAD_REQUEST),
        protobuf("protobuf: an invalid wire type", Fresh, vec![0x01, 0x0f], BAD_REQUEST),
        protobuf("protobuf: a string that is not UTF-8", Fresh, delimited, BAD_REQUEST),
        protobuf("protobuf: an empty frame", Fresh, Vec::new(), BAD_REQUEST),
        protobuf("protobuf: 513 commands in one frame", Fresh, many, BAD_REQUEST),
        case(
            "protobuf: a text frame",
            Wire::Protobuf,
            Fresh,
            Message::text(connect_with(&connection_token(USER))),
            BAD_REQUEST,
        ),
        protobuf("protobuf: ping before connect", Fresh, pb::frame(&pb::ping(1)), BAD_REQUEST),
        protobuf(
            "protobuf: a connect with a bad token",
            Fresh,
            pb::frame(&pb::connect(1, "x.y.z")),
            INVALID_TOKEN,
        ),
        protobuf("protobuf: rpc", Connected, pb::frame(&rpc), error(2, 104)),
        protobuf("protobuf: publish: nobody", Connected, pb::frame(&readonly), error(2, 103)),
        protobuf(
            "protobuf: subscribe to a channel with a non-ASCII name",
            Connected,
            pb::frame(&bad_name),
            error(2, 107),
        ),
    ]
}

impl Case {
    /// The same case with `text` as its frame, for a frame `serde_json` cannot build.
    fn with_text(self, text: String) -> Self {
        Case { frame: Message::text(text), ..self }
    }
}
