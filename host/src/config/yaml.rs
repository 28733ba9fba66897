//! Parsing one YAML file into a typed struct, with errors located by line, column and field.

use std::path::Path;

use serde::de::DeserializeOwned;

use super::diagnostic::{Diagnostic, Location};

/// Parses `text` (the contents of `file`) into `T`, or says where and why it is wrong.
pub fn parse<T: DeserializeOwned>(file: &Path, text: &str) -> Result<T, Diagnostic> {
    let de = serde_yaml_ng::Deserializer::from_str(text);
    serde_path_to_error::deserialize(de).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        let location = inner.location().map(|l| Location { line: l.line(), column: l.column() });
        let message = clean_message(&inner.to_string(), &path, location);
        let mut field = (path != "." && !path.is_empty()).then_some(path);
        // serde reports a missing field at its parent: name the field itself.
        let missing = message.strip_prefix("missing field `").and_then(|m| m.split('`').next());
        if let Some(missing) = missing {
            field = Some(match field {
                Some(parent) => format!("{parent}.{missing}"),
                None => missing.to_string(),
            });
        }
        Diagnostic { file: file.to_path_buf(), location, field, message }
    })
}

/// serde_yaml_ng's message repeats the path and the position we already report apart.
fn clean_message(message: &str, path: &str, location: Option<Location>) -> String {
    let mut m = message;
    // It prefixes the path of the innermost map it knows, which may be a parent of ours.
    if let Some((prefix, rest)) = m.split_once(": ")
        && path.split('.').next() == prefix.split('.').next()
        && path.starts_with(prefix)
    {
        m = rest;
    }
    if let Some(loc) = location {
        let suffix = format!(" at line {} column {}", loc.line, loc.column);
        if let Some(rest) = m.strip_suffix(&suffix) {
            m = rest;
        }
    }
    m.to_string()
}

/// Finds where the key at `path` (e.g. `["trigger", "method"]`) is written in `text`.
///
/// Used for problems found after parsing (a `source` that does not exist, a route defined
/// twice), where the deserializer no longer knows positions. It follows the keys in order,
/// each searched after the previous one, in block or flow style.
pub fn locate(text: &str, path: &[&str]) -> Option<Location> {
    let mut from = 0;
    let mut found = None;
    for key in path {
        let at = find_key(text, key, from)?;
        found = Some(at);
        from = at + key.len();
    }
    found.map(|offset| offset_to_location(text, offset))
}

fn find_key(text: &str, key: &str, from: usize) -> Option<usize> {
    let mut search = from;
    while let Some(rel) = text.get(search..)?.find(key) {
        let at = search + rel;
        let before = text[..at].chars().next_back();
        let after = text[at + key.len()..].trim_start_matches([' ', '\t']);
        let starts_token = matches!(before, None | Some(' ' | '\t' | '\n' | '{' | ',' | '-'));
        let quoted_before = matches!(before, Some('"' | '\''));
        if (starts_token || quoted_before) && (after.starts_with(':') || after.starts_with("\":")) {
            return Some(at);
        }
        search = at + key.len();
    }
    None
}

fn offset_to_location(text: &str, offset: usize) -> Location {
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    Location { line, column }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locate_finds_nested_keys_in_block_and_flow_style() {
        let text =
            "description: x\ntrigger:\n  type: https\n  method: GET\nexecution: { timeout: 1s }\n";
        assert_eq!(locate(text, &["trigger", "method"]), Some(Location { line: 4, column: 3 }));
        assert_eq!(locate(text, &["execution", "timeout"]), Some(Location { line: 5, column: 14 }));
        assert_eq!(locate(text, &["source"]), None);
    }

    #[test]
    fn locate_does_not_match_a_key_inside_another_word() {
        let text = "mysource: a\nsource: b\n";
        assert_eq!(locate(text, &["source"]), Some(Location { line: 2, column: 1 }));
    }
}
