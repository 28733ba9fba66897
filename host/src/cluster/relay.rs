//! The NATS side of the [`Relay`] seam: one task publishes this node's publications in the
//! order they were made; one task keeps a NATS subscription for each channel this node has
//! subscribers for (and none for the others); one task per such subscription hands what
//! other nodes publish to the broker.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex},
    time::Duration,
};

use async_nats::connection::State;
use futures_util::StreamExt;
use prometheus_client::metrics::counter::Counter;
use tokio::sync::{Notify, mpsc};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use super::{
    gossip::{self, Said},
    subject::Subjects,
    wire,
};
use crate::{
    broker::{Broker, ClientInfo, Event, Message, Relay},
    channel_name::ChannelName,
};

/// Publications that may wait for the bus before publishers are told it is behind.
const OUTBOUND_QUEUE: usize = 16 * 1024;
/// Room left in a NATS message for tern's headers.
const HEADROOM: usize = 16 * 1024;

/// What the cluster link counts: the host's metrics share these.
#[derive(Debug, Default, Clone)]
pub struct ClusterStats {
    /// Publications of this node sent to NATS.
    pub sent: Counter,
    /// Publications of other nodes received and delivered here.
    pub received: Counter,
    /// Publications of this node that reached its own subscribers only (bus lost, behind,
    /// or refused by NATS).
    pub unsent: Counter,
    /// Messages on tern's subjects that were not a tern node's publication.
    pub refused: Counter,
}

/// This node's link to the others, through NATS.
pub struct NatsRelay {
    client: async_nats::Client,
    node: Arc<str>,
    subjects: Subjects,
    outbound: mpsc::Sender<Arc<Message>>,
    /// Channels whose interest changed since the subscription task last looked.
    changed: Mutex<HashSet<ChannelName>>,
    wake: Notify,
    stats: ClusterStats,
    /// What this cluster's nodes sign their messages with.
    key: wire::BusKey,
}

impl NatsRelay {
    /// Links `broker` to the cluster through `client` as node `node`, with subjects under
    /// `prefix`; the tasks run on `tasks` until `shutdown`, and flush what is queued then.
    pub fn start(
        client: async_nats::Client,
        (node, prefix, key): (Arc<str>, &str, wire::BusKey),
        broker: &Arc<Broker>,
        stats: ClusterStats,
        (tasks, shutdown): (&TaskTracker, CancellationToken),
    ) -> Arc<NatsRelay> {
        let (outbound, rx) = mpsc::channel(OUTBOUND_QUEUE);
        let relay = Arc::new(NatsRelay {
            client,
            node,
            subjects: Subjects::new(prefix),
            outbound,
            changed: Mutex::new(HashSet::new()),
            wake: Notify::new(),
            stats,
            key,
        });
        tasks.spawn(relay.clone().send_loop(rx, shutdown.clone()));
        tasks.spawn(relay.clone().gossip_loop(Arc::downgrade(broker), shutdown.clone()));
        tasks.spawn(relay.clone().subscribe_loop(Arc::downgrade(broker), tasks.clone(), shutdown));
        broker.set_relay(relay.clone());
        relay
    }

    /// Publishes this node's publications, in order, until shutdown; then what is queued.
    async fn send_loop(
        self: Arc<Self>,
        mut rx: mpsc::Receiver<Arc<Message>>,
        shutdown: CancellationToken,
    ) {
        loop {
            let message = tokio::select! {
                m = rx.recv() => m,
                () = shutdown.cancelled() => break,
            };
            let Some(message) = message else { return };
            self.send(&message).await;
        }
        rx.close();
        while let Some(message) = rx.recv().await {
            self.send(&message).await;
        }
        if tokio::time::timeout(Duration::from_secs(5), self.client.flush()).await.is_err() {
            tracing::warn!("cluster: NATS did not take the last publications within 5 s");
        }
    }

    async fn send(&self, message: &Message) {
        let (headers, body) = wire::encode(message, &self.node, &self.key);
        let subject = self.subjects.of(&message.channel);
        match self.client.publish_with_headers(subject, headers, body).await {
            Ok(()) => {
                self.stats.sent.inc();
            }
            Err(e) => {
                self.stats.unsent.inc();
                crate::throttled_warn!(channel = %message.channel, "cluster: NATS refused a publication: {e}");
            }
        }
    }

