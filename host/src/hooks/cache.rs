//! One connection's memory of its subscribe hooks' answers (`hooks.cache`): a client that
//! subscribes, leaves and comes back within the time is not asked about again.

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use crate::channel_name::ChannelName;

/// Most channels one connection remembers an answer for.
const MAX_ENTRIES: usize = 256;

/// Allowed subscriptions, with the channel info the hook gave, until they expire.
#[derive(Debug, Default)]
pub struct DecisionCache {
    allowed: HashMap<ChannelName, (Instant, Option<Arc<str>>)>,
}

impl DecisionCache {
    /// The remembered allow for `channel`, if it is still fresh.
    pub fn get(&mut self, channel: &ChannelName) -> Option<Option<Arc<str>>> {
        let (until, info) = self.allowed.get(channel)?;
        if *until > Instant::now() {
            return Some(info.clone());
        }
        self.allowed.remove(channel);
        None
    }

    /// Remembers an allow of `channel` with `info` for `ttl` (zero: not at all).
    pub fn put(&mut self, channel: &ChannelName, info: Option<Arc<str>>, ttl: Duration) {
        if ttl.is_zero() {
            return;
        }
        let now = Instant::now();
        if self.allowed.len() >= MAX_ENTRIES {
            self.allowed.retain(|_, (until, _)| *until > now);
            if self.allowed.len() >= MAX_ENTRIES {
                return;
            }
        }
        self.allowed.insert(channel.clone(), (now + ttl, info));
    }
}
