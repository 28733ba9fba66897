//! The host side of the WIT `realtime` interface: who sent the message a function handles,
//! its reply to them, and access-token URLs of the realtime endpoint.

use std::{sync::Arc, time::Duration};

use serde_json::value::RawValue;

use super::{
    bindings::realtime::{Host, Sender},
    state::InvocationState,
};
use crate::{
    auth::{
        ChannelPattern, Grant, TokenAuthority,
        token::{MAX_MINTED_TTL, MAX_PATTERNS},
    },
    broker::{Envelope, Payload},
    gateway::realtime::{PATH, session::private_topic},
};

/// Longest `status` of a reply, and `user` of a minted token, in bytes.
const MAX_STATUS: usize = 256;

impl Host for InvocationState {
    fn message_sender(&mut self) -> wasmtime::Result<Option<Sender>> {
        let trigger = &self.pubsub.trigger;
        Ok(trigger.connection.as_ref().map(|connection| Sender {
            connection_id: connection.to_string(),
            message_type: trigger
                .message_type
                .as_deref()
                .unwrap_or(crate::gateway::realtime::frames::DEFAULT_TYPE)
                .to_owned(),
            id: trigger.client_id.as_deref().map(str::to_owned),
            json: trigger.json,
        }))
    }

    fn reply(&mut self, data_json: String, status: String) -> wasmtime::Result<Result<(), String>> {
        let trigger = &self.pubsub.trigger;
        let Some(to) = trigger.connection.as_deref().and_then(private_topic) else {
            return Ok(Err(
                "the message being handled was not sent by a realtime connection: there is nobody to reply to".into(),
            ));
        };
        let data = match serde_json::from_str::<&RawValue>(&data_json) {
            Ok(data) => data,
            Err(e) => return Ok(Err(format!("the reply's data is not JSON: {e}"))),
        };
        if status.len() > MAX_STATUS {
            return Ok(Err(format!("the reply's status is longer than {MAX_STATUS} bytes")));
        }
        let body = serde_json::json!({ "id": trigger.client_id.as_deref(), "data": data, "status": status });
        let envelope =
            Envelope { message_type: Some("response".into()), json: true, ..Envelope::default() };
        let published = self.pubsub.publish_to(to, Payload::text(body.to_string()), envelope);
        Ok(published.map_err(|e| format!("{e:?}")))
    }

    fn url(
        &mut self,
        subscribe: Vec<String>,
        publish: Vec<String>,
        user: Option<String>,
        ttl_seconds: u32,
    ) -> wasmtime::Result<Result<String, String>> {
        let patterns = |list: Vec<String>, field: &str| {
            if list.len() > MAX_PATTERNS {
                return Err(format!("{field}: at most {MAX_PATTERNS} patterns"));
            }
            list.iter()
                .map(|p| ChannelPattern::parse(p).map_err(|e| format!("{field}: {e}")))
                .collect::<Result<Vec<_>, _>>()
        };
        let grant = match (patterns(subscribe, "subscribe"), patterns(publish, "publish")) {
            (Ok(subscribe), Ok(publish)) => Grant { subscribe, publish, ..Grant::default() },
            (Err(e), _) | (_, Err(e)) => return Ok(Err(e)),
        };
        let token = match mint_checked(&self.pubsub.shared.tokens, grant, user, ttl_seconds) {
            Ok(token) => token,
            Err(e) => return Ok(Err(e)),
        };
        let origin = self.pubsub.origin.as_deref().unwrap_or("");
        Ok(Ok(format!("{origin}{PATH}?access_token={token}")))
    }
}

/// A token granting `grant` to `user` for `ttl_seconds` (1 to [`MAX_MINTED_TTL`]): what
/// every URL a function mints carries (realtime and raw bridge alike).
pub(super) fn mint_checked(
    tokens: &TokenAuthority,
    grant: Grant,
    user: Option<String>,
    ttl_seconds: u32,
) -> Result<String, String> {
    let ttl = Duration::from_secs(u64::from(ttl_seconds));
    if ttl.is_zero() || ttl > MAX_MINTED_TTL {
        let max = MAX_MINTED_TTL.as_secs();
        return Err(format!("ttl-seconds must be 1 to {max}, not {ttl_seconds}"));
    }
    if user.as_ref().is_some_and(|u| u.len() > MAX_STATUS) {
        return Err(format!("the user (subject) is longer than {MAX_STATUS} bytes"));
    }
    let grant = Grant { user: user.map(Arc::from), ..grant };
    tokens.mint(&grant, ttl).map_err(|e| e.to_string())
}
