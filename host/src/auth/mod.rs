//! Who may do what on which channel, decided in one place: from a verified access token's
//! claims and from the messaging configs' anonymous rules. The protocols ask; they do not
//! decide.

pub mod token;

use std::sync::Arc;

pub use token::{Claims, SECRET_VAR, TokenAuthority, TokenError};

use crate::{
    channel_name::ChannelName,
    config::{
        channel_options::Who,
        messaging::{Anonymous, MessagingSpec},
    },
};

/// What a client asks to do on a channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Receive the channel's messages.
    Subscribe,
    /// Send messages to the channel.
    Publish,
}

/// A channel pattern of a token: `*` (every channel) or a prefix by whole segments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChannelPattern {
    /// Every channel.
    Any,
    /// `chat/rooms` covers `chat/rooms` and `chat/rooms/x`, not `chat/roomsx`.
    Prefix(ChannelName),
}

impl ChannelPattern {
    /// Reads `*` or a channel name.
    pub fn parse(text: &str) -> Result<Self, String> {
        if text == "*" {
            return Ok(Self::Any);
        }
        ChannelName::parse(text).map(Self::Prefix).map_err(|e| e.to_string())
    }

    /// Whether this pattern covers `name`.
    pub fn covers(&self, name: &ChannelName) -> bool {
        match self {
            Self::Any => true,
            Self::Prefix(prefix) => {
                let mut segments = name.segments();
                prefix.segments().all(|p| segments.next() == Some(p))
            }
        }
    }

    /// The pattern as written in a token.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Any => "*",
            Self::Prefix(p) => p.as_str(),
        }
    }
}

/// What a verified token grants: who, and where they may subscribe and publish.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grant {
    /// The token's `sub`: who the holder is.
    pub user: Option<Arc<str>>,
    /// Channel patterns the holder may subscribe to.
    pub subscribe: Vec<ChannelPattern>,
    /// Channel patterns the holder may publish to.
    pub publish: Vec<ChannelPattern>,
    /// The `info` claim, as JSON text: what others see of the holder.
    pub info: Option<Arc<str>>,
    /// Channels the connection is subscribed to server-side (and may subscribe to).
    pub channels: Vec<ChannelName>,
    /// The token's expiry, seconds since the Unix epoch (None: no token).
    pub expires_at: Option<u64>,
    /// The one channel a signed raw-bridge URL is for (its token's `channel` claim): its
    /// patterns then open that channel only, not the ones below it.
    pub url_channel: Option<ChannelName>,
    /// What the connection may do where a config says nothing of token-less clients
    /// (`bridges.websocket.anonymous` unset): nothing on the realtime endpoint, anything on
    /// the raw bridge and the client protocol.
    pub anonymous: Anonymous,
}

impl Grant {
    /// A token-less client of a door whose default for unset `anonymous` is `anonymous`.
    pub fn anonymous(anonymous: Anonymous) -> Self {
        Self { anonymous, ..Self::default() }
    }

    /// Whether the token's patterns (or, to subscribe, its `channels`) cover `name`.
    pub fn allows(&self, action: Action, name: &ChannelName) -> bool {
        let patterns = match action {
            Action::Subscribe => &self.subscribe,
            Action::Publish => &self.publish,
        };
        patterns.iter().any(|p| p.covers(name))
            || (action == Action::Subscribe && self.channels.contains(name))
    }

    /// The grant as the realtime welcome frame shows it.
    pub fn permissions_json(&self) -> serde_json::Value {
        let list = |ps: &[ChannelPattern]| ps.iter().map(|p| p.as_str().to_owned()).collect();
        let (subscribe, publish): (Vec<String>, Vec<String>) =
            (list(&self.subscribe), list(&self.publish));
        serde_json::json!({ "subscribe": subscribe, "publish": publish })
    }
}

