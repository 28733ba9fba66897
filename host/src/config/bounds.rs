//! The range of every number in the configuration, checked at parse time: a value that
//! parses but would break the server (a zero queue, a timeout of centuries, a pool too large
//! to reserve) is a located error, never a panic or a silent change of behaviour later.

use std::{path::Path, time::Duration};

use super::{
    diagnostic::Diagnostic,
    settings::Settings,
    units::{ByteSize, HumanDuration},
    yaml,
};

/// How a bounded value is written back in an error.
#[derive(Debug, Clone, Copy)]
enum Unit {
    Count,
    Bytes,
    Millis,
}

/// One value and the range it must be in.
struct Bounded {
    path: &'static [&'static str],
    value: u64,
    min: u64,
    max: u64,
    unit: Unit,
}

impl Bounded {
    fn count(path: &'static [&'static str], value: usize, min: u64, max: u64) -> Self {
        let value = u64::try_from(value).unwrap_or(u64::MAX);
        Self { path, value, min, max, unit: Unit::Count }
    }

    fn bytes(path: &'static [&'static str], value: ByteSize, min: u64, max: u64) -> Self {
        Self { path, value: value.0, min, max, unit: Unit::Bytes }
    }

    fn millis(path: &'static [&'static str], value: HumanDuration, min: Duration) -> Self {
        let value = u64::try_from(value.0.as_millis()).unwrap_or(u64::MAX);
        let min = u64::try_from(min.as_millis()).unwrap_or(u64::MAX);
        let max = u64::try_from(HumanDuration::MAX.as_millis()).unwrap_or(u64::MAX);
        Self { path, value, min, max, unit: Unit::Millis }
    }

    /// The problem with this value, if it is out of range.
    fn problem(&self) -> Option<String> {
        let show = |v: u64| match self.unit {
            Unit::Count => v.to_string(),
            Unit::Bytes => ByteSize(v).to_string(),
            Unit::Millis => humantime::format_duration(Duration::from_millis(v)).to_string(),
        };
        if self.value < self.min {
            Some(format!("{} is too small: at least {}", show(self.value), show(self.min)))
        } else if self.value > self.max {
            Some(format!("{} is too large: at most {}", show(self.value), show(self.max)))
        } else {
            None
        }
    }
}

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;
const GIB: u64 = 1024 * MIB;
/// Connections, queues and rates: far above what one process serves, far below overflow.
const MILLION: u64 = 1_000_000;
/// The pooling allocator reserves address space for every concurrent instance: past this,
/// the reservation alone would exhaust a 64-bit address space.
pub const MAX_CONCURRENT_INVOCATIONS: u64 = 10_000;
/// A wasm32 linear memory cannot be larger.
pub const MAX_FUNCTION_MEMORY: u64 = 4 * GIB;
/// The shortest ping interval and write timeout: shorter would keep a worker busy pinging.
const MIN_TICK: Duration = Duration::from_millis(10);

/// Every value of `settings` out of its range, located in `text` (the file's contents).
pub fn check_settings(settings: &Settings, file: &Path, text: &str) -> Vec<Diagnostic> {
    let (http, ws, pubsub) = (&settings.http, &settings.websocket, &settings.pubsub);
    let cf = &settings.centrifuge;
    let values = [
        Bounded::bytes(&["http", "max_body"], http.max_body, 1, GIB),
        Bounded::count(&["http", "max_connections"], http.max_connections, 1, MILLION),
        Bounded::count(
            &["http", "max_connections_per_ip"],
            http.max_connections_per_ip,
            1,
            MILLION,
        ),
        Bounded::millis(&["http", "header_read_timeout"], http.header_read_timeout, MIN_TICK),
        Bounded::millis(&["http", "body_read_timeout"], http.body_read_timeout, MIN_TICK),
        Bounded::bytes(&["http", "min_body_rate"], http.min_body_rate, 1, GIB),
        Bounded::millis(&["http", "shutdown_grace"], http.shutdown_grace, Duration::ZERO),
        Bounded::count(
            &["http", "max_concurrent_invocations"],
            http.max_concurrent_invocations,
            1,
            MAX_CONCURRENT_INVOCATIONS,
        ),
        Bounded::bytes(&["http", "max_header_size"], http.max_header_size, 8 * KIB, MIB),
        Bounded::count(&["http", "max_headers"], http.max_headers, 1, 10_000),
        Bounded::bytes(&["http", "max_response_body"], http.max_response_body, 1, GIB),
        Bounded::bytes(&["websocket", "max_message"], ws.max_message, 1, 64 * MIB),
        Bounded::millis(&["websocket", "ping_interval"], ws.ping_interval, MIN_TICK),
        Bounded::millis(&["websocket", "write_timeout"], ws.write_timeout, MIN_TICK),
        Bounded::count(
            &["websocket", "max_messages_per_second"],
            ws.max_messages_per_second as usize,
            1,
            MILLION,
        ),
        Bounded::bytes(&["websocket", "max_bytes_per_second"], ws.max_bytes_per_second, 1, GIB),
        Bounded::count(&["websocket", "max_connections"], ws.max_connections, 1, MILLION),
        Bounded::count(
            &["websocket", "max_connections_per_ip"],
            ws.max_connections_per_ip,
            1,
            MILLION,
        ),
        Bounded::count(&["pubsub", "subscriber_queue"], pubsub.subscriber_queue, 1, MILLION),
        Bounded::count(
            &["pubsub", "max_publishes_per_invocation"],
            pubsub.max_publishes_per_invocation as usize,
            1,
            MILLION,
        ),
        // 0 would stop every message, even a client's, from reaching any function.
        Bounded::count(&["pubsub", "max_hops"], pubsub.max_hops, 1, 64),
        Bounded::count(&["admin", "keep_deployments"], settings.admin.keep_deployments, 1, 1000),
        Bounded::bytes(&["admin", "max_deploy_size"], settings.admin.max_deploy_size, KIB, 4 * GIB),
        Bounded::count(
            &["realtime", "max_topics_per_connection"],
            settings.realtime.max_topics_per_connection,
            1,
            100_000,
        ),
        Bounded::millis(&["centrifuge", "ping_interval"], cf.ping_interval, MIN_TICK),
        Bounded::millis(&["centrifuge", "pong_timeout"], cf.pong_timeout, MIN_TICK),
        Bounded::millis(&["centrifuge", "connect_timeout"], cf.connect_timeout, MIN_TICK),
        Bounded::millis(
            &["centrifuge", "expired_close_delay"],
            cf.expired_close_delay,
            Duration::ZERO,
        ),
        Bounded::count(
            &["centrifuge", "max_channels_per_connection"],
            cf.max_channels_per_connection,
            1,
            100_000,
        ),
        Bounded::count(&["history", "max_channels"], settings.history.max_channels, 1, MILLION),
        Bounded::bytes(&["history", "max_bytes"], settings.history.max_bytes, KIB, 64 * GIB),
    ];
    let mut problems: Vec<Diagnostic> = values
        .iter()
        .filter_map(|b| {
            let msg = b.problem()?;
            Some(Diagnostic::field(file, yaml::locate(text, b.path), b.path.join("."), msg))
        })
        .collect();
    problems.extend(check_names(settings, file, text));
    for (field, msg) in settings.cluster.iter().flat_map(|c| c.problems()) {
        let path: Vec<&str> = field.split('.').collect();
        problems.push(Diagnostic::field(file, yaml::locate(text, &path), field, msg));
    }
    problems
}

