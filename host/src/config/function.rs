//! A function's YAML file (Taubyte's schema): its trigger, limits and component.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use serde::Deserialize;

use super::{
    bounds,
    diagnostic::{Diagnostic, Location},
    units::{ByteSize, HumanDuration},
    yaml,
};

/// How long an invocation may run when `execution.timeout` is not set.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// How much linear memory an invocation may use when `execution.memory` is not set.
pub const DEFAULT_MEMORY: u64 = 64 * 1024 * 1024;
/// How many invocations of one pubsub-triggered function may run at once by default.
pub const DEFAULT_CONCURRENCY: usize = 16;
/// How many messages may wait for one pubsub-triggered function by default.
pub const DEFAULT_QUEUE: usize = 1024;
/// HTTP methods a trigger may name.
const METHODS: [&str; 7] = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"];

/// The file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FunctionFile {
    #[serde(default)]
    #[allow(dead_code, reason = "accepted for Taubyte compatibility")]
    id: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    #[allow(dead_code, reason = "accepted for Taubyte compatibility")]
    tags: Vec<String>,
    #[serde(default)]
    #[allow(dead_code, reason = "accepted for Taubyte compatibility")]
    domains: Vec<String>,
    trigger: TriggerFile,
    #[serde(default)]
    execution: ExecutionFile,
    source: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TriggerFile {
    #[serde(rename = "type")]
    kind: TriggerKind,
    #[serde(default)]
    method: Option<String>,
    #[serde(default)]
    paths: Option<Vec<String>>,
    #[serde(default)]
    channel: Option<String>,
    #[serde(default)]
    #[allow(dead_code, reason = "accepted for Taubyte compatibility")]
    local: Option<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum TriggerKind {
    #[serde(alias = "https")]
    Http,
    Pubsub,
    Rpc,
    Send,
    #[serde(rename = "connect-hook")]
    ConnectHook,
    #[serde(rename = "subscribe-hook")]
    SubscribeHook,
    #[serde(rename = "publish-hook")]
    PublishHook,
}

/// Which decision a hook function makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HookKind {
    /// Who may connect (`connect-hook`).
    Connect,
    /// Who may subscribe (`subscribe-hook`).
    Subscribe,
    /// What may be published (`publish-hook`).
    Publish,
}

impl HookKind {
    /// The trigger type that makes a function this hook.
    pub fn trigger_type(self) -> &'static str {
        match self {
            HookKind::Connect => "connect-hook",
            HookKind::Subscribe => "subscribe-hook",
            HookKind::Publish => "publish-hook",
        }
    }
}

/// Longest RPC method name a trigger may give, in bytes.
pub const MAX_METHOD_LEN: usize = 256;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExecutionFile {
    #[serde(default)]
    timeout: Option<HumanDuration>,
    #[serde(default)]
    memory: Option<ByteSize>,
    #[serde(default)]
    concurrency: Option<usize>,
    #[serde(default)]
    queue: Option<usize>,
    #[serde(default)]
    #[allow(
        dead_code,
        reason = "accepted for Taubyte compatibility: tern calls the world's export"
    )]
    call: Option<String>,
}

/// What starts a function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trigger {
    /// An HTTP request with this method on one of these exact paths.
    Http {
        /// Upper-case method.
        method: http::Method,
        /// Exact paths, each starting with `/`.
        paths: Vec<String>,
    },
    /// A message on a channel matched by the named messaging config.
    Pubsub {
        /// The messaging config's name (its file stem).
        channel: String,
    },
    /// A client-protocol `rpc` command naming this method (`*`: any method no other
    /// function takes).
    Rpc {
        /// The method, or `*`.
        method: String,
    },
    /// A client-protocol `send` message.
    Send,
    /// A hook that messaging configs (or `tern.yaml`) name.
    Hook(HookKind),
}

