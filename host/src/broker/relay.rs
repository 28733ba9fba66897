//! The seam between this node's broker and the other nodes of a cluster: a [`Relay`] takes
//! the publications made here to the others and is told which channels this node has
//! subscribers for, so that it listens only to those.

use std::sync::Arc;

use super::{Message, StreamPosition};
use crate::channel_name::ChannelName;

/// Carries publications between this node and the rest of its cluster.
pub trait Relay: Send + Sync {
    /// Sends `message`, published on this node, to the others, without waiting; Err says
    /// why it could not (it then reached this node's subscribers only).
    fn forward(&self, message: &Arc<Message>) -> Result<(), String>;

    /// Called after `channel` gained its first subscriber on this node or lost its last;
    /// [`super::Broker::has_subscribers`] tells which.
    fn interest_changed(&self, channel: &ChannelName);
}

/// What a publication did.
#[derive(Debug)]
pub struct Published {
    /// How many subscribers of this node it was queued for.
    pub delivered: usize,
    /// Where it sits in its channel's history (None when the channel keeps none).
    pub position: Option<StreamPosition>,
    /// Why it did not reach the other nodes of the cluster, when it did not.
    pub unrelayed: Option<String>,
}
