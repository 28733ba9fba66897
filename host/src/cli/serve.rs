//! `tern check`, `tern serve` and the serving half of `tern dev`.

use std::{
    io::Write,
    path::{Path, PathBuf},
    sync::Arc,
};

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::{ServeOptions, build::FunctionCrate};
use crate::{
    admin::{self, Admin, key::AdminKey},
    config::{Diagnostics, Project, Settings, cluster::ClusterSettings},
    runtime::cache::ComponentCache,
    server::{self, App, inventory::Inventory},
    watch,
};

/// Reads the project and compiles its functions, listing every problem of both stages.
/// `host_settings`, when given, replace the project's own (a deployed version's
/// `tern.yaml` does not choose the host's ports, key or limits).
fn load(
    dir: &Path,
    shutdown: CancellationToken,
    public_url: Option<String>,
    cache: Option<ComponentCache>,
    (serving, host_settings): (bool, Option<Settings>),
) -> Result<(Project, App), Diagnostics> {
    let (mut project, mut problems) = Project::read(dir);
    let inventory = Inventory::of(&project);
    if let Some(settings) = host_settings {
        project.settings = settings;
    }
    if public_url.is_some() {
        project.settings.public_url = public_url;
    }
    if serving {
        crate::server::fd_limit::fit(&mut project.settings);
    }
    match App::build(&project, inventory, cache, shutdown) {
        Ok(app) => problems.into_result((project, app)),
        Err(more) => {
            problems.0.extend(more.0);
            Err(problems)
        }
    }
}

/// `tern check DIR`.
pub fn check(
    dir: &Path,
    cache: Option<ComponentCache>,
    shutdown: CancellationToken,
) -> Result<(), String> {
    let (project, app) =
        load(dir, shutdown, None, cache, (false, None)).map_err(|p| p.to_string())?;
    for warning in &project.warnings {
        eprintln!("warning: {warning}");
    }
    let websites = match project.websites.len() {
        0 => String::new(),
        n => format!(", {n} website(s)"),
    };
    println!(
        "ok: {} function(s), {} route(s), {} messaging config(s){websites}",
        project.functions.len(),
        app.generation().router.len(),
        project.messaging.len()
    );
    Ok(())
}

/// `tern serve DIR`; with `crates` (from `tern dev`), also rebuilds a crate that changes.
pub async fn serve(
    dir: PathBuf,
    options: ServeOptions,
    cache: Option<ComponentCache>,
    crates: Option<Vec<FunctionCrate>>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    if let Some(url) = &options.public_url
        && let Err(msg) = crate::config::bounds::check_public_url(url)
    {
        anyhow::bail!("--public-url {msg}");
    }
    // The project's own tern.yaml says where deployments live; the newest deployed
    // version, if any, is what this host served last and serves again, under the host
    // settings of this directory.
    let store = match Settings::of_project(&dir) {
        Ok(settings) => admin::store_for(&settings, &dir),
        Err(problems) => return Err(problems.into()),
    };
    let (served, host_settings) = match store.current() {
        Some(version) if !options.watch => {
            let path = store.path(version);
            tracing::warn!(
                version,
                path = %path.display(),
                "serving the deployed version, not the project directory's files (tern rollback or deploy to change it)"
            );
            // The secret file is the host's, named relative to DIR, not to the version.
            let host = Settings::of_project(&dir).ok().map(|mut settings| {
                settings.auth.secret_file = settings.auth.secret_file.map(|f| dir.join(f));
                settings
            });
            (path, host)
        }
        _ => (dir.clone(), None),
    };
    let url = options.public_url.clone();
    let (project, app) = load(&served, shutdown.clone(), url, cache, (true, host_settings))?;
    for warning in &project.warnings {
        tracing::warn!(%warning, "configuration");
    }
    let cluster_tasks = tokio_util::task::TaskTracker::new();
    if let Some(cluster) = cluster_settings(&project.settings, &options.nats) {
        let tasks = (&cluster_tasks, shutdown.clone());
        crate::cluster::join(&app, &cluster, &dir, tasks).await?;
    }
    let key = AdminKey::load(&project.settings.admin, &dir).map_err(anyhow::Error::msg)?;
    let addr = options.listen.unwrap_or(project.settings.listen);
    let listener =
        TcpListener::bind(addr).await.with_context(|| format!("cannot listen on {addr}"))?;
    let admin_addr = options.admin_listen.or(project.settings.admin.listen);
    let admin_listener = match admin_addr {
        Some(addr) => Some(
            TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on {addr} (admin)"))?,
        ),
        None => None,
    };
    let local = listener.local_addr()?;
    let generation = app.generation();
    tracing::info!(project = %served.display(), routes = generation.router.len(), "serving");
    drop(generation);
    let dev = crates.is_some();
    let watched = options.watch.then(|| {
        let set = watch::WatchSet::new(&dir, &project, crates.unwrap_or_default());
        watch::start(&set).map(|watching| (set, watching))
    });
    // One line on stdout (two with an admin listener), so scripts and tests find the ports.
    let mut stdout = std::io::stdout();
    writeln!(stdout, "listening on http://{local}")?;
    let app = Arc::new(app);
    let admin_stop = CancellationToken::new();
    // With an admin listener the server API is there only, beside reload and deploy.
    app.api_on_public.store(admin_listener.is_none(), std::sync::atomic::Ordering::Relaxed);
    if let Some(admin_listener) = admin_listener {
        writeln!(stdout, "admin on http://{}", admin_listener.local_addr()?)?;
        let admin = Admin::new(app.clone(), key, store);
        tokio::spawn(admin.serve(admin_listener, admin_stop.clone()));
    }
    stdout.flush()?;
    app.start_triggers();
    tokio::spawn(reload_on_hangup(app.clone(), shutdown.clone()));
    if let Some(Some((set, watching))) = watched {
        tokio::spawn(watch::run(app.clone(), set, watching, dev, shutdown.clone()));
    }
    let served = server::run(listener, app, shutdown).await;
    admin_stop.cancel();
    // The cluster link sends what this node published before it stopped.
    cluster_tasks.close();
    if tokio::time::timeout(std::time::Duration::from_secs(10), cluster_tasks.wait()).await.is_err()
    {
        tracing::warn!("cluster: the link did not finish within 10 s");
    }
    served?;
    tracing::info!("stopped");
    Ok(())
}

/// The cluster to join: tern.yaml's `cluster`, with `--nats` URLs in place of its own.
fn cluster_settings(settings: &Settings, nats: &[String]) -> Option<ClusterSettings> {
    match (settings.cluster.clone(), nats.is_empty()) {
        (cluster, true) => cluster,
        (Some(mut cluster), false) => {
            cluster.nats.urls = nats.to_vec();
            Some(cluster)
        }
        (None, false) => Some(ClusterSettings::from_urls(nats.to_vec())),
    }
}

/// Reloads the project served on every SIGHUP, until `shutdown`.
async fn reload_on_hangup(app: Arc<App>, shutdown: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut hangup) = signal(SignalKind::hangup()) else {
        tracing::error!("cannot install the SIGHUP handler: reload through the admin API");
        return;
    };
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            got = hangup.recv() => if got.is_none() { return },
        }
        tracing::info!("SIGHUP: reloading");
        // A refused reload is logged by `reload`; the running version keeps serving.
        let _ = app.reload_served().await;
    }
}
