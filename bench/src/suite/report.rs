//! The results of a run: the JSON file as serialized, and the Markdown tables with the
//! ratios and whether each target of the issue holds.

use std::{fmt::Write as _, process::Command};

use serde::Serialize;

use super::{
    Plan, Tools,
    fanout::{Case, IdleMemory},
    fanout_report::fanout_holds,
    http::Load,
    startup::{ColdStart, Invocation},
};
use crate::fanout::Protocol;

/// Everything one run measured.
#[derive(Debug, Serialize)]
pub struct Results {
    /// When, where and with what.
    pub machine: Machine,
    /// Smoke runs check that the benchmarks run; their figures mean nothing.
    pub smoke: bool,
    /// criterion's instantiate + call of `hello`.
    pub invocation: Result<Invocation, String>,
    /// wrk against each HTTP server.
    pub http: Vec<Load>,
    /// Fan-out cases.
    pub fanout: Vec<Case>,
    /// Idle-connection memory.
    pub idle: Vec<IdleMemory>,
    /// Start-up times.
    pub cold_start: Vec<ColdStart>,
    /// Cross-node fan-out and hop latency.
    pub cluster: Vec<super::cluster::ClusterCase>,
}

/// The machine and the peers' versions.
#[derive(Debug, Serialize)]
pub struct Machine {
    /// UTC date and time of the run.
    pub date: String,
    /// Cores available to the run.
    pub cores: usize,
    /// From /proc/cpuinfo.
    pub cpu: String,
    /// From /proc/sys/kernel/osrelease.
    pub kernel: String,
    /// `--version` of each program.
    pub versions: Vec<(String, String)>,
}

fn first_line(program: &std::path::Path, arg: &str) -> String {
    Command::new(program)
        .arg(arg)
        .output()
        .map(|o| {
            let text = if o.stdout.is_empty() { o.stderr } else { o.stdout };
            String::from_utf8_lossy(&text).lines().next().unwrap_or("").trim().to_string()
        })
        .unwrap_or_else(|e| format!("unavailable: {e}"))
}