    /// Keeps one NATS subscription per channel with subscribers here.
    async fn subscribe_loop(
        self: Arc<Self>,
        broker: std::sync::Weak<Broker>,
        tasks: TaskTracker,
        shutdown: CancellationToken,
    ) {
        let mut subscribed: HashMap<ChannelName, CancellationToken> = HashMap::new();
        loop {
            tokio::select! {
                () = self.wake.notified() => {}
                () = shutdown.cancelled() => break,
            }
            let Some(broker) = broker.upgrade() else { break };
            let changed: Vec<ChannelName> = self.take_changed();
            for channel in changed {
                let wanted = broker.has_subscribers(&channel);
                match (wanted, subscribed.contains_key(&channel)) {
                    (true, false) => {
                        match self.client.subscribe(self.subjects.of(&channel)).await {
                            Ok(sub) => {
                                let stop = shutdown.child_token();
                                subscribed.insert(channel.clone(), stop.clone());
                                let receive = self.clone().receive(
                                    channel,
                                    sub,
                                    Arc::downgrade(&broker),
                                    stop,
                                );
                                tasks.spawn(receive);
                            }
                            Err(e) => {
                                tracing::warn!(%channel, "cluster: cannot subscribe on NATS, retrying: {e}");
                                self.retry_later(channel);
                            }
                        }
                    }
                    (false, true) => {
                        if let Some(stop) = subscribed.remove(&channel) {
                            stop.cancel();
                        }
                        // From now on this node misses what other nodes publish there: a
                        // client recovering from its history must be told it cannot.
                        broker.reset_history(&channel);
                    }
                    _ => {}
                }
            }
        }
        for stop in subscribed.into_values() {
            stop.cancel();
        }
    }

    fn take_changed(&self) -> Vec<ChannelName> {
        let mut changed = self.changed.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        changed.drain().collect()
    }

