//! What functions do on a client-protocol connection: its RPCs and sends go to their
//! handlers (each in its own task, so a slow handler holds up neither the connection's
//! other commands nor its pushes), its connects, subscribes and publishes to the hooks
//! its channels' configs name, and the orders functions and the server API give it.

use std::borrow::Cow;

use bytes::Bytes;

use super::{
    codec::Format,
    disconnect::{self, Disconnect},
    proto,
    session::Session,
};
use crate::{
    channel_name::ChannelName,
    gateway::control::Control,
    hooks::{Caller, Refusal},
};

/// The door's name, as hooks are told.
pub(super) const PROTOCOL: &str = "centrifuge";

/// The error reply a refusal becomes: its code (or `default`'s when it gave 0) and its
/// reason (or the default's message when it gave none).
pub(super) fn refusal_reply(id: u32, r: &Refusal, default: disconnect::ErrorCode) -> proto::Reply {
    let code = if r.code == 0 { default.code } else { r.code };
    let message = if r.reason.is_empty() { default.message.to_owned() } else { r.reason.clone() };
    let error = proto::Error { code, message, temporary: false };
    proto::Reply { id, error: Some(error), ..Default::default() }
}

/// The close a hook's disconnect becomes.
pub(super) fn refusal_close(r: Refusal) -> Disconnect {
    let code = u16::try_from(r.code).unwrap_or(4500);
    Disconnect { code, reason: Cow::Owned(r.reason) }
}