impl Results {
    /// Empty results for `plan`, with the machine described.
    pub fn new(plan: &Plan, tools: &Tools) -> Self {
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|c| {
                c.lines().find_map(|l| {
                    Some(l.strip_prefix("model name")?.split(':').nth(1)?.trim().to_string())
                })
            })
            .unwrap_or_default();
        let mut versions = vec![("tern".to_string(), first_line(&tools.tern, "--version"))];
        if let Some(w) = &tools.wasmtime {
            versions.push(("wasmtime".into(), first_line(w, "--version")));
        }
        if let Some(n) = &tools.nats_server {
            versions.push(("nats-server".into(), first_line(n, "--version")));
        }
        versions.push(("wrk".into(), first_line(std::path::Path::new("wrk"), "-v")));
        Self {
            machine: Machine {
                date: first_line(std::path::Path::new("date"), "-u").to_string(),
                cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
                cpu,
                kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                    .unwrap_or_default()
                    .trim()
                    .to_string(),
                versions,
            },
            smoke: plan.smoke,
            invocation: Err("not run".into()),
            http: Vec::new(),
            fanout: Vec::new(),
            idle: Vec::new(),
            cold_start: Vec::new(),
            cluster: Vec::new(),
        }
    }

    /// Every benchmark that did not run to the end, one line each saying which and why:
    /// a run with any is a failed run, smoke or not.
    pub fn failures(&self) -> Vec<String> {
        let mut failures = Vec::new();
        if let Err(e) = &self.invocation {
            failures.push(format!("per-invocation cost (criterion): no result: {e}"));
        }
        for l in self.http.iter().filter(|l| l.errors > 0) {
            failures.push(format!(
                "HTTP {} at {} connections: wrk saw {} errors (non-2xx answers or socket errors)",
                l.server, l.connections, l.errors
            ));
        }
        for c in self.cluster.iter().filter(|c| c.result.is_err()) {
            let e = c.result.as_ref().err().map_or("", String::as_str);
            failures.push(format!("cluster {} {} S={}: {e}", c.kind, c.setup, c.subscribers));
        }
        for c in &self.fanout {
            if let Err(e) = &c.result {
                failures.push(format!(
                    "fan-out {:?} S={} {} B rate={}: {e}",
                    c.server, c.subscribers, c.size, c.rate
                ));
            }
        }
        failures
    }

    /// The verdict cell of a target: none from a smoke run, whose figures mean nothing.
    pub(super) fn verdict(&self, holds: Option<bool>) -> &'static str {
        match holds {
            _ if self.smoke => "not judged in smoke mode",
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "not measured",
        }
    }

    fn http_rps(&self, server: &str, connections: u32) -> Option<f64> {
        self.http.iter().find(|l| l.server == server && l.connections == connections).map(|l| l.rps)
    }

    /// The whole report in Markdown.
    pub fn markdown(&self) -> String {
        let mut md = String::new();
        let m = &self.machine;
        let _ = writeln!(md, "# tern benchmark results\n");
        if self.smoke {
            let _ = writeln!(md, "**Smoke run: tiny sizes, the figures mean nothing.**\n");
        }
        let _ = writeln!(md, "- Date: {}", m.date);
        let _ = writeln!(md, "- Machine: {} cores, {}, Linux {}", m.cores, m.cpu, m.kernel);
        for (name, version) in &m.versions {
            let _ = writeln!(md, "- {name}: `{version}`");
        }
        let _ = writeln!(
            md,
            "- Command: `bench/run` (all traffic on 127.0.0.1; load generators on the same cores)\n"
        );
        self.targets(&mut md);
        self.http_table(&mut md);
        self.fanout_table(&mut md);
        self.idle_table(&mut md);
        self.cold_start_table(&mut md);
        if !self.cluster.is_empty() {
            super::cluster::markdown(&self.cluster, &mut md);
        }
        md
    }

    fn targets(&self, md: &mut String) {
        let _ = writeln!(md, "## Targets\n\n| target | measured | holds |\n|---|---|---|");
        let mut row = |target: &str, measured: String, holds: Option<bool>| {
            let verdict = self.verdict(holds);
            let _ = writeln!(md, "| {target} | {measured} | {verdict} |");
        };
        let ratio = |a: Option<f64>, b: Option<f64>| Some(a? / b?);
        let native64 = ratio(self.http_rps("tern", 64), self.http_rps("native", 64));
        row(
            "HTTP, 64 connections: tern at least 0.5x native hyper",
            native64.map_or("-".into(), |r| format!("{r:.2}x")),
            native64.map(|r| r >= 0.5),
        );
        let w1 = ratio(self.http_rps("tern", 1), self.http_rps("wasmtime serve", 1));
        let w64 = ratio(self.http_rps("tern", 64), self.http_rps("wasmtime serve", 64));
        row(
            "HTTP: tern ahead of wasmtime serve (1 and 64 connections)",
            format!(
                "{} / {}",
                w1.map_or("-".into(), |r| format!("{r:.2}x")),
                w64.map_or("-".into(), |r| format!("{r:.2}x"))
            ),
            w1.zip(w64).map(|(a, b)| a > 1.0 && b > 1.0),
        );
        match &self.invocation {
            Ok(i) => row(
                "Instantiate + call `hello`: at most 10 us median",
                format!("{:.2} us", i.median_us),
                Some(i.median_us <= 10.0),
            ),
            Err(e) => row("Instantiate + call `hello`: at most 10 us median", e.clone(), None),
        }
        let verdicts: Vec<bool> = self
            .fanout
            .iter()
            .filter(|c| c.server == Protocol::Tern)
            .filter_map(|t| Some(fanout_holds(t, self.twin(t, Protocol::Nats)?)))
            .collect();
        row(
            "Fan-out: tern's raw bridge matches NATS deliveries/s with no worse p99 (each case)",
            format!("{} of {} cases", verdicts.iter().filter(|v| **v).count(), verdicts.len()),
            (!verdicts.is_empty()).then(|| verdicts.iter().all(|v| *v)),
        );
        let tern_idle = self.idle.iter().find(|i| i.server == Protocol::Tern);
        row(
            "Idle WebSocket connection: at most 16 KiB of RSS each",
            tern_idle.map_or("-".into(), |i| {
                format!("{:.1} KiB ({} connections)", i.kib_per_connection, i.connections)
            }),
            tern_idle.map(|i| i.kib_per_connection <= 16.0),
        );
        let warm = self.cold_start.iter().find(|c| c.mode == "warm cache");
        row(
            "Cold start to first 200 (examples/chat), warm cache: under 100 ms",
            warm.map_or("-".into(), |c| format!("{:.1} ms median", c.median_ms)),
            warm.map(|c| c.median_ms < 100.0),
        );
        md.push('\n');
    }

    fn http_table(&self, md: &mut String) {
        let _ = writeln!(
            md,
            "## HTTP: `GET /hello?name=tern` (`wrk -t1 -cN --latency`)\n\n\
             tern serves `examples/hello`; native is the same handler on hyper with no wasm \
             (`tern-bench native-hello`); wasmtime serve runs the same function as a wasi:http \
             component (`bench/wasi_http_hello`).\n\n\
             | server | connections | req/s | p50 ms | p99 ms | errors | tern / this |\n\
             |---|---|---|---|---|---|---|"
        );
        for l in &self.http {
            let ratio = self
                .http_rps("tern", l.connections)
                .map_or("-".into(), |t| format!("{:.2}x", t / l.rps));
            let _ = writeln!(
                md,
                "| {} | {} | {:.0} | {:.3} | {:.3} | {} | {ratio} |",
                l.server, l.connections, l.rps, l.p50_ms, l.p99_ms, l.errors
            );
        }
        if let Ok(i) = &self.invocation {
            let _ = writeln!(
                md,
                "\nIn-process instantiate + call of `hello` (criterion, `cargo bench -p tern-bench --bench invocation`): \
                 median {:.2} us, mean {:.2} us.",
                i.median_us, i.mean_us
            );
        }
        md.push('\n');
    }

    fn cold_start_table(&self, md: &mut String) {
        let _ = writeln!(
            md,
            "## Cold start: `tern serve examples/chat` to the first 200 of `GET /api/ws?room=bench`\n\n\
             | compiled components | runs | median ms | min ms | max ms |\n|---|---|---|---|---|"
        );
        for c in &self.cold_start {
            let _ = writeln!(
                md,
                "| {} | {} | {:.1} | {:.1} | {:.1} |",
                c.mode, c.runs, c.median_ms, c.min_ms, c.max_ms
            );
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::fanout::Outcome;

    fn outcome() -> Outcome {
        Outcome {
            subscribers: 10,
            messages: 20,
            size: 64,
            rate: 0,
            deliveries: 200,
            seconds: 0.1,
            deliveries_per_sec: 2000.0,
            p50_ms: 1.0,
            p99_ms: 2.0,
            max_ms: 3.0,
        }
    }

    fn case(server: Protocol, result: Result<Outcome, String>) -> Case {
        Case { server, result, subscribers: 10, size: 64, rate: 0 }
    }

    fn load(server: &str, connections: u32, errors: u64) -> Load {
        Load { server: server.into(), connections, rps: 1000.0, p50_ms: 1.0, p99_ms: 2.0, errors }
    }

    /// A run where everything ran and every target holds.
    pub(crate) fn good_run(smoke: bool) -> Results {
        Results {
            machine: Machine {
                date: "today".into(),
                cores: 2,
                cpu: "cpu".into(),
                kernel: "linux".into(),
                versions: Vec::new(),
            },
            smoke,
            invocation: Ok(Invocation {
                name: "hello_invocation".into(),
                median_us: 5.0,
                mean_us: 5.0,
            }),
            http: vec![
                load("native", 64, 0),
                load("tern", 1, 0),
                load("tern", 64, 0),
                load("wasmtime serve", 1, 0),
                load("wasmtime serve", 64, 0),
            ],
            fanout: vec![
                case(Protocol::Tern, Ok(outcome())),
                case(Protocol::Centrifuge, Ok(outcome())),
                case(Protocol::Nats, Ok(outcome())),
            ],
            idle: Vec::new(),
            cold_start: Vec::new(),
            cluster: Vec::new(),
        }
    }

    #[test]
    fn a_run_where_everything_ran_has_no_failures() {
        assert_eq!(good_run(true).failures(), Vec::<String>::new());
    }

    #[test]
    fn a_failed_case_wrk_errors_and_a_missing_criterion_result_are_failures() {
        let mut run = good_run(true);
        run.fanout[2].result = Err("closed by the server".into());
        run.http[2].errors = 3;
        run.invocation =
            Err("target/criterion/hello_invocation/new/estimates.json: not found".into());
        let failures = run.failures();
        assert_eq!(failures.len(), 3, "{failures:#?}");
        assert!(failures[0].starts_with("per-invocation cost (criterion): no result: "));
        assert!(failures[0].ends_with("estimates.json: not found"));
        assert_eq!(
            failures[1],
            "HTTP tern at 64 connections: wrk saw 3 errors (non-2xx answers or socket errors)"
        );
        assert_eq!(failures[2], "fan-out Nats S=10 64 B rate=0: closed by the server");
    }

    #[test]
    fn a_smoke_run_judges_no_target() {
        let md = good_run(true).markdown();
        assert!(md.contains("| not judged in smoke mode |"), "{md}");
        for verdict in ["| yes |", "| no |", "| **no** |", "| not measured |"] {
            assert!(!md.contains(verdict), "{verdict} in a smoke run:\n{md}");
        }
    }

    #[test]
    fn a_full_run_judges_every_target() {
        let md = good_run(false).markdown();
        assert!(md.contains("| yes |"), "{md}");
        assert!(!md.contains("not judged"), "{md}");
    }
}
