//! The realtime-pubsub endpoint, `GET /realtime[?access_token=JWT]`: the protocol of the
//! `realtime-pubsub-client` family (one socket, many topics, acks, replies, presence),
//! documented frame by frame in `docs/realtime-pubsub.md`.

mod calls;
pub mod frames;
pub mod session;

use std::{net::IpAddr, sync::Arc};

use http::{Request, Response, StatusCode, uri::Authority};
use hyper::body::Incoming;

use super::{Admitted, Gateway, switching_protocols, upgrade};
use crate::{
    auth::Grant,
    broker::SubscriberKind,
    hooks::{Caller, Verdict},
    reply::{Body, error},
};

/// The endpoint's path.
pub const PATH: &str = "/realtime";

impl Gateway {
    /// Answers a request for [`PATH`] from `peer` to `host`: an upgrade, or why not (401 for
    /// an access token that is not valid, before anything else).
    pub async fn handle_realtime(
        &self,
        req: Request<Incoming>,
        host: Option<&Authority>,
        peer: IpAddr,
    ) -> Response<Body> {
        let grant = match super::access_token(req.uri().query()) {
            None => Grant::default(),
            Some(token) => match self.tokens.verify(token) {
                Ok(grant) => grant,
                Err(e) => return error(StatusCode::UNAUTHORIZED, &e.to_string()),
            },
        };
        let Admitted { accept, slots } = match self.admit(&req, host, peer) {
            Ok(admitted) => admitted,
            Err(resp) => return *resp,
        };
        let id = connection_id();
        let grant = match self.realtime_connect_hook(grant, &id, peer, req.headers()).await {
            Ok(grant) => grant,
            Err(resp) => return *resp,
        };
        let ctx = session::Context {
            broker: self.broker.clone(),
            rules: self.rules.clone(),
            websocket: self.settings.clone(),
            realtime: self.realtime.clone(),
            shutdown: self.shutdown.clone(),
            runtime: self.runtime.clone(),
            functions: self.functions.clone(),
            control: self.control.clone(),
        };
        // Attach the inbox before answering 101, so the private topic is live as soon as
        // the client can learn its id.
        let grant = Arc::new(grant);
        let inbox = self.broker.inbox(Some(grant.clone()));
        let private = session::private_topic(&id).map(|t| inbox.attach(t, SubscriberKind::Private));
        let peer = session::Peer { id, grant, address: peer };
        let connected = self.realtime_count.0.clone();
        self.realtime_count.1.inc();
        self.sessions.spawn(async move {
            let Some(ws) = upgrade(req, &ctx.websocket).await else { return };
            connected.inc();
            session::run(ws, &ctx, &peer, (inbox, private)).await;
            connected.dec();
            drop(slots);
        });
        switching_protocols(&accept)
    }
}

impl Gateway {
    /// Asks the project's connect hook about a realtime connection: its grant as the hook
    /// left it (user, info), or the 403 refusing it.
    async fn realtime_connect_hook(
        &self,
        mut grant: Grant,
        id: &Arc<str>,
        peer: IpAddr,
        headers: &http::HeaderMap,
    ) -> Result<Grant, Box<Response<Body>>> {
        let functions = self.functions.load_full();
        if !functions.has_project_connect() {
            return Ok(grant);
        }
        let caller = Caller {
            id: id.clone(),
            user: grant.user.clone(),
            protocol: "realtime",
            info: grant.info.clone(),
            address: peer,
        };
        match functions.connect(&self.runtime, &caller, (&[], headers), None).await {
            Verdict::Allow(admission) => {
                if let Some(user) = admission.user {
                    grant.user = (!user.is_empty()).then_some(user);
                }
                grant.info = admission.info.or(grant.info);
                Ok(grant)
            }
            Verdict::Deny(r) | Verdict::Disconnect(r) => {
                let reason =
                    if r.reason.is_empty() { "refused by a hook".into() } else { r.reason };
                Err(Box::new(error(StatusCode::FORBIDDEN, &reason)))
            }
        }
    }
}

/// A fresh connection id: 20 random lowercase hex digits (no `.`, which the clients use to
/// split event names, and a valid channel segment).
fn connection_id() -> Arc<str> {
    let mut bytes = [0u8; 10];
    if getrandom::fill(&mut bytes).is_err() {
        // No OS randomness: fall back to a process-unique value (ids stay unique; they are
        // not secrets, since private topics are guarded by who heard from whom).
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        bytes[..8].copy_from_slice(&n.to_be_bytes());
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect::<String>().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_access_token_is_read_from_the_query() {
        assert_eq!(crate::gateway::access_token(Some("a=1&access_token=x.y.z")), Some("x.y.z"));
        assert_eq!(crate::gateway::access_token(Some("access_token=")), None);
        assert_eq!(crate::gateway::access_token(None), None);
    }

    #[test]
    fn connection_ids_are_hex_and_distinct() {
        let (a, b) = (connection_id(), connection_id());
        assert_ne!(a, b);
        assert!(a.len() == 20 && a.bytes().all(|c| c.is_ascii_hexdigit()));
    }
}
