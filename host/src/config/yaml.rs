//! Parsing one YAML file into a typed struct, with errors located by line, column and field.

use std::path::Path;

use serde::de::DeserializeOwned;

use super::diagnostic::{Diagnostic, Location};

/// The largest project file read: far above any real configuration, small enough that a
/// file of garbage costs nothing to refuse.
pub const MAX_FILE_SIZE: u64 = 1024 * 1024;
/// The deepest nesting of mappings and sequences accepted. tern's files nest 3 levels; the
/// YAML parser's time grows with depth (100,000 `[` took 29 s), so the text is checked first.
pub const MAX_DEPTH: usize = 32;

/// Reads a project file, refusing one over [`MAX_FILE_SIZE`] before reading it.
pub fn read_file(file: &Path) -> Result<String, Diagnostic> {
    use std::io::Read as _;
    let cannot = |e: std::io::Error| Diagnostic::file(file, format!("cannot read: {e}"));
    let handle = std::fs::File::open(file).map_err(cannot)?;
    let mut text = String::new();
    let read = handle.take(MAX_FILE_SIZE + 1).read_to_string(&mut text);
    match read {
        Ok(n) if n as u64 > MAX_FILE_SIZE => Err(Diagnostic::file(
            file,
            format!("file larger than {} bytes: not a tern configuration file", MAX_FILE_SIZE),
        )),
        Ok(_) => Ok(text),
        Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
            Err(Diagnostic::file(file, "not UTF-8 text: a YAML file must be UTF-8"))
        }
        Err(e) => Err(cannot(e)),
    }
}

/// Parses `text` (the contents of `file`) into `T`, or says where and why it is wrong.
pub fn parse<T: DeserializeOwned>(file: &Path, text: &str) -> Result<T, Diagnostic> {
    if let Some(at) = too_deep(text) {
        let msg = format!("nested more than {MAX_DEPTH} levels deep");
        return Err(Diagnostic {
            file: file.to_path_buf(),
            location: Some(at),
            field: None,
            message: msg,
        });
    }
    let de = serde_yaml_ng::Deserializer::from_str(text);
    serde_path_to_error::deserialize(de).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        let location = inner.location().map(|l| Location { line: l.line(), column: l.column() });
        let message = clean_message(&inner.to_string(), &path, location);
        let message = explain(&message, text, location);
        // `?` is serde_path_to_error's name for "somewhere the parser had not placed yet".
        let mut field = (!matches!(path.as_str(), "." | "?" | "")).then_some(path);
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

/// What the parser's message means for the mistakes people make: a tab, a single path
/// where a list is expected.
fn explain(message: &str, text: &str, location: Option<Location>) -> String {
    let at = location.and_then(|l| text.lines().nth(l.line - 1)?.chars().nth(l.column - 1));
    if at == Some('\t') || (message.contains("cannot start any token") && text.contains('\t')) {
        return "a tab character: YAML indents with spaces only".to_string();
    }
    if message.starts_with("mapping values are not allowed in this context") {
        return "`: ` inside a value: put the value in quotes (`description: \"a: b\"`)"
            .to_string();
    }
    if let Some(rest) = message.strip_prefix("invalid type: string \"")
        && let Some(value) = rest.strip_suffix("\", expected a sequence")
    {
        return format!("a list is expected: write `[{value}]`");
    }
    message.to_string()
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
/// twice), where the deserializer no longer knows positions. It walks the YAML parser's
/// events, so a key inside a comment or a quoted value is never taken for the real one.
pub fn locate(text: &str, path: &[&str]) -> Option<Location> {
    let mut finder = KeyFinder { path, keys: Vec::new(), containers: Vec::new(), found: None };
    // A file that does not parse was reported by the deserializer, with its position.
    yaml_rust2::parser::Parser::new_from_str(text).load(&mut finder, false).ok()?;
    finder.found
}

/// Follows mapping keys through the parser's events until it meets `path`.
struct KeyFinder<'a> {
    path: &'a [&'a str],
    /// The keys leading to the current container (None for a sequence item).
    keys: Vec<Option<String>>,
    /// For each open container: for a mapping, whether the next scalar is a key and the
    /// last key seen; None for a sequence.
    containers: Vec<Option<(bool, Option<String>)>>,
    found: Option<Location>,
}

impl KeyFinder<'_> {
    /// A value starts in the current container: its key, if the container is a mapping.
    fn value_key(&mut self) -> Option<Option<String>> {
        match self.containers.last_mut()? {
            Some((expect_key, last)) => {
                *expect_key = true;
                Some(last.take())
            }
            None => Some(None),
        }
    }
}