/// A validated function.
#[derive(Debug, Clone)]
pub struct FunctionSpec {
    /// The function's name: its file stem.
    pub name: String,
    /// The YAML file it was read from.
    pub file: PathBuf,
    /// Its description, if any.
    pub description: Option<String>,
    /// What starts it.
    pub trigger: Trigger,
    /// How long one invocation may run.
    pub timeout: Duration,
    /// How many bytes of linear memory one invocation may use.
    pub memory: u64,
    /// Most invocations of this function running at once (pubsub triggers).
    pub concurrency: usize,
    /// Most messages waiting for this function; more are dropped and counted (pubsub triggers).
    pub queue: usize,
    /// The component file, resolved against the YAML file's directory.
    pub source: PathBuf,
    /// Where `source` is written, for errors about the component.
    pub source_location: Option<Location>,
    /// Where the trigger's paths (or channel) are written, for cross-file errors.
    pub trigger_location: Option<Location>,
}

/// Reads one function file; `text` is its contents.
pub fn parse(file: &Path, text: &str) -> Result<FunctionSpec, Vec<Diagnostic>> {
    let raw: FunctionFile = yaml::parse(file, text).map_err(|d| vec![d])?;
    let name = file.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let field = |path: &[&str], message: String| {
        Diagnostic::field(file, yaml::locate(text, path), path.join("."), message)
    };
    let mut problems = Vec::new();
    let trigger = match raw.trigger.kind {
        TriggerKind::Http => http_trigger(&raw.trigger, &field, &mut problems),
        TriggerKind::Pubsub => pubsub_trigger(&raw.trigger, &field, &mut problems),
        TriggerKind::Rpc => rpc_trigger(&raw.trigger, &field, &mut problems),
        TriggerKind::Send => {
            bare_trigger(&raw.trigger, Trigger::Send, "send", &field, &mut problems)
        }
        TriggerKind::ConnectHook => {
            let hook = Trigger::Hook(HookKind::Connect);
            bare_trigger(&raw.trigger, hook, "connect-hook", &field, &mut problems)
        }
        TriggerKind::SubscribeHook => {
            let hook = Trigger::Hook(HookKind::Subscribe);
            bare_trigger(&raw.trigger, hook, "subscribe-hook", &field, &mut problems)
        }
        TriggerKind::PublishHook => {
            let hook = Trigger::Hook(HookKind::Publish);
            bare_trigger(&raw.trigger, hook, "publish-hook", &field, &mut problems)
        }
    };
    let execution = &raw.execution;
    for (path, msg) in
        bounds::check_execution(execution.memory, execution.concurrency, execution.queue)
    {
        problems.push(field(path, msg));
    }
    if raw.source.trim().is_empty() {
        problems.push(field(&["source"], "must name the function's .wasm component".into()));
    }
    let dir = file.parent().unwrap_or(Path::new("."));
    let trigger_key = match trigger {
        Some(Trigger::Pubsub { .. }) => "channel",
        Some(Trigger::Rpc { .. }) => "method",
        _ => "paths",
    };
    let spec = FunctionSpec {
        name,
        file: file.to_path_buf(),
        description: raw.description,
        trigger: trigger.unwrap_or(Trigger::Pubsub { channel: String::new() }),
        timeout: raw.execution.timeout.map_or(DEFAULT_TIMEOUT, |d| d.0),
        memory: raw.execution.memory.map_or(DEFAULT_MEMORY, |m| m.0),
        concurrency: raw.execution.concurrency.unwrap_or(DEFAULT_CONCURRENCY),
        queue: raw.execution.queue.unwrap_or(DEFAULT_QUEUE),
        source: dir.join(&raw.source),
        source_location: yaml::locate(text, &["source"]),
        trigger_location: yaml::locate(text, &["trigger", trigger_key]),
    };
    if problems.is_empty() { Ok(spec) } else { Err(problems) }
}

