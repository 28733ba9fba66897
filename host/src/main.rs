//! The `tern` binary: parses the command line, sets up logging and signals, and runs.

use std::{io::Write as _, process::ExitCode};

use clap::Parser;
use tokio_util::sync::CancellationToken;

// Every request allocates its WIT request and response, hyper's buffers and a store: with
// mimalloc instead of glibc's malloc, `hello` at 64 connections went from 57-60k to 66-69k
// requests/s on 2 cores (wrk -t1 -c64, back-to-back runs).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = tern::cli::Cli::parse();
    let json = cli.log_format == tern::cli::LogFormat::Json;
    let logging = tern::logging::Logging::init(cli.command.default_log_level(), json);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(async {
        logging.report_dropped(std::time::Duration::from_secs(10));
        let shutdown = CancellationToken::new();
        tokio::spawn(cancel_on_signal(shutdown.clone()));
        tern::cli::run(cli, shutdown).await
    });
    let dropped = logging.dropped_lines();
    if dropped > 0 {
        tracing::warn!(total = dropped, "log lines dropped: stderr was not read fast enough");
    }
    // Flush the log first, so that a report of what went wrong comes last.
    drop(logging);
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(report) => {
            let _ = writeln!(std::io::stderr(), "{report}");
            ExitCode::FAILURE
        }
    }
}

/// Cancels `shutdown` on the first SIGINT or SIGTERM; a second one exits at once.
async fn cancel_on_signal(shutdown: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) =
        (signal(SignalKind::terminate()), signal(SignalKind::interrupt()))
    else {
        tracing::error!("cannot install signal handlers");
        return;
    };
    let name = next_signal(&mut term, &mut int).await;
    // Log before cancelling: an idle host finishes shutting down, and drops this task,
    // within a millisecond of the cancel. The log never blocks (a full queue drops lines).
    tracing::info!("{name}: shutting down (send it again to exit at once)");
    shutdown.cancel();
    let name = next_signal(&mut term, &mut int).await;
    // Straight to stderr: the log thread may be stuck behind a reader that stopped reading.
    let _ = writeln!(std::io::stderr(), "{name} during shutdown: exiting at once");
    std::process::exit(1);
}

/// The name of the next SIGTERM or SIGINT received.
async fn next_signal(
    term: &mut tokio::signal::unix::Signal,
    int: &mut tokio::signal::unix::Signal,
) -> &'static str {
    tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    }
}
