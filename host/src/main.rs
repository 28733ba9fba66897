//! The `tern` binary: parses the command line, sets up logging and signals, and runs.

use std::process::ExitCode;

use clap::Parser;
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

// Every request allocates its WIT request and response, hyper's buffers and a store: with
// mimalloc instead of glibc's malloc, `hello` at 64 connections went from 57-60k to 66-69k
// requests/s on 2 cores (wrk -t1 -c64, back-to-back runs).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = tern::cli::Cli::parse();
    // `check` prints its verdict; its progress is noise unless asked for.
    let default_level = match cli.command {
        tern::cli::Command::Check { .. } => "warn",
        tern::cli::Command::Serve { .. } => "info",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("TERN_LOG").unwrap_or_else(|_| EnvFilter::new(default_level)),
        )
        .with_writer(std::io::stderr)
        // Its own report of a failed write is an eprintln!, which panics when stderr is gone
        // (a closed pipe): a host must keep serving, and shut down, without its log.
        .log_internal_errors(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        let shutdown = CancellationToken::new();
        tokio::spawn(cancel_on_signal(shutdown.clone()));
        tern::cli::run(cli, shutdown).await
    })
}

/// Cancels `shutdown` on the first SIGINT or SIGTERM.
async fn cancel_on_signal(shutdown: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) =
        (signal(SignalKind::terminate()), signal(SignalKind::interrupt()))
    else {
        tracing::error!("cannot install signal handlers");
        return;
    };
    let name = tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    };
    // Cancel before logging: nothing the log does may stand in the way of shutting down.
    shutdown.cancel();
    tracing::info!("{name}: shutting down");
}