fn http_trigger(
    t: &TriggerFile,
    field: &impl Fn(&[&str], String) -> Diagnostic,
    problems: &mut Vec<Diagnostic>,
) -> Option<Trigger> {
    if t.channel.is_some() {
        problems.push(field(&["trigger", "channel"], "only a pubsub trigger has a channel".into()));
    }
    let method = match &t.method {
        None => {
            problems.push(field(&["trigger"], "an http trigger needs a `method`".into()));
            None
        }
        Some(m) => {
            let upper = m.trim().to_ascii_uppercase();
            if METHODS.contains(&upper.as_str()) {
                http::Method::from_bytes(upper.as_bytes()).ok()
            } else {
                let msg = format!("unknown method `{m}` (expected one of {})", METHODS.join(", "));
                problems.push(field(&["trigger", "method"], msg));
                None
            }
        }
    };
    let paths = match &t.paths {
        None => {
            problems.push(field(&["trigger"], "an http trigger needs `paths`".into()));
            None
        }
        Some(paths) if paths.is_empty() => {
            problems.push(field(&["trigger", "paths"], "needs at least one path".into()));
            None
        }
        Some(paths) => {
            let bad: Vec<_> = paths.iter().filter_map(|p| path_problem(p)).collect();
            for msg in &bad {
                problems.push(field(&["trigger", "paths"], msg.clone()));
            }
            bad.is_empty().then(|| paths.clone())
        }
    };
    Some(Trigger::Http { method: method?, paths: paths? })
}

fn path_problem(path: &str) -> Option<String> {
    if !path.starts_with('/') {
        return Some(format!("path `{path}` must start with `/`"));
    }
    if path.starts_with("/ws/channel/") || path == "/ws/channel" {
        return Some(format!("path `{path}` is reserved for the WebSocket bridge"));
    }
    if let Some(c) = path.chars().find(|c| c.is_whitespace() || matches!(c, '?' | '#')) {
        return Some(format!("path `{path}` contains {c:?}: paths match exactly, without query"));
    }
    None
}

fn pubsub_trigger(
    t: &TriggerFile,
    field: &impl Fn(&[&str], String) -> Diagnostic,
    problems: &mut Vec<Diagnostic>,
) -> Option<Trigger> {
    if t.method.is_some() || t.paths.is_some() {
        let msg = "a pubsub trigger has a `channel`, not `method` or `paths`".to_string();
        problems.push(field(&["trigger"], msg));
    }
    match &t.channel {
        Some(c) if !c.trim().is_empty() => Some(Trigger::Pubsub { channel: c.trim().to_string() }),
        _ => {
            let msg = "a pubsub trigger needs `channel`: the name of a messaging config".into();
            problems.push(field(&["trigger"], msg));
            None
        }
    }
}

fn rpc_trigger(
    t: &TriggerFile,
    field: &impl Fn(&[&str], String) -> Diagnostic,
    problems: &mut Vec<Diagnostic>,
) -> Option<Trigger> {
    if t.channel.is_some() || t.paths.is_some() {
        let msg = "an rpc trigger has a `method`, not `channel` or `paths`".to_string();
        problems.push(field(&["trigger"], msg));
    }
    match t.method.as_deref().map(str::trim) {
        Some(m) if !m.is_empty() && m.len() <= MAX_METHOD_LEN => {
            Some(Trigger::Rpc { method: m.to_string() })
        }
        Some(m) if !m.is_empty() => {
            let msg = format!("the method is {} bytes long (at most {MAX_METHOD_LEN})", m.len());
            problems.push(field(&["trigger", "method"], msg));
            None
        }
        _ => {
            let msg = "an rpc trigger needs `method`: the RPC method it answers, or `*`".into();
            problems.push(field(&["trigger"], msg));
            None
        }
    }
}

