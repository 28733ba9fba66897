//! What the other nodes of a cluster have, as each last said: per node, its clients on each
//! channel with presence and its WebSocket subscriber counts. Nodes send it all every few
//! seconds, in rounds of one or more parts; joins and leaves in between update it at once.
//! A node not heard from for [`Remote::expire`]'s age is taken as gone, its clients with it.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    time::{Duration, Instant},
};

use super::{ClientInfo, presence::Members};
use crate::channel_name::ChannelName;

/// Most nodes tracked: a rogue publisher on the bus cannot grow the table without bound.
const MAX_NODES: usize = 1024;
/// Most channels tracked per node, presence and counts each.
const MAX_CHANNELS: usize = 100_000;
/// Most clients tracked per node and channel.
const MAX_CLIENTS: usize = 100_000;

#[derive(Default)]
struct Node {
    seen: Option<Instant>,
    /// The round being received, and the channels it has named so far.
    round: u64,
    named: HashSet<ChannelName>,
    presence: HashMap<ChannelName, Members>,
    counts: HashMap<ChannelName, usize>,
}

/// One part of a node's round: its clients and counts for some channels.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// The round it belongs to (increasing per node).
    pub round: u64,
    /// Whether it is the round's last part: channels the round did not name are gone.
    pub last: bool,
    /// Clients by channel.
    pub presence: Vec<(ChannelName, Vec<Arc<ClientInfo>>)>,
    /// WebSocket subscribers by channel.
    pub counts: Vec<(ChannelName, usize)>,
}

/// The other nodes' presence and counts.
#[derive(Default)]
pub struct Remote {
    nodes: Mutex<HashMap<Arc<str>, Node>>,
}

impl Remote {
    /// Takes one part of `node`'s round.
    pub fn apply(&self, node: &str, snapshot: Snapshot) {
        let mut nodes = self.lock();
        if !nodes.contains_key(node) && nodes.len() >= MAX_NODES {
            return;
        }
        let entry = nodes.entry(Arc::from(node)).or_default();
        entry.seen = Some(Instant::now());
        if snapshot.round != entry.round {
            entry.round = snapshot.round;
            entry.named.clear();
        }
        for (channel, clients) in snapshot.presence {
            // A channel's clients may come in several chunks of one round: the first
            // replaces what the last round said, the others add to it.
            let first = entry.named.insert(channel.clone());
            if first
                && entry.presence.len() >= MAX_CHANNELS
                && !entry.presence.contains_key(&channel)
            {
                continue;
            }
            let members = entry.presence.entry(channel).or_default();
            if first {
                members.clear();
            }
            for info in clients {
                if members.len() < MAX_CLIENTS {
                    members.insert(info.client.clone(), info);
                }
            }
        }
        for (channel, count) in snapshot.counts {
            entry.named.insert(channel.clone());
            if entry.counts.len() < MAX_CHANNELS || entry.counts.contains_key(&channel) {
                entry.counts.insert(channel, count.min(MAX_CLIENTS * 10));
            }
        }
        if snapshot.last {
            let named = std::mem::take(&mut entry.named);
            entry.presence.retain(|c, _| named.contains(c));
            entry.counts.retain(|c, _| named.contains(c));
        }
    }

    /// `node`'s client `info` joined `channel` (between two rounds).
    pub fn join(&self, node: &str, channel: &ChannelName, info: Arc<ClientInfo>) {
        let mut nodes = self.lock();
        if let Some(entry) = nodes.get_mut(node) {
            entry.presence.entry(channel.clone()).or_default().insert(info.client.clone(), info);
        }
    }

    /// `node`'s client `client` left `channel`; whether it was there.
    pub fn leave(&self, node: &str, channel: &ChannelName, client: &str) -> bool {
        let mut nodes = self.lock();
        nodes
            .get_mut(node)
            .and_then(|n| n.presence.get_mut(channel))
            .is_some_and(|members| members.remove(client).is_some())
    }

    /// Forgets `node` (it said goodbye); returns its clients, who left with it.
    pub fn remove(&self, node: &str) -> Vec<(ChannelName, Arc<ClientInfo>)> {
        self.lock().remove(node).map(gone).unwrap_or_default()
    }

    /// Forgets every node not heard from for `age`; returns their clients.
    pub fn expire(&self, age: Duration) -> Vec<(ChannelName, Arc<ClientInfo>)> {
        let mut nodes = self.lock();
        let stale: Vec<Arc<str>> = nodes
            .iter()
            .filter(|(_, n)| n.seen.is_none_or(|t| t.elapsed() > age))
            .map(|(k, _)| k.clone())
            .collect();
        stale.iter().filter_map(|k| nodes.remove(k)).flat_map(gone).collect()
    }

