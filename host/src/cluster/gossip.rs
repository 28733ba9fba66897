//! What a node tells the others every [`INTERVAL`] on `<prefix>.nodes`: its clients on
//! each channel with presence and its WebSocket subscriber counts, in parts of at most
//! [`MAX_PART`] bytes; and, when it stops, goodbye. A node not heard from for [`EXPIRY`] is
//! taken as gone: its clients leave (their leave events reach this node's subscribers).

use std::{sync::Arc, time::Duration};

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::wire::Publisher;
use crate::{
    broker::{Broker, ClientInfo, Snapshot},
    channel_name::ChannelName,
};

/// How often a node sends its snapshot.
pub const INTERVAL: Duration = Duration::from_secs(2);
/// How long a node may stay silent before the others take it as gone.
pub const EXPIRY: Duration = Duration::from_secs(6);
/// The largest part of a snapshot, in bytes (NATS takes 1 MiB by default).
const MAX_PART: usize = 256 * 1024;

#[derive(Serialize, Deserialize, Default)]
struct Part {
    round: u64,
    #[serde(default)]
    last: bool,
    #[serde(default)]
    bye: bool,
    #[serde(default)]
    presence: Vec<(String, Vec<Publisher>)>,
    #[serde(default)]
    counts: Vec<(String, usize)>,
}

/// What a node said.
pub enum Said {
    /// A part of its snapshot.
    Snapshot(Snapshot),
    /// It is stopping.
    Bye,
}

/// This node's snapshot as parts, each ready to publish and at most `max` bytes (NATS's
/// max_payload) or [`MAX_PART`], whichever is less: sizes are measured, not estimated, as
/// clients' infos may be kilobytes each.
pub fn parts(broker: &Broker, round: u64, max: usize) -> Vec<Bytes> {
    let limit = MAX_PART.min(max.saturating_sub(1024)).max(8 * 1024);
    let mut parts = Vec::new();
    let mut part = Part { round, ..Part::default() };
    let mut size = 64;
    let mut flush = |part: &mut Part, size: &mut usize| {
        if let Ok(json) = serde_json::to_vec(&*part) {
            parts.push(Bytes::from(json));
        }
        *part = Part { round, ..Part::default() };
        *size = 64;
    };
    for (channel, clients) in broker.presence.local() {
        let mut infos = Vec::new();
        for client in clients {
            let info = Publisher::of(&client);
            let len = serde_json::to_vec(&info).map_or(0, |j| j.len()) + 1;
            if len + channel.as_str().len() + 64 > limit {
                continue; // one client larger than a part: tokens' infos are capped far lower
            }
            if size + len + channel.as_str().len() + 8 > limit {
                if !infos.is_empty() {
                    part.presence.push((channel.to_string(), std::mem::take(&mut infos)));
                }
                flush(&mut part, &mut size);
            }
            if infos.is_empty() {
                size += channel.as_str().len() + 8;
            }
            size += len;
            infos.push(info);
        }
        if !infos.is_empty() {
            part.presence.push((channel.to_string(), infos));
        }
    }
    for (channel, count) in broker.channels() {
        let len = channel.as_str().len() + 24;
        if size + len > limit {
            flush(&mut part, &mut size);
        }
        size += len;
        part.counts.push((channel.to_string(), count));
    }
    part.last = true;
    flush(&mut part, &mut size);
    parts
}

/// The goodbye a stopping node sends.
pub fn bye() -> Bytes {
    let part = Part { bye: true, last: true, ..Part::default() };
    Bytes::from(serde_json::to_vec(&part).unwrap_or_default())
}

/// What another node's message says; Err names what is wrong with it.
pub fn read(body: &[u8]) -> Result<Said, String> {
    let part: Part = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    if part.bye {
        return Ok(Said::Bye);
    }
    let name = |c: &str| ChannelName::parse(c).map_err(|e| e.to_string());
    let mut presence = Vec::with_capacity(part.presence.len());
    for (channel, clients) in part.presence {
        let clients: Vec<Arc<ClientInfo>> = clients.into_iter().map(Publisher::into_info).collect();
        presence.push((name(&channel)?, clients));
    }
    let counts =
        part.counts.into_iter().map(|(c, n)| Ok((name(&c)?, n))).collect::<Result<_, String>>()?;
    Ok(Said::Snapshot(Snapshot { round: part.round, last: part.last, presence, counts }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::SubscriberKind;

    #[test]
    fn a_snapshot_of_many_clients_comes_in_parts_that_read_back() {
        let broker = Broker::new(8);
        let room = ChannelName::parse("room").unwrap();
        let _sub = broker.subscribe(room.clone(), SubscriberKind::WebSocket);
        for i in 0..5000 {
            let info = ClientInfo {
                user: format!("user-{i}").into(),
                client: format!("client-{i:08}").into(),
                // Infos of kilobytes: the parts must be measured, not estimated.
                conn_info: Some(format!("{{\"bio\":\"{}\"}}", "x".repeat(1000)).into()),
                chan_info: None,
            };
            broker.presence.add(&room, Arc::new(info));
        }
        let parts = parts(&broker, 7, 1 << 20);
        assert!(parts.len() > 1, "5,000 clients do not fit one part");
        assert!(
            parts.iter().all(|p| p.len() <= MAX_PART),
            "{:?}",
            parts.iter().map(|p| p.len()).collect::<Vec<_>>()
        );
        // Applied on another node, the parts give back every client.
        let remote = crate::broker::Remote::default();
        for (i, part) in parts.iter().enumerate() {
            let Ok(Said::Snapshot(s)) = read(part) else { panic!("part {i}") };
            assert_eq!((s.round, s.last), (7, i == parts.len() - 1));
            remote.apply("other", s);
        }
        assert_eq!(remote.list(&room).len(), 5000);
        assert_eq!(remote.subscribers(&room), 1);
        assert!(matches!(read(&bye()), Ok(Said::Bye)));
        assert!(read(b"{\"round\":1,\"counts\":[[\"a/../b\",1]]}").is_err(), "a bad channel name");
        assert!(read(b"not json").is_err());
    }
}
