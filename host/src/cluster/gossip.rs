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

/// This node's snapshot as parts, each ready to publish.
pub fn parts(broker: &Broker, round: u64) -> Vec<Bytes> {
    let mut parts = Vec::new();
    let mut part = Part { round, ..Part::default() };
    let mut size = 0;
    let flush = |part: &mut Part, size: &mut usize, parts: &mut Vec<Bytes>| {
        if let Ok(json) = serde_json::to_vec(&*part) {
            parts.push(Bytes::from(json));
        }
        *part = Part { round, ..Part::default() };
        *size = 0;
    };
    for (channel, clients) in broker.presence.local() {
        for chunk in clients.chunks(1000) {
            let infos: Vec<Publisher> = chunk.iter().map(|c| Publisher::of(c)).collect();
            size += channel.as_str().len() + infos.len() * 96;
            part.presence.push((channel.to_string(), infos));
            if size > MAX_PART {
                flush(&mut part, &mut size, &mut parts);
            }
        }
    }
    for (channel, count) in broker.channels() {
        size += channel.as_str().len() + 12;
        part.counts.push((channel.to_string(), count));
        if size > MAX_PART {
            flush(&mut part, &mut size, &mut parts);
        }
    }
    part.last = true;
    flush(&mut part, &mut size, &mut parts);
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
                conn_info: None,
                chan_info: None,
            };
            broker.presence.add(&room, Arc::new(info));
        }
        let parts = parts(&broker, 7);
        assert!(parts.len() > 1, "5,000 clients do not fit one part");
        assert!(parts.iter().all(|p| p.len() <= 2 * MAX_PART));
        let mut clients = 0;
        for (i, part) in parts.iter().enumerate() {
            let Ok(Said::Snapshot(s)) = read(part) else { panic!("part {i}") };
            assert_eq!((s.round, s.last), (7, i == parts.len() - 1));
            clients += s.presence.iter().map(|(_, c)| c.len()).sum::<usize>();
        }
        assert_eq!(clients, 5000);
        assert!(matches!(read(&bye()), Ok(Said::Bye)));
        assert!(read(b"{\"round\":1,\"counts\":[[\"a/../b\",1]]}").is_err(), "a bad channel name");
        assert!(read(b"not json").is_err());
    }
}