    /// The other nodes' clients on `channel`.
    pub fn list(&self, channel: &ChannelName) -> Vec<Arc<ClientInfo>> {
        let nodes = self.lock();
        nodes
            .values()
            .filter_map(|n| n.presence.get(channel))
            .flat_map(|m| m.values().cloned())
            .collect()
    }

    /// The other nodes' WebSocket subscribers of `channel`.
    pub fn subscribers(&self, channel: &ChannelName) -> usize {
        self.lock()
            .values()
            .filter_map(|n| n.counts.get(channel))
            .fold(0, |a, n| a.saturating_add(*n))
    }

    /// How many other nodes are known.
    pub fn nodes(&self) -> usize {
        self.lock().len()
    }

    // Each update is one call on the map: a poisoned lock is still consistent.
    fn lock(&self) -> MutexGuard<'_, HashMap<Arc<str>, Node>> {
        self.nodes.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn gone(node: Node) -> Vec<(ChannelName, Arc<ClientInfo>)> {
    node.presence
        .into_iter()
        .flat_map(|(c, m)| m.into_values().map(move |i| (c.clone(), i)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> ChannelName {
        ChannelName::parse(s).unwrap()
    }

    fn info(client: &str) -> Arc<ClientInfo> {
        Arc::new(ClientInfo {
            user: "u".into(),
            client: client.into(),
            conn_info: None,
            chan_info: None,
        })
    }

    #[test]
    fn rounds_replace_what_a_node_has_and_parts_add_up() {
        let remote = Remote::default();
        let (a, b) = (name("a"), name("b"));
        let part = |round, last, channel: &ChannelName, clients: &[&str]| Snapshot {
            round,
            last,
            presence: vec![(channel.clone(), clients.iter().map(|c| info(c)).collect())],
            counts: vec![(channel.clone(), clients.len())],
        };
        remote.apply("n1", part(1, false, &a, &["1", "2"]));
        remote.apply("n1", part(1, true, &b, &["3"]));
        assert_eq!((remote.list(&a).len(), remote.list(&b).len()), (2, 1));
        assert_eq!(remote.subscribers(&a), 2);
        // The next round names only `b`: `a` is gone.
        remote.apply("n1", part(2, true, &b, &["3", "4"]));
        assert_eq!((remote.list(&a).len(), remote.list(&b).len()), (0, 2));
        assert_eq!(remote.subscribers(&a), 0);
        remote.join("n1", &a, info("5"));
        assert!(remote.leave("n1", &b, "3"));
        assert!(!remote.leave("n1", &b, "3"), "told once");
        assert_eq!((remote.list(&a).len(), remote.list(&b).len()), (1, 1));
    }

    #[test]
    fn a_channels_clients_in_several_chunks_add_up_and_the_next_round_replaces_them() {
        let remote = Remote::default();
        let a = name("a");
        let chunk = |round, last, from: usize| Snapshot {
            round,
            last,
            presence: vec![(
                a.clone(),
                (from..from + 1000).map(|i| info(&i.to_string())).collect(),
            )],
            counts: vec![],
        };
        remote.apply("n1", chunk(1, false, 0));
        remote.apply("n1", chunk(1, true, 1000));
        assert_eq!(remote.list(&a).len(), 2000);
        remote.apply("n1", chunk(2, true, 5000));
        assert_eq!(remote.list(&a).len(), 1000, "a new round replaces the old one");
        let huge = Snapshot {
            round: 3,
            last: true,
            presence: vec![],
            counts: vec![(a.clone(), usize::MAX)],
        };
        remote.apply("n1", huge);
        remote.apply(
            "n2",
            Snapshot {
                round: 1,
                last: true,
                presence: vec![],
                counts: vec![(a.clone(), usize::MAX)],
            },
        );
        assert!(remote.subscribers(&a) < usize::MAX, "capped, no overflow");
    }

    #[test]
    fn a_silent_node_expires_with_its_clients() {
        let remote = Remote::default();
        let snapshot = Snapshot {
            round: 1,
            last: true,
            presence: vec![(name("a"), vec![info("1")])],
            counts: vec![],
        };
        remote.apply("n1", snapshot);
        assert!(remote.expire(Duration::from_secs(60)).is_empty());
        let gone = remote.expire(Duration::ZERO);
        assert_eq!(gone.len(), 1);
        assert_eq!((remote.nodes(), remote.list(&name("a")).len()), (0, 0));
    }

    #[test]
    fn the_table_is_bounded() {
        let remote = Remote::default();
        for i in 0..MAX_NODES + 10 {
            remote.apply(&format!("n{i}"), Snapshot { round: 1, last: true, ..Default::default() });
        }
        assert_eq!(remote.nodes(), MAX_NODES);
    }
}
