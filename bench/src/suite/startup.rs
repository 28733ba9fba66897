//! Cold start: from `tern serve examples/chat` to its first 200, with and without the
//! precompiled-component cache; and the per-invocation figure criterion measured.

use std::{
    process::Command,
    time::{Duration, Instant},
};

use anyhow::Context;
use serde::Serialize;

use super::{
    Plan, Tools,
    process::{Server, free_addr, wait_ok},
};

/// Start-up times of one mode, in milliseconds.
#[derive(Debug, Clone, Serialize)]
pub struct ColdStart {
    /// `no cache` or `warm cache`.
    pub mode: String,
    /// Runs.
    pub runs: usize,
    /// Median.
    pub median_ms: f64,
    /// Fastest.
    pub min_ms: f64,
    /// Slowest.
    pub max_ms: f64,
}

/// The route of examples/chat the clock stops on.
const FIRST_REQUEST: &str = "/api/ws?room=bench";

/// Times `plan.cold_start_runs` starts without a cache, then as many with a warm one.
pub fn cold_start(plan: &Plan, tools: &Tools) -> anyhow::Result<Vec<ColdStart>> {
    let cache = plan.out.join("cold-start-cache");
    let _ = std::fs::remove_dir_all(&cache);
    let mut out = Vec::new();
    for (mode, args) in [
        ("no cache", vec!["--no-cache".to_string()]),
        ("warm cache", vec!["--cache-dir".into(), cache.display().to_string()]),
    ] {
        if mode == "warm cache" {
            time_start(plan, tools, &args).context("priming the cache")?;
        }
        let mut times = Vec::with_capacity(plan.cold_start_runs);
        for _ in 0..plan.cold_start_runs {
            times.push(time_start(plan, tools, &args)?.as_secs_f64() * 1000.0);
        }
        times.sort_by(f64::total_cmp);
        let result = ColdStart {
            mode: mode.to_string(),
            runs: times.len(),
            median_ms: times[times.len() / 2],
            min_ms: times[0],
            max_ms: times[times.len() - 1],
        };
        eprintln!(
            "  {mode:>10}: median {:.1} ms (min {:.1}, max {:.1}, {} runs)",
            result.median_ms, result.min_ms, result.max_ms, result.runs
        );
        out.push(result);
    }
    Ok(out)
}

fn time_start(plan: &Plan, tools: &Tools, extra: &[String]) -> anyhow::Result<Duration> {
    let addr = free_addr()?;
    let mut command = Command::new(&tools.tern);
    command
        .arg("serve")
        .arg(plan.repo.join("examples/chat"))
        .args(["--listen", &addr.to_string()])
        .args(extra)
        .env("TERN_LOG", "warn");
    let started = Instant::now();
    let _server = Server::spawn("tern", command, addr, &plan.out.join("cold-start.log"))?;
    wait_ok(addr, FIRST_REQUEST, Duration::from_secs(30))?;
    Ok(started.elapsed())
}

/// criterion's figures for one benchmark.
#[derive(Debug, Clone, Serialize)]
pub struct Invocation {
    /// The benchmark's name.
    pub name: String,
    /// Median time per iteration, microseconds.
    pub median_us: f64,
    /// Mean, microseconds.
    pub mean_us: f64,
}

/// Reads what `cargo bench --bench invocation` left in `target/criterion`.
pub fn invocation(plan: &Plan) -> anyhow::Result<Invocation> {
    let name = "hello_invocation";
    let file = plan.repo.join("target/criterion").join(name).join("new/estimates.json");
    let text = std::fs::read_to_string(&file).with_context(|| {
        format!("{} (run `cargo bench -p tern-bench --bench invocation` first)", file.display())
    })?;
    let json: serde_json::Value = serde_json::from_str(&text)?;
    let estimate = |key: &str| {
        json[key]["point_estimate"]
            .as_f64()
            .with_context(|| format!("no {key} in {}", file.display()))
    };
    Ok(Invocation {
        name: name.into(),
        median_us: estimate("median")? / 1000.0,
        mean_us: estimate("mean")? / 1000.0,
    })
}
