//! `tern serve --watch` and `tern dev`: watch the project's YAML and components (and, for
//! `dev`, the function crates' sources), and reload (after rebuilding) when they change.
//!
//! Events are collected for a short quiet period first: an editor's save or a cargo build
//! is many events, and one reload should follow, not twenty.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use notify::{RecursiveMode, Watcher as _};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::{cli::FunctionCrate, config::Project, server::App};

/// How long changes must stop before tern acts on them.
const QUIET: Duration = Duration::from_millis(300);

/// What is watched.
pub struct WatchSet {
    /// The project directory: its `tern.yaml`, `functions/` and `messaging/` are watched.
    project: PathBuf,
    /// The components the functions name; their directories are watched.
    components: Vec<PathBuf>,
    /// The websites' directories, watched with all they hold.
    sites: Vec<PathBuf>,
    /// Function crates (`tern dev` only): a change to one rebuilds it.
    crates: Vec<FunctionCrate>,
}

/// What a changed path calls for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Change {
    /// Reload the project.
    Project,
    /// Rebuild this crate (index into `crates`), then reload.
    Crate(usize),
}

impl WatchSet {
    /// Watches `dir`, the components of `project`, and `crates`.
    pub fn new(dir: &Path, project: &Project, crates: Vec<FunctionCrate>) -> Self {
        let absolute = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
        let components = project.functions.iter().map(|f| absolute(&f.source)).collect();
        let sites = project.websites.iter().map(|w| absolute(&w.directory)).collect();
        Self { project: absolute(dir), components, sites, crates }
    }

    fn classify(&self, path: &Path) -> Option<Change> {
        if self.components.iter().any(|c| c == path)
            || self.sites.iter().any(|s| path.starts_with(s))
        {
            return Some(Change::Project);
        }
        let in_build_output =
            |root: &Path| path.strip_prefix(root).is_ok_and(|rest| rest.starts_with("target"));
        for (i, krate) in self.crates.iter().enumerate() {
            if path.starts_with(&krate.dir) && !in_build_output(&krate.dir) {
                return Some(Change::Crate(i));
            }
        }
        let rest = path.strip_prefix(&self.project).ok()?;
        // A `functions/` or `messaging/` made after the start: reload, and watch it.
        if ["functions", "messaging", "websites"].iter().any(|d| rest == Path::new(d)) {
            return Some(Change::Project);
        }
        let hidden = rest.components().any(|c| c.as_os_str().to_string_lossy().starts_with('.'));
        let yaml = path.extension().is_some_and(|x| x == "yaml" || x == "yml");
        (yaml && !hidden && !rest.starts_with("target")).then_some(Change::Project)
    }

    /// The directories to watch: the project's, each component's, each crate's.
    fn roots(&self) -> Vec<(PathBuf, RecursiveMode)> {
        // Only where YAML lives: a recursive watch of the project would also watch a
        // `target/` inside it, thousands of directories busy during every build.
        let mut roots = vec![(self.project.clone(), RecursiveMode::NonRecursive)];
        for sub in ["functions", "messaging", "websites"] {
            let dir = self.project.join(sub);
            if dir.is_dir() {
                roots.push((dir, RecursiveMode::NonRecursive));
            }
        }
        for c in &self.components {
            if let Some(parent) = c.parent().filter(|p| p.is_dir()) {
                roots.push((parent.to_path_buf(), RecursiveMode::NonRecursive));
            }
        }
        for dir in self.sites.iter().chain(self.crates.iter().map(|k| &k.dir)) {
            roots.push((dir.clone(), RecursiveMode::Recursive));
        }
        roots.sort();
        roots.dedup_by(|a, b| a.0 == b.0);
        roots
    }
}