/// The problems of `public_url` and `realtime.inbound_topic`.
fn check_names(settings: &Settings, file: &Path, text: &str) -> Vec<Diagnostic> {
    let mut problems = Vec::new();
    if let Some(msg) = settings.public_url.as_ref().and_then(|url| check_public_url(url).err()) {
        let at = yaml::locate(text, &["public_url"]);
        problems.push(Diagnostic::field(file, at, "public_url", msg));
    }
    let topic = &settings.realtime.inbound_topic;
    let msg = match crate::channel_name::ChannelName::parse(topic) {
        Err(e) => Some(e.to_string()),
        Ok(name) if name.segments().next() == Some(super::messaging::PRIVATE_SEGMENT) => {
            Some(format!("`{topic}` is a connection's private channel"))
        }
        Ok(_) => None,
    };
    if let Some(msg) = msg {
        let at = yaml::locate(text, &["realtime", "inbound_topic"]);
        problems.push(Diagnostic::field(file, at, "realtime.inbound_topic", msg));
    }
    problems
}

/// Checks that `url` is an `http://` or `https://` origin, with no path, user or query.
pub fn check_public_url(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or_else(|| format!("`{url}` must start with http:// or https://"))?;
    let authority = rest.trim_end_matches('/');
    match authority.parse::<http::uri::Authority>() {
        Ok(a) if !authority.contains('@') && !authority.is_empty() && a.as_str() == authority => {
            Ok(())
        }
        _ => Err(format!(
            "`{url}` must be an origin: http:// or https://, a host and an optional port, nothing else"
        )),
    }
}

/// The problems of one function's `execution` values.
pub fn check_execution(
    memory: Option<ByteSize>,
    concurrency: Option<usize>,
    queue: Option<usize>,
) -> Vec<(&'static [&'static str], String)> {
    let mut values = Vec::new();
    if let Some(memory) = memory {
        values.push(Bounded::bytes(
            &["execution", "memory"],
            memory,
            64 * KIB,
            MAX_FUNCTION_MEMORY,
        ));
    }
    if let Some(c) = concurrency {
        values.push(Bounded::count(
            &["execution", "concurrency"],
            c,
            1,
            MAX_CONCURRENT_INVOCATIONS,
        ));
    }
    if let Some(q) = queue {
        values.push(Bounded::count(&["execution", "queue"], q, 1, MILLION));
    }
    values.iter().filter_map(|b| Some((b.path, b.problem()?))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_url_must_be_a_bare_origin() {
        assert!(check_public_url("https://chat.example.com").is_ok());
        assert!(check_public_url("http://127.0.0.1:8080/").is_ok());
        assert!(check_public_url("ftp://x").is_err());
        assert!(check_public_url("https://user@evil.example").is_err());
        assert!(check_public_url("https://x.example/path").is_err());
        assert!(check_public_url("https://").is_err());
    }

    #[test]
    fn out_of_range_values_say_the_range() {
        let b = Bounded::count(&["pubsub", "max_hops"], 0, 1, 64);
        assert_eq!(b.problem().unwrap(), "0 is too small: at least 1");
        let b = Bounded::bytes(&["execution", "memory"], ByteSize(8 * GIB), 1, 4 * GIB);
        assert_eq!(b.problem().unwrap(), "8 GiB is too large: at most 4 GiB");
    }
}
