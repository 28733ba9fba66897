//! The project directory: `tern.yaml`, `functions/*.yaml`, `messaging/*.yaml`,
//! `websites/*.yaml`.
//!
//! Parsing is strict (unknown keys are errors) and every problem is collected, so that
//! `tern check` lists them all at once, each with its file, line, column and field.

pub mod access;
pub mod bounds;
pub mod channel_options;
pub mod cluster;
pub mod diagnostic;
pub mod function;
pub mod lint;
pub mod manifest;
pub mod messaging;
pub mod secret;
pub mod settings;
pub mod units;
pub mod website;
pub mod yaml;

use std::{
    collections::HashMap,
    fs,
    path::{Path, PathBuf},
};

pub use diagnostic::{Diagnostic, Diagnostics, Location};
pub use function::{FunctionSpec, HookKind, Trigger};
pub use messaging::{ChannelMatcher, MessagingSpec};
pub use settings::Settings;
pub use website::WebsiteSpec;

/// A project read from its directory and checked for consistency.
#[derive(Debug, Clone)]
pub struct Project {
    /// The directory it was read from.
    pub dir: PathBuf,
    /// Host settings (`tern.yaml`, or the defaults).
    pub settings: Settings,
    /// Functions, sorted by file name.
    pub functions: Vec<FunctionSpec>,
    /// Messaging configs, sorted by file name.
    pub messaging: Vec<MessagingSpec>,
    /// Static websites, sorted by file name.
    pub websites: Vec<WebsiteSpec>,
    /// What is allowed but probably not meant (`tern check` prints them, `serve` logs them).
    pub warnings: Vec<Diagnostic>,
}

impl Project {
    /// Reads and checks the project in `dir`, or lists every problem found.
    ///
    /// Components are only checked to exist here; whether they are valid components of the
    /// right world is the runtime's to say, since it takes compiling them.
    pub fn load(dir: &Path) -> Result<Project, Diagnostics> {
        let (project, problems) = Self::read(dir);
        problems.into_result(project)
    }

    /// Reads what can be read of the project in `dir`, and every problem found. The project
    /// holds only the files that parsed, so later stages can check those too.
    pub fn read(dir: &Path) -> (Project, Diagnostics) {
        let mut problems = Diagnostics::default();
        let mut project = Project {
            dir: dir.to_path_buf(),
            settings: Settings::default(),
            functions: Vec::new(),
            messaging: Vec::new(),
            websites: Vec::new(),
            warnings: Vec::new(),
        };
        if !dir.exists() {
            problems.push(Diagnostic::file(dir, "does not exist: expected a project directory"));
            return (project, problems);
        }
        if !dir.is_dir() {
            problems.push(Diagnostic::file(dir, "not a directory: expected a project directory"));
            return (project, problems);
        }
        project.settings = read_settings(&dir.join("tern.yaml"), &mut problems);
        let (functions, function_files) =
            read_all(&dir.join("functions"), function::parse, &mut problems);
        let (messaging, messaging_files) =
            read_all(&dir.join("messaging"), messaging::parse, &mut problems);
        let (websites, website_files) =
            read_all(&dir.join("websites"), website::parse, &mut problems);
        project.functions = functions;
        project.messaging = messaging;
        project.websites = websites;
        if let Some(sources) = manifest::deployed_sources(dir) {
            for f in &mut project.functions {
                // A deployed function runs a component of its bundle, never a file of the
                // host's that its `source` happens to name.
                f.source = match sources.get(&f.file) {
                    Some(component) => component.clone(),
                    None => dir.join(format!("components/{}-was-not-in-the-bundle.wasm", f.name)),
                };
            }
        }
        if function_files + messaging_files + website_files == 0 {
            let msg = "no functions/*.yaml, messaging/*.yaml nor websites/*.yaml: nothing to serve";
            problems.push(Diagnostic::file(dir, msg));
        }
        project.cross_check(&mut problems);
        project.warnings = lint::messaging(&project.messaging);
        (project, problems)
    }