/// A trigger that takes no field (`send`, the hooks).
fn bare_trigger(
    t: &TriggerFile,
    trigger: Trigger,
    kind: &str,
    field: &impl Fn(&[&str], String) -> Diagnostic,
    problems: &mut Vec<Diagnostic>,
) -> Option<Trigger> {
    if t.channel.is_some() || t.paths.is_some() || t.method.is_some() {
        let msg = format!(
            "a {kind} trigger takes no `method`, `paths` or `channel`: what calls it says where"
        );
        problems.push(field(&["trigger"], msg));
        return None;
    }
    Some(trigger)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rpc_send_and_hook_triggers() {
        let rpc = parse_str("source: f.wasm\ntrigger: { type: rpc, method: rooms }\n").unwrap();
        assert_eq!(rpc.trigger, Trigger::Rpc { method: "rooms".into() });
        let hook = parse_str("source: f.wasm\ntrigger: { type: publish-hook }\n").unwrap();
        assert_eq!(hook.trigger, Trigger::Hook(HookKind::Publish));
        let errs = parse_str("source: f.wasm\ntrigger: { type: rpc }\n").unwrap_err();
        assert!(errs[0].message.contains("needs `method`"), "{}", errs[0]);
        let errs = parse_str("source: f.wasm\ntrigger: { type: send, channel: x }\n").unwrap_err();
        assert!(errs[0].message.contains("takes no"), "{}", errs[0]);
    }

    fn parse_str(text: &str) -> Result<FunctionSpec, Vec<Diagnostic>> {
        parse(Path::new("p/functions/f.yaml"), text)
    }

    #[test]
    fn reads_taubyte_http_function() {
        let spec = parse_str(
            "id: ''\ndescription: hi\ntags: []\nsource: ../f.wasm\n\
             trigger:\n  type: https\n  method: get\n  paths:\n    - /api/ws\n\
             execution:\n  timeout: 2s\n  memory: 32MB\n  call: getWebSocketURL\n",
        )
        .unwrap();
        assert_eq!(spec.name, "f");
        assert_eq!(
            spec.trigger,
            Trigger::Http { method: http::Method::GET, paths: vec!["/api/ws".into()] }
        );
        assert_eq!(spec.timeout, Duration::from_secs(2));
        assert_eq!(spec.memory, 32_000_000);
        assert_eq!(spec.source, Path::new("p/functions/../f.wasm"));
        assert_eq!(spec.source_location, Some(Location { line: 4, column: 1 }));
    }

    #[test]
    fn defaults_apply_when_execution_is_absent() {
        let spec =
            parse_str("source: f.wasm\ntrigger: { type: http, method: POST, paths: [/x] }\n")
                .unwrap();
        assert_eq!(spec.timeout, DEFAULT_TIMEOUT);
        assert_eq!(spec.memory, DEFAULT_MEMORY);
    }

    #[test]
    fn bad_duration_names_line_and_field() {
        let errs = parse_str(
            "source: f.wasm\ntrigger: { type: http, method: GET, paths: [/x] }\n\
             execution:\n  timeout: 10 parsecs\n",
        )
        .unwrap_err();
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].field.as_deref(), Some("execution.timeout"));
        assert_eq!(errs[0].location.map(|l| l.line), Some(4));
        assert!(errs[0].message.starts_with("invalid duration `10 parsecs`"), "{}", errs[0]);
    }

    #[test]
    fn unknown_key_is_an_error_naming_it() {
        let errs = parse_str(
            "source: f.wasm\ntrigger: { type: http, method: GET, paths: [/x] }\nmemroy: 1MB\n",
        )
        .unwrap_err();
        assert!(errs[0].message.contains("unknown field `memroy`"), "{}", errs[0]);
        assert_eq!(errs[0].location.map(|l| l.line), Some(3));
    }

    #[test]
    fn missing_source_is_reported() {
        let errs = parse_str("trigger: { type: http, method: GET, paths: [/x] }\n").unwrap_err();
        assert!(errs[0].message.contains("missing field `source`"), "{}", errs[0]);
    }

    #[test]
    fn bad_method_and_path_are_both_reported_with_fields() {
        let errs =
            parse_str("source: f.wasm\ntrigger:\n  type: http\n  method: FETCH\n  paths: [x]\n")
                .unwrap_err();
        let fields: Vec<_> = errs.iter().map(|d| d.field.clone().unwrap()).collect();
        assert_eq!(fields, ["trigger.method", "trigger.paths"]);
        assert_eq!(errs[0].location, Some(Location { line: 4, column: 3 }));
    }

    #[test]
    fn pubsub_trigger_needs_a_channel() {
        let errs = parse_str("source: f.wasm\ntrigger: { type: pubsub }\n").unwrap_err();
        assert!(errs[0].message.contains("needs `channel`"), "{}", errs[0]);
    }
}
