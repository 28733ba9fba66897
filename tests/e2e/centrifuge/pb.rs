//! The few protobuf messages of `client.proto` (package `centrifugal.centrifuge.protocol`)
//! the raw-frame tests write and read, by the schema's field tags, so a test can build a
//! frame byte by byte and still read tern's answer. Fields the tests do not use are left
//! out: prost skips them when decoding.

use bytes::Bytes;
use prost::Message as _;

/// `Command`, with the requests the tests send.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Command {
    #[prost(uint32, tag = "1")]
    pub id: u32,
    #[prost(message, optional, tag = "4")]
    pub connect: Option<TokenRequest>,
    #[prost(message, optional, tag = "5")]
    pub subscribe: Option<ChannelRequest>,
    #[prost(message, optional, tag = "7")]
    pub publish: Option<PublishRequest>,
    #[prost(message, optional, tag = "11")]
    pub ping: Option<Empty>,
    #[prost(message, optional, tag = "13")]
    pub rpc: Option<Empty>,
}

/// `ConnectRequest` (token only).
#[derive(Clone, PartialEq, prost::Message)]
pub struct TokenRequest {
    #[prost(string, tag = "1")]
    pub token: String,
}

/// `SubscribeRequest` (channel only).
#[derive(Clone, PartialEq, prost::Message)]
pub struct ChannelRequest {
    #[prost(string, tag = "1")]
    pub channel: String,
}

/// `PublishRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PublishRequest {
    #[prost(string, tag = "1")]
    pub channel: String,
    #[prost(bytes = "bytes", tag = "2")]
    pub data: Bytes,
}

/// Any empty message (`PingRequest`, `PingResult`, an `RPCRequest` with nothing set...).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Empty {}

/// `Reply`, with what the tests look at.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Reply {
    #[prost(uint32, tag = "1")]
    pub id: u32,
    #[prost(message, optional, tag = "2")]
    pub error: Option<Error>,
    #[prost(message, optional, tag = "4")]
    pub push: Option<Empty>,
    #[prost(message, optional, tag = "5")]
    pub connect: Option<ConnectResult>,
    #[prost(message, optional, tag = "12")]
    pub ping: Option<Empty>,
}

/// `Error`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Error {
    #[prost(uint32, tag = "1")]
    pub code: u32,
    #[prost(string, tag = "2")]
    pub message: String,
}

/// `ConnectResult` (client id only).
#[derive(Clone, PartialEq, prost::Message)]
pub struct ConnectResult {
    #[prost(string, tag = "1")]
    pub client: String,
}

/// One command as a frame's bytes: varint length, then the message.
pub fn frame(command: &Command) -> Vec<u8> {
    command.encode_length_delimited_to_vec()
}

/// The connect command with `token`.
pub fn connect(id: u32, token: &str) -> Command {
    Command { id, connect: Some(TokenRequest { token: token.into() }), ..Default::default() }
}

/// The ping command.
pub fn ping(id: u32) -> Command {
    Command { id, ping: Some(Empty {}), ..Default::default() }
}

/// The replies of one binary frame.
pub fn replies(mut bytes: &[u8]) -> Vec<Reply> {
    let mut replies = Vec::new();
    while !bytes.is_empty() {
        let reply = Reply::decode_length_delimited(&mut bytes)
            .unwrap_or_else(|e| panic!("tern sent a frame that does not decode: {e}"));
        replies.push(reply);
    }
    replies
}
