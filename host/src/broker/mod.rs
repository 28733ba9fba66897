//! The in-process broker: channel name -> subscribers.
//!
//! Publishing puts one `Arc`'d message in each subscriber's bounded queue and never waits:
//! a subscriber whose queue is full is a slow consumer, and is dropped (its owner is told
//! through [`Subscription::kicked`]) rather than slowing the publisher or anyone else.

pub mod history;
mod inbox;
mod message;
mod presence;
mod relay;
mod remote_presence;

use std::{
    collections::HashMap,
    sync::{
        Arc, OnceLock, RwLock,
        atomic::{AtomicU64, Ordering},
    },
};

use arc_swap::ArcSwap;
use prometheus_client::metrics::counter::Counter;
use tokio::sync::mpsc::{self, error::TrySendError};
use tokio_util::sync::CancellationToken;

pub use history::{History, HistoryError, HistoryPage, HistoryQuery, MemoryHistory, Recovery};
pub use inbox::{Attachment, Inbox};
pub use message::{
    ClientInfo, Envelope, Event, Message, Origin, Payload, StreamPosition, SubscriberId,
};
pub use presence::Presence;
pub use relay::{Published, Relay};
pub use remote_presence::{Remote, Snapshot};

use crate::{
    auth::Grant,
    channel_name::ChannelName,
    config::{channel_options::HistoryOptions, messaging::ChannelRules},
};

/// Who is subscribed: counted apart, since `subscribers()` reports WebSocket clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubscriberKind {
    /// A WebSocket client of the bridge.
    WebSocket,
    /// A pub/sub-triggered function's delivery queue.
    Function,
    /// A realtime connection on its own `priv/<id>` channel: no config governs it, so a
    /// reload never retires it.
    Private,
}

struct Subscriber {
    id: SubscriberId,
    kind: SubscriberKind,
    /// What the subscriber's token grants (realtime clients), for a reload to judge again.
    grant: Option<Arc<Grant>>,
    tx: mpsc::Sender<Arc<Message>>,
    kicked: CancellationToken,
    retired: CancellationToken,
    /// Whether it takes join and leave events (client-protocol connections).
    events: bool,
}

/// Counters of what the broker did: the host's metrics share them.
#[derive(Debug, Default, Clone)]
pub struct BrokerStats {
    /// Messages published.
    pub published: Counter,
    /// Copies handed to subscriber queues.
    pub delivered: Counter,
    /// Subscribers dropped because their queue was full.
    pub slow_consumers_dropped: Counter,
    /// WebSocket subscribers ended because their channel is no longer configured.
    pub retired: Counter,
}

/// Something told of every message published on any channel (a pub/sub trigger). `offer`
/// runs on the publisher's path, so it must not block: queue or drop.
pub trait Listener: Send + Sync {
    /// Called once per published message.
    fn offer(&self, message: &Arc<Message>);
}

/// The broker. Cheap to share: clone the `Arc`.
pub struct Broker {
    /// Told of every message; replaced as a whole when a reload swaps the triggers, so a
    /// message is offered to the old set or the new one, never both or neither.
    listeners: ArcSwap<Vec<Arc<dyn Listener>>>,
    /// Subscribers by exact channel name. Publishing takes the read lock only; subscribing,
    /// unsubscribing and dropping a slow consumer take the write lock briefly.
    topics: RwLock<HashMap<ChannelName, Vec<Subscriber>>>,
    /// Messages a subscriber may have queued before it counts as slow.
    queue_capacity: usize,
    next_subscriber: AtomicU64,
    /// Where publications of channels with history are kept.
    history: Arc<dyn History>,
    /// The messaging configs, for which channels keep history.
    rules: ArcSwap<ChannelRules>,
    /// Who is on each channel with presence.
    pub presence: Presence,
    /// What happened so far.
    pub stats: BrokerStats,
    /// The other nodes of the cluster, when there is one.
    relay: OnceLock<Arc<dyn Relay>>,
}

