//! Where logs go and what may not stall or forge them.
//!
//! Lines are formatted on the async workers but written by a dedicated thread through a
//! bounded queue: a stderr reader that stops reading costs dropped (and counted) lines,
//! never a blocked request. Every line has its control characters escaped, so no logged
//! value (a function's name, a trap message with guest-chosen symbol names) can start a
//! line of its own. Warnings that remote input can cause go through a [`LogThrottle`].

use std::{
    io::{self, Write},
    sync::Mutex,
    time::{Duration, Instant},
};

use tracing_appender::non_blocking::{ErrorCounter, NonBlocking, WorkerGuard};
use tracing_subscriber::{EnvFilter, fmt::MakeWriter};

/// Log lines waiting for the writer thread before new ones are dropped (about 2 MB).
const QUEUED_LINES: usize = 10_000;

/// Keeps the writer thread alive; dropping it flushes what is queued (for at most a second).
pub struct Logging {
    _guard: WorkerGuard,
    dropped: ErrorCounter,
}

impl Logging {
    /// Installs the global subscriber: `TERN_LOG` filters (else `default_level`), lines go
    /// to stderr through the non-blocking, escaping writer, as text or (`json`) one JSON
    /// object per line.
    pub fn init(default_level: &str, json: bool) -> Logging {
        let ansi = io::IsTerminal::is_terminal(&io::stderr());
        let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
            .buffered_lines_limit(QUEUED_LINES)
            .lossy(true)
            .thread_name("tern-log")
            .finish(io::stderr());
        let dropped = writer.error_counter();
        let filter =
            EnvFilter::try_from_env("TERN_LOG").unwrap_or_else(|_| EnvFilter::new(default_level));
        let builder = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(Escaping { inner: writer, ansi: ansi && !json })
            // Its own report of a failed write is an eprintln!, which panics when stderr is
            // gone (a closed pipe): a host must keep serving, and shut down, without its log.
            .log_internal_errors(false);
        if json {
            builder.json().flatten_event(true).with_current_span(false).init();
        } else {
            builder.with_ansi(ansi).init();
        }
        Logging { _guard: guard, dropped }
    }

    /// How many lines were dropped so far because the writer could not keep up.
    pub fn dropped_lines(&self) -> usize {
        self.dropped.dropped_lines()
    }

    /// Logs, every `every`, how many lines were dropped since the last report (when any
    /// were), until the returned task is dropped with the runtime.
    pub fn report_dropped(&self, every: Duration) {
        let counter = self.dropped.clone();
        tokio::spawn(async move {
            let mut reported = 0;
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                let dropped = counter.dropped_lines();
                if dropped > reported {
                    tracing::warn!(
                        dropped = dropped - reported,
                        total = dropped,
                        "log lines dropped: stderr is not being read fast enough"
                    );
                    reported = dropped;
                }
            }
        });
    }
}

/// A writer that escapes control characters in each formatted line but its final newline
/// (and, on a terminal, the colour sequences the formatter itself writes).
#[derive(Clone)]
struct Escaping {
    inner: NonBlocking,
    ansi: bool,
}

impl<'a> MakeWriter<'a> for Escaping {
    type Writer = EscapingLine;

    fn make_writer(&'a self) -> EscapingLine {
        EscapingLine { inner: self.inner.make_writer(), ansi: self.ansi }
    }
}

struct EscapingLine {
    inner: tracing_appender::non_blocking::NonBlocking,
    ansi: bool,
}

