//! HTTP function throughput and latency with wrk: tern's `hello` against the same function
//! as a native hyper server (the ceiling) and as a wasi:http component in `wasmtime serve`.

use std::{net::SocketAddr, process::Command, time::Duration};

use anyhow::{Context, bail};
use serde::Serialize;

use super::{
    Plan, Tools,
    process::{Server, free_addr, wait_ok},
};

/// One wrk run.
#[derive(Debug, Clone, Serialize)]
pub struct Load {
    /// Which server.
    pub server: String,
    /// Concurrent connections.
    pub connections: u32,
    /// Requests per second.
    pub rps: f64,
    /// Median latency.
    pub p50_ms: f64,
    /// 99th percentile latency.
    pub p99_ms: f64,
    /// Responses that were not 2xx, plus socket errors: must be 0 for the figure to count.
    pub errors: u64,
}

/// The query every server answers.
const PATH: &str = "/hello?name=tern";

/// Runs the three servers (those installed) at 1 and 64 connections.
pub fn run(plan: &Plan, tools: &Tools) -> anyhow::Result<Vec<Load>> {
    let mut loads = Vec::new();
    for kind in ["native", "tern", "wasmtime serve"] {
        let Some(mut server) = start(kind, plan, tools)? else {
            eprintln!("  {kind}: skipped (not installed)");
            continue;
        };
        server.wait_listening(Duration::from_secs(30))?;
        wait_ok(server.addr, PATH, Duration::from_secs(10))
            .with_context(|| format!("{kind} does not answer {PATH}"))?;
        // Warm up: pools, caches, the kernel's socket state.
        let warmup = wrk(server.addr, 64, plan.warmup)?;
        if warmup.errors > 0 {
            bail!("{kind}: wrk saw {} errors while warming up", warmup.errors);
        }
        for connections in [1, 64] {
            let mut load = wrk(server.addr, connections, plan.http_seconds)?;
            load.server = kind.to_string();
            eprintln!(
                "  {kind:>14} c={connections:<3} {:>9.0} req/s  p50 {:.3} ms  p99 {:.3} ms",
                load.rps, load.p50_ms, load.p99_ms
            );
            loads.push(load);
        }
    }
    Ok(loads)
}

fn start(kind: &str, plan: &Plan, tools: &Tools) -> anyhow::Result<Option<Server>> {
    let addr = free_addr()?;
    let log = plan.out.join(format!("http-{}.log", kind.replace(' ', "-")));
    let command = match kind {
        "native" => {
            let mut c = Command::new(&tools.tern_bench);
            c.args(["native-hello", "--listen", &addr.to_string()]);
            c
        }
        "tern" => {
            let mut c = Command::new(&tools.tern);
            c.arg("serve").arg(plan.repo.join("examples/hello"));
            c.args(["--listen", &addr.to_string()]).env("TERN_LOG", "warn");
            c
        }
        _ => {
            let Some(wasmtime) = &tools.wasmtime else { return Ok(None) };
            let mut c = Command::new(wasmtime);
            c.args(["serve", "-S", "cli", "--addr", &addr.to_string()])
                .arg(&tools.wasi_http_hello)
                .env("RUST_BACKTRACE", "0");
            c
        }
    };
    Server::spawn(kind, command, addr, &log).map(Some)
}

/// Runs `wrk -t1 -cN -dS --latency` against the benchmark path.
pub fn wrk(addr: SocketAddr, connections: u32, seconds: u32) -> anyhow::Result<Load> {
    let out = Command::new("wrk")
        .args(["-t1", &format!("-c{connections}"), &format!("-d{seconds}s"), "--latency"])
        .arg(format!("http://{addr}{PATH}"))
        .output()
        .context("cannot run wrk (apt-get install wrk)")?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!("wrk failed: {}{}", text, String::from_utf8_lossy(&out.stderr));
    }
    parse_wrk(&text).with_context(|| format!("cannot read wrk's output:\n{text}"))
}

/// Reads requests/s, the 50% and 99% latency lines and the error counts.
fn parse_wrk(text: &str) -> anyhow::Result<Load> {
    let field = |prefix: &str| {
        text.lines().find_map(|l| l.trim().strip_prefix(prefix).map(|v| v.trim().to_string()))
    };
    let rps: f64 = field("Requests/sec:").context("no Requests/sec")?.parse()?;
    let p50_ms = duration_ms(&field("50%").context("no 50% line")?)?;
    let p99_ms = duration_ms(&field("99%").context("no 99% line")?)?;
    let non_2xx: u64 =
        field("Non-2xx or 3xx responses:").map(|v| v.parse()).transpose()?.unwrap_or(0);
    let socket_errors: u64 = field("Socket errors:")
        .map(|v| {
            v.split(',')
                .filter_map(|part| part.split_whitespace().last()?.parse::<u64>().ok())
                .sum()
        })
        .unwrap_or(0);
    let connections = text
        .lines()
        .find_map(|line| line.trim().split(" threads and ").nth(1))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    Ok(Load {
        server: String::new(),
        connections,
        rps,
        p50_ms,
        p99_ms,
        errors: non_2xx + socket_errors,
    })
}

/// wrk's `64.00us`, `1.45ms`, `2.01s` in milliseconds.
fn duration_ms(text: &str) -> anyhow::Result<f64> {
    let split = text.find(|c: char| c.is_ascii_alphabetic()).context("no unit")?;
    let (value, unit) = text.split_at(split);
    let value: f64 = value.parse()?;
    Ok(match unit {
        "us" => value / 1000.0,
        "ms" => value,
        "s" => value * 1000.0,
        "m" => value * 60_000.0,
        other => bail!("unknown unit {other}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "Running 3s test @ http://127.0.0.1:1/hello?name=tern
  1 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   830.51us  200.00us   3.00ms   80.00%
  Latency Distribution
     50%  794.00us
     75%    1.00ms
     90%    1.20ms
     99%    1.66ms
  203262 requests in 3.00s, 25.00MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 4
Requests/sec:  67754.03
Transfer/sec:      8.33MB
";

    #[test]
    fn wrk_output_is_read() {
        let load = parse_wrk(SAMPLE).unwrap();
        assert_eq!(load.connections, 64);
        assert!((load.rps - 67754.03).abs() < 1e-6);
        assert!((load.p50_ms - 0.794).abs() < 1e-9);
        assert!((load.p99_ms - 1.66).abs() < 1e-9);
        assert_eq!(load.errors, 7);
    }
}
