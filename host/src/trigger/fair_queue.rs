//! A function's queue of messages, fair across channels: the dispatcher takes them round
//! robin, one channel at a time, and when the queue is full the busiest channel loses a
//! message. A client flooding one room fills that room's share, not everyone's, so the
//! function keeps answering in every other room.

use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex, PoisonError},
};

use tokio::sync::Notify;

use crate::{broker::Message, channel_name::ChannelName};

/// What became of a pushed message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    /// Queued.
    Queued,
    /// Queued, and a message of a busier channel was dropped to make room.
    QueuedDroppingOther,
    /// Dropped: its channel already had its share of a full queue.
    Dropped,
}

/// A bounded queue with one FIFO per channel, drained round robin.
pub struct FairQueue {
    capacity: usize,
    inner: Mutex<Inner>,
    ready: Notify,
}

#[derive(Default)]
struct Inner {
    by_channel: HashMap<ChannelName, VecDeque<Arc<Message>>>,
    /// Channels with messages waiting, in the order they are served.
    turns: VecDeque<ChannelName>,
    len: usize,
    closed: bool,
}

impl FairQueue {
    /// A queue holding at most `capacity` messages in all.
    pub fn new(capacity: usize) -> Self {
        Self { capacity: capacity.max(1), inner: Mutex::default(), ready: Notify::new() }
    }

    /// Queues `message`, never waiting.
    pub fn push(&self, message: Arc<Message>) -> Pushed {
        let mut guard = self.lock();
        let inner = &mut *guard;
        if inner.closed {
            return Pushed::Dropped;
        }
        let mut pushed = Pushed::Queued;
        if inner.len >= self.capacity {
            if !inner.make_room_for(&message.channel) {
                return Pushed::Dropped;
            }
            pushed = Pushed::QueuedDroppingOther;
        }
        let queue = inner.by_channel.entry(message.channel.clone()).or_default();
        if queue.is_empty() {
            inner.turns.push_back(message.channel.clone());
        }
        queue.push_back(message);
        inner.len += 1;
        drop(guard);
        self.ready.notify_one();
        pushed
    }

    /// The next message, taking channels in turn; None once closed and empty. For one
    /// consumer.
    pub async fn pop(&self) -> Option<Arc<Message>> {
        loop {
            let notified = self.ready.notified();
            {
                let mut inner = self.lock();
                if let Some(message) = inner.pop() {
                    return Some(message);
                }
                if inner.closed {
                    return None;
                }
            }
            notified.await;
        }
    }

    /// Refuses further messages; `pop` returns what is left, then None.
    pub fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_one();
    }

    /// Takes every waiting message, in the order they would have been served.
    pub fn take_all(&self) -> Vec<Arc<Message>> {
        let mut inner = self.lock();
        std::iter::from_fn(|| inner.pop()).collect()
    }

    /// How many messages wait.
    pub fn len(&self) -> usize {
        self.lock().len
    }

    /// Whether none waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // Each update is one call on the maps: a panic cannot leave them half-changed.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Inner {
    fn pop(&mut self) -> Option<Arc<Message>> {
        let channel = self.turns.pop_front()?;
        let queue = self.by_channel.get_mut(&channel)?;
        let message = queue.pop_front();
        if queue.is_empty() {
            self.by_channel.remove(&channel);
        } else {
            self.turns.push_back(channel);
        }
        self.len -= usize::from(message.is_some());
        message
    }

    /// Drops the newest message of the busiest channel, unless `incoming`'s channel already
    /// holds at least a fair share; true when room was made.
    fn make_room_for(&mut self, incoming: &ChannelName) -> bool {
        let own = self.by_channel.get(incoming).map_or(0, VecDeque::len);
        if own * self.by_channel.len() >= self.len {
            return false;
        }
        let Some((busiest, longest)) =
            self.by_channel.iter().map(|(c, q)| (c.clone(), q.len())).max_by_key(|(_, n)| *n)
        else {
            return false;
        };
        if longest <= own + 1 {
            return false;
        }
        if let Some(queue) = self.by_channel.get_mut(&busiest) {
            queue.pop_back();
            self.len -= 1;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::{Origin, Payload};

    fn message(channel: &str, text: &str) -> Arc<Message> {
        let channel = ChannelName::parse(channel).unwrap();
        Arc::new(Message::new(
            channel,
            Payload::text(text),
            Origin::Function { trail: Arc::from([]) },
        ))
    }

    fn text(m: &Message) -> String {
        String::from_utf8_lossy(m.payload.bytes()).into_owned()
    }

    #[tokio::test]
    async fn channels_take_turns() {
        let q = FairQueue::new(100);
        for i in 0..3 {
            q.push(message("flood", &format!("f{i}")));
        }
        q.push(message("calm", "c0"));
        let order: Vec<String> = [(); 4].iter().map(|_| text(&q.lock().pop().unwrap())).collect();
        assert_eq!(order, ["f0", "c0", "f1", "f2"]);
    }

    #[tokio::test]
    async fn a_flood_in_one_channel_cannot_crowd_out_another() {
        let q = FairQueue::new(8);
        for i in 0..100 {
            q.push(message("flood", &format!("f{i}")));
        }
        assert_eq!(q.len(), 8);
        assert_eq!(q.push(message("flood", "more")), Pushed::Dropped);
        assert_eq!(q.push(message("calm", "c0")), Pushed::QueuedDroppingOther);
        assert_eq!(q.push(message("calm", "c1")), Pushed::QueuedDroppingOther);
        assert_eq!(q.len(), 8);
        let mut got = Vec::new();
        while let Some(m) = q.lock().pop() {
            got.push(text(&m));
        }
        assert!(got.contains(&"c0".to_string()) && got.contains(&"c1".to_string()), "{got:?}");
        assert_eq!(got[0], "f0", "the flood keeps its oldest messages, in order");
    }

    #[tokio::test]
    async fn pop_waits_for_a_push_and_ends_after_close() {
        let q = Arc::new(FairQueue::new(4));
        let waiter = tokio::spawn({
            let q = q.clone();
            async move { q.pop().await.map(|m| text(&m)) }
        });
        tokio::task::yield_now().await;
        q.push(message("a", "x"));
        assert_eq!(waiter.await.unwrap().as_deref(), Some("x"));
        q.close();
        assert!(q.pop().await.is_none());
    }
}