    fn retry_later(self: &Arc<Self>, channel: ChannelName) {
        let relay = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(500)).await;
            relay.interest_changed(&channel);
        });
    }

    /// Delivers what other nodes publish on `channel` until `stop`.
    async fn receive(
        self: Arc<Self>,
        channel: ChannelName,
        mut sub: async_nats::Subscriber,
        broker: std::sync::Weak<Broker>,
        stop: CancellationToken,
    ) {
        loop {
            // Stop first: once a newer subscription exists, this one delivers nothing more.
            let message = tokio::select! {
                biased;
                () = stop.cancelled() => break,
                m = sub.next() => m,
            };
            let Some(message) = message else { break };
            if stop.is_cancelled() {
                break;
            }
            if wire::node(message.headers.as_ref()) == Some(&*self.node) {
                continue; // this node's own, delivered here when it was published
            }
            let from = wire::node(message.headers.as_ref()).unwrap_or_default().to_owned();
            match wire::decode(
                channel.clone(),
                message.headers.as_ref(),
                message.payload,
                &self.key,
            ) {
                Ok(message) => {
                    let Some(broker) = broker.upgrade() else { break };
                    let news = match &message.event {
                        _ if !broker.keeps_presence(&channel) => true,
                        Event::Join(info) => {
                            broker.presence.remote.join(&from, &channel, info.clone());
                            true
                        }
                        // Told once: after a goodbye or an expiry the client is gone already.
                        Event::Leave(info) => {
                            broker.presence.remote.leave(&from, &channel, &info.client)
                        }
                        Event::Publication => true,
                    };
                    if news {
                        broker.deliver_remote(message);
                    }
                    self.stats.received.inc();
                }
                Err(e) => {
                    self.stats.refused.inc();
                    crate::throttled_warn!(channel = %channel, "cluster: a message on NATS was not taken: {e}");
                }
            }
        }
        let _ = sub.unsubscribe().await;
    }

    /// Tells the other nodes who this node has, every [`gossip::INTERVAL`], and keeps
    /// what they tell; takes a silent node as gone after [`gossip::EXPIRY`].
    async fn gossip_loop(
        self: Arc<Self>,
        broker: std::sync::Weak<Broker>,
        shutdown: CancellationToken,
    ) {
        let subject = self.subjects.nodes().to_owned();
        let mut sub = loop {
            match self.client.subscribe(subject.clone()).await {
                Ok(sub) => break sub,
                Err(e) => tracing::warn!("cluster: cannot subscribe to {subject}, retrying: {e}"),
            }
            tokio::select! {
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
                () = shutdown.cancelled() => return,
            }
        };
        let mut tick = tokio::time::interval(gossip::INTERVAL);
        let mut round = 0;
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    let Some(broker) = broker.upgrade() else { break };
                    round += 1;
                    let max = self.max_payload().unwrap_or(1 << 20);
                    for part in gossip::parts(&broker, round, max) {
                        let headers = wire::node_headers(&self.node, &self.key, &part);
                        if let Err(e) = self.client.publish_with_headers(subject.clone(), headers, part).await {
                            crate::throttled_warn!("cluster: cannot send this node's snapshot: {e}");
                        }
                    }
                    let gone = broker.presence.remote.expire(gossip::EXPIRY);
                    if !gone.is_empty() {
                        tracing::warn!(clients = gone.len(), "cluster: a node went silent: its clients left");
                    }
                    leave(&broker, gone);
                }
                message = sub.next() => {
                    let Some(message) = message else { break };
                    let Some(broker) = broker.upgrade() else { break };
                    self.heard(&broker, &message);
                }
                () = shutdown.cancelled() => {
                    let bye = gossip::bye();
                    let headers = wire::node_headers(&self.node, &self.key, &bye);
                    let _ = self.client.publish_with_headers(subject.clone(), headers, bye).await;
                    break;
                }
            }
        }
    }

    /// Takes another node's snapshot part or goodbye.
    fn heard(&self, broker: &Broker, message: &async_nats::Message) {
        let Some(from) = wire::node(message.headers.as_ref()) else {
            self.stats.refused.inc();
            return;
        };
        if from == &*self.node {
            return;
        }
        if !wire::verify_node(message.headers.as_ref(), &self.key, &message.payload) {
            self.stats.refused.inc();
            crate::throttled_warn!(
                node = from,
                "cluster: a snapshot not signed with the cluster's key was refused"
            );
            return;
        }
        match gossip::read(&message.payload) {
            Ok(Said::Snapshot(snapshot)) => broker.presence.remote.apply(from, snapshot),
            Ok(Said::Bye) => leave(broker, broker.presence.remote.remove(from)),
            Err(e) => {
                self.stats.refused.inc();
                crate::throttled_warn!(
                    node = from,
                    "cluster: a node's snapshot was not taken: {e}"
                );
            }
        }
    }

    /// The largest message the NATS server takes, once it has said.
    fn max_payload(&self) -> Option<usize> {
        Some(self.client.server_info().max_payload).filter(|m| *m > 0)
    }

    /// Whether the link to NATS is up now.
    pub fn connected(&self) -> bool {
        self.client.connection_state() == State::Connected
    }
}

impl Relay for NatsRelay {
    fn forward(&self, message: &Arc<Message>) -> Result<(), String> {
        // What NATS would refuse is refused here, where the publisher can still be told.
        let max = self.max_payload().unwrap_or(usize::MAX);
        if message.payload.len() + HEADROOM > max {
            self.stats.unsent.inc();
            return Err(format!(
                "larger than the cluster's NATS takes ({max} bytes with tern's headers): delivered on this node only"
            ));
        }
        if !self.connected() {
            self.stats.unsent.inc();
            return Err("the cluster's NATS is unreachable: delivered on this node only".into());
        }
        self.outbound.try_send(message.clone()).map_err(|_| {
            self.stats.unsent.inc();
            format!(
                "the cluster link is behind ({OUTBOUND_QUEUE} publications waiting): delivered on this node only"
            )
        })
    }

    fn interest_changed(&self, channel: &ChannelName) {
        self.changed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(channel.clone());
        self.wake.notify_one();
    }
}

/// Tells this node's subscribers of channels with join and leave events that `gone`
/// (another node's clients) left.
fn leave(broker: &Broker, gone: Vec<(ChannelName, Arc<ClientInfo>)>) {
    for (channel, info) in gone {
        if broker.keeps_join_leave(&channel) {
            broker.deliver_remote(Message::event(channel, Event::Leave(info)));
        }
    }
}
