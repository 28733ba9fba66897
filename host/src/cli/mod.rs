//! The `tern` command line: `serve`, `check`, `dev`, `new`, `build`, `deploy`, `rollback`.

mod build;

pub use build::FunctionCrate;
mod remote;
mod scaffold;
mod serve;

use std::{net::SocketAddr, path::PathBuf};

use clap::{Parser, Subcommand, ValueEnum};
use tokio_util::sync::CancellationToken;

use crate::runtime::cache::{CacheError, ComponentCache};

/// Run WebAssembly functions and real-time pub/sub channels from a project directory.
#[derive(Debug, Parser)]
#[command(name = "tern", version, about)]
pub struct Cli {
    /// How log lines are written to stderr.
    #[arg(long, global = true, env = "TERN_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// One human-readable line per event.
    Text,
    /// One JSON object per line.
    Json,
}

/// A `tern` subcommand.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve a project: its HTTP routes and messaging channels.
    Serve {
        /// The project directory (holding functions/, messaging/, tern.yaml).
        dir: PathBuf,
        /// What to listen on and how to reload.
        #[command(flatten)]
        options: ServeOptions,
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
    /// Build every function crate, serve, and rebuild and reload on every change.
    Dev {
        /// The project directory.
        #[arg(default_value = ".")]
        dir: PathBuf,
        /// What to listen on.
        #[command(flatten)]
        options: ServeOptions,
        /// Where compiled components are kept between runs.
        #[command(flatten)]
        cache: CacheArgs,
    },
    /// Create a function: a Rust crate under code/functions/ and its YAML.
    New(scaffold::NewArgs),
    /// Build the crate of every function the project's YAML names, for wasm32-wasip2.
    Build {
        /// The project directory.
        #[arg(default_value = ".")]
        dir: PathBuf,
    },
    /// Upload a project to a running tern, which checks it and swaps to it.
    Deploy(remote::DeployArgs),
    /// Return a running tern to an earlier deployed version.
    Rollback(remote::RollbackArgs),
}

/// How `serve` and `dev` listen.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeOptions {
    /// Address to listen on (port 0 picks a free port); overrides tern.yaml's `listen`.
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// The origin clients reach this host at, for WebSocket URLs; overrides tern.yaml.
    #[arg(long)]
    public_url: Option<String>,
    /// Address of the admin listener (metrics, health, reload, deploy); overrides
    /// tern.yaml's `admin.listen`.
    #[arg(long)]
    admin_listen: Option<SocketAddr>,
    /// Reload when the project's YAML or components change.
    #[arg(long)]
    watch: bool,
    /// A NATS server of the cluster to join (repeat for several); overrides tern.yaml's
    /// `cluster.nats.urls`. Without it, or `cluster:`, tern runs alone.
    #[arg(long = "nats", value_name = "URL")]
    nats: Vec<String>,
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

impl Command {
    /// The log level when `TERN_LOG` does not say: commands that print their own verdict
    /// log only warnings.
    pub fn default_log_level(&self) -> &'static str {
        match self {
            Command::Serve { .. } | Command::Dev { .. } => "info",
            _ => "warn",
        }
    }
}

/// Runs the command; `shutdown` is cancelled on SIGINT/SIGTERM. An error is returned as
/// the text to print, for the caller to print once the log is flushed (the log is written
/// by its own thread: printed here, the report could come before earlier log lines).
pub async fn run(cli: Cli, shutdown: CancellationToken) -> Result<(), String> {
    let open = |cache: &CacheArgs| cache.open().map_err(|e| format!("error: {e}"));
    let fail = |e: anyhow::Error| match e.downcast_ref::<crate::config::Diagnostics>() {
        Some(problems) => problems.to_string(),
        None => format!("error: {e:#}"),
    };
    match cli.command {
        Command::Check { dir, cache } => serve::check(&dir, open(&cache)?, shutdown),
        Command::Serve { dir, options, cache } => {
            serve::serve(dir, options, open(&cache)?, None, shutdown).await.map_err(fail)
        }
        Command::Dev { dir, options, cache } => {
            let cache = open(&cache)?;
            build::build_project(&dir).map_err(fail)?;
            let options = ServeOptions { watch: true, ..options };
            let crates = build::function_crates(&dir).map_err(fail)?;
            serve::serve(dir, options, cache, Some(crates), shutdown).await.map_err(fail)
        }
        Command::New(args) => scaffold::new_function(&args).map_err(fail),
        Command::Build { dir } => build::build_project(&dir).map_err(fail),
        Command::Deploy(args) => remote::deploy(&args).await.map_err(fail),
        Command::Rollback(args) => remote::rollback(&args).await.map_err(fail),
    }
}
