//! The messages of the client protocol v2 that tern speaks, after `client.proto` of
//! `centrifugal/protocol` (package `centrifugal.centrifuge.protocol`): the same structs
//! encode to protobuf (prost, by field tag) and to JSON (serde, by snake_case name, with
//! `data`-like fields embedded as JSON rather than as bytes). Fields tern does not use are
//! left out: prost skips unknown tags and serde unknown names.

#![allow(missing_docs, reason = "each field is the protocol's, documented in client.proto")]

use std::collections::HashMap;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// Fields holding a JSON document in the JSON format and bytes in protobuf: the bytes are
/// JSON text there (tern makes sure of it before encoding JSON).
mod raw {
    use bytes::Bytes;
    use serde::{Deserialize, Deserializer, Serializer, de::Error as _, ser::Error as _};
    use serde_json::value::RawValue;

    pub fn serialize<S: Serializer>(bytes: &Bytes, s: S) -> Result<S::Ok, S::Error> {
        let text = std::str::from_utf8(bytes).map_err(S::Error::custom)?;
        let raw: &RawValue = serde_json::from_str(text).map_err(S::Error::custom)?;
        s.serialize_some(raw)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Bytes, D::Error> {
        let raw = Box::<RawValue>::deserialize(d).map_err(D::Error::custom)?;
        Ok(Bytes::from(raw.get().to_owned()))
    }
}

/// `ConnectResult.subs` is a `map<string, SubscribeResult>`; prost's map encoding leaves out
/// a value equal to its default (an empty result), which the SDKs read as null: entries are
/// written by hand, value always present. JSON still sees a map.
mod entries {
    use serde::{Deserialize, Deserializer, Serializer, ser::SerializeMap};

    use super::{SubscribeEntry, SubscribeResult};

    pub fn serialize<S: Serializer>(entries: &[SubscribeEntry], s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(entries.len()))?;
        for entry in entries {
            map.serialize_entry(&entry.key, &entry.value.clone().unwrap_or_default())?;
        }
        map.end()
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<SubscribeEntry>, D::Error> {
        let map = std::collections::BTreeMap::<String, SubscribeResult>::deserialize(d)?;
        Ok(map.into_iter().map(|(key, value)| SubscribeEntry { key, value: Some(value) }).collect())
    }
}

/// One entry of `ConnectResult.subs`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SubscribeEntry {
    #[prost(string, tag = "1")]
    pub key: String,
    #[prost(message, optional, tag = "2")]
    pub value: Option<SubscribeResult>,
}

fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}

#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
pub struct Error {
    #[prost(uint32, tag = "1")]
    pub code: u32,
    #[prost(string, tag = "2")]
    pub message: String,
    #[prost(bool, tag = "3")]
    #[serde(default, skip_serializing_if = "is_default")]
    pub temporary: bool,
}

#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
pub struct Command {
    #[prost(uint32, tag = "1")]
    #[serde(default, skip_serializing_if = "is_default")]
    pub id: u32,
    #[prost(message, optional, tag = "4")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect: Option<ConnectRequest>,
    #[prost(message, optional, tag = "5")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscribe: Option<SubscribeRequest>,
    #[prost(message, optional, tag = "6")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unsubscribe: Option<ChannelRequest>,
    #[prost(message, optional, tag = "7")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publish: Option<PublishRequest>,
    #[prost(message, optional, tag = "8")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub presence: Option<ChannelRequest>,
    #[prost(message, optional, tag = "9")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub presence_stats: Option<ChannelRequest>,
    #[prost(message, optional, tag = "10")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history: Option<HistoryRequest>,
    #[prost(message, optional, tag = "11")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ping: Option<Empty>,
    #[prost(message, optional, tag = "12")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send: Option<DataRequest>,
    #[prost(message, optional, tag = "13")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpc: Option<RpcRequest>,
    #[prost(message, optional, tag = "14")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh: Option<RefreshRequest>,
    #[prost(message, optional, tag = "15")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub_refresh: Option<SubRefreshRequest>,
}

#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
pub struct Reply {
    #[prost(uint32, tag = "1")]
    #[serde(default, skip_serializing_if = "is_default")]
    pub id: u32,
    #[prost(message, optional, tag = "2")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<Error>,
    #[prost(message, optional, tag = "4")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub push: Option<Push>,
    #[prost(message, optional, tag = "5")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect: Option<ConnectResult>,
    #[prost(message, optional, tag = "6")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscribe: Option<SubscribeResult>,
    #[prost(message, optional, tag = "7")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unsubscribe: Option<Empty>,
    #[prost(message, optional, tag = "8")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publish: Option<Empty>,
    #[prost(message, optional, tag = "9")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub presence: Option<PresenceResult>,
    #[prost(message, optional, tag = "10")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub presence_stats: Option<PresenceStatsResult>,
    #[prost(message, optional, tag = "11")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history: Option<HistoryResult>,
    #[prost(message, optional, tag = "12")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ping: Option<Empty>,
    #[prost(message, optional, tag = "13")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpc: Option<RpcResult>,
    #[prost(message, optional, tag = "14")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh: Option<RefreshResult>,
    #[prost(message, optional, tag = "15")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub_refresh: Option<SubRefreshResult>,
}

