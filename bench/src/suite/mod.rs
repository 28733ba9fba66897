//! `tern-bench suite`: every benchmark of bench/README.md in one run, tern and its peers
//! side by side, written as a Markdown table and a JSON file.

mod cluster;
mod fanout;
mod fanout_report;
mod http;
pub(crate) mod process;
mod report;
mod startup;

use std::path::PathBuf;

use anyhow::{Context, bail};

/// What to run.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Tiny sizes, seconds in all: checks that every benchmark runs, measures nothing and
    /// judges no target.
    #[arg(long)]
    smoke: bool,
    /// The repository root.
    #[arg(long, default_value = ".")]
    repo: PathBuf,
    /// Where the Markdown table, the JSON file and the servers' logs go.
    #[arg(long, default_value = "target/bench")]
    out: PathBuf,
    /// Runs one section only (its table alone in the results): `cluster`.
    #[arg(long, value_parser = ["cluster"])]
    only: Option<String>,
}

/// Sizes and durations of one run.
#[derive(Debug)]
pub struct Plan {
    repo: PathBuf,
    out: PathBuf,
    smoke: bool,
    /// wrk warm-up, seconds.
    warmup: u32,
    /// wrk measurement, seconds.
    http_seconds: u32,
    /// (subscribers, payload bytes, messages per second or 0, messages).
    fanout_cases: Vec<(usize, usize, u64, usize)>,
    idle_connections: usize,
    cold_start_runs: usize,
}

/// The programs a run uses; a peer that is not installed is skipped.
#[derive(Debug)]
pub struct Tools {
    tern: PathBuf,
    tern_bench: PathBuf,
    wasi_http_hello: PathBuf,
    wasmtime: Option<PathBuf>,
    nats_server: Option<PathBuf>,
}

impl Plan {
    fn new(args: &Args) -> Self {
        let (repo, out) = (args.repo.clone(), args.out.clone());
        if args.smoke {
            return Self {
                repo,
                out,
                smoke: true,
                warmup: 1,
                http_seconds: 1,
                fanout_cases: vec![(10, 64, 100, 20), (10, 4096, 0, 20)],
                idle_connections: 100,
                cold_start_runs: 2,
            };
        }
        let mut fanout_cases = Vec::new();
        for size in [64, 4096] {
            for subscribers in [100, 1_000, 10_000] {
                // A fixed rate of 100,000 deliveries per second for 5 seconds...
                let rate = (100_000 / subscribers) as u64;
                fanout_cases.push((subscribers, size, rate, rate as usize * 5));
                // ...and full speed, about 2M deliveries (64 B) or 400k (4 KiB).
                let deliveries = if size == 64 { 2_000_000 } else { 400_000 };
                fanout_cases.push((subscribers, size, 0, (deliveries / subscribers).max(20)));
            }
        }
        Self {
            repo,
            out,
            smoke: false,
            warmup: 2,
            http_seconds: 8,
            fanout_cases,
            idle_connections: 10_000,
            cold_start_runs: 9,
        }
    }
}

impl Tools {
    fn find(plan: &Plan) -> anyhow::Result<Self> {
        let release = plan.repo.join("target/release");
        let wasm = plan.repo.join("target/wasm32-wasip2/release");
        let tools = Self {
            tern: release.join("tern"),
            tern_bench: std::env::current_exe()?,
            wasi_http_hello: wasm.join("wasi_http_hello.wasm"),
            wasmtime: which("wasmtime"),
            nats_server: which("nats-server"),
        };
        for needed in [&tools.tern, &wasm.join("hello.wasm"), &tools.wasi_http_hello] {
            anyhow::ensure!(needed.is_file(), "{} is missing: run bench/run", needed.display());
        }
        Ok(tools)
    }
}

fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(program)).find(|p| p.is_file())
}

/// Runs every benchmark and writes `results.md` and `results.json` into `args.out`; fails
/// when a benchmark did not run to the end, saying which.
pub async fn main(args: Args) -> anyhow::Result<()> {
    let plan = Plan::new(&args);
    std::fs::create_dir_all(&plan.out).with_context(|| format!("create {}", plan.out.display()))?;
    let tools = Tools::find(&plan)?;
    let mut results = report::Results::new(&plan, &tools);
    if args.only.as_deref() == Some("cluster") {
        eprintln!("== cluster: cross-node fan-out (two tern nodes on nats-server) and the hop");
        results.cluster =
            cluster::run(&plan, &tools).await.context("the cluster benchmark failed")?;
        return write(&plan, &results, |f| f.starts_with("cluster"));
    }
    eprintln!("== per-invocation cost (criterion)");
    results.invocation = startup::invocation(&plan).map_err(|e| format!("{e:#}"));
    eprintln!("== HTTP: native hyper, tern, wasmtime serve");
    results.http = http::run(&plan, &tools).context("the HTTP benchmark failed")?;
    eprintln!("== WebSocket fan-out: tern raw bridge, tern Centrifugo protocol, nats-server");
    results.fanout = fanout::run(&plan, &tools).await.context("the fan-out benchmark failed")?;
    eprintln!("== memory per idle WebSocket connection");
    results.idle = fanout::idle_memory(&plan, &tools)
        .await
        .context("the idle-connection memory benchmark failed")?;
    eprintln!("== cluster: cross-node fan-out (two tern nodes on nats-server) and the hop");
    results.cluster = cluster::run(&plan, &tools).await.context("the cluster benchmark failed")?;
    eprintln!("== cold start of examples/chat");
    results.cold_start =
        startup::cold_start(&plan, &tools).context("the cold-start benchmark failed")?;
    write(&plan, &results, |_| true)
}

/// Writes the results' Markdown and JSON under `plan.out`; fails when a run that `ran`
/// says was run failed.
fn write(plan: &Plan, results: &report::Results, ran: fn(&str) -> bool) -> anyhow::Result<()> {
    let md = plan.out.join("results.md");
    let json = plan.out.join("results.json");
    std::fs::write(&md, results.markdown())?;
    std::fs::write(&json, serde_json::to_string_pretty(&results)?)?;
    eprintln!("wrote {} and {}", md.display(), json.display());
    let failures: Vec<String> = results.failures().into_iter().filter(|f| ran(f)).collect();
    if !failures.is_empty() {
        bail!("{} benchmark run(s) failed:\n  - {}", failures.len(), failures.join("\n  - "));
    }
    Ok(())
}
