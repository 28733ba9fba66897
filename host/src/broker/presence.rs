//! Who is on each channel, for the client protocol's presence: its subscribers by
//! connection id, each with its user and infos.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex, MutexGuard, PoisonError},
};

use super::ClientInfo;
pub use super::remote_presence::Remote;
use crate::channel_name::ChannelName;

/// Client id -> who, on one channel.
pub(super) type Members = HashMap<Arc<str>, Arc<ClientInfo>>;

/// Channel -> client id -> who. Kept for channels whose config turns presence on: this
/// node's clients, and in a cluster the other nodes' as they last said ([`Remote`]).
#[derive(Default)]
pub struct Presence {
    channels: Mutex<HashMap<ChannelName, Members>>,
    /// What the other nodes of the cluster have.
    pub remote: Remote,
}

impl Presence {
    /// Records that `info`'s client is on `channel`.
    pub fn add(&self, channel: &ChannelName, info: Arc<ClientInfo>) {
        self.lock().entry(channel.clone()).or_default().insert(info.client.clone(), info);
    }

    /// Records that `client` left `channel`.
    pub fn remove(&self, channel: &ChannelName, client: &str) {
        let mut channels = self.lock();
        if let Some(clients) = channels.get_mut(channel) {
            clients.remove(client);
            if clients.is_empty() {
                channels.remove(channel);
            }
        }
    }

    /// Everyone on `channel`, on this node and the others.
    pub fn list(&self, channel: &ChannelName) -> Vec<Arc<ClientInfo>> {
        let mut all: Vec<Arc<ClientInfo>> =
            self.lock().get(channel).map(|c| c.values().cloned().collect()).unwrap_or_default();
        all.extend(self.remote.list(channel));
        all
    }

    /// How many clients and how many distinct users are on `channel`, in the cluster.
    pub fn stats(&self, channel: &ChannelName) -> (usize, usize) {
        let all = self.list(channel);
        let users: HashSet<&str> = all.iter().map(|c| &*c.user).collect();
        (all.len(), users.len())
    }

    /// This node's clients on every channel, for the other nodes.
    pub fn local(&self) -> Vec<(ChannelName, Vec<Arc<ClientInfo>>)> {
        let channels = self.lock();
        channels.iter().map(|(name, m)| (name.clone(), m.values().cloned().collect())).collect()
    }

    // Each update is one call on the map: a poisoned lock is still consistent.
    fn lock(&self) -> MutexGuard<'_, HashMap<ChannelName, Members>> {
        self.channels.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(user: &str, client: &str) -> Arc<ClientInfo> {
        Arc::new(ClientInfo {
            user: user.into(),
            client: client.into(),
            conn_info: None,
            chan_info: None,
        })
    }

    #[test]
    fn counts_clients_and_distinct_users() {
        let presence = Presence::default();
        let room = ChannelName::parse("room").unwrap();
        presence.add(&room, info("ada", "1"));
        presence.add(&room, info("ada", "2"));
        presence.add(&room, info("bob", "3"));
        assert_eq!(presence.stats(&room), (3, 2));
        presence.remove(&room, "2");
        presence.remove(&room, "1");
        assert_eq!(presence.stats(&room), (1, 1));
        presence.remove(&room, "3");
        assert!(presence.list(&room).is_empty());
    }
}