#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
pub struct Push {
    #[prost(string, tag = "2")]
    pub channel: String,
    #[prost(message, optional, tag = "4")]
    #[serde(rename = "pub", default, skip_serializing_if = "Option::is_none")]
    pub publication: Option<Publication>,
    #[prost(message, optional, tag = "5")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub join: Option<InfoPush>,
    #[prost(message, optional, tag = "6")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leave: Option<InfoPush>,
    #[prost(message, optional, tag = "7")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unsubscribe: Option<UnsubscribePush>,
    #[prost(message, optional, tag = "8")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<DataPush>,
    #[prost(message, optional, tag = "9")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscribe: Option<SubscribePush>,
}

/// A `message` push (data sent to one client), and an RPC's result: data only.
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
pub struct DataPush {
    #[prost(bytes = "bytes", tag = "1")]
    #[serde(with = "raw")]
    pub data: Bytes,
}

/// The result of an RPC.
pub type RpcResult = DataPush;

/// A server-side subscription made after connect.
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
pub struct SubscribePush {
    #[prost(bool, tag = "1")]
    #[serde(default, skip_serializing_if = "is_default")]
    pub recoverable: bool,
    #[prost(string, tag = "4")]
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub epoch: String,
    #[prost(uint64, tag = "5")]
    #[serde(default, skip_serializing_if = "is_default")]
    pub offset: u64,
    #[prost(bool, tag = "6")]
    #[serde(default, skip_serializing_if = "is_default")]
    pub positioned: bool,
}

#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
pub struct ClientInfo {
    #[prost(string, tag = "1")]
    pub user: String,
    #[prost(string, tag = "2")]
    pub client: String,
    #[prost(bytes = "bytes", tag = "3")]
    #[serde(default, skip_serializing_if = "Bytes::is_empty", with = "raw")]
    pub conn_info: Bytes,
    #[prost(bytes = "bytes", tag = "4")]
    #[serde(default, skip_serializing_if = "Bytes::is_empty", with = "raw")]
    pub chan_info: Bytes,
}

#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
pub struct Publication {
    #[prost(bytes = "bytes", tag = "4")]
    #[serde(with = "raw")]
    pub data: Bytes,
    #[prost(message, optional, tag = "5")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub info: Option<ClientInfo>,
    #[prost(uint64, tag = "6")]
    #[serde(default, skip_serializing_if = "is_default")]
    pub offset: u64,
    #[prost(map = "string, string", tag = "7")]
    #[serde(default, skip_serializing_if = "HashMap::is_empty")]
    pub tags: HashMap<String, String>,
}

#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
pub struct InfoPush {
    #[prost(message, optional, tag = "1")]
    pub info: Option<ClientInfo>,
}

#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
pub struct UnsubscribePush {
    #[prost(uint32, tag = "2")]
    pub code: u32,
    #[prost(string, tag = "3")]
    pub reason: String,
}

#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
pub struct ConnectRequest {
    #[prost(string, tag = "1")]
    #[serde(default)]
    pub token: String,
    #[prost(bytes = "bytes", tag = "2")]
    #[serde(default, with = "raw")]
    pub data: Bytes,
    #[prost(map = "string, message", tag = "3")]
    #[serde(default)]
    pub subs: HashMap<String, SubscribeRequest>,
    #[prost(string, tag = "4")]
    #[serde(default)]
    pub name: String,
    #[prost(string, tag = "5")]
    #[serde(default)]
    pub version: String,
}

#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
pub struct ConnectResult {
    #[prost(string, tag = "1")]
    pub client: String,
    #[prost(string, tag = "2")]
    pub version: String,
    #[prost(bool, tag = "3")]
    #[serde(default, skip_serializing_if = "is_default")]
    pub expires: bool,
    #[prost(uint32, tag = "4")]
    #[serde(default, skip_serializing_if = "is_default")]
    pub ttl: u32,
    #[prost(message, repeated, tag = "6")]
    #[serde(default, skip_serializing_if = "Vec::is_empty", with = "entries")]
    pub subs: Vec<SubscribeEntry>,
    #[prost(uint32, tag = "7")]
    pub ping: u32,
    #[prost(bool, tag = "8")]
    pub pong: bool,
}

#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
pub struct RefreshRequest {
    #[prost(string, tag = "1")]
    #[serde(default)]
    pub token: String,
}