impl WatchSet {
    /// Takes in what a reload may have added: components of new functions, a new
    /// `functions/` or `messaging/` directory.
    fn refresh(&mut self, watcher: &mut notify::RecommendedWatcher) {
        let (project, _) = Project::read(&self.project);
        let fresh = WatchSet::new(&self.project, &project, Vec::new());
        self.components = fresh.components;
        self.sites = fresh.sites;
        for (root, mode) in self.roots() {
            // Watching a directory again is harmless; one that cannot be watched was
            // reported at the start.
            let _ = watcher.watch(&root, mode);
        }
    }
}

/// A started watcher and the paths it reports.
pub struct Watching {
    watcher: notify::RecommendedWatcher,
    changed: mpsc::Receiver<PathBuf>,
}

/// Starts watching `set`'s files, or says why it cannot (then reload with SIGHUP). Done
/// before the host says it is listening, so that no edit made after that line is missed.
pub fn start(set: &WatchSet) -> Option<Watching> {
    let (tx, changed) = mpsc::channel::<PathBuf>(1024);
    let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        // Reading a file is an event too (opened, closed): a reload reads every YAML file
        // and component, and must not set off the next one.
        if let Ok(event) = event
            && !event.kind.is_access()
            && !event.kind.is_other()
        {
            for path in event.paths {
                // A full queue already means "something changed": dropping is fine.
                let _ = tx.try_send(path);
            }
        }
    });
    let mut watcher = match watcher {
        Ok(w) => w,
        Err(e) => {
            tracing::error!(error = %e, "cannot watch the project: reload with SIGHUP instead");
            return None;
        }
    };
    for (root, mode) in set.roots() {
        if let Err(e) = watcher.watch(&root, mode) {
            tracing::warn!(path = %root.display(), error = %e, "cannot watch");
        }
    }
    Some(Watching { watcher, changed })
}

/// Reloads `app` on the changes `watching` reports in `set`, until `shutdown`. In `dev`
/// mode what changed is printed on stdout.
pub async fn run(
    app: Arc<App>,
    mut set: WatchSet,
    watching: Watching,
    dev: bool,
    shutdown: CancellationToken,
) {
    let Watching { mut watcher, changed: mut rx } = watching;
    tracing::info!(project = %set.project.display(), "watching for changes");
    loop {
        let first = tokio::select! {
            () = shutdown.cancelled() => return,
            path = rx.recv() => match path { Some(p) => p, None => return },
        };
        let mut changes = Vec::new();
        changes.extend(set.classify(&first));
        // Collect until quiet.
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(QUIET) => break,
                path = rx.recv() => match path {
                    Some(p) => changes.extend(set.classify(&p)),
                    None => return,
                },
            }
        }
        if changes.is_empty() {
            continue;
        }
        changes.sort_by_key(|c| match c {
            Change::Project => usize::MAX,
            Change::Crate(i) => *i,
        });
        changes.dedup();
        let mut built = true;
        for change in &changes {
            if let Change::Crate(i) = change {
                let krate = set.crates[*i].clone();
                say(dev, &format!("rebuilding {}", krate.package));
                let result = tokio::task::spawn_blocking(move || krate.build()).await;
                if let Ok(Err(e)) | Err(e) = result.map_err(anyhow::Error::from) {
                    say(dev, &format!("build failed: {e:#}"));
                    built = false;
                }
            }
        }
        if !built {
            continue;
        }
        let outcome = app.reload(&set.project).await;
        // What the build wrote and the reload read is not a new change; a save during the
        // build is, but its rebuild already read it.
        while rx.try_recv().is_ok() {}
        if outcome.is_ok() {
            set.refresh(&mut watcher);
        }
        match outcome {
            Ok(reloaded) => say(
                dev,
                &format!(
                    "reloaded (generation {}, {} ms): {}",
                    reloaded.generation, reloaded.elapsed_ms, reloaded.changes
                ),
            ),
            Err(problems) => say(
                dev,
                &format!("reload refused, still serving the previous version:\n{problems}"),
            ),
        }
    }
}

/// Prints `line` on stdout in `dev` mode; `serve --watch` only logs (from `reload`).
fn say(dev: bool, line: &str) {
    if dev {
        println!("{line}");
    } else {
        tracing::info!("{line}");
    }
}
