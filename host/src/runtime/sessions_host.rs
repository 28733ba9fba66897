//! The host side of the WIT `sessions` interface: a function's orders to connected
//! clients (subscribe, unsubscribe, send, disconnect), each checked here and carried out
//! by the client's own session.

use std::time::Duration;

use bytes::Bytes;
use tokio::sync::oneshot;

use super::{bindings::sessions::Host, state::InvocationState};
use crate::{
    channel_name::ChannelName,
    gateway::control::{Control, ControlError},
};

/// How long a subscribe waits for the session to attach the channel.
const ACK_TIMEOUT: Duration = Duration::from_secs(2);

/// Longest disconnect reason, in bytes: a close frame's reason has room for 123.
const MAX_REASON: usize = 123;

impl InvocationState {
    fn order(&mut self, client_id: &str, order: Control) -> Result<(), String> {
        self.pubsub.shared.sessions.order(client_id, order).map_err(|e| match e {
            ControlError::NoSuchClient(_) | ControlError::Busy(_) => e.to_string(),
        })
    }

    /// The channel `name`, valid and bridged by a messaging config.
    fn bridged(&self, name: &str) -> Result<ChannelName, String> {
        let name = ChannelName::parse(name).map_err(|e| format!("invalid channel name: {e}"))?;
        match self.pubsub.shared.rules.resolve(&name) {
            Some(spec) if spec.websocket => Ok(name),
            Some(spec) => Err(format!(
                "messaging config `{}` does not bridge channel `{name}` to WebSockets",
                spec.name
            )),
            None => Err(format!("no messaging config matches channel `{name}`")),
        }
    }
}

impl Host for InvocationState {
    async fn subscribe(
        &mut self,
        client_id: String,
        channel: String,
    ) -> wasmtime::Result<Result<(), String>> {
        let name = match self.bridged(&channel) {
            Ok(name) => name,
            Err(e) => return Ok(Err(e)),
        };
        let (ack, done) = oneshot::channel();
        if let Err(e) = self.order(&client_id, Control::Subscribe(name, Some(ack))) {
            return Ok(Err(e));
        }
        Ok(match tokio::time::timeout(ACK_TIMEOUT, done).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(format!("client `{client_id}` left before it was subscribed")),
            Err(_) => Err(format!("client `{client_id}` did not take the subscription in time")),
        })
    }

    fn unsubscribe(
        &mut self,
        client_id: String,
        channel: String,
    ) -> wasmtime::Result<Result<(), String>> {
        let order = ChannelName::parse(&channel)
            .map(Control::Unsubscribe)
            .map_err(|e| format!("invalid channel name: {e}"));
        Ok(order.and_then(|order| self.order(&client_id, order)))
    }

    fn send(&mut self, client_id: String, data: Vec<u8>) -> wasmtime::Result<Result<(), String>> {
        if let Err(e) = self.pubsub.take_publish(data.len()) {
            return Ok(Err(format!("{e:?}")));
        }
        Ok(self.order(&client_id, Control::Send(Bytes::from(data))))
    }

    fn disconnect(
        &mut self,
        client_id: String,
        code: u32,
        reason: String,
    ) -> wasmtime::Result<Result<(), String>> {
        let Some(code) = u16::try_from(code).ok().filter(|c| (4000..=4999).contains(c)) else {
            return Ok(Err(format!("the close code must be 4000 to 4999, not {code}")));
        };
        if reason.len() > MAX_REASON {
            return Ok(Err(format!("the reason is longer than {MAX_REASON} bytes")));
        }
        Ok(self.order(&client_id, Control::Disconnect(code, reason)))
    }
}

impl super::bindings::session_types::Host for InvocationState {}