#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
pub struct RefreshResult {
    #[prost(string, tag = "1")]
    pub client: String,
    #[prost(string, tag = "2")]
    pub version: String,
    #[prost(bool, tag = "3")]
    #[serde(default, skip_serializing_if = "is_default")]
    pub expires: bool,
    #[prost(uint32, tag = "4")]
    #[serde(default, skip_serializing_if = "is_default")]
    pub ttl: u32,
}

#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
pub struct SubscribeRequest {
    #[prost(string, tag = "1")]
    #[serde(default)]
    pub channel: String,
    #[prost(string, tag = "2")]
    #[serde(default)]
    pub token: String,
    #[prost(bool, tag = "3")]
    #[serde(default)]
    pub recover: bool,
    #[prost(string, tag = "6")]
    #[serde(default)]
    pub epoch: String,
    #[prost(uint64, tag = "7")]
    #[serde(default)]
    pub offset: u64,
}

#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
pub struct SubscribeResult {
    #[prost(bool, tag = "1")]
    #[serde(default, skip_serializing_if = "is_default")]
    pub expires: bool,
    #[prost(uint32, tag = "2")]
    #[serde(default, skip_serializing_if = "is_default")]
    pub ttl: u32,
    #[prost(bool, tag = "3")]
    #[serde(default, skip_serializing_if = "is_default")]
    pub recoverable: bool,
    #[prost(string, tag = "6")]
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub epoch: String,
    #[prost(message, repeated, tag = "7")]
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub publications: Vec<Publication>,
    #[prost(bool, tag = "8")]
    #[serde(default, skip_serializing_if = "is_default")]
    pub recovered: bool,
    #[prost(uint64, tag = "9")]
    #[serde(default, skip_serializing_if = "is_default")]
    pub offset: u64,
    #[prost(bool, tag = "12")]
    #[serde(default, skip_serializing_if = "is_default")]
    pub was_recovering: bool,
}

#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
pub struct SubRefreshRequest {
    #[prost(string, tag = "1")]
    #[serde(default)]
    pub channel: String,
    #[prost(string, tag = "2")]
    #[serde(default)]
    pub token: String,
}

#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
pub struct SubRefreshResult {
    #[prost(bool, tag = "1")]
    #[serde(default, skip_serializing_if = "is_default")]
    pub expires: bool,
    #[prost(uint32, tag = "2")]
    #[serde(default, skip_serializing_if = "is_default")]
    pub ttl: u32,
}

/// The request of unsubscribe, presence and presence_stats: a channel.
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
pub struct ChannelRequest {
    #[prost(string, tag = "1")]
    #[serde(default)]
    pub channel: String,
}

#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
pub struct PublishRequest {
    #[prost(string, tag = "1")]
    #[serde(default)]
    pub channel: String,
    #[prost(bytes = "bytes", tag = "2")]
    #[serde(default, with = "raw")]
    pub data: Bytes,
}

#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
pub struct PresenceResult {
    #[prost(map = "string, message", tag = "1")]
    pub presence: HashMap<String, ClientInfo>,
}

#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
pub struct PresenceStatsResult {
    #[prost(uint32, tag = "1")]
    pub num_clients: u32,
    #[prost(uint32, tag = "2")]
    pub num_users: u32,
}

#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
pub struct StreamPosition {
    #[prost(uint64, tag = "1")]
    #[serde(default)]
    pub offset: u64,
    #[prost(string, tag = "2")]
    #[serde(default)]
    pub epoch: String,
}

#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
pub struct HistoryRequest {
    #[prost(string, tag = "1")]
    #[serde(default)]
    pub channel: String,
    #[prost(int32, tag = "7")]
    #[serde(default)]
    pub limit: i32,
    #[prost(message, optional, tag = "8")]
    #[serde(default)]
    pub since: Option<StreamPosition>,
    #[prost(bool, tag = "9")]
    #[serde(default)]
    pub reverse: bool,
}

#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
pub struct HistoryResult {
    #[prost(message, repeated, tag = "1")]
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub publications: Vec<Publication>,
    #[prost(string, tag = "2")]
    pub epoch: String,
    #[prost(uint64, tag = "3")]
    pub offset: u64,
}

#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
pub struct RpcRequest {
    #[prost(bytes = "bytes", tag = "1")]
    #[serde(default, with = "raw")]
    pub data: Bytes,
    #[prost(string, tag = "2")]
    #[serde(default)]
    pub method: String,
}

/// The request of send: data only.
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
pub struct DataRequest {
    #[prost(bytes = "bytes", tag = "1")]
    #[serde(default, with = "raw")]
    pub data: Bytes,
}

/// The empty messages: ping's request and result, unsubscribe's and publish's results.
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
pub struct Empty {}