/// Whether a client holding `grant` may do `action` on `name`, a channel `spec` governs.
/// `subscribed`: whether the client is subscribed to `name` (for `publish: subscribers`).
///
/// The config's rule decides first (`nobody`, `token`...); under `anyone`, a client may when
/// its token grants it or when token-less clients may (`bridges.websocket.anonymous`, else
/// the door's default).
pub fn may(
    grant: &Grant,
    spec: &MessagingSpec,
    action: Action,
    name: &ChannelName,
    subscribed: bool,
) -> bool {
    let rule = match action {
        Action::Subscribe => spec.options.subscribe,
        Action::Publish => spec.options.publish,
    };
    let level = spec.anonymous.unwrap_or(grant.anonymous);
    let open = || {
        let anonymous = match action {
            Action::Subscribe => level >= Anonymous::Subscribe,
            Action::Publish => level >= Anonymous::Publish,
        };
        anonymous || grant.allows(action, name)
    };
    match rule {
        Who::Nobody => false,
        Who::Token => grant.allows(action, name),
        Who::Anyone => open(),
        Who::Subscribers => subscribed && open(),
    }
}

/// What a raw-bridge client (no token; connecting subscribes) may do on `name`.
pub fn raw_bridge_access(spec: &MessagingSpec, name: &ChannelName) -> Anonymous {
    let client = Grant::anonymous(Anonymous::Publish);
    if !may(&client, spec, Action::Subscribe, name, true) {
        Anonymous::None
    } else if !may(&client, spec, Action::Publish, name, true) {
        Anonymous::Subscribe
    } else {
        Anonymous::Publish
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> ChannelName {
        ChannelName::parse(s).unwrap()
    }

    #[test]
    fn patterns_cover_whole_segments() {
        let p = ChannelPattern::parse("chat/rooms").unwrap();
        assert!(p.covers(&name("chat/rooms")));
        assert!(p.covers(&name("chat/rooms/a")));
        assert!(!p.covers(&name("chat/roomsx")));
        assert!(!p.covers(&name("chat")));
        assert!(ChannelPattern::parse("*").unwrap().covers(&name("x/y")));
        assert!(ChannelPattern::parse("a//b").is_err());
    }

    #[test]
    fn anonymous_rules_and_grants_combine() {
        let text = "channel: { match: c }\nbridges: { websocket: { enable: true, anonymous: subscribe } }\n";
        let spec = crate::config::messaging::parse(std::path::Path::new("m/c.yaml"), text).unwrap();
        let nobody = Grant::default();
        assert!(may(&nobody, &spec, Action::Subscribe, &name("c/1"), false));
        assert!(!may(&nobody, &spec, Action::Publish, &name("c/1"), true));
        let writer = Grant { publish: vec![ChannelPattern::parse("c").unwrap()], ..nobody };
        assert!(may(&writer, &spec, Action::Publish, &name("c/1"), false));
    }

    #[test]
    fn config_rules_come_before_anonymous_access_and_grants() {
        let parse = |rules: &str| {
            let text = format!(
                "channel: {{ match: c }}\nbridges: {{ websocket: {{ enable: true }} }}\n{rules}"
            );
            crate::config::messaging::parse(std::path::Path::new("m/c.yaml"), &text).unwrap()
        };
        let open = Grant::anonymous(Anonymous::Publish);
        let holder = Grant {
            subscribe: vec![ChannelPattern::Any],
            publish: vec![ChannelPattern::Any],
            ..open.clone()
        };
        let c = name("c/1");
        let members = parse("publish: subscribers\n");
        assert!(!may(&open, &members, Action::Publish, &c, false));
        assert!(may(&open, &members, Action::Publish, &c, true));
        let token = parse("subscribe: token\npublish: token\n");
        assert!(!may(&open, &token, Action::Subscribe, &c, false));
        assert!(may(&holder, &token, Action::Publish, &c, false));
        assert_eq!(raw_bridge_access(&token, &c), Anonymous::None);
        let nobody = parse("publish: nobody\n");
        assert!(!may(&holder, &nobody, Action::Publish, &c, true));
        assert_eq!(raw_bridge_access(&nobody, &c), Anonymous::Subscribe);
        let server_side = Grant { channels: vec![c.clone()], ..Grant::default() };
        assert!(may(&server_side, &token, Action::Subscribe, &c, false));
    }
}
