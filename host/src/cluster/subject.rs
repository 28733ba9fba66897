//! Channel names as NATS subjects, and back: `<prefix>.ch.<segment>.<segment>...`, each of
//! the channel's `/`-separated segments one subject token, with every `.` in a segment
//! written `%2E`. Channel names hold only `[A-Za-z0-9_.-]` and `/`, so `%` never appears in
//! one, `*` and `>` never do either, and the rule is reversible: `chat/rooms/a.b` is
//! `tern.ch.chat.rooms.a%2Eb`.

use crate::channel_name::ChannelName;

/// The subjects of one cluster: its prefix, validated by the settings.
#[derive(Debug, Clone)]
pub struct Subjects {
    channels: String,
    nodes: String,
}

impl Subjects {
    /// The subjects under `prefix` (`tern`, or `cluster.nats.subject_prefix`).
    pub fn new(prefix: &str) -> Self {
        Self { channels: format!("{prefix}.ch."), nodes: format!("{prefix}.nodes") }
    }

    /// The subject nodes tell each other who they have on ([`super::gossip`]).
    pub fn nodes(&self) -> &str {
        &self.nodes
    }

    /// The subject publications of `channel` travel on.
    pub fn of(&self, channel: &ChannelName) -> String {
        let mut subject = String::with_capacity(self.channels.len() + channel.as_str().len() + 8);
        subject.push_str(&self.channels);
        for (i, segment) in channel.as_str().split('/').enumerate() {
            if i > 0 {
                subject.push('.');
            }
            for c in segment.chars() {
                if c == '.' { subject.push_str("%2E") } else { subject.push(c) }
            }
        }
        subject
    }

    /// The channel `subject` carries, if it is one of this cluster's channel subjects.
    pub fn channel(&self, subject: &str) -> Option<ChannelName> {
        let rest = subject.strip_prefix(&self.channels)?;
        let name: Vec<String> = rest.split('.').map(|token| token.replace("%2E", ".")).collect();
        ChannelName::parse(&name.join("/")).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> ChannelName {
        ChannelName::parse(s).unwrap()
    }

    #[test]
    fn segments_become_tokens_and_dots_are_escaped() {
        let s = Subjects::new("tern");
        assert_eq!(s.of(&name("chat/rooms/abc")), "tern.ch.chat.rooms.abc");
        assert_eq!(s.of(&name("news")), "tern.ch.news");
        assert_eq!(s.of(&name("a.b/c..d/-_")), "tern.ch.a%2Eb.c%2E%2Ed.-_");
        assert_eq!(Subjects::new("prod.eu").of(&name("x")), "prod.eu.ch.x");
    }

    #[test]
    fn the_mapping_is_reversible() {
        let s = Subjects::new("tern");
        for n in ["chat/rooms/abc", "a.b/c..d/e", "priv/Xy_9-z", "...a", "a/b/c/d/e/f", "x.y.z"] {
            assert_eq!(s.channel(&s.of(&name(n))), Some(name(n)), "{n}");
        }
    }

    #[test]
    fn foreign_subjects_are_not_channels() {
        let s = Subjects::new("tern");
        assert_eq!(s.channel("other.ch.x"), None);
        assert_eq!(s.channel("tern.ch."), None);
        assert_eq!(s.channel("tern.ch.a..b"), None, "an empty token");
        assert_eq!(s.channel("tern.ch.a*"), None, "a character channels do not have");
        assert_eq!(s.channel("tern.ch.%2E%2E"), None, "a `..` segment");
    }
}
