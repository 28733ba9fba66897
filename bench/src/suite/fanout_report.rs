//! The fan-out and idle-memory tables of the report: tern's raw bridge and tern's
//! Centrifugo endpoint, each with its ratio to nats-server measured in the same run.

use std::fmt::Write as _;

use super::{fanout::Case, report::Results};
use crate::fanout::{Outcome, Protocol};

impl Results {
    /// The run of `server` on the same case as `case`.
    pub(super) fn twin(&self, case: &Case, server: Protocol) -> Option<&Case> {
        self.fanout.iter().find(|c| {
            c.server == server
                && (c.subscribers, c.size, c.rate) == (case.subscribers, case.size, case.rate)
        })
    }

    /// The distinct cases of the run, in the order they ran (one entry per case).
    fn fanout_cases(&self) -> Vec<&Case> {
        let mut cases: Vec<&Case> = Vec::new();
        for c in &self.fanout {
            let key = (c.subscribers, c.size, c.rate);
            if !cases.iter().any(|k| (k.subscribers, k.size, k.rate) == key) {
                cases.push(c);
            }
        }
        cases
    }

    /// One row per case: the three servers side by side, and each tern protocol's
    /// deliveries/s against NATS's.
    pub(super) fn fanout_table(&self, md: &mut String) {
        let _ = writeln!(
            md,
            "## WebSocket fan-out: one publisher, S subscribers on one channel\n\n\
             Same load generator for all three (`tern-bench fanout`): tern's raw bridge \
             `/ws/channel/bench` (raw); tern's Centrifugo client protocol v2 in JSON on \
             `/connection/websocket` (cf: anonymous connect, subscribe, one publish command \
             per message, publications as pushes); nats-server's WebSocket listener with the \
             NATS protocol. Latency is publish to delivery, from a timestamp in the payload. \
             Rate 0 is full speed. The target (holds) is judged on the raw bridge.\n\n\
             | S | bytes | msg/s | raw deliveries/s | cf deliveries/s | NATS deliveries/s | raw / NATS | cf / NATS | raw p50 / p99 / max ms | cf p50 / p99 / max ms | NATS p50 / p99 / max ms | holds |\n\
             |---|---|---|---|---|---|---|---|---|---|---|---|"
        );
        for case in self.fanout_cases() {
            let [raw, cf, nats] =
                [Protocol::Tern, Protocol::Centrifuge, Protocol::Nats].map(|p| self.twin(case, p));
            let cell = |c: Option<&Case>| match c.map(|c| &c.result) {
                Some(Ok(o)) => (
                    format!("{:.0}", o.deliveries_per_sec),
                    format!("{:.2} / {:.2} / {:.2}", o.p50_ms, o.p99_ms, o.max_ms),
                ),
                Some(Err(e)) => ("failed".into(), e.chars().take(80).collect()),
                None => ("-".into(), "-".into()),
            };
            let ratio = |c: Option<&Case>| match (c.map(|c| &c.result), nats.map(|n| &n.result)) {
                (Some(Ok(t)), Some(Ok(n))) => ratio_of(t, n),
                _ => "-".into(),
            };
            let (raw_rate, raw_lat) = cell(raw);
            let (cf_rate, cf_lat) = cell(cf);
            let (n_rate, n_lat) = cell(nats);
            let holds = match raw.zip(nats) {
                Some((r, n)) => self.verdict(Some(fanout_holds(r, n))),
                None => "-",
            };
            let _ = writeln!(
                md,
                "| {} | {} | {} | {raw_rate} | {cf_rate} | {n_rate} | {} | {} | {raw_lat} | {cf_lat} | {n_lat} | {holds} |",
                case.subscribers,
                case.size,
                if case.rate == 0 { "full".to_string() } else { case.rate.to_string() },
                ratio(raw),
                ratio(cf),
            );
        }
        md.push('\n');
    }

    /// RSS per idle subscribed connection, per server.
    pub(super) fn idle_table(&self, md: &mut String) {
        let _ = writeln!(
            md,
            "## Memory per idle WebSocket connection (subscribed, server RSS)\n\n\
             | server | connections | RSS before KiB | RSS after KiB | KiB per connection |\n\
             |---|---|---|---|---|"
        );
        for i in &self.idle {
            let _ = writeln!(
                md,
                "| {:?} | {} | {} | {} | {:.2} |",
                i.server, i.connections, i.rss_before_kib, i.rss_after_kib, i.kib_per_connection
            );
        }
        md.push('\n');
    }
}

fn ratio_of(tern: &Outcome, nats: &Outcome) -> String {
    format!("{:.2}x", tern.deliveries_per_sec / nats.deliveries_per_sec)
}

/// At a fixed rate both deliver what is published, so p99 decides; at full speed tern
/// must also deliver at least as fast.
pub(super) fn fanout_holds(tern: &Case, nats: &Case) -> bool {
    match (&tern.result, &nats.result) {
        (Ok(t), Ok(n)) => {
            (tern.rate > 0 || t.deliveries_per_sec >= n.deliveries_per_sec) && t.p99_ms <= n.p99_ms
        }
        (Ok(_), Err(_)) => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn case(server: Protocol, subscribers: usize, deliveries_per_sec: f64) -> Case {
        let outcome = Outcome {
            subscribers,
            messages: 20,
            size: 64,
            rate: 0,
            deliveries: 20 * subscribers,
            seconds: 0.1,
            deliveries_per_sec,
            p50_ms: 1.0,
            p99_ms: 2.0,
            max_ms: 3.0,
        };
        Case { server, result: Ok(outcome), subscribers, size: 64, rate: 0 }
    }

    #[test]
    fn each_case_is_one_row_with_both_tern_protocols_against_nats() {
        let mut results = super::super::report::tests::good_run(false);
        results.fanout = vec![
            case(Protocol::Tern, 10, 3000.0),
            case(Protocol::Centrifuge, 10, 1000.0),
            case(Protocol::Nats, 10, 2000.0),
            case(Protocol::Tern, 1000, 4000.0),
            case(Protocol::Centrifuge, 1000, 1000.0),
            case(Protocol::Nats, 1000, 4000.0),
        ];
        results.fanout[4].result = Err("closed by the server".into());
        let mut md = String::new();
        results.fanout_table(&mut md);
        let rows: Vec<&str> = md.lines().filter(|l| l.starts_with("| 10")).collect();
        assert_eq!(rows.len(), 2, "{md}");
        assert!(rows[0].starts_with("| 10 | 64 | full | 3000 | 1000 | 2000 | 1.50x | 0.50x |"));
        assert!(rows[0].ends_with("| yes |"), "{}", rows[0]);
        assert!(rows[1].starts_with("| 1000 | 64 | full | 4000 | failed | 4000 | 1.00x | - |"));
    }
}
