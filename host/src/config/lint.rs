//! What a project allows but its author probably did not mean, and what to say when a
//! component is missing: the mistakes newcomers make, each with the way out.

use std::path::Path;

use super::{
    diagnostic::Diagnostic,
    messaging::{ChannelMatcher, MessagingSpec, is_literal},
    yaml,
};

/// Why `source` cannot be a component, with the likely fix; None when it is a file.
pub fn missing_source(source: &Path) -> Option<String> {
    if source.is_file() {
        return None;
    }
    let shown = source.display();
    if source.is_dir() {
        return Some(format!("`{shown}` is a directory: `source` names the function's .wasm file"));
    }
    let mut msg = format!("component `{shown}` does not exist");
    let in_cargo_output = source.components().any(|c| c.as_os_str() == "target");
    let wanted = source.file_name().map(|n| n.to_string_lossy().replace('-', "_"));
    let built = |dir: &Path| -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
        entries
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.ends_with(".wasm"))
            .collect()
    };
    let built_here = source.parent().map(built).unwrap_or_default();
    // Cargo names the file after the crate with `-` written `_`.
    if let Some(same) = built_here.iter().find(|n| Some(n.as_str()) == wanted.as_deref()) {
        msg.push_str(&format!(": did you mean `{same}`? (Cargo writes `-` in crate names as `_`)"));
    } else if in_cargo_output && built_here.is_empty() {
        msg.push_str(
            " and Cargo built no .wasm there: the function's crate needs `crate-type = [\"cdylib\"]` \
             under `[lib]`, and `cargo build --release --target wasm32-wasip2` (the file is named \
             after the crate, `-` written `_`)",
        );
    } else {
        msg.push_str(" (build the function first)");
    }
    Some(msg)
}

/// Warnings about the messaging configs: regexes that are plain names, and configs that
/// can never govern a channel because another one always wins.
pub fn messaging(specs: &[MessagingSpec]) -> Vec<Diagnostic> {
    let mut warnings = Vec::new();
    let at = |spec: &MessagingSpec| {
        let text = std::fs::read_to_string(&spec.file).unwrap_or_default();
        yaml::locate(&text, &["channel", "match"])
    };
    for (i, spec) in specs.iter().enumerate() {
        let warn = |msg: String| Diagnostic::field(&spec.file, at(spec), "channel.match", msg);
        if let ChannelMatcher::Regex(_) = &spec.matcher
            && is_literal(&spec.pattern)
        {
            warnings.push(warn(format!(
                "`{p}` has no regex metacharacter: with `regex: true` it matches the channel `{p}` \
                 only (tern anchors regexes at both ends); for `{p}` and the channels under it, \
                 write `regex: false`",
                p = spec.pattern
            )));
        }
        let winner =
            specs.iter().enumerate().find(|(j, other)| *j != i && shadows(other, spec, *j < i));
        if let Some((_, winner)) = winner {
            warnings.push(warn(format!(
                "this config never governs a channel: `{}` ({}) matches every channel it does and \
                 always wins (same match, earlier file; or a prefix beating a regex)",
                winner.name,
                winner.file.display()
            )));
        }
    }
    warnings
}

/// Whether `winner` wins every channel `loser` matches; `first` says whether `winner`
/// comes first in file order (which breaks ties).
fn shadows(winner: &MessagingSpec, loser: &MessagingSpec, first: bool) -> bool {
    match (&winner.matcher, &loser.matcher) {
        (ChannelMatcher::Prefix(a), ChannelMatcher::Prefix(b)) => first && a == b,
        (ChannelMatcher::Regex(_), ChannelMatcher::Regex(_)) => {
            first && winner.pattern == loser.pattern
        }
        // A regex without metacharacters matches one name, which a prefix covering it wins.
        (ChannelMatcher::Prefix(prefix), ChannelMatcher::Regex(_))
            if is_literal(&loser.pattern) =>
        {
            let segments: Vec<&str> = loser.pattern.split('/').collect();
            segments.len() >= prefix.len() && prefix.iter().zip(&segments).all(|(p, s)| p == s)
        }
        _ => false,
    }
}
