//! A messaging channel's YAML file (Taubyte's schema): which channel names it covers and
//! whether the WebSocket bridge serves them.

use std::path::{Path, PathBuf};

use regex::Regex;
use serde::Deserialize;

use super::{
    channel_options::{ChannelOptions, HistoryFile, OptionsFile, Who},
    diagnostic::{Diagnostic, Location},
    function::HookKind,
    units::HumanDuration,
    yaml,
};
use crate::channel_name::ChannelName;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MessagingFile {
    #[serde(default)]
    #[allow(dead_code, reason = "accepted for Taubyte compatibility")]
    id: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    #[allow(dead_code, reason = "accepted for Taubyte compatibility")]
    tags: Vec<String>,
    #[serde(default)]
    #[allow(dead_code, reason = "accepted for Taubyte compatibility: tern has one node")]
    local: Option<bool>,
    channel: ChannelFile,
    #[serde(default)]
    bridges: BridgesFile,
    #[serde(default)]
    subscribe: Who,
    #[serde(default)]
    publish: Who,
    #[serde(default)]
    presence: bool,
    #[serde(default)]
    join_leave: bool,
    #[serde(default)]
    history: Option<HistoryFile>,
    #[serde(default)]
    recovery: bool,
    #[serde(default)]
    hooks: HooksFile,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct HooksFile {
    #[serde(default)]
    connect: Option<String>,
    #[serde(default)]
    subscribe: Option<String>,
    #[serde(default)]
    publish: Option<String>,
    #[serde(default)]
    cache: Option<HumanDuration>,
}

/// The functions a messaging config asks before letting clients in (`hooks:`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hooks {
    /// Decides raw-bridge connections to its channels.
    pub connect: Option<String>,
    /// Decides subscriptions to its channels.
    pub subscribe: Option<String>,
    /// Decides (and may rewrite) what clients publish on its channels.
    pub publish: Option<String>,
    /// How long a connection keeps a subscribe decision for a channel (`hooks.cache`);
    /// zero asks every time.
    pub cache: std::time::Duration,
    /// Where `hooks.connect`, `.subscribe` and `.publish` are written.
    pub locations: [Option<Location>; 3],
}

