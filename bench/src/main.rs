//! Load generators for tern's benchmarks. Every loop is bounded and every target is a URL
//! the caller gives (loopback in `bench/run`).

mod fanout;

use clap::{Parser, Subcommand};

/// tern's load generators.
#[derive(Debug, Parser)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// WebSocket fan-out: S subscribers on one URL, one publisher on another (or the same).
    Fanout(fanout::Args),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        match cli.command {
            Command::Fanout(args) => fanout::run(args).await,
        }
    })
}
