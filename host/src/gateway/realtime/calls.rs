//! What functions do on a realtime connection: the subscribe and publish hooks its topics'
//! configs name, and the orders functions and the server API give it (subscribe,
//! unsubscribe, a message on its private topic, disconnect).

use bytes::Bytes;

use super::session::{Session, is_private, private_topic};
use crate::{
    broker::{Envelope, Message, Origin, Payload, SubscriberId, SubscriberKind},
    channel_name::ChannelName,
    gateway::control::Control,
    hooks::{Caller, Refusal, Verdict},
};

/// What a hook's refusal becomes on this protocol: the refusal frame's code and message,
/// or (for a disconnect) the close the loop makes.
fn refused<T>(session: &mut Session<'_>, verdict: Verdict<T>) -> Result<T, (&'static str, String)> {
    let reason = |r: &Refusal, default: &str| {
        if r.reason.is_empty() { default.to_owned() } else { r.reason.clone() }
    };
    match verdict {
        Verdict::Allow(t) => Ok(t),
        Verdict::Deny(r) => Err(("denied", reason(&r, "refused by a hook"))),
        Verdict::Disconnect(r) => {
            let why = reason(&r, "closed by a hook");
            session.closing = Some((u16::try_from(r.code).unwrap_or(4500), why.clone()));
            Err(("denied", why))
        }
    }
}

impl Session<'_> {
    /// Who this connection is, for hooks.
    fn caller(&self) -> Caller {
        Caller {
            id: self.peer.id.clone(),
            user: self.peer.grant.user.clone(),
            protocol: "realtime",
            info: self.peer.grant.info.clone(),
            address: self.peer.address,
        }
    }

    /// Asks the subscribe hook of `name`'s config, if it names one (or remembers its
    /// answer of less than `hooks.cache` ago).
    pub(super) async fn ask_subscribe(
        &mut self,
        name: &ChannelName,
    ) -> Result<(), (&'static str, String)> {
        let hooks = match self.ctx.rules.load().resolve(name) {
            Some(spec) => spec.hooks.clone(),
            None => return Ok(()),
        };
        let Some(hook) = &hooks.subscribe else { return Ok(()) };
        if self.decisions.get(name).is_some() {
            return Ok(());
        }
        let functions = self.ctx.functions.load_full();
        let caller = self.caller();
        let verdict =
            functions.subscribe(&self.ctx.runtime, hook, &caller, (name.as_str(), &[])).await;
        let info = refused(self, verdict)?;
        self.decisions.put(name, info, hooks.cache);
        Ok(())
    }

    /// Passes `payload` through the publish hook of `name`'s config, if it names one: what
    /// to publish, or why not.
    pub(super) async fn ask_publish(
        &mut self,
        name: &ChannelName,
        payload: Payload,
        json: bool,
    ) -> Result<Payload, (&'static str, String)> {
        let hook = self.ctx.rules.load().resolve(name).and_then(|spec| spec.hooks.publish.clone());
        let Some(hook) = hook else { return Ok(payload) };
        let functions = self.ctx.functions.load_full();
        let caller = self.caller();
        let max = usize::try_from(self.ctx.websocket.max_message.0).unwrap_or(usize::MAX);
        let binary = !payload.is_text();
        let request = (name.as_str(), payload.bytes().as_ref(), binary);
        let verdict =
            functions.publish(&self.ctx.runtime, &hook, &caller, request, (max, json)).await;
        Ok(match refused(self, verdict)? {
            None => payload,
            Some(data) if binary => Payload::binary(data),
            Some(data) => match String::from_utf8(data) {
                Ok(text) => Payload::text(text),
                Err(e) => Payload::binary(e.into_bytes()),
            },
        })
    }

    /// Carries out an order from a function or the server API, or the close it asks for.
    pub(super) fn obey(&mut self, order: Control) -> Result<(), (u16, String)> {
        match order {
            Control::Subscribe(name, ack) => {
                let result = self.attach_server_side(name);
                if let Some(ack) = ack {
                    let _ = ack.send(result);
                }
            }
            Control::Unsubscribe(name) => {
                self.topics.remove(&name);
            }
            Control::Send(data) => self.send_private(data),
            Control::Disconnect(code, reason) => return Err((code, reason)),
        }
        Ok(())
    }

    fn attach_server_side(&mut self, name: ChannelName) -> Result<(), String> {
        if is_private(&name) {
            return Err("a private topic belongs to its connection only".into());
        }
        let bridged = self.ctx.rules.load().resolve(&name).is_some_and(|spec| spec.websocket);
        if !bridged {
            return Err(format!("no messaging config bridges channel `{name}` to WebSockets"));
        }
        if self.topics.contains_key(&name) {
            return Ok(());
        }
        let max = self.ctx.realtime.max_topics_per_connection;
        if self.topics.len() >= max {
            return Err(format!("the connection is on {max} topics already"));
        }
        let attachment = self.inbox.attach(name.clone(), SubscriberKind::WebSocket);
        self.topics.insert(name, attachment);
        Ok(())
    }

    /// `data` on the connection's private topic, as a `message` from the server.
    fn send_private(&mut self, data: Bytes) {
        let Some(topic) = private_topic(&self.peer.id) else { return };
        let payload =
            Payload::text_from_bytes(data.clone()).unwrap_or_else(|_| Payload::binary(data));
        let json = payload.is_text()
            && serde_json::from_slice::<&serde_json::value::RawValue>(payload.bytes()).is_ok();
        let envelope =
            Envelope { message_type: Some("message".into()), json, ..Envelope::default() };
        let message = Message::new(topic, payload, Origin::Subscriber(SubscriberId(0)));
        self.ctx.broker.publish(message.with_envelope(envelope));
    }
}
