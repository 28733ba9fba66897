//! What a messaging config says about its channels beyond matching them: who may subscribe
//! and publish, presence, join/leave events, history and recovery.

use std::{path::Path, time::Duration};

use serde::Deserialize;

use super::{diagnostic::Diagnostic, units::HumanDuration, yaml};

/// Most publications a channel's history keeps.
pub const MAX_HISTORY_SIZE: usize = 10_000;
/// Longest a publication stays in a channel's history (as long as any tern duration).
pub const MAX_HISTORY_TTL: Duration = HumanDuration::MAX;

/// Who may do something on a channel.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Who {
    /// Any connected client (a token-less one within `bridges.websocket.anonymous`).
    #[default]
    Anyone,
    /// Only clients subscribed to the channel at the time (publish only).
    Subscribers,
    /// Only clients whose token grants the channel.
    Token,
    /// No client: functions still publish, and connection tokens still subscribe
    /// server-side through their `channels` claim.
    Nobody,
}

impl Who {
    /// The YAML spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Who::Anyone => "anyone",
            Who::Subscribers => "subscribers",
            Who::Token => "token",
            Who::Nobody => "nobody",
        }
    }
}

/// How much history a channel keeps, in the messaging YAML.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryFile {
    /// Most publications kept.
    size: usize,
    /// How long each is kept.
    ttl: HumanDuration,
}

/// A channel's history: its last `size` publications, each for `ttl`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryOptions {
    /// Most publications kept.
    pub size: usize,
    /// How long each is kept.
    pub ttl: Duration,
}

/// The options as written (the messaging file's top-level keys).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct OptionsFile {
    #[serde(default)]
    pub(super) subscribe: Who,
    #[serde(default)]
    pub(super) publish: Who,
    #[serde(default)]
    pub(super) presence: bool,
    #[serde(default)]
    pub(super) join_leave: bool,
    #[serde(default)]
    pub(super) history: Option<HistoryFile>,
    #[serde(default)]
    pub(super) recovery: bool,
}

/// A channel's validated options.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChannelOptions {
    /// Who may subscribe.
    pub subscribe: Who,
    /// Who may publish.
    pub publish: Who,
    /// Whether presence and presence_stats answer.
    pub presence: bool,
    /// Whether subscribers get join and leave events.
    pub join_leave: bool,
    /// What history the channel keeps (None: none).
    pub history: Option<HistoryOptions>,
    /// Whether a subscriber may recover what it missed (needs history).
    pub recovery: bool,
}

impl OptionsFile {
    /// Validates the options of `file` (whose text is `text`), naming each wrong field.
    pub fn validate(self, file: &Path, text: &str) -> Result<ChannelOptions, Vec<Diagnostic>> {
        let mut problems = Vec::new();
        let mut problem = |path: &[&str], message: String| {
            problems.push(Diagnostic::field(
                file,
                yaml::locate(text, path),
                path.join("."),
                message,
            ));
        };
        if self.subscribe == Who::Subscribers {
            problem(
                &["subscribe"],
                "`subscribers` only applies to `publish`: use anyone, token or nobody".into(),
            );
        }
        let history = self.history.map(|h| HistoryOptions { size: h.size, ttl: h.ttl.0 });
        if let Some(h) = history {
            if !(1..=MAX_HISTORY_SIZE).contains(&h.size) {
                let message = format!("must be 1 to {MAX_HISTORY_SIZE}, not {}", h.size);
                problem(&["history", "size"], message);
            }
            if h.ttl < Duration::from_secs(1) || h.ttl > MAX_HISTORY_TTL {
                let message = format!("must be 1s to 24h, not {}", HumanDuration(h.ttl));
                problem(&["history", "ttl"], message);
            }
        }
        if self.recovery && history.is_none() {
            problem(&["recovery"], "recovery needs `history: { size, ttl }`".into());
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(ChannelOptions {
            subscribe: self.subscribe,
            publish: self.publish,
            presence: self.presence,
            join_leave: self.join_leave,
            history,
            recovery: self.recovery,
        })
    }
}
