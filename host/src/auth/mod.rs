//! Who may do what on which channel, decided in one place: from a verified access token's
//! claims and from the messaging configs' anonymous rules. The protocols ask; they do not
//! decide.

pub mod token;

use std::sync::Arc;

pub use token::{Claims, SECRET_VAR, TokenAuthority, TokenError};

use crate::{
    channel_name::ChannelName,
    config::messaging::{Anonymous, MessagingSpec},
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
    /// The token's `sub`, if any.
    pub user: Option<Arc<str>>,
    /// Channels the holder may subscribe to.
    pub subscribe: Vec<ChannelPattern>,
    /// Channels the holder may publish to.
    pub publish: Vec<ChannelPattern>,
}

impl Grant {
    /// Whether the grant covers `action` on `name`.
    pub fn allows(&self, action: Action, name: &ChannelName) -> bool {
        let patterns = match action {
            Action::Subscribe => &self.subscribe,
            Action::Publish => &self.publish,
        };
        patterns.iter().any(|p| p.covers(name))
    }

    /// The grant as JSON `{"subscribe": [...], "publish": [...]}`, for welcome and presence.
    pub fn permissions_json(&self) -> serde_json::Value {
        let list = |ps: &[ChannelPattern]| ps.iter().map(|p| p.as_str().to_owned()).collect();
        let (subscribe, publish): (Vec<String>, Vec<String>) =
            (list(&self.subscribe), list(&self.publish));
        serde_json::json!({ "subscribe": subscribe, "publish": publish })
    }
}

/// Whether a client holding `grant` (None: anonymous) may do `action` on `name`, which
/// `spec` governs: the token covers it, or the config lets anybody do it.
pub fn may(grant: &Grant, spec: &MessagingSpec, action: Action, name: &ChannelName) -> bool {
    let level = spec.anonymous.unwrap_or(Anonymous::None);
    let anonymous = match action {
        Action::Subscribe => level >= Anonymous::Subscribe,
        Action::Publish => level >= Anonymous::Publish,
    };
    anonymous || grant.allows(action, name)
}

/// What a raw-bridge client (which carries no token) may do on `spec`'s channels: what
/// `anonymous` says, or everything when it is not set (the bridge was open before tokens).
pub fn raw_bridge_access(spec: &MessagingSpec) -> Anonymous {
    spec.anonymous.unwrap_or(Anonymous::Publish)
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
        assert!(may(&nobody, &spec, Action::Subscribe, &name("c/1")));
        assert!(!may(&nobody, &spec, Action::Publish, &name("c/1")));
        let writer = Grant { publish: vec![ChannelPattern::parse("c").unwrap()], ..nobody };
        assert!(may(&writer, &spec, Action::Publish, &name("c/1")));
    }
}