impl Write for EscapingLine {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let line = escape_controls(buf, self.ansi);
        self.inner.write_all(&line)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// `line` with every control character but a final `\n` written as `\n`, `\r`, `\t` or
/// `\xNN`; with `ansi`, SGR colour sequences (`ESC [ digits ; m`) are kept.
pub fn escape_controls(line: &[u8], ansi: bool) -> Vec<u8> {
    let (body, newline) = match line.strip_suffix(b"\n") {
        Some(body) => (body, true),
        None => (line, false),
    };
    let mut out = Vec::with_capacity(line.len() + 8);
    let mut i = 0;
    while i < body.len() {
        let b = body[i];
        if ansi
            && b == 0x1b
            && let Some(len) = sgr_len(&body[i..])
        {
            out.extend_from_slice(&body[i..i + len]);
            i += len;
            continue;
        }
        match b {
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0..=0x1f | 0x7f => out.extend_from_slice(format!("\\x{b:02x}").as_bytes()),
            _ => out.push(b),
        }
        i += 1;
    }
    if newline {
        out.push(b'\n');
    }
    out
}

/// The length of the colour sequence `ESC [ (digits|;)* m` at the start of `s`, if any.
fn sgr_len(s: &[u8]) -> Option<usize> {
    let rest = s.strip_prefix(b"\x1b[")?;
    let params = rest.iter().take_while(|b| b.is_ascii_digit() || **b == b';').count();
    (rest.get(params) == Some(&b'm')).then_some(params + 3)
}

/// Lets through at most a burst of events per second from one call site and counts the
/// rest, so a client that causes a warning per request cannot flood the log. The next
/// event let through says how many were suppressed.
pub struct LogThrottle {
    per_second: u32,
    window: Mutex<Window>,
}

struct Window {
    start: Option<Instant>,
    admitted: u32,
    suppressed: u64,
}

impl LogThrottle {
    /// At most `per_second` events a second.
    pub const fn new(per_second: u32) -> Self {
        Self { per_second, window: Mutex::new(Window { start: None, admitted: 0, suppressed: 0 }) }
    }

    /// `Some(n)` when this event may be logged, `n` being how many were suppressed since
    /// the last one logged; None when it must not be.
    pub fn admit(&self) -> Option<u64> {
        self.admit_at(Instant::now())
    }

    fn admit_at(&self, now: Instant) -> Option<u64> {
        let mut w = self.window.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if w.start
            .is_none_or(|start| now.saturating_duration_since(start) >= Duration::from_secs(1))
        {
            w.start = Some(now);
            w.admitted = 0;
        }
        if w.admitted >= self.per_second {
            w.suppressed += 1;
            return None;
        }
        w.admitted += 1;
        Some(std::mem::take(&mut w.suppressed))
    }
}

/// Logs at `$level` (`warn`, `info`...) through a per-call-site [`LogThrottle`] of 20
/// lines a second; the line carries `suppressed=N` when earlier ones were dropped.
#[macro_export]
macro_rules! throttled {
    ($level:ident, $($arg:tt)+) => {{
        static THROTTLE: $crate::logging::LogThrottle = $crate::logging::LogThrottle::new(20);
        match THROTTLE.admit() {
            Some(0) => tracing::$level!($($arg)+),
            Some(suppressed) => tracing::$level!(suppressed, $($arg)+),
            None => {}
        }
    }};
}

/// [`throttled!`] at `warn`: for warnings that remote input can cause.
#[macro_export]
macro_rules! throttled_warn {
    ($($arg:tt)+) => { $crate::throttled!(warn, $($arg)+) };
}

/// [`throttled!`] at `info`: for lines whose rate clients decide (a function's output).
#[macro_export]
macro_rules! throttled_info {
    ($($arg:tt)+) => { $crate::throttled!(info, $($arg)+) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_cannot_start_a_line() {
        let forged = b"function=evil\nINFO forged line\r\x1b]0;x\x07 ok\n";
        assert_eq!(
            escape_controls(forged, false),
            b"function=evil\\nINFO forged line\\r\\x1b]0;x\\x07 ok\n".to_vec()
        );
    }

    #[test]
    fn colours_survive_on_a_terminal_but_nothing_else() {
        let line = b"\x1b[2mtime\x1b[0m \x1b[33mWARN\x1b[0m x=\x1b]0;t\x07\n";
        assert_eq!(
            escape_controls(line, true),
            b"\x1b[2mtime\x1b[0m \x1b[33mWARN\x1b[0m x=\\x1b]0;t\\x07\n".to_vec()
        );
    }

    #[test]
    fn the_throttle_admits_a_burst_then_counts() {
        let throttle = LogThrottle::new(3);
        let t0 = Instant::now();
        assert_eq!((0..3).map(|_| throttle.admit_at(t0)).collect::<Vec<_>>(), [Some(0); 3]);
        assert_eq!(throttle.admit_at(t0), None);
        assert_eq!(throttle.admit_at(t0), None);
        assert_eq!(throttle.admit_at(t0 + Duration::from_secs(1)), Some(2));
    }
}
