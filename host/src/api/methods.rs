//! The server API's methods, Centrifugo's HTTP API for the ones tern serves: each takes
//! the request's JSON and answers the result's, or an error with Centrifugo's code.

use std::{sync::Arc, time::Duration};

use base64::Engine as _;
use serde::Deserialize;
use serde_json::{Value, json, value::RawValue};
use tokio::sync::oneshot;

use super::{ApiError, keys::ApiKey};
use crate::{
    broker::{HistoryError, HistoryQuery, Message, Origin, Payload, StreamPosition},
    channel_name::ChannelName,
    config::MessagingSpec,
    gateway::{
        centrifuge::{Format, codec::payload_of},
        control::Control,
    },
    server::App,
};

/// How long a subscribe waits for each session to attach the channel.
const ACK_TIMEOUT: Duration = Duration::from_secs(2);

/// What every method has at hand.
pub(super) struct Call<'a> {
    pub app: &'a App,
    pub key: &'a ApiKey,
}

type Answer = Result<Value, ApiError>;

fn parse<'de, T: Deserialize<'de>>(params: &'de RawValue) -> Result<T, ApiError> {
    serde_json::from_str(params.get()).map_err(|e| ApiError::bad(&e.to_string()))
}

impl Call<'_> {
    /// The channel `name` names: configured (102 otherwise) and within the key's (103).
    fn channel(&self, name: &str) -> Result<(ChannelName, MessagingSpec), ApiError> {
        let channel =
            ChannelName::parse(name).map_err(|e| ApiError::bad(&format!("channel: {e}")))?;
        // The key's limits first: a key limited to some channels learns nothing of others.
        if !self.key.may_use(&channel) {
            return Err(ApiError::PERMISSION_DENIED);
        }
        let rules = self.app.generation().rules.clone();
        let spec = rules.resolve(&channel).cloned().ok_or(ApiError::UNKNOWN_CHANNEL)?;
        Ok((channel, spec))
    }

    /// Carries out `method` with `params`.
    pub async fn run(&self, method: &str, params: &RawValue) -> Answer {
        match method {
            "publish" => self.publish(params),
            "broadcast" => self.broadcast(params),
            "subscribe" => self.subscribe(params).await,
            "unsubscribe" => self.unsubscribe(params),
            "disconnect" => self.disconnect(params),
            "presence" => self.presence(params),
            "presence_stats" => self.presence_stats(params),
            "history" => self.history(params),
            "history_remove" => self.history_remove(params),
            "channels" => self.channels(params),
            "info" => self.info(),
            _ => Err(ApiError::METHOD_NOT_FOUND),
        }
    }

    fn publish(&self, params: &RawValue) -> Answer {
        #[derive(Deserialize)]
        struct Params<'a> {
            channel: String,
            #[serde(borrow, default)]
            data: Option<&'a RawValue>,
            #[serde(default)]
            b64data: Option<String>,
        }
        let p: Params = parse(params)?;
        self.publish_one(&p.channel, p.data, p.b64data.as_deref())
    }

    fn publish_one(&self, channel: &str, data: Option<&RawValue>, b64: Option<&str>) -> Answer {
        let (name, _) = self.channel(channel)?;
        let (payload, json) = match (data, b64) {
            (_, Some(b64)) => {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(b64)
                    .map_err(|e| ApiError::bad(&format!("b64data: {e}")))?;
                (Payload::binary(bytes), false)
            }
            (Some(data), None) => {
                payload_of(Format::Json, bytes::Bytes::copy_from_slice(data.get().as_bytes()))
            }
            (None, None) => return Err(ApiError::bad("data or b64data is required")),
        };
        let max = self.app.settings.websocket.max_message.0;
        if payload.len() as u64 > max {
            return Err(ApiError::bad(&format!(
                "the data is {} bytes, more than websocket.max_message ({max})",
                payload.len()
            )));
        }
        let envelope = crate::broker::Envelope { json, ..Default::default() };
        let origin = Origin::Function { trail: Arc::from([]) };
        let message = Message::new(name, payload, origin).with_envelope(envelope);
        let published = self.app.broker.send(message);
        if let Some(why) = published.unrelayed {
            return Err(ApiError::internal(&why));
        }
        Ok(match published.position {
            Some(p) => json!({ "offset": p.offset, "epoch": &*p.epoch }),
            None => json!({}),
        })
    }

    fn broadcast(&self, params: &RawValue) -> Answer {
        #[derive(Deserialize)]
        struct Params<'a> {
            channels: Vec<String>,
            #[serde(borrow, default)]
            data: Option<&'a RawValue>,
            #[serde(default)]
            b64data: Option<String>,
        }
        let p: Params = parse(params)?;
        let most = crate::auth::token::MAX_PATTERNS;
        if p.channels.len() > most {
            return Err(ApiError::bad(&format!("at most {most} channels per broadcast")));
        }
        let responses: Vec<Value> = p
            .channels
            .iter()
            .map(|c| match self.publish_one(c, p.data, p.b64data.as_deref()) {
                Ok(result) => json!({ "result": result }),
                Err(e) => json!({ "error": e.json() }),
            })
            .collect();
        Ok(json!({ "responses": responses }))
    }

    async fn subscribe(&self, params: &RawValue) -> Answer {
        let p: UserChannel = parse(params)?;
        let (name, _) = self.channel(&p.channel)?;
        for client in self.app.gateway.control.clients(&p.user, p.client.as_deref()) {
            let (ack, done) = oneshot::channel();
            let order = Control::Subscribe(name.clone(), Some(ack));
            if self.app.gateway.control.order(&client, order).is_err() {
                continue; // gone meanwhile
            }
            match tokio::time::timeout(ACK_TIMEOUT, done).await {
                Ok(Ok(Err(why))) => return Err(ApiError::bad(&why)),
                Ok(_) => {}
                Err(_) => {
                    return Err(ApiError::internal(
                        "a client did not take the subscription in time",
                    ));
                }
            }
        }
        Ok(json!({}))
    }

    fn unsubscribe(&self, params: &RawValue) -> Answer {
        let p: UserChannel = parse(params)?;
        let (name, _) = self.channel(&p.channel)?;
        for client in self.app.gateway.control.clients(&p.user, p.client.as_deref()) {
            let _ = self.app.gateway.control.order(&client, Control::Unsubscribe(name.clone()));
        }
        Ok(json!({}))
    }

    fn disconnect(&self, params: &RawValue) -> Answer {
        #[derive(Deserialize)]
        struct Close {
            #[serde(default)]
            code: u32,
            #[serde(default)]
            reason: String,
        }
        #[derive(Deserialize)]
        struct Params {
            user: String,
            #[serde(default)]
            client: Option<String>,
            #[serde(default)]
            disconnect: Option<Close>,
        }
        let p: Params = parse(params)?;
        if self.key.limited() {
            // A key limited to some channels cannot end connections on others.
            return Err(ApiError::PERMISSION_DENIED);
        }
        let close = p.disconnect.unwrap_or(Close { code: 0, reason: String::new() });
        let code = match close.code {
            0 => 4500,
            c => u16::try_from(c)
                .ok()
                .filter(|c| (3000..=4999).contains(c))
                .ok_or_else(|| ApiError::bad("disconnect.code must be 3000 to 4999"))?,
        };
        if close.reason.len() > 123 {
            return Err(ApiError::bad("disconnect.reason is longer than 123 bytes"));
        }
        let reason = if close.reason.is_empty() {
            "disconnected by the server API".into()
        } else {
            close.reason
        };
        for client in self.app.gateway.control.clients(&p.user, p.client.as_deref()) {
            let _ =
                self.app.gateway.control.order(&client, Control::Disconnect(code, reason.clone()));
        }
        Ok(json!({}))
    }

    fn presence(&self, params: &RawValue) -> Answer {
        let (name, spec) = self.channel(&parse::<ChannelOnly>(params)?.channel)?;
        if !spec.options.presence {
            return Err(ApiError::NOT_AVAILABLE);
        }
        let json_of = |text: &Option<Arc<str>>| {
            text.as_deref().and_then(|t| serde_json::from_str::<Value>(t).ok())
        };
        let presence: serde_json::Map<String, Value> = self
            .app
            .broker
            .presence
            .list(&name)
            .iter()
            .map(|info| {
                let mut entry = json!({ "client": &*info.client, "user": &*info.user });
                if let Some(c) = json_of(&info.conn_info) {
                    entry["conn_info"] = c;
                }
                if let Some(c) = json_of(&info.chan_info) {
                    entry["chan_info"] = c;
                }
                (info.client.to_string(), entry)
            })
            .collect();
        Ok(json!({ "presence": presence }))
    }

    fn presence_stats(&self, params: &RawValue) -> Answer {
        let (name, spec) = self.channel(&parse::<ChannelOnly>(params)?.channel)?;
        if !spec.options.presence {
            return Err(ApiError::NOT_AVAILABLE);
        }
        let (clients, users) = self.app.broker.presence.stats(&name);
        Ok(json!({ "num_clients": clients, "num_users": users }))
    }

    fn history(&self, params: &RawValue) -> Answer {
        #[derive(Deserialize)]
        struct Since {
            #[serde(default)]
            offset: u64,
            #[serde(default)]
            epoch: String,
        }
        #[derive(Deserialize)]
        struct Params {
            channel: String,
            #[serde(default)]
            limit: Option<i64>,
            #[serde(default)]
            since: Option<Since>,
            #[serde(default)]
            reverse: Option<bool>,
        }
        let p: Params = parse(params)?;
        let (name, _) = self.channel(&p.channel)?;
        let query = HistoryQuery {
            since: p.since.map(|s| StreamPosition { offset: s.offset, epoch: s.epoch.into() }),
            // As Centrifugo: no limit asks for the position only, a negative one for all.
            limit: usize::try_from(p.limit.unwrap_or(0)).ok(),
            reverse: p.reverse.unwrap_or(false),
        };
        let page = match self.app.broker.history(&name, &query) {
            None => return Err(ApiError::NOT_AVAILABLE),
            Some(Err(HistoryError::UnrecoverablePosition { .. })) => {
                return Err(ApiError::UNRECOVERABLE_POSITION);
            }
            Some(Ok(page)) => page,
        };
        let publications: Vec<Value> = page
            .publications
            .iter()
            .map(|m| serde_json::to_value(Format::Json.publication(m)).unwrap_or(Value::Null))
            .collect();
        Ok(json!({
            "publications": publications,
            "offset": page.position.offset,
            "epoch": &*page.position.epoch,
        }))
    }

    fn history_remove(&self, params: &RawValue) -> Answer {
        let (name, spec) = self.channel(&parse::<ChannelOnly>(params)?.channel)?;
        if spec.options.history.is_none() {
            return Err(ApiError::NOT_AVAILABLE);
        }
        self.app.broker.remove_history(&name);
        Ok(json!({}))
    }

    fn channels(&self, params: &RawValue) -> Answer {
        #[derive(Deserialize, Default)]
        struct Params {
            #[serde(default)]
            pattern: Option<String>,
        }
        let p: Params = parse(params)?;
        let channels: serde_json::Map<String, Value> = self
            .app
            .broker
            .channels()
            .into_iter()
            .filter(|(name, _)| self.key.may_use(name))
            .filter(|(name, _)| p.pattern.as_deref().is_none_or(|g| glob(g, name.as_str())))
            .map(|(name, n)| (name.to_string(), json!({ "num_clients": n })))
            .collect();
        Ok(json!({ "channels": channels }))
    }

    fn info(&self) -> Answer {
        if self.key.limited() {
            // The node's totals span every channel: not for a key limited to some.
            return Err(ApiError::PERMISSION_DENIED);
        }
        let (clients, users) = self.app.gateway.control.counts();
        let channels = self.app.broker.channels();
        let subs: usize = channels.iter().map(|(_, n)| n).sum();
        Ok(json!({ "nodes": [{
            "uid": &*self.app.node_id,
            "name": "tern",
            "version": env!("CARGO_PKG_VERSION"),
            "num_clients": clients,
            "num_users": users,
            "num_channels": channels.len(),
            "num_subs": subs,
            "uptime": self.app.started.elapsed().as_secs(),
        }]}))
    }
}

#[derive(Deserialize)]
struct ChannelOnly {
    channel: String,
}

#[derive(Deserialize)]
struct UserChannel {
    user: String,
    channel: String,
    #[serde(default)]
    client: Option<String>,
}

/// Whether `text` matches `pattern`, where `*` stands for any run of characters and `?`
/// for one (the subset of Centrifugo's glob syntax tern supports).
fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::glob;

    #[test]
    fn glob_matches_stars_and_question_marks() {
        assert!(glob("chat/*", "chat/rooms/1"));
        assert!(glob("*", ""));
        assert!(glob("a?c", "abc"));
        assert!(!glob("a?c", "ac"));
        assert!(!glob("chat/*", "news/1"));
        assert!(glob("*rooms*", "chat/rooms/1"));
    }
}
