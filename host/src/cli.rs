//! The `tern` command line: `serve` and `check`.

use std::{io::Write, net::SocketAddr, path::PathBuf, sync::Arc};

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::{
    config::{Diagnostics, Project},
    runtime::cache::{CacheError, ComponentCache},
    server::{self, App},
};

/// Run WebAssembly functions and real-time pub/sub channels from a project directory.
#[derive(Debug, Parser)]
#[command(name = "tern", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// A `tern` subcommand.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve a project: its HTTP routes and messaging channels.
    Serve {
        /// The project directory (holding functions/, messaging/, tern.yaml).
        dir: PathBuf,
        /// Address to listen on (port 0 picks a free port); overrides tern.yaml's `listen`.
        #[arg(long)]
        listen: Option<SocketAddr>,
        /// The origin clients reach this host at, for WebSocket URLs; overrides tern.yaml.
        #[arg(long)]
        public_url: Option<String>,
        /// Where compiled components are kept between runs.
        #[command(flatten)]
        cache: CacheArgs,
    },
    /// Check a project without serving it: exit 0, or 1 listing every problem.
    Check {
        /// The project directory.
        dir: PathBuf,
        /// Where compiled components are kept between runs.
        #[command(flatten)]
        cache: CacheArgs,
    },
}

/// The precompiled-component cache options.
#[derive(Debug, Clone, clap::Args)]
pub struct CacheArgs {
    /// Directory of precompiled components [default: $XDG_CACHE_HOME/tern or ~/.cache/tern].
    #[arg(long, env = "TERN_CACHE_DIR", value_name = "DIR")]
    cache_dir: Option<PathBuf>,
    /// Compile every component at start and keep nothing on disk (wins over --cache-dir).
    #[arg(long)]
    no_cache: bool,
}

impl CacheArgs {
    /// The cache to use, if any. One that cannot be created is reported and skipped: a
    /// read-only home directory costs start-up time, not the start. One that others could
    /// write to is refused: its entries are native code tern would run.
    fn open(&self) -> Result<Option<ComponentCache>, CacheError> {
        if self.no_cache {
            return Ok(None);
        }
        let Some(dir) = self.cache_dir.clone().or_else(ComponentCache::default_dir) else {
            return Ok(None);
        };
        match ComponentCache::open(&dir) {
            Ok(cache) => Ok(Some(cache)),
            Err(e @ CacheError::Insecure { .. }) => Err(e),
            Err(e @ CacheError::Io { .. }) => {
                tracing::warn!(error = %e, "compiling every component without a cache");
                Ok(None)
            }
        }
    }
}

/// Runs the command; `shutdown` is cancelled on SIGINT/SIGTERM. An error is returned as
/// the text to print, for the caller to print once the log is flushed (the log is written
/// by its own thread: printed here, the report could come before earlier log lines).
pub async fn run(cli: Cli, shutdown: CancellationToken) -> Result<(), String> {
    let cache = match &cli.command {
        Command::Check { cache, .. } | Command::Serve { cache, .. } => cache.open(),
    };
    let cache = cache.map_err(|e| format!("error: {e}"))?;
    match cli.command {
        Command::Check { dir, .. } => check(&dir, cache, shutdown),
        Command::Serve { dir, listen, public_url, .. } => {
            serve(dir, listen, public_url, cache, shutdown).await.map_err(|e| {
                match e.downcast_ref::<Diagnostics>() {
                    Some(problems) => problems.to_string(),
                    None => format!("error: {e:#}"),
                }
            })
        }
    }
}

/// Reads the project and compiles its functions, listing every problem of both stages.
fn load(
    dir: &std::path::Path,
    shutdown: CancellationToken,
    public_url: Option<String>,
    cache: Option<ComponentCache>,
    serving: bool,
) -> Result<(Project, App), Diagnostics> {
    let (mut project, mut problems) = Project::read(dir);
    if public_url.is_some() {
        project.settings.public_url = public_url;
    }
    if serving {
        crate::server::fd_limit::fit(&mut project.settings);
    }
    match App::build(&project, cache, shutdown) {
        Ok(app) => problems.into_result((project, app)),
        Err(more) => {
            problems.0.extend(more.0);
            Err(problems)
        }
    }
}

fn check(
    dir: &std::path::Path,
    cache: Option<ComponentCache>,
    shutdown: CancellationToken,
) -> Result<(), String> {
    let (project, app) = load(dir, shutdown, None, cache, false).map_err(|p| p.to_string())?;
    for warning in &project.warnings {
        eprintln!("warning: {warning}");
    }
    println!(
        "ok: {} function(s), {} route(s), {} messaging config(s)",
        project.functions.len(),
        app.router.len(),
        project.messaging.len()
    );
    Ok(())
}

async fn serve(
    dir: PathBuf,
    listen: Option<SocketAddr>,
    public_url: Option<String>,
    cache: Option<ComponentCache>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    if let Some(url) = &public_url
        && let Err(msg) = crate::config::bounds::check_public_url(url)
    {
        anyhow::bail!("--public-url {msg}");
    }
    let (project, app) = load(&dir, shutdown.clone(), public_url, cache, true)?;
    for warning in &project.warnings {
        tracing::warn!(%warning, "configuration");
    }
    let addr = listen.unwrap_or(project.settings.listen);
    let listener =
        TcpListener::bind(addr).await.with_context(|| format!("cannot listen on {addr}"))?;
    let local = listener.local_addr()?;
    tracing::info!(project = %dir.display(), routes = app.router.len(), "serving");
    // Exactly one line on stdout, so scripts and tests can find the port.
    let mut stdout = std::io::stdout();
    writeln!(stdout, "listening on http://{local}")?;
    stdout.flush()?;
    app.start_triggers();
    server::run(listener, Arc::new(app), shutdown).await?;
    tracing::info!("stopped");
    Ok(())
}