/// One subscriber's end: receives the channel's messages until dropped or kicked.
pub struct Subscription {
    /// Its id (to recognise its own publishes).
    pub id: SubscriberId,
    /// The channel it listens to.
    pub channel: ChannelName,
    rx: mpsc::Receiver<Arc<Message>>,
    kicked: CancellationToken,
    retired: CancellationToken,
    broker: Arc<Broker>,
}

impl Broker {
    /// A broker whose subscribers may each have `queue_capacity` messages waiting.
    pub fn new(queue_capacity: usize) -> Arc<Self> {
        Self::with_stats(queue_capacity, BrokerStats::default())
    }

    /// A broker counting into `stats` (the host's metrics).
    pub fn with_stats(queue_capacity: usize, stats: BrokerStats) -> Arc<Self> {
        Self::with_history(queue_capacity, stats, MemoryHistory::new(10_000, 64 << 20))
    }

    /// A broker keeping channel history in `history`.
    pub fn with_history(
        queue_capacity: usize,
        stats: BrokerStats,
        history: Arc<dyn History>,
    ) -> Arc<Self> {
        Arc::new(Self {
            listeners: ArcSwap::from_pointee(Vec::new()),
            topics: RwLock::new(HashMap::new()),
            queue_capacity: queue_capacity.max(1),
            next_subscriber: AtomicU64::new(1),
            history,
            rules: ArcSwap::from_pointee(ChannelRules::default()),
            presence: Presence::default(),
            stats,
            relay: OnceLock::new(),
        })
    }

    /// Joins this broker to a cluster through `relay`, once: from now on publications made
    /// here are forwarded, and the relay hears of every channel with subscribers here.
    pub fn set_relay(&self, relay: Arc<dyn Relay>) {
        if self.relay.set(relay.clone()).is_ok() {
            let channels: Vec<ChannelName> = self.read().keys().cloned().collect();
            for channel in &channels {
                relay.interest_changed(channel);
            }
        }
    }

    /// Whether `channel`'s config keeps presence.
    pub fn keeps_presence(&self, channel: &ChannelName) -> bool {
        self.rules.load().resolve(channel).is_some_and(|spec| spec.options.presence)
    }

    /// Whether `channel`'s config sends join and leave events.
    pub fn keeps_join_leave(&self, channel: &ChannelName) -> bool {
        self.rules.load().resolve(channel).is_some_and(|spec| spec.options.join_leave)
    }

    /// How many WebSocket clients `channel` has in the whole cluster (this node's, and the
    /// others' as they last said).
    pub fn cluster_subscriber_count(&self, channel: &ChannelName) -> usize {
        self.subscriber_count(channel, SubscriberKind::WebSocket)
            .saturating_add(self.presence.remote.subscribers(channel))
    }

    /// Whether `channel` has any subscriber on this node.
    pub fn has_subscribers(&self, channel: &ChannelName) -> bool {
        self.read().contains_key(channel)
    }