    /// Checks what no single file can: routes defined twice, triggers naming missing
    /// messaging configs, components that do not exist.
    fn cross_check(&self, problems: &mut Diagnostics) {
        let mut routes: HashMap<(http::Method, &str), &FunctionSpec> = HashMap::new();
        for f in &self.functions {
            match &f.trigger {
                Trigger::Http { method, paths } => {
                    for path in paths {
                        if let Some(first) = routes.insert((method.clone(), path), f) {
                            let msg = format!(
                                "route {method} {path} is also defined by function `{}` ({})",
                                first.name,
                                first.file.display()
                            );
                            problems.push(Diagnostic::field(
                                &f.file,
                                f.trigger_location,
                                "trigger.paths",
                                msg,
                            ));
                        }
                    }
                }
                Trigger::Pubsub { channel } => {
                    if !self.messaging.iter().any(|m| &m.name == channel) {
                        let known: Vec<_> =
                            self.messaging.iter().map(|m| m.name.as_str()).collect();
                        let msg = format!(
                            "no messaging config named `{channel}` (messaging/*.yaml defines: {})",
                            if known.is_empty() { "none".into() } else { known.join(", ") }
                        );
                        problems.push(Diagnostic::field(
                            &f.file,
                            f.trigger_location,
                            "trigger.channel",
                            msg,
                        ));
                    }
                }
                Trigger::Rpc { .. } | Trigger::Send | Trigger::Hook(_) => {}
            }
            if let Some(msg) = lint::missing_source(&f.source) {
                problems.push(Diagnostic::field(&f.file, f.source_location, "source", msg));
            }
        }
        self.check_session_functions(problems);
        self.check_websites(problems);
    }

    /// Checks that no two websites take the same path, and that no site's directory holds
    /// the project or one of its secret files (it would serve them to anyone).
    fn check_websites(&self, problems: &mut Diagnostics) {
        let mut taken: HashMap<&str, &WebsiteSpec> = HashMap::new();
        let project = self.dir.canonicalize().unwrap_or_else(|_| self.dir.clone());
        let secrets = self.secret_files();
        for site in &self.websites {
            let Ok(served) = site.directory.canonicalize() else { continue };
            let mut refuse = |msg: String| {
                problems.push(Diagnostic::field(
                    &site.file,
                    site.directory_location,
                    "directory",
                    msg,
                ));
            };
            if project.starts_with(&served) {
                refuse(format!(
                    "`{}` holds the project itself: it would serve tern.yaml, the functions and any secret file; give the site's files a directory of their own",
                    site.directory.display()
                ));
            } else if let Some((setting, file)) =
                secrets.iter().find(|(_, f)| f.canonicalize().is_ok_and(|f| f.starts_with(&served)))
            {
                refuse(format!(
                    "`{}` holds `{}` ({setting}): a secret would be served to anyone",
                    site.directory.display(),
                    file.display()
                ));
            }
        }
        for site in &self.websites {
            for path in &site.paths {
                if let Some(first) = taken.insert(path, site) {
                    let msg = format!(
                        "path `{path}` is also served by website `{}` ({})",
                        first.name,
                        first.file.display()
                    );
                    problems.push(Diagnostic::field(&site.file, site.paths_location, "paths", msg));
                }
            }
        }
    }

    /// The files the settings read secrets from, with the setting naming each.
    fn secret_files(&self) -> Vec<(&'static str, PathBuf)> {
        let s = &self.settings;
        let mut files: Vec<(&'static str, Option<&Path>)> = vec![
            ("auth.secret_file", s.auth.secret_file.as_deref()),
            ("api.keys_file", s.api.keys_file.as_deref()),
            ("admin.key_file", s.admin.key_file.as_deref()),
        ];
        files.extend(s.auth.keys.iter().map(|k| ("auth.keys.file", Some(k.file.as_path()))));
        if let Some(nats) = s.cluster.as_ref().map(|c| &c.nats) {
            files.push(("cluster.nats.token_file", nats.token_file.as_deref()));
            files.push(("cluster.nats.password_file", nats.password_file.as_deref()));
            files.push(("cluster.nats.credentials_file", nats.credentials_file.as_deref()));
        }
        files.into_iter().filter_map(|(k, f)| Some((k, self.dir.join(f?)))).collect()
    }

