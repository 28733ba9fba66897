//! Server-side control of live sessions: who is connected (by client id and by user), and
//! a bounded queue per session through which a function or the server API subscribes,
//! unsubscribes, messages or disconnects it. The session carries the order out in its
//! own task, so its state has one owner.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex, MutexGuard},
};

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};

use crate::channel_name::ChannelName;

/// Orders one session may have waiting; more are refused as busy.
const QUEUE: usize = 64;

/// Where a session says whether it carried out a subscribe order, and why not.
pub type Ack = Option<oneshot::Sender<Result<(), String>>>;

/// An order for one session.
#[derive(Debug)]
pub enum Control {
    /// Subscribe to this channel (server-side), saying so on the ack once attached: what
    /// the function publishes next on the channel reaches the client.
    Subscribe(ChannelName, Ack),
    /// Unsubscribe from it.
    Unsubscribe(ChannelName),
    /// Deliver this to the client alone.
    Send(Bytes),
    /// Close with this code and reason.
    Disconnect(u16, String),
}

/// Why an order did not reach a session.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ControlError {
    /// No session has this id (never did, or it has gone).
    #[error("no connected client has id `{0}`")]
    NoSuchClient(String),
    /// The session has too many orders waiting.
    #[error("client `{0}` has too many orders waiting: try again")]
    Busy(String),
}

/// The live sessions that take orders.
#[derive(Debug, Default)]
pub struct SessionRegistry {
    inner: Mutex<Sessions>,
}

#[derive(Debug, Default)]
struct Sessions {
    by_client: HashMap<Arc<str>, (Arc<str>, mpsc::Sender<Control>)>,
    by_user: HashMap<Arc<str>, HashSet<Arc<str>>>,
}

/// A session's place in the registry; dropping it takes the session out.
#[derive(Debug)]
pub struct Registered {
    registry: Arc<SessionRegistry>,
    client: Arc<str>,
}

impl SessionRegistry {
    /// An empty registry.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    fn lock(&self) -> MutexGuard<'_, Sessions> {
        // A panic while holding the lock leaves the maps consistent (each change is one
        // insert or remove): carry on with them.
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Registers client `client` of `user` (empty: anonymous); its orders arrive on the
    /// returned receiver until the [`Registered`] is dropped.
    pub fn register(
        self: &Arc<Self>,
        client: Arc<str>,
        user: Arc<str>,
    ) -> (Registered, mpsc::Receiver<Control>) {
        let (tx, rx) = mpsc::channel(QUEUE);
        let mut sessions = self.lock();
        if !user.is_empty() {
            sessions.by_user.entry(user.clone()).or_default().insert(client.clone());
        }
        sessions.by_client.insert(client.clone(), (user, tx));
        (Registered { registry: self.clone(), client }, rx)
    }

    /// Queues `order` for client `client`.
    pub fn order(&self, client: &str, order: Control) -> Result<(), ControlError> {
        let tx = self.lock().by_client.get(client).map(|(_, tx)| tx.clone());
        let tx = tx.ok_or_else(|| ControlError::NoSuchClient(client.to_owned()))?;
        tx.try_send(order).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => ControlError::Busy(client.to_owned()),
            mpsc::error::TrySendError::Closed(_) => ControlError::NoSuchClient(client.to_owned()),
        })
    }

    /// The clients of `user` now, or just `client` when given (and it is `user`'s).
    pub fn clients(&self, user: &str, client: Option<&str>) -> Vec<Arc<str>> {
        let sessions = self.lock();
        match client {
            Some(c) => sessions
                .by_client
                .get_key_value(c)
                .filter(|(_, (u, _))| &**u == user)
                .map(|(c, _)| vec![c.clone()])
                .unwrap_or_default(),
            None => sessions
                .by_user
                .get(user)
                .map(|clients| clients.iter().cloned().collect())
                .unwrap_or_default(),
        }
    }

    /// How many sessions and distinct users are registered.
    pub fn counts(&self) -> (usize, usize) {
        let sessions = self.lock();
        (sessions.by_client.len(), sessions.by_user.len())
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        let mut sessions = self.registry.lock();
        let Some((user, _)) = sessions.by_client.remove(&self.client) else { return };
        if let Some(clients) = sessions.by_user.get_mut(&user) {
            clients.remove(&self.client);
            if clients.is_empty() {
                sessions.by_user.remove(&user);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_reach_registered_sessions_only_until_they_leave() {
        let registry = SessionRegistry::new();
        let (place, mut rx) = registry.register("c1".into(), "ada".into());
        let (_other, _rx2) = registry.register("c2".into(), "ada".into());
        assert_eq!(registry.counts(), (2, 1));
        registry.order("c1", Control::Send(Bytes::from_static(b"hi"))).unwrap();
        assert!(matches!(rx.try_recv().unwrap(), Control::Send(b) if b == "hi"));
        let mut of_ada = registry.clients("ada", None);
        of_ada.sort();
        assert_eq!(of_ada, [Arc::from("c1"), Arc::from("c2")]);
        assert!(registry.clients("bob", Some("c1")).is_empty(), "c1 is not bob's");
        drop(place);
        assert_eq!(
            registry.order("c1", Control::Disconnect(4000, String::new())).unwrap_err(),
            ControlError::NoSuchClient("c1".into())
        );
        assert_eq!(registry.counts(), (1, 1));
    }

    #[test]
    fn a_session_that_does_not_keep_up_is_busy_not_a_memory_leak() {
        let registry = SessionRegistry::new();
        let (_place, _rx) = registry.register("c".into(), "".into());
        for _ in 0..QUEUE {
            registry.order("c", Control::Send(Bytes::new())).unwrap();
        }
        assert_eq!(
            registry.order("c", Control::Send(Bytes::new())).unwrap_err(),
            ControlError::Busy("c".into())
        );
    }
}