impl Hooks {
    /// The hooks by kind, with the YAML field naming each.
    pub fn named(&self) -> impl Iterator<Item = (HookKind, &'static str, &str, Option<Location>)> {
        [
            (HookKind::Connect, "hooks.connect", self.connect.as_deref(), self.locations[0]),
            (HookKind::Subscribe, "hooks.subscribe", self.subscribe.as_deref(), self.locations[1]),
            (HookKind::Publish, "hooks.publish", self.publish.as_deref(), self.locations[2]),
        ]
        .into_iter()
        .filter_map(|(kind, field, name, at)| name.map(|n| (kind, field, n, at)))
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ChannelFile {
    #[serde(rename = "match")]
    pattern: String,
    #[serde(default)]
    regex: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct BridgesFile {
    #[serde(default)]
    websocket: WebSocketBridgeFile,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct WebSocketBridgeFile {
    #[serde(default)]
    enable: bool,
    #[serde(default)]
    anonymous: Option<Anonymous>,
    #[serde(default)]
    require_token: bool,
}

/// What a client without a token may do on a config's channels through the endpoints that
/// check tokens (the realtime endpoint); the raw bridge stays open where it is enabled.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Anonymous {
    /// Nothing: a token is needed.
    #[default]
    None,
    /// Subscribe only.
    Subscribe,
    /// Subscribe and publish.
    Publish,
}

impl Anonymous {
    /// The YAML spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Anonymous::None => "none",
            Anonymous::Subscribe => "subscribe",
            Anonymous::Publish => "publish",
        }
    }
}

/// The first segment of the channels that belong to one connection (`priv/<connection id>`):
/// no messaging config may claim them.
pub const PRIVATE_SEGMENT: &str = "priv";

/// Which channel names a messaging config covers.
#[derive(Debug, Clone)]
pub enum ChannelMatcher {
    /// Names whose leading whole segments equal these (`chat/rooms` covers `chat/rooms` and
    /// `chat/rooms/x`, not `chat/roomsx`).
    Prefix(Vec<String>),
    /// Names the regex matches in full (anchored at both ends, unlike Taubyte).
    Regex(Regex),
}

impl ChannelMatcher {
    /// How specifically this matcher covers `name`, or None when it does not. Higher wins:
    /// a prefix scores its segment count plus one thousand; a regex scores zero, so any
    /// prefix match beats any regex match.
    pub fn specificity(&self, name: &ChannelName) -> Option<usize> {
        match self {
            ChannelMatcher::Prefix(prefix) => {
                let mut segments = name.segments();
                let all = prefix.iter().all(|p| segments.next() == Some(p.as_str()));
                all.then_some(1000 + prefix.len())
            }
            ChannelMatcher::Regex(re) => re.is_match(name.as_str()).then_some(0),
        }
    }
}

/// A validated messaging config.
#[derive(Debug, Clone)]
pub struct MessagingSpec {
    /// Its name: the file stem (what a pubsub trigger's `channel` refers to).
    pub name: String,
    /// The YAML file it was read from.
    pub file: PathBuf,
    /// Its description, if any.
    pub description: Option<String>,
    /// Which channel names it covers.
    pub matcher: ChannelMatcher,
    /// `channel.match` as written (trimmed).
    pub pattern: String,
    /// Whether `/ws/channel/<name>` serves its channels.
    pub websocket: bool,
    /// What clients without a token may do on its channels (`bridges.websocket.anonymous`);
    /// None when not set: nothing on the realtime endpoint, anything on the raw bridge (as
    /// before tokens existed).
    pub anonymous: Option<Anonymous>,
    /// Who may subscribe and publish; presence, join/leave, history and recovery.
    pub options: ChannelOptions,
    /// Whether the raw bridge admits only holders of a signed URL
    /// (`bridges.websocket.require_token`).
    pub require_token: bool,
    /// The functions asked before clients connect, subscribe and publish.
    pub hooks: Hooks,
}

/// Reads one messaging file; `text` is its contents.
pub fn parse(file: &Path, text: &str) -> Result<MessagingSpec, Vec<Diagnostic>> {
    let raw: MessagingFile = yaml::parse(file, text).map_err(|d| vec![d])?;
    let name = file.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let problem = |message: String| {
        let at = yaml::locate(text, &["channel", "match"]);
        vec![Diagnostic::field(file, at, "channel.match", message)]
    };
    let options = OptionsFile {
        subscribe: raw.subscribe,
        publish: raw.publish,
        presence: raw.presence,
        join_leave: raw.join_leave,
        history: raw.history,
        recovery: raw.recovery,
    }
    .validate(file, text)?;
    let pattern = raw.channel.pattern.trim();
    let matcher = if raw.channel.regex {
        // The user's pattern alone first, so an error points into what they wrote.
        if let Err(e) = Regex::new(pattern) {
            return Err(problem(format!("invalid regex `{pattern}`: {}", regex_error(&e))));
        }
        match Regex::new(&format!("^(?:{pattern})$")) {
            Ok(re) => ChannelMatcher::Regex(re),
            Err(e) => {
                return Err(problem(format!("invalid regex `{pattern}`: {}", regex_error(&e))));
            }
        }
    } else {
        match ChannelName::parse(pattern) {
            Ok(prefix) if prefix.segments().next() == Some(PRIVATE_SEGMENT) => {
                return Err(problem(format!(
                    "`{pattern}` is reserved: `{PRIVATE_SEGMENT}/...` channels belong to one realtime connection each"
                )));
            }
            Ok(prefix) => ChannelMatcher::Prefix(prefix.segments().map(String::from).collect()),
            Err(e) => return Err(problem(format!("{e} (a prefix is a channel name)"))),
        }
    };
    Ok(MessagingSpec {
        name,
        file: file.to_path_buf(),
        description: raw.description,
        matcher,
        pattern: pattern.to_string(),
        websocket: raw.bridges.websocket.enable,
        anonymous: raw.bridges.websocket.anonymous,
        options,
        require_token: raw.bridges.websocket.require_token,
        hooks: Hooks {
            connect: raw.hooks.connect.map(|n| n.trim().to_owned()),
            subscribe: raw.hooks.subscribe.map(|n| n.trim().to_owned()),
            publish: raw.hooks.publish.map(|n| n.trim().to_owned()),
            cache: raw.hooks.cache.map_or(std::time::Duration::ZERO, |d| d.0),
            locations: ["connect", "subscribe", "publish"]
                .map(|key| yaml::locate(text, &["hooks", key])),
        },
    })
}

/// A regex error on one line: what is wrong and at which character of the pattern (the
/// regex crate draws a caret under the pattern, over several lines).
fn regex_error(e: &regex::Error) -> String {
    let text = e.to_string();
    let lines: Vec<&str> = text.lines().collect();
    let what = lines.last().map_or(text.as_str(), |l| l.trim_start_matches("error: ").trim());
    match lines.iter().find(|l| l.trim_start().starts_with('^')) {
        // The caret line is indented by 4 like the pattern line above it.
        Some(caret) => {
            format!("{what} at character {}", caret.len() - caret.trim_start().len() - 3)
        }
        None => what.to_string(),
    }
}

/// Whether `pattern` has no regex metacharacter: as a regex it matches one name only.
pub fn is_literal(pattern: &str) -> bool {
    regex::escape(pattern) == pattern
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(text: &str) -> MessagingSpec {
        parse(Path::new("m/chat.yaml"), text).unwrap()
    }

    fn name(s: &str) -> ChannelName {
        ChannelName::parse(s).unwrap()
    }

    #[test]
    fn prefix_matches_whole_segments_only() {
        let m = spec("channel: { match: chat/rooms }\nbridges: { websocket: { enable: true } }\n");
        assert!(m.websocket);
        assert_eq!(m.matcher.specificity(&name("chat/rooms")), Some(1002));
        assert_eq!(m.matcher.specificity(&name("chat/rooms/abc")), Some(1002));
        assert_eq!(m.matcher.specificity(&name("chat/roomsx")), None);
        assert_eq!(m.matcher.specificity(&name("chat")), None);
    }

    #[test]
    fn regex_is_anchored() {
        let m = spec("channel:\n  match: 'news/[a-z]+'\n  regex: true\n");
        assert!(!m.websocket);
        assert_eq!(m.matcher.specificity(&name("news/sport")), Some(0));
        assert_eq!(m.matcher.specificity(&name("xnews/sport")), None);
        assert_eq!(m.matcher.specificity(&name("news/sport/1")), None);
    }

    #[test]
    fn bad_regex_names_the_field_and_line() {
        let errs = parse(Path::new("m/x.yaml"), "channel:\n  match: '(oops'\n  regex: true\n")
            .unwrap_err();
        assert_eq!(errs[0].field.as_deref(), Some("channel.match"));
        assert_eq!(errs[0].location.map(|l| l.line), Some(2));
        assert_eq!(errs[0].message, "invalid regex `(oops`: unclosed group at character 1");
    }

    #[test]
    fn channel_options_are_read_and_their_mistakes_located() {
        let m = spec(
            "channel: { match: c }\npublish: subscribers\npresence: true\n\
             history: { size: 50, ttl: 2m }\nrecovery: true\n",
        );
        assert_eq!(m.options.publish, Who::Subscribers);
        assert_eq!(m.options.history.map(|h| h.size), Some(50));
        assert!(m.options.presence && m.options.recovery && !m.options.join_leave);
        let text = "channel: { match: c }\nsubscribe: subscribers\nrecovery: true\n\
                    history:\n  size: 0\n  ttl: 1h\n";
        let errs = parse(Path::new("m/x.yaml"), text).unwrap_err();
        let fields: Vec<_> = errs.iter().map(|e| e.field.as_deref().unwrap_or("")).collect();
        assert_eq!(fields, ["subscribe", "history.size"]);
        assert_eq!(errs[1].location.map(|l| l.line), Some(5));
        let errs = parse(Path::new("m/x.yaml"), "channel: { match: c }\nrecovery: true\n");
        assert!(errs.unwrap_err()[0].message.contains("needs `history"));
        let errs = parse(Path::new("m/x.yaml"), "channel: { match: c }\npublish: everyone\n");
        assert!(errs.unwrap_err()[0].to_string().contains("publish"));
    }

    #[test]
    fn bad_prefix_is_rejected() {
        let errs = parse(Path::new("m/x.yaml"), "channel: { match: 'a//b' }\n").unwrap_err();
        assert!(errs[0].message.contains("empty segment"), "{}", errs[0]);
    }
}

/// All messaging configs of a project: decides which one governs a channel name.
#[derive(Debug, Clone, Default)]
pub struct ChannelRules {
    specs: Vec<MessagingSpec>,
}

impl ChannelRules {
    /// Rules from `specs`, in file-name order (the order breaks ties).
    pub fn new(specs: Vec<MessagingSpec>) -> Self {
        Self { specs }
    }