    /// Checks the functions of the real-time path: one per RPC method, one `send`, and
    /// every hook a config names is a function of that hook's kind.
    fn check_session_functions(&self, problems: &mut Diagnostics) {
        let mut methods: HashMap<&str, &FunctionSpec> = HashMap::new();
        let mut send: Option<&FunctionSpec> = None;
        for f in &self.functions {
            let first = match &f.trigger {
                Trigger::Rpc { method } => methods.insert(method, f).map(|g| (g, "method")),
                Trigger::Send => send.replace(f).map(|g| (g, "send")),
                _ => None,
            };
            if let Some((first, what)) = first {
                let msg = format!(
                    "function `{}` ({}) already takes this {what}",
                    first.name,
                    first.file.display()
                );
                problems.push(Diagnostic::field(&f.file, f.trigger_location, "trigger", msg));
            }
        }
        let mut check = |name: &str, kind: HookKind, (file, at, field): (&Path, _, &str)| {
            let msg = match self.functions.iter().find(|f| f.name == name) {
                Some(f) if f.trigger == Trigger::Hook(kind) => return,
                Some(f) => format!(
                    "function `{name}` ({}) is not a {kind} hook: its trigger must be `type: {kind}`",
                    f.file.display(),
                    kind = kind.trigger_type(),
                ),
                None => format!("no function named `{name}` (functions/{name}.yaml)"),
            };
            problems.push(Diagnostic::field(file, at, field, msg));
        };
        for m in &self.messaging {
            for (kind, field, name, at) in m.hooks.named() {
                check(name, kind, (&m.file, at, field));
            }
        }
        if let Some(name) = &self.settings.hooks.connect {
            let file = self.dir.join("tern.yaml");
            check(name, HookKind::Connect, (&file, None, "hooks.connect"));
        }
    }
}

impl Settings {
    /// The host settings of the project in `dir` (its `tern.yaml`, or the defaults), or
    /// what is wrong with them.
    pub fn of_project(dir: &Path) -> Result<Settings, Diagnostics> {
        let mut problems = Diagnostics::default();
        let settings = read_settings(&dir.join("tern.yaml"), &mut problems);
        problems.into_result(settings)
    }
}

fn read_settings(file: &Path, problems: &mut Diagnostics) -> Settings {
    if !file.exists() {
        return Settings::default();
    }
    let parsed =
        yaml::read_file(file).map_err(|d| vec![d]).and_then(|text| settings::parse(file, &text));
    parsed.unwrap_or_else(|ds| {
        ds.into_iter().for_each(|d| problems.push(d));
        Settings::default()
    })
}

/// Parses every `*.yaml` / `*.yml` file of `dir` in file-name order: what parsed, and how
/// many files there were. A missing `dir` is empty.
fn read_all<T>(
    dir: &Path,
    parse: fn(&Path, &str) -> Result<T, Vec<Diagnostic>>,
    problems: &mut Diagnostics,
) -> (Vec<T>, usize) {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return (Vec::new(), 0),
        Err(e) => {
            problems.push(Diagnostic::file(dir, format!("cannot read directory: {e}")));
            return (Vec::new(), 0);
        }
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    let count = files.len();
    for file in files {
        let parsed =
            yaml::read_file(&file).map_err(|d| vec![d]).and_then(|text| parse(&file, &text));
        match parsed {
            Ok(v) => out.push(v),
            Err(ds) => ds.into_iter().for_each(|d| problems.push(d)),
        }
    }
    (out, count)
}
