//! `cluster:` in `tern.yaml`: the NATS servers several tern nodes share as their bus.
//! Without it tern runs alone, exactly as before. Secrets (a token, a password) come from
//! the environment or from files, never from the YAML.

use std::{path::PathBuf, time::Duration};

use serde::Deserialize;

use super::units::HumanDuration;

/// How this node joins a cluster.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterSettings {
    /// This node's name in logs and in the server API's `info` (default: a random id).
    #[serde(default)]
    pub node: Option<String>,
    /// The NATS servers.
    pub nats: NatsSettings,
}

/// The NATS connection.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NatsSettings {
    /// Server URLs (`nats://host:4222`, `tls://host:4222`); the client fails over among them.
    pub urls: Vec<String>,
    /// The first token of every subject tern uses (default `tern`), so that several tern
    /// clusters, or other applications, can share one NATS.
    #[serde(default = "default_prefix")]
    pub subject_prefix: String,
    /// A file holding the token (`TERN_NATS_TOKEN` wins over it).
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// A user name, with a password from `TERN_NATS_PASSWORD` or `password_file`.
    #[serde(default)]
    pub user: Option<String>,
    /// A file holding the user's password.
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// A `.creds` file (a user JWT and its NKey seed), as `nsc` writes them.
    #[serde(default)]
    pub credentials_file: Option<PathBuf>,
    /// TLS to the servers.
    #[serde(default)]
    pub tls: Option<NatsTls>,
    /// How long connecting at start may take before tern gives up (default 5s).
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout: HumanDuration,
}

/// TLS settings for the NATS connection; paths are relative to the project directory.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NatsTls {
    /// Require TLS even for `nats://` URLs.
    pub required: bool,
    /// A PEM file of CA certificates to trust (else the system's roots).
    pub ca_file: Option<PathBuf>,
    /// A PEM client certificate, with `key_file`, for servers that verify clients.
    pub cert_file: Option<PathBuf>,
    /// The client certificate's PEM private key.
    pub key_file: Option<PathBuf>,
}

fn default_prefix() -> String {
    "tern".to_owned()
}

fn default_connect_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(5))
}

impl ClusterSettings {
    /// A cluster of the servers at `urls` with every other setting at its default (the
    /// command line's `--nats`).
    pub fn from_urls(urls: Vec<String>) -> Self {
        Self {
            node: None,
            nats: NatsSettings {
                urls,
                subject_prefix: default_prefix(),
                token_file: None,
                user: None,
                password_file: None,
                credentials_file: None,
                tls: None,
                connect_timeout: default_connect_timeout(),
            },
        }
    }

    /// What is wrong with these settings, as (field, problem) pairs.
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut problems = Vec::new();
        let nats = &self.nats;
        if nats.urls.is_empty() {
            problems.push(("cluster.nats.urls", "at least one NATS server URL is needed".into()));
        }
        for url in &nats.urls {
            if let Err(why) = check_url(url) {
                problems.push(("cluster.nats.urls", why));
            }
        }
        if let Err(why) = check_prefix(&nats.subject_prefix) {
            problems.push(("cluster.nats.subject_prefix", why));
        }
        if let Some(node) = &self.node
            && (node.is_empty()
                || node.len() > 64
                || !node.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_')))
        {
            problems.push(("cluster.node", "1 to 64 of A-Z a-z 0-9 - _".into()));
        }
        let methods =
            [nats.token_file.is_some(), nats.user.is_some(), nats.credentials_file.is_some()];
        if methods.iter().filter(|m| **m).count() > 1 {
            let msg = "one of token_file, user (with a password) or credentials_file, not several";
            problems.push(("cluster.nats", msg.into()));
        }
        if nats.password_file.is_some() && nats.user.is_none() {
            problems.push(("cluster.nats.password_file", "a password needs a `user`".into()));
        }
        if let Some(tls) = &nats.tls
            && tls.cert_file.is_some() != tls.key_file.is_some()
        {
            problems.push(("cluster.nats.tls", "cert_file and key_file go together".into()));
        }
        let timeout = nats.connect_timeout.0;
        if timeout < Duration::from_millis(100) || timeout > Duration::from_secs(300) {
            problems.push(("cluster.nats.connect_timeout", "between 100ms and 5m".into()));
        }
        problems
    }
}

/// `url` without any `user:password@` part, for messages.
pub fn redact(url: &str) -> String {
    match (url.split_once("://"), url.rfind('@')) {
        (Some((scheme, _)), Some(at)) => format!("{scheme}://***@{}", &url[at + 1..]),
        _ => url.escape_debug().to_string(),
    }
}