    /// The config governing `name`: the most specific match (a prefix beats a regex, a longer
    /// prefix beats a shorter one), the first in file-name order on a tie; None if none
    /// matches, and then the name cannot be used.
    pub fn resolve(&self, name: &ChannelName) -> Option<&MessagingSpec> {
        if name.segments().next() == Some(PRIVATE_SEGMENT) {
            return None; // a regex like `.*` must not open one connection's channels
        }
        let mut best: Option<(usize, &MessagingSpec)> = None;
        for spec in &self.specs {
            if let Some(score) = spec.matcher.specificity(name)
                && best.is_none_or(|(b, _)| score > b)
            {
                best = Some((score, spec));
            }
        }
        best.map(|(_, spec)| spec)
    }

    /// The config named `name` (its file stem).
    pub fn by_name(&self, name: &str) -> Option<&MessagingSpec> {
        self.specs.iter().find(|s| s.name == name)
    }
}

#[cfg(test)]
mod rules_tests {
    use super::*;

    #[test]
    fn most_specific_match_wins_then_file_order() {
        let a = parse(Path::new("m/a.yaml"), "channel: { match: chat }\n").unwrap();
        let b = parse(Path::new("m/b.yaml"), "channel: { match: chat/rooms }\n").unwrap();
        let c =
            parse(Path::new("m/c.yaml"), "channel: { match: 'chat/.*', regex: true }\n").unwrap();
        let d = parse(Path::new("m/d.yaml"), "channel: { match: chat/rooms }\n").unwrap();
        let rules = ChannelRules::new(vec![a, b, c, d]);
        let resolve =
            |n: &str| rules.resolve(&ChannelName::parse(n).unwrap()).map(|s| s.name.clone());
        assert_eq!(resolve("chat/rooms/x").as_deref(), Some("b"));
        assert_eq!(resolve("chat/lobby").as_deref(), Some("a"));
        assert_eq!(resolve("news"), None);
    }

    #[test]
    fn private_channels_belong_to_no_config() {
        let all =
            parse(Path::new("m/all.yaml"), "channel: { match: '.*', regex: true }\n").unwrap();
        let rules = ChannelRules::new(vec![all]);
        assert!(rules.resolve(&ChannelName::parse("priv/abc").unwrap()).is_none());
        assert!(rules.resolve(&ChannelName::parse("private").unwrap()).is_some());
        let errs = parse(Path::new("m/p.yaml"), "channel: { match: priv }\n").unwrap_err();
        assert!(errs[0].message.contains("reserved"), "{}", errs[0]);
    }

    #[test]
    fn anonymous_access_is_read_and_defaults_to_none() {
        let text = "channel: { match: c }\nbridges: { websocket: { enable: true, anonymous: subscribe } }\n";
        assert_eq!(
            parse(Path::new("m/a.yaml"), text).unwrap().anonymous,
            Some(Anonymous::Subscribe)
        );
        let text = "channel: { match: c }\nbridges: { websocket: { enable: true } }\n";
        assert_eq!(parse(Path::new("m/a.yaml"), text).unwrap().anonymous, None);
    }
}