    /// Tells the relay, if any, that `channels` gained or lost all their subscribers.
    fn interest_changed<'a>(&self, channels: impl IntoIterator<Item = &'a ChannelName>) {
        if let Some(relay) = self.relay.get() {
            for channel in channels {
                relay.interest_changed(channel);
            }
        }
    }

    /// Adds `subscriber` to `channel`, telling the relay when it is the channel's first.
    fn insert(&self, channel: ChannelName, subscriber: Subscriber) {
        let first = {
            let mut topics = self.write();
            let subscribers = topics.entry(channel.clone()).or_default();
            subscribers.push(subscriber);
            subscribers.len() == 1
        };
        if first {
            self.interest_changed([&channel]);
        }
    }

    /// Replaces the messaging configs that say which channels keep history.
    pub fn set_rules(&self, rules: Arc<ChannelRules>) {
        self.rules.store(rules);
    }

    /// The history `channel` keeps, if any.
    pub fn history_options(&self, channel: &ChannelName) -> Option<HistoryOptions> {
        self.rules.load().resolve(channel).and_then(|spec| spec.options.history)
    }

    /// Publications `channel` keeps, as `query` asks; None when it keeps none.
    pub fn history(
        &self,
        channel: &ChannelName,
        query: &HistoryQuery,
    ) -> Option<Result<HistoryPage, HistoryError>> {
        let options = self.history_options(channel)?;
        Some(self.history.read(channel, &options, query))
    }

    /// Subscribes to `channel`.
    pub fn subscribe(self: &Arc<Self>, channel: ChannelName, kind: SubscriberKind) -> Subscription {
        self.subscribe_granted(channel, kind, None)
    }

    /// Subscribes to `channel` a client whose token grants `grant` (a raw-bridge client of
    /// a signed URL), which a reload judges the subscription by.
    pub fn subscribe_granted(
        self: &Arc<Self>,
        channel: ChannelName,
        kind: SubscriberKind,
        grant: Option<Arc<Grant>>,
    ) -> Subscription {
        let id = SubscriberId(self.next_subscriber.fetch_add(1, Ordering::Relaxed));
        let (tx, rx) = mpsc::channel(self.queue_capacity);
        let (kicked, retired) = (CancellationToken::new(), CancellationToken::new());
        let subscriber = Subscriber {
            id,
            kind,
            grant,
            tx,
            kicked: kicked.clone(),
            retired: retired.clone(),
            events: false,
        };
        self.insert(channel.clone(), subscriber);
        Subscription { id, channel, rx, kicked, retired, broker: self.clone() }
    }

    /// A queue for one connection on many channels: see [`Inbox::attach`]. `grant` is what
    /// the connection's token grants, which a reload judges its subscriptions by.
    pub fn inbox(self: &Arc<Self>, grant: Option<Arc<Grant>>) -> Inbox {
        let id = SubscriberId(self.next_subscriber.fetch_add(1, Ordering::Relaxed));
        let (tx, rx) = mpsc::channel(self.queue_capacity);
        Inbox::new(id, (tx, rx), grant, self.clone())
    }

    /// Adds `channel` to what the queue `tx` of subscriber `id` receives; returns the token
    /// a reload cancels when it removes the channel's configuration.
    fn add(
        &self,
        channel: ChannelName,
        (kind, id, grant, events): (SubscriberKind, SubscriberId, Option<Arc<Grant>>, bool),
        tx: mpsc::Sender<Arc<Message>>,
        kicked: CancellationToken,
    ) -> CancellationToken {
        let retired = CancellationToken::new();
        let subscriber =
            Subscriber { id, kind, grant, tx, kicked, retired: retired.clone(), events };
        self.insert(channel, subscriber);
        retired
    }

    /// Replaces every listener at once: from now on messages are offered to `listeners`.
    pub fn set_listeners(&self, listeners: Vec<Arc<dyn Listener>>) {
        self.listeners.store(Arc::new(listeners));
    }

    /// Ends every WebSocket subscriber that `keep` refuses, given its channel and what its
    /// token grants (None: a raw-bridge client), after a reload changed the messaging
    /// configs; returns how many.
    pub fn retire(&self, keep: impl Fn(&ChannelName, Option<&Grant>) -> bool) -> usize {
        let mut retired = 0;
        let mut emptied = Vec::new();
        self.write().retain(|channel, subscribers| {
            subscribers.retain(|s| {
                if s.kind != SubscriberKind::WebSocket || keep(channel, s.grant.as_deref()) {
                    return true;
                }
                s.retired.cancel();
                retired += 1;
                false
            });
            if subscribers.is_empty() {
                emptied.push(channel.clone());
            }
            !subscribers.is_empty()
        });
        self.interest_changed(&emptied);
        self.stats.retired.inc_by(retired as u64);
        retired
    }

    /// Delivers `message` to every subscriber of its channel but its publisher, and offers
    /// it to every listener, without waiting. Returns how many subscribers it was queued for.
    ///
    /// A publication on a channel with history gets its position there first, once,
    /// whichever door it came through; a join or leave reaches only subscribers that take
    /// events, and no trigger.
    pub fn publish(&self, message: Message) -> usize {
        self.publish_positioned(message).0
    }

    /// [`Broker::publish`], also saying where the publication sits in its channel's
    /// history (None when the channel keeps none).
    pub fn publish_positioned(&self, message: Message) -> (usize, Option<StreamPosition>) {
        let published = self.send(message);
        (published.delivered, published.position)
    }

    /// [`Broker::publish`], saying all it did: where the publication sits in its
    /// channel's history, and whether it reached the cluster's other nodes.
    pub fn send(&self, message: Message) -> Published {
        let mut published = Published { delivered: 0, position: None, unrelayed: None };
        if message.event != Event::Publication {
            let message = Arc::new(message);
            published.delivered = self.fan_out(message.clone(), true);
            // The other nodes keep their view of this node's presence; a join or leave that
            // cannot reach them now is set right by the next snapshot.
            if let Some(relay) = self.relay.get() {
                let _ = relay.forward(&message);
            }
            return published;
        }
        self.stats.published.inc();
        let relay = self.relay.get();
        let mut deliver = |m: Arc<Message>| {
            published.position = m.position.clone();
            published.delivered = self.fan_out(m.clone(), true);
            // Forwarded in the order positions were given, which is the order of delivery.
            published.unrelayed = relay.and_then(|r| r.forward(&m).err());
        };
        match self.history_options(&message.channel) {
            Some(options) => self.history.append(message, &options, &mut deliver),
            None => deliver(Arc::new(message)),
        }
        published
    }

    /// Delivers `message`, published on another node of the cluster, to this node's
    /// subscribers: kept in this node's history like one of its own, but offered to no
    /// trigger (the node it was published on runs those, so they run once in the cluster)
    /// and forwarded nowhere.
    pub fn deliver_remote(&self, message: Message) -> usize {
        if message.event != Event::Publication {
            return self.fan_out(Arc::new(message), false);
        }
        let mut delivered = 0;
        let mut deliver = |m: Arc<Message>| delivered = self.fan_out(m, false);
        match self.history_options(&message.channel) {
            Some(options) => self.history.append(message, &options, &mut deliver),
            None => deliver(Arc::new(message)),
        }
        delivered
    }

    /// Forgets `channel`'s history stream: what it kept, its offsets and its epoch (see
    /// [`History::reset`]).
    pub fn reset_history(&self, channel: &ChannelName) {
        self.history.reset(channel);
    }

    /// Forgets the publications `channel` keeps (its stream's epoch and offset stay).
    pub fn remove_history(&self, channel: &ChannelName) {
        self.history.remove(channel);
    }

    /// The channels with WebSocket subscribers on this node, and how many each has.
    pub fn channels(&self) -> Vec<(ChannelName, usize)> {
        let topics = self.read();
        topics
            .iter()
            .map(|(name, subs)| {
                (name.clone(), subs.iter().filter(|s| s.kind == SubscriberKind::WebSocket).count())
            })
            .filter(|(_, n)| *n > 0)
            .collect()
    }

    /// Attaches `channel` to the queue of subscriber `who` with `attach` where no
    /// publication can slip between it and the channel's history position, and says what
    /// was missed after `since`; None when the channel keeps no history.
    pub(crate) fn attach_at_position(
        &self,
        channel: &ChannelName,
        since: Option<&StreamPosition>,
        attach: &mut dyn FnMut(),
    ) -> Option<Recovery> {
        match self.history_options(channel) {
            Some(options) => Some(self.history.subscribe(channel, &options, since, attach)),
            None => {
                attach();
                None
            }
        }
    }

    /// Queues `message` for the channel's subscribers, and offers it to the triggers when
    /// it was published on this node (`local`).
    fn fan_out(&self, message: Arc<Message>, local: bool) -> usize {
        let sender = match message.origin {
            Origin::Subscriber(id) => Some(id),
            Origin::Function { .. } => None,
        };
        let events_only = message.event != Event::Publication;
        if local && !events_only {
            for listener in self.listeners.load().iter() {
                listener.offer(&message);
            }
        }
        let mut delivered = 0;
        let mut slow = Vec::new();
        {
            let topics = self.read();
            let Some(subscribers) = topics.get(&message.channel) else {
                return 0;
            };
            for s in
                subscribers.iter().filter(|s| Some(s.id) != sender && (s.events || !events_only))
            {
                match s.tx.try_send(message.clone()) {
                    Ok(()) => delivered += 1,
                    Err(TrySendError::Full(_)) => slow.push(s.id),
                    Err(TrySendError::Closed(_)) => {} // unsubscribing right now
                }
            }
        }
        self.stats.delivered.inc_by(delivered as u64);
        if !slow.is_empty() {
            self.drop_slow(&message.channel, &slow);
        }
        delivered
    }

    /// How many subscribers of `kind` `channel` has.
    pub fn subscriber_count(&self, channel: &ChannelName, kind: SubscriberKind) -> usize {
        self.read().get(channel).map_or(0, |subs| subs.iter().filter(|s| s.kind == kind).count())
    }

    fn drop_slow(&self, channel: &ChannelName, slow: &[SubscriberId]) {
        let mut topics = self.write();
        let Some(subscribers) = topics.get_mut(channel) else {
            return;
        };
        subscribers.retain(|s| {
            if slow.contains(&s.id) {
                s.kicked.cancel();
                self.stats.slow_consumers_dropped.inc();
                crate::throttled_warn!(channel = %channel, subscriber = s.id.0, "slow consumer dropped: its queue was full");
                false
            } else {
                true
            }
        });
        if subscribers.is_empty() {
            topics.remove(channel);
            drop(topics);
            self.interest_changed([channel]);
        }
    }

    fn unsubscribe(&self, channel: &ChannelName, id: SubscriberId) {
        let mut topics = self.write();
        if let Some(subscribers) = topics.get_mut(channel) {
            subscribers.retain(|s| s.id != id);
            if subscribers.is_empty() {
                topics.remove(channel);
                drop(topics);
                self.interest_changed([channel]);
            }
        }
    }

    // A panic while holding the lock cannot leave the map half-updated (each update is one
    // call on it), so a poisoned lock is still safe to use.
    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<ChannelName, Vec<Subscriber>>> {
        self.topics.read().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<ChannelName, Vec<Subscriber>>> {
        self.topics.write().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Subscription {
    /// The next message; None once the subscription was kicked as a slow consumer and its
    /// queue is drained.
    pub async fn recv(&mut self) -> Option<Arc<Message>> {
        self.rx.recv().await
    }

    /// The next message if one is already queued.
    pub fn try_recv(&mut self) -> Option<Arc<Message>> {
        self.rx.try_recv().ok()
    }

    /// A token cancelled when the broker drops this subscriber for being too slow.
    pub fn kick_signal(&self) -> CancellationToken {
        self.kicked.clone()
    }

    /// A token cancelled when a reload removed the configuration of this channel.
    pub fn retire_signal(&self) -> CancellationToken {
        self.retired.clone()
    }

    /// Whether the broker dropped this subscriber for being too slow.
    pub fn is_kicked(&self) -> bool {
        self.kicked.is_cancelled()
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.broker.unsubscribe(&self.channel, self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> ChannelName {
        ChannelName::parse(s).unwrap()
    }

    #[tokio::test]
    async fn publish_reaches_every_subscriber_but_the_sender() {
        let broker = Broker::new(8);
        let mut a = broker.subscribe(name("room"), SubscriberKind::WebSocket);
        let mut b = broker.subscribe(name("room"), SubscriberKind::WebSocket);
        let mut other = broker.subscribe(name("room/other"), SubscriberKind::WebSocket);
        let msg = Message::new(name("room"), Payload::text("hi"), Origin::Subscriber(a.id));
        assert_eq!(broker.publish(msg), 1);
        let got = b.recv().await.unwrap();
        assert_eq!(got.payload, Payload::text("hi"));
        assert!(a.try_recv().is_none());
        assert!(other.try_recv().is_none());
    }

    #[tokio::test]
    async fn payloads_are_shared_not_copied() {
        let broker = Broker::new(8);
        let mut a = broker.subscribe(name("c"), SubscriberKind::WebSocket);
        let mut b = broker.subscribe(name("c"), SubscriberKind::WebSocket);
        broker.publish(Message::new(
            name("c"),
            Payload::binary(vec![1, 2, 3]),
            Origin::Function { trail: Arc::from([]) },
        ));
        let (x, y) = (a.recv().await.unwrap(), b.recv().await.unwrap());
        assert!(Arc::ptr_eq(&x, &y));
    }

    #[tokio::test]
    async fn a_full_queue_drops_that_subscriber_only() {
        let broker = Broker::new(2);
        let slow = broker.subscribe(name("c"), SubscriberKind::WebSocket);
        let mut fast = broker.subscribe(name("c"), SubscriberKind::WebSocket);
        for i in 0..5 {
            let msg = Message::new(
                name("c"),
                Payload::text(i.to_string()),
                Origin::Function { trail: Arc::from([]) },
            );
            broker.publish(msg);
            assert_eq!(fast.recv().await.unwrap().payload, Payload::text(i.to_string()));
        }
        assert!(slow.is_kicked());
        assert!(!fast.is_kicked());
        assert_eq!(broker.stats.slow_consumers_dropped.get(), 1);
        assert_eq!(broker.subscriber_count(&name("c"), SubscriberKind::WebSocket), 1);
    }

    #[tokio::test]
    async fn dropping_a_subscription_unsubscribes() {
        let broker = Broker::new(2);
        let a = broker.subscribe(name("c"), SubscriberKind::WebSocket);
        let _f = broker.subscribe(name("c"), SubscriberKind::Function);
        assert_eq!(broker.subscriber_count(&name("c"), SubscriberKind::WebSocket), 1);
        drop(a);
        assert_eq!(broker.subscriber_count(&name("c"), SubscriberKind::WebSocket), 0);
        assert_eq!(broker.subscriber_count(&name("c"), SubscriberKind::Function), 1);
    }

    #[tokio::test]
    async fn retiring_ends_websocket_subscribers_of_refused_channels_only() {
        let broker = Broker::new(2);
        let gone = broker.subscribe(name("old/room"), SubscriberKind::WebSocket);
        let function = broker.subscribe(name("old/room"), SubscriberKind::Function);
        let kept = broker.subscribe(name("new/room"), SubscriberKind::WebSocket);
        assert_eq!(broker.retire(|c, _| c.as_str().starts_with("new/")), 1);
        assert!(gone.retire_signal().is_cancelled());
        assert!(!kept.retire_signal().is_cancelled());
        assert!(!function.retire_signal().is_cancelled());
        assert_eq!(broker.subscriber_count(&name("old/room"), SubscriberKind::WebSocket), 0);
        assert_eq!(broker.subscriber_count(&name("old/room"), SubscriberKind::Function), 1);
    }

    #[test]
    fn text_payloads_must_be_utf8() {
        assert!(Payload::text_from_bytes(bytes::Bytes::from_static(b"\xff")).is_err());
        assert!(Payload::text_from_bytes(bytes::Bytes::from_static(b"ok")).unwrap().is_text());
    }
}