fn check_url(url: &str) -> Result<(), String> {
    let (scheme, rest) = url.split_once("://").ok_or_else(|| {
        format!("`{}` is not a URL such as nats://127.0.0.1:4222", url.escape_debug())
    })?;
    if !matches!(scheme, "nats" | "tls") {
        return Err(format!("`{}`: the scheme must be nats:// or tls://", url.escape_debug()));
    }
    if rest.contains('@') {
        return Err(format!(
            "`{}`: no credentials in a URL (they would be logged): use user + password_file, token_file or credentials_file",
            redact(url)
        ));
    }
    if rest.is_empty() || rest.contains(['/', ' ', '?', '#']) {
        return Err(format!("`{}`: expected scheme://[user:pass@]host:port", url.escape_debug()));
    }
    Ok(())
}

/// A subject prefix is one or more NATS tokens of `[A-Za-z0-9_-]`, none of them `ch` or
/// `nodes` (the tokens tern puts after it: `tern.ch` would collide with `tern`'s channels).
fn check_prefix(prefix: &str) -> Result<(), String> {
    if prefix.split('.').any(|t| t == "ch" || t == "nodes") {
        return Err(format!(
            "`{}`: `ch` and `nodes` are tern's own tokens after the prefix, not in it",
            prefix.escape_debug()
        ));
    }
    let ok = !prefix.is_empty()
        && prefix.len() <= 64
        && prefix.split('.').all(|t| {
            !t.is_empty() && t.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
        });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{}`: dot-separated tokens of A-Z a-z 0-9 - _ (at most 64 bytes)",
            prefix.escape_debug()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> ClusterSettings {
        serde_yaml_ng::from_str(yaml).unwrap()
    }

    #[test]
    fn defaults_and_a_valid_cluster() {
        let c = parse("nats: { urls: [nats://127.0.0.1:4222, tls://n2.example:4222] }");
        assert_eq!(c.nats.subject_prefix, "tern");
        assert_eq!(c.nats.connect_timeout.0, Duration::from_secs(5));
        assert!(c.problems().is_empty(), "{:?}", c.problems());
    }

    #[test]
    fn each_mistake_names_its_field() {
        let fields = |yaml: &str| -> Vec<&'static str> {
            parse(yaml).problems().into_iter().map(|(f, _)| f).collect()
        };
        assert_eq!(fields("nats: { urls: [] }"), ["cluster.nats.urls"]);
        assert_eq!(fields("nats: { urls: [http://x:1] }"), ["cluster.nats.urls"]);
        assert_eq!(fields("nats: { urls: [127.0.0.1:4222] }"), ["cluster.nats.urls"]);
        assert_eq!(fields("nats: { urls: ['nats://a b'] }"), ["cluster.nats.urls"]);
        let creds = parse("nats: { urls: ['nats://alice:S3cret@h:1'] }").problems();
        assert_eq!(creds[0].0, "cluster.nats.urls");
        assert!(!creds[0].1.contains("S3cret"), "{}", creds[0].1);
        for prefix in ["''", "a..b", "a.*", "a.>", "'a b'", "tern.", "tern.ch", "nodes"] {
            let yaml = format!("nats: {{ urls: [nats://h:1], subject_prefix: {prefix} }}");
            assert_eq!(fields(&yaml), ["cluster.nats.subject_prefix"], "{prefix}");
        }
        assert_eq!(fields("node: 'a b'\nnats: { urls: [nats://h:1] }"), ["cluster.node"]);
        let both = "nats: { urls: [nats://h:1], token_file: t, credentials_file: c }";
        assert_eq!(fields(both), ["cluster.nats"]);
        let pw = "nats: { urls: [nats://h:1], password_file: p }";
        assert_eq!(fields(pw), ["cluster.nats.password_file"]);
        let tls = "nats: { urls: [nats://h:1], tls: { cert_file: c } }";
        assert_eq!(fields(tls), ["cluster.nats.tls"]);
        let slow = "nats: { urls: [nats://h:1], connect_timeout: 1h }";
        assert_eq!(fields(slow), ["cluster.nats.connect_timeout"]);
    }

    #[test]
    fn unknown_keys_are_refused() {
        let err = serde_yaml_ng::from_str::<ClusterSettings>("nats: { urls: [], tokn: x }");
        assert!(err.unwrap_err().to_string().contains("unknown field `tokn`"));
    }
}
