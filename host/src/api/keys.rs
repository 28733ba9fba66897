//! The server API's keys: `TERN_API_KEY` (one key for every method and channel) and the
//! YAML file `api.keys_file` names, each key with the methods and channel patterns it may
//! use. Keys are kept as their SHA-256 and compared in constant time; never logged.

use std::path::Path;

use http::HeaderMap;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::{
    auth::ChannelPattern,
    channel_name::ChannelName,
    config::{Diagnostic, settings::ApiSettings, yaml},
};

/// The environment variable holding a key with every permission.
pub const KEY_VAR: &str = "TERN_API_KEY";
/// The shortest key accepted.
const MIN_KEY_LEN: usize = 16;
/// The methods the API serves, as the keys file names them.
pub const METHODS: [&str; 11] = [
    "publish",
    "broadcast",
    "subscribe",
    "unsubscribe",
    "disconnect",
    "presence",
    "presence_stats",
    "history",
    "history_remove",
    "channels",
    "info",
];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeysFile {
    keys: Vec<KeyEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyEntry {
    name: String,
    key: String,
    #[serde(default)]
    methods: Option<Vec<String>>,
    #[serde(default)]
    channels: Option<Vec<String>>,
}

/// One key and what it may do.
pub struct ApiKey {
    /// Its name, for logs.
    pub name: String,
    hash: [u8; 32],
    /// Methods it may call; None: all.
    methods: Option<Vec<String>>,
    /// Channels it may act on; None: all.
    channels: Option<Vec<ChannelPattern>>,
}

impl ApiKey {
    /// Whether it may call `method`.
    pub fn may_call(&self, method: &str) -> bool {
        self.methods.as_ref().is_none_or(|m| m.iter().any(|m| m == method || m == "*"))
    }

    /// Whether it may act on `channel`.
    pub fn may_use(&self, channel: &ChannelName) -> bool {
        self.channels.as_ref().is_none_or(|ps| ps.iter().any(|p| p.covers(channel)))
    }

    /// Whether it is limited to some channels (then `channels` lists only those).
    pub fn limited(&self) -> bool {
        self.channels.is_some()
    }
}

/// Every key the API takes.
#[derive(Default)]
pub struct ApiKeys(Vec<ApiKey>);

impl ApiKeys {
    /// The keys of `TERN_API_KEY` and `settings.keys_file` (relative to `project_dir`);
    /// empty when neither is set, which turns the API off. A short key, an unreadable file
    /// or a bad entry is an error naming the file, line and field.
    pub fn load(settings: &ApiSettings, project_dir: &Path) -> Result<ApiKeys, Diagnostic> {
        let mut keys = Vec::new();
        let tern_yaml = project_dir.join("tern.yaml");
        match std::env::var(KEY_VAR) {
            Ok(key) if key.trim().chars().count() >= MIN_KEY_LEN => keys.push(ApiKey {
                name: KEY_VAR.to_owned(),
                hash: Sha256::digest(key.trim().as_bytes()).into(),
                methods: None,
                channels: None,
            }),
            Ok(_) => {
                let msg =
                    format!("{KEY_VAR}: an API key must be at least {MIN_KEY_LEN} characters");
                return Err(Diagnostic::file(&tern_yaml, msg));
            }
            Err(_) => {}
        }
        let Some(file) = &settings.keys_file else { return Ok(ApiKeys(keys)) };
        let path = project_dir.join(file);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            Diagnostic::field(
                &tern_yaml,
                None,
                "api.keys_file",
                format!("cannot read {}: {e}", path.display()),
            )
        })?;
        let parsed: KeysFile = yaml::parse(&path, &text)?;
        for (i, entry) in parsed.keys.into_iter().enumerate() {
            let at = |field: &str| format!("keys[{i}].{field}");
            let problem = |field: &str, msg: String| {
                Diagnostic::field(&path, yaml::locate(&text, &["keys"]), at(field), msg)
            };
            if entry.key.trim().chars().count() < MIN_KEY_LEN {
                let msg = format!("key `{}` is shorter than {MIN_KEY_LEN} characters", entry.name);
                return Err(problem("key", msg));
            }
            if let Some(bad) =
                entry.methods.iter().flatten().find(|m| *m != "*" && !METHODS.contains(&m.as_str()))
            {
                let msg = format!("unknown method `{bad}` (the API serves {})", METHODS.join(", "));
                return Err(problem("methods", msg));
            }
            let channels = match entry.channels {
                None => None,
                Some(list) => Some(
                    list.iter()
                        .map(|p| ChannelPattern::parse(p).map_err(|e| problem("channels", e)))
                        .collect::<Result<Vec<_>, _>>()?,
                ),
            };
            keys.push(ApiKey {
                name: entry.name,
                hash: Sha256::digest(entry.key.trim().as_bytes()).into(),
                methods: entry.methods,
                channels,
            });
        }
        Ok(ApiKeys(keys))
    }

    /// Whether there is any key (the API is on).
    pub fn any(&self) -> bool {
        !self.0.is_empty()
    }

    /// The key `headers` carry (`X-API-Key: K` or `Authorization: apikey K`), if it is one.
    pub fn of(&self, headers: &HeaderMap) -> Option<&ApiKey> {
        let given = headers.get("x-api-key").and_then(|v| v.to_str().ok()).or_else(|| {
            headers
                .get(http::header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split_once(' '))
                .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("apikey"))
                .map(|(_, key)| key)
        })?;
        let hash: [u8; 32] = Sha256::digest(given.trim().as_bytes()).into();
        // Every key is compared, so the time taken says nothing of which matched.
        let mut found = None;
        for key in &self.0 {
            if bool::from(key.hash.ct_eq(&hash)) {
                found = Some(key);
            }
        }
        found
    }
}
