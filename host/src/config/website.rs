//! A website's YAML file (`websites/<name>.yaml`, Taubyte's idea): the URL paths it is
//! served under and the directory of files it serves.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use serde::Deserialize;

use super::{
    diagnostic::{Diagnostic, Location},
    yaml,
};

/// The file served for a path naming a directory, when `index` is not set.
pub const DEFAULT_INDEX: &str = "index.html";
/// Longest `max_age` accepted: a year, what HTTP caches treat as "forever".
pub const MAX_MAX_AGE: Duration = Duration::from_secs(365 * 24 * 3600);
/// Paths the host answers itself, which a website may not take.
const RESERVED: [&str; 3] = ["/ws/channel", "/connection/websocket", "/realtime"];

/// The file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WebsiteFile {
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
    paths: Vec<String>,
    directory: String,
    #[serde(default)]
    index: Option<String>,
    #[serde(default)]
    max_age: Option<String>,
}

/// A validated website.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebsiteSpec {
    /// Its name: the file stem.
    pub name: String,
    /// The YAML file it was read from.
    pub file: PathBuf,
    /// Its description, if any.
    pub description: Option<String>,
    /// URL prefixes it is served under, each `/` or `/a/b` (no trailing slash).
    pub paths: Vec<String>,
    /// The directory of its files, resolved against the YAML file's directory.
    pub directory: PathBuf,
    /// The file a directory's path serves (`index.html`).
    pub index: String,
    /// How long browsers may use a file without asking again; zero: always revalidate.
    pub max_age: Duration,
    /// Where `directory` is written, for errors about its files.
    pub directory_location: Option<Location>,
    /// Where `paths` is written, for cross-file errors.
    pub paths_location: Option<Location>,
}

/// Reads one website file; `text` is its contents.
pub fn parse(file: &Path, text: &str) -> Result<WebsiteSpec, Vec<Diagnostic>> {
    let raw: WebsiteFile = yaml::parse(file, text).map_err(|d| vec![d])?;
    let name = file.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let field = |path: &str, message: String| {
        Diagnostic::field(file, yaml::locate(text, &[path]), path, message)
    };
    let mut problems = Vec::new();
    if raw.paths.is_empty() {
        problems.push(field("paths", "needs at least one path, such as `/`".into()));
    }
    let mut paths = Vec::new();
    for path in &raw.paths {
        match prefix_problem(path) {
            Some(msg) => problems.push(field("paths", msg)),
            None => {
                let prefix = normalized(path);
                if paths.contains(&prefix) {
                    problems.push(field("paths", format!("path `{path}` is listed twice")));
                }
                paths.push(prefix);
            }
        }
    }
    if raw.directory.trim().is_empty() {
        problems.push(field("directory", "must name the directory of the site's files".into()));
    }
    let dir = file.parent().unwrap_or(Path::new("."));
    let directory = dir.join(&raw.directory);
    if !raw.directory.trim().is_empty() && !directory.is_dir() {
        let msg = format!("`{}` is not a directory", directory.display());
        problems.push(field("directory", msg));
    }
    let index = raw.index.unwrap_or_else(|| DEFAULT_INDEX.to_string());
    if index.is_empty() || index.contains(['/', '\\']) || index.starts_with('.') {
        let msg = format!("`{index}` must be a file name, such as `{DEFAULT_INDEX}`");
        problems.push(field("index", msg));
    }
    let max_age = match raw.max_age.as_deref().map(humantime::parse_duration) {
        None => Duration::ZERO,
        Some(Ok(age)) if age <= MAX_MAX_AGE => age,
        Some(Ok(_)) => {
            problems.push(field("max_age", "at most a year (365d)".into()));
            Duration::ZERO
        }
        Some(Err(e)) => {
            let msg = format!(
                "`{}` is not a duration such as `1h` or `7d`: {e}",
                raw.max_age.unwrap_or_default()
            );
            problems.push(field("max_age", msg));
            Duration::ZERO
        }
    };
    let spec = WebsiteSpec {
        name,
        file: file.to_path_buf(),
        description: raw.description,
        paths,
        directory,
        index,
        max_age,
        directory_location: yaml::locate(text, &["directory"]),
        paths_location: yaml::locate(text, &["paths"]),
    };
    if problems.is_empty() { Ok(spec) } else { Err(problems) }
}

/// `/chat/` is written for `/chat`: a prefix is kept without its trailing slash.
fn normalized(path: &str) -> String {
    match path.trim_end_matches('/') {
        "" => "/".to_string(),
        p => p.to_string(),
    }
}

fn prefix_problem(path: &str) -> Option<String> {
    if !path.starts_with('/') {
        return Some(format!("path `{path}` must start with `/`"));
    }
    if let Some(c) = path.chars().find(|c| c.is_whitespace() || c.is_control()) {
        return Some(format!("path `{path}` contains {c:?}"));
    }
    if let Some(c) = path.chars().find(|c| matches!(c, '?' | '#' | '%' | '\\' | '*')) {
        return Some(format!("path `{path}` contains {c:?}: a path is a plain URL prefix"));
    }
    if path.split('/').any(|s| s == "." || s == "..") {
        return Some(format!("path `{path}` has a `.` or `..` segment"));
    }
    let prefix = normalized(path);
    let reserved = RESERVED.iter().find(|r| prefix == **r || prefix.starts_with(&format!("{r}/")));
    if let Some(r) = reserved {
        return Some(format!("path `{path}` is reserved: tern serves {r} itself"));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_in(dir: &Path, text: &str) -> Result<WebsiteSpec, Vec<Diagnostic>> {
        parse(&dir.join("site.yaml"), text)
    }

    #[test]
    fn a_site_resolves_its_directory_and_normalizes_its_paths() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("www")).unwrap();
        let spec = parse_in(dir.path(), "paths: [/, /chat/]\ndirectory: www\nmax_age: 1h\n")
            .expect("valid");
        assert_eq!(spec.paths, ["/", "/chat"]);
        assert_eq!(spec.directory, dir.path().join("www"));
        assert_eq!(spec.index, "index.html");
        assert_eq!(spec.max_age, Duration::from_secs(3600));
    }

    #[test]
    fn bad_fields_are_each_named() {
        let dir = tempfile::tempdir().unwrap();
        let text = "paths: [chat, /ws/channel/x, /a/../b, /x?y]\ndirectory: nowhere\nindex: ../secret\nmax_age: 400d\n";
        let problems = parse_in(dir.path(), text).unwrap_err();
        let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
        let all = text.join("\n");
        assert!(all.contains("path `chat` must start with `/`"), "{all}");
        assert!(all.contains("reserved: tern serves /ws/channel itself"), "{all}");
        assert!(all.contains("`.` or `..` segment"), "{all}");
        assert!(all.contains("contains '?'"), "{all}");
        assert!(all.contains("field `directory`"), "{all}");
        assert!(all.contains("field `index`"), "{all}");
        assert!(all.contains("field `max_age`: at most a year"), "{all}");
        assert!(all.contains("site.yaml:1:"), "located: {all}");
    }

    #[test]
    fn unknown_keys_and_missing_fields_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let problems = parse_in(dir.path(), "paths: [/]\ndirectroy: www\n").unwrap_err();
        assert!(problems[0].to_string().contains("directroy"), "{}", problems[0]);
    }
}