impl yaml_rust2::parser::MarkedEventReceiver for KeyFinder<'_> {
    fn on_event(&mut self, event: yaml_rust2::Event, mark: yaml_rust2::scanner::Marker) {
        use yaml_rust2::Event;
        match event {
            Event::Scalar(value, ..) => {
                if let Some(Some((expect_key, last))) = self.containers.last_mut() {
                    if *expect_key {
                        *expect_key = false;
                        let depth = self.keys.len();
                        let matches = depth + 1 == self.path.len()
                            && self
                                .keys
                                .iter()
                                .zip(self.path)
                                .all(|(k, p)| k.as_deref() == Some(*p))
                            && value == self.path[depth];
                        if matches && self.found.is_none() {
                            self.found =
                                Some(Location { line: mark.line(), column: mark.col() + 1 });
                        }
                        *last = Some(value);
                        return;
                    }
                    *expect_key = true;
                }
            }
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                let is_map = matches!(event, Event::MappingStart(..));
                if let Some(key) = self.value_key() {
                    self.keys.push(key);
                }
                self.containers.push(is_map.then_some((true, None)));
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.containers.pop();
                if !self.containers.is_empty() {
                    self.keys.pop();
                }
            }
            Event::Alias(_) => {
                let _ = self.value_key();
            }
            _ => {}
        }
    }
}

/// Where `text` first nests deeper than [`MAX_DEPTH`], in flow (`[`, `{`) or block
/// (indentation) style, or None. Quoted strings and comments do not count.
fn too_deep(text: &str) -> Option<Location> {
    let mut flow = 0usize;
    let mut indents: Vec<usize> = Vec::new();
    for (line_no, line) in text.lines().enumerate() {
        let content = line.trim_start_matches([' ', '-']);
        let indent = line.len() - content.len();
        if flow == 0 && !content.is_empty() && !content.starts_with('#') {
            while indents.last().is_some_and(|&i| i >= indent) {
                indents.pop();
            }
            indents.push(indent);
            if indents.len() > MAX_DEPTH {
                return Some(Location { line: line_no + 1, column: indent + 1 });
            }
        }
        let mut quote: Option<char> = None;
        let mut previous = ' ';
        for (col, c) in line.char_indices() {
            match (quote, c) {
                (Some('"'), '\\') if previous != '\\' => {}
                (Some(q), c) if c == q && !(q == '"' && previous == '\\') => quote = None,
                (Some(_), _) => {}
                (None, '#') if previous == ' ' || col == 0 => break,
                (None, '"' | '\'') => quote = Some(c),
                (None, '[' | '{') => {
                    flow += 1;
                    if flow > MAX_DEPTH {
                        return Some(Location { line: line_no + 1, column: col + 1 });
                    }
                }
                (None, ']' | '}') => flow = flow.saturating_sub(1),
                _ => {}
            }
            previous = if previous == '\\' && c == '\\' { ' ' } else { c };
        }
    }
    None
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
    fn deep_nesting_is_refused_before_parsing() {
        let flow = "[".repeat(100_000);
        assert_eq!(too_deep(&flow), Some(Location { line: 1, column: MAX_DEPTH + 1 }));
        let block: String = (0..40).map(|i| format!("{}k{i}:\n", " ".repeat(i))).collect();
        assert_eq!(too_deep(&block).map(|l| l.line), Some(MAX_DEPTH + 1));
        assert_eq!(too_deep("a: '[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[['\n"), None);
        assert_eq!(too_deep("a: 1 # [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\n"), None);
        assert_eq!(too_deep("trigger: { type: http, paths: [/a] }\n"), None);
        let err = parse::<serde_yaml_ng::Value>(Path::new("f.yaml"), &flow).unwrap_err();
        assert!(err.message.contains("nested more than 32 levels"), "{err}");
    }

    #[test]
    fn locate_skips_keys_in_comments_and_values() {
        let text = "# source: not this one\ndescription: \"source: nor this\"\nsource: x.wasm\n";
        assert_eq!(locate(text, &["source"]), Some(Location { line: 3, column: 1 }));
        let text = "trigger:\n  # method: POST\n  type: http\n  method: GET\n";
        assert_eq!(locate(text, &["trigger", "method"]), Some(Location { line: 4, column: 3 }));
        let text = "a: [x, {b: 1}]\nb: 2\n";
        assert_eq!(locate(text, &["b"]), Some(Location { line: 2, column: 1 }));
    }

    #[test]
    fn locate_does_not_match_a_key_inside_another_word() {
        let text = "mysource: a\nsource: b\n";
        assert_eq!(locate(text, &["source"]), Some(Location { line: 2, column: 1 }));
    }

    #[test]
    fn a_colon_in_a_plain_value_is_explained_without_a_made_up_field() {
        let text = "description: the page: with a colon\nsource: x.wasm\n";
        let err = parse::<serde_yaml_ng::Value>(Path::new("f.yaml"), text).unwrap_err();
        assert_eq!(err.field, None, "{err}");
        assert_eq!(err.location, Some(Location { line: 1, column: 22 }), "{err}");
        assert!(err.message.contains("put the value in quotes"), "{err}");
        assert!(!err.to_string().contains("field `?`"), "{err}");
    }
}