impl Session<'_> {
    /// Who this connection is, for hooks and handlers.
    pub(super) fn caller(&self) -> Option<Caller> {
        let connected = self.connected.as_ref()?;
        Some(Caller::of(&connected.info, PROTOCOL, self.ctx.peer))
    }

    /// Starts RPC `id`; its reply comes later, unless it is refused now. With
    /// [`MAX_CALLS_IN_FLIGHT`](super::session::MAX_CALLS_IN_FLIGHT) calls of this
    /// connection running, waits for one to end: a client sending RPCs faster than its
    /// handlers answer is slowed down, not refused.
    pub(super) async fn rpc(&mut self, id: u32, req: proto::RpcRequest) -> Option<proto::Reply> {
        let caller = self.caller()?;
        let functions = self.ctx.functions.load_full();
        if functions.rpc_handler(&req.method).is_none() {
            return Some(disconnect::METHOD_NOT_FOUND.reply(id));
        }
        let Some(permit) = self.permit().await else {
            return Some(disconnect::INTERNAL.reply(id));
        };
        let (runtime, answers, format) =
            (self.ctx.runtime.clone(), self.answers.0.clone(), self.format);
        let max = usize::try_from(self.ctx.websocket.max_message.0).unwrap_or(usize::MAX);
        tokio::spawn(async move {
            let answer = functions.rpc(&runtime, &caller, &req.method, &req.data).await;
            let reply = match answer {
                None => disconnect::METHOD_NOT_FOUND.reply(id),
                Some(Ok(data)) if data.len() > max => {
                    crate::throttled_warn!(client = %caller.id, method = %req.method, len = data.len(), "an rpc handler answered more than websocket.max_message: refused");
                    let r = Refusal {
                        code: 100,
                        reason: "the rpc handler's answer is too large".into(),
                    };
                    refusal_reply(id, &r, disconnect::INTERNAL)
                }
                Some(Ok(data)) => {
                    let rpc = proto::RpcResult { data: format.data_of(&data) };
                    proto::Reply { id, rpc: Some(rpc), ..Default::default() }
                }
                Some(Err(r)) => refusal_reply(id, &r, disconnect::PERMISSION_DENIED),
            };
            // The connection may have gone meanwhile: then nobody waits for the answer, and
            // the permit goes with the dropped reply.
            let _ = answers.send((format.encode(&reply), permit));
        });
        None
    }

    /// Hands a `send` to its handler, if the project has one; nobody waits for it (but
    /// it waits its turn among the connection's calls, as an RPC does).
    pub(super) async fn send(&mut self, data: Bytes) {
        let Some(caller) = self.caller() else { return };
        let functions = self.ctx.functions.load_full();
        if !functions.has_send() {
            return;
        }
        let Some(permit) = self.permit().await else { return };
        let runtime = self.ctx.runtime.clone();
        tokio::spawn(async move {
            functions.send(&runtime, &caller, &data).await;
            drop(permit);
        });
    }

    /// A permit for one more call of this connection. While every permit is taken, the
    /// replies of finished RPCs are taken from `answers` (each frees its permit) and held
    /// for the frame being handled: the loop that would send them is waiting here.
    async fn permit(&mut self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        loop {
            tokio::select! {
                // The semaphore is never closed.
                permit = self.calls.clone().acquire_owned() => return permit.ok(),
                Some((reply, permit)) = self.answers.1.recv() => {
                    self.held.push(reply);
                    drop(permit);
                }
            }
        }
    }

    /// Carries out an order from a function or the server API; the pushes it makes.
    pub(super) fn obey(&mut self, order: Control) -> Result<Vec<Bytes>, Disconnect> {
        match order {
            Control::Subscribe(name, ack) => {
                let (push, result) = match self.subscribe_server_side(&name) {
                    Ok(push) => (push, Ok(())),
                    Err(why) => (None, Err(why)),
                };
                if let Some(ack) = ack {
                    let _ = ack.send(result);
                }
                Ok(push.into_iter().collect())
            }
            Control::Unsubscribe(name) => {
                if !self.subscriptions.contains_key(&name) {
                    return Ok(Vec::new());
                }
                Ok(vec![self.end_subscription(&name, 2000, "server unsubscribe")])
            }
            Control::Send(data) => {
                let push = proto::Push {
                    message: Some(proto::DataPush { data: self.format.data_of(&data) }),
                    ..Default::default()
                };
                Ok(vec![
                    self.format.encode(&proto::Reply { push: Some(push), ..Default::default() }),
                ])
            }
            Control::Disconnect(code, reason) => {
                Err(Disconnect { code, reason: Cow::Owned(reason) })
            }
        }
    }

    /// Subscribes the connection to `name` on the server's word: the `subscribe` push
    /// (none when it is subscribed already), or why not.
    fn subscribe_server_side(&mut self, name: &ChannelName) -> Result<Option<Bytes>, String> {
        if self.subscriptions.contains_key(name) {
            return Ok(None);
        }
        let most = self.ctx.settings.max_channels_per_connection;
        if self.subscriptions.len() >= most {
            return Err(format!(
                "the client is on {most} channels already (max_channels_per_connection)"
            ));
        }
        let Ok(result) = self.attach(name, None, None, None) else {
            return Err(format!("no messaging config bridges channel `{name}`"));
        };
        let push = proto::Push {
            channel: name.as_str().to_owned(),
            subscribe: Some(proto::SubscribePush {
                recoverable: result.recoverable,
                epoch: result.epoch,
                offset: result.offset,
                positioned: false,
            }),
            ..Default::default()
        };
        Ok(Some(self.format.encode(&proto::Reply { push: Some(push), ..Default::default() })))
    }
}

impl Format {
    /// Bytes a function gave as a reply's or push's `data`: as they are on protobuf; on
    /// JSON, a JSON document as is, other text as a JSON string, binary as base64 in one,
    /// nothing as `null`.
    pub(super) fn data_of(self, bytes: &[u8]) -> Bytes {
        if self == Format::Json && bytes.is_empty() {
            return Bytes::from_static(b"null");
        }
        let bytes = Bytes::copy_from_slice(bytes);
        let payload = crate::broker::Payload::text_from_bytes(bytes.clone())
            .unwrap_or_else(|_| crate::broker::Payload::binary(bytes));
        self.data(&payload, false).0
    }
}
