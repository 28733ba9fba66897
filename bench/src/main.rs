//! tern's benchmarks: load generators, the native baseline server, and the suite that runs
//! them all against tern and its peers. Every loop is bounded and every target is a URL or
//! server on loopback.

mod centrifuge;
mod fanout;
mod hooks;
mod native_hello;
mod nats;
pub(crate) mod suite;

use clap::{Parser, Subcommand};

/// tern's benchmarks.
#[derive(Debug, Parser)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Every benchmark, tern and its peers side by side: writes results.md and results.json.
    Suite(suite::Args),
    /// WebSocket fan-out: S subscribers on one URL, one publisher on another (or the same).
    Fanout(fanout::Args),
    /// The native hyper `hello` server, the ceiling of the HTTP benchmark.
    NativeHello(native_hello::Args),
    /// What a wasm publish hook adds to a message, and a wasm RPC to a round trip.
    Hooks(hooks::Args),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        match cli.command {
            Command::Suite(args) => suite::main(args).await,
            Command::Fanout(args) => fanout::main(args).await,
            Command::NativeHello(args) => native_hello::main(args).await,
            Command::Hooks(args) => hooks::main(args).await,
        }
    })
}
