//! One connection's queue on many channels: a realtime session is one task with one
//! bounded queue, however many topics it is subscribed to.

use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{Broker, Message, Recovery, StreamPosition, SubscriberId, SubscriberKind};
use crate::{auth::Grant, channel_name::ChannelName};

/// The receiving end: messages of every attached channel, in publish order per channel.
/// When it is full the broker drops the whole connection (its kick signal fires).
pub struct Inbox {
    /// Its id, the publisher id of everything the connection publishes (so it does not get
    /// its own messages back).
    pub id: SubscriberId,
    tx: mpsc::Sender<Arc<Message>>,
    rx: mpsc::Receiver<Arc<Message>>,
    kicked: CancellationToken,
    grant: Option<Arc<Grant>>,
    broker: Arc<Broker>,
}

/// One channel attached to an inbox; dropping it detaches the channel.
pub struct Attachment {
    channel: ChannelName,
    id: SubscriberId,
    retired: CancellationToken,
    broker: Arc<Broker>,
}

impl Inbox {
    pub(super) fn new(
        id: SubscriberId,
        (tx, rx): (mpsc::Sender<Arc<Message>>, mpsc::Receiver<Arc<Message>>),
        grant: Option<Arc<Grant>>,
        broker: Arc<Broker>,
    ) -> Self {
        Self { id, tx, rx, kicked: CancellationToken::new(), grant, broker }
    }

    /// Starts receiving `channel`'s messages. Attach a channel once per inbox.
    pub fn attach(&self, channel: ChannelName, kind: SubscriberKind) -> Attachment {
        self.attach_taking(channel, kind, false)
    }

    /// Starts receiving `channel`'s publications and its join and leave events (a
    /// client-protocol connection), and says what was missed since `since` when the
    /// channel keeps history (None when it keeps none).
    pub fn attach_client(
        &self,
        channel: ChannelName,
        since: Option<&StreamPosition>,
    ) -> (Attachment, Option<Recovery>) {
        let mut attachment = None;
        let broker = self.broker.clone();
        let recovery = broker.attach_at_position(&channel, since, &mut || {
            attachment = Some(self.attach_taking(channel.clone(), SubscriberKind::WebSocket, true));
        });
        let attachment = attachment
            .unwrap_or_else(|| self.attach_taking(channel, SubscriberKind::WebSocket, true));
        (attachment, recovery)
    }

    fn attach_taking(
        &self,
        channel: ChannelName,
        kind: SubscriberKind,
        events: bool,
    ) -> Attachment {
        let (tx, kicked) = (self.tx.clone(), self.kicked.clone());
        let who = (kind, self.id, self.grant.clone(), events);
        let retired = self.broker.add(channel.clone(), who, tx, kicked);
        Attachment { channel, id: self.id, retired, broker: self.broker.clone() }
    }

    /// The next message.
    pub async fn recv(&mut self) -> Option<Arc<Message>> {
        self.rx.recv().await
    }

    /// The next message if one is already queued.
    pub fn try_recv(&mut self) -> Option<Arc<Message>> {
        self.rx.try_recv().ok()
    }

    /// A token cancelled when the broker drops this connection for being too slow.
    pub fn kick_signal(&self) -> CancellationToken {
        self.kicked.clone()
    }
}

impl Attachment {
    /// The attached channel.
    pub fn channel(&self) -> &ChannelName {
        &self.channel
    }

    /// Whether a reload removed the channel's configuration (it receives nothing more).
    pub fn is_retired(&self) -> bool {
        self.retired.is_cancelled()
    }
}

impl Drop for Attachment {
    fn drop(&mut self) {
        self.broker.unsubscribe(&self.channel, self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::{Origin, Payload};

    fn name(s: &str) -> ChannelName {
        ChannelName::parse(s).unwrap()
    }

    #[tokio::test]
    async fn one_inbox_receives_every_attached_channel_until_detached() {
        let broker = Broker::new(8);
        let mut inbox = broker.inbox(None);
        let a = inbox.attach(name("a"), SubscriberKind::WebSocket);
        let _b = inbox.attach(name("b"), SubscriberKind::WebSocket);
        let origin = || Origin::Function { trail: Arc::from([]) };
        broker.publish(Message::new(name("a"), Payload::text("1"), origin()));
        broker.publish(Message::new(name("b"), Payload::text("2"), origin()));
        assert_eq!(inbox.recv().await.unwrap().payload, Payload::text("1"));
        assert_eq!(inbox.recv().await.unwrap().payload, Payload::text("2"));
        drop(a);
        assert_eq!(broker.publish(Message::new(name("a"), Payload::text("3"), origin())), 0);
        let own = Message::new(name("b"), Payload::text("mine"), Origin::Subscriber(inbox.id));
        assert_eq!(broker.publish(own), 0, "a connection does not get its own messages");
    }

    #[tokio::test]
    async fn a_full_inbox_kicks_the_connection() {
        let broker = Broker::new(1);
        let inbox = broker.inbox(None);
        let _a = inbox.attach(name("a"), SubscriberKind::WebSocket);
        let origin = || Origin::Function { trail: Arc::from([]) };
        broker.publish(Message::new(name("a"), Payload::text("1"), origin()));
        broker.publish(Message::new(name("a"), Payload::text("2"), origin()));
        assert!(inbox.kick_signal().is_cancelled());
    }
}
