//! Who is on each channel, for the client protocol's presence: its subscribers by
//! connection id, each with its user and infos.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex, MutexGuard, PoisonError},
};

use super::ClientInfo;
use crate::channel_name::ChannelName;

/// Client id -> who, on one channel.
type Members = HashMap<Arc<str>, Arc<ClientInfo>>;

/// Channel -> client id -> who. Kept for channels whose config turns presence on.
#[derive(Default)]
pub struct Presence {
    channels: Mutex<HashMap<ChannelName, Members>>,
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

    /// Everyone on `channel`.
    pub fn list(&self, channel: &ChannelName) -> Vec<Arc<ClientInfo>> {
        self.lock().get(channel).map(|c| c.values().cloned().collect()).unwrap_or_default()
    }

    /// How many clients and how many distinct users are on `channel`.
    pub fn stats(&self, channel: &ChannelName) -> (usize, usize) {
        let channels = self.lock();
        let Some(clients) = channels.get(channel) else { return (0, 0) };
        let users: HashSet<&str> = clients.values().map(|c| &*c.user).collect();
        (clients.len(), users.len())
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
