//! Connections need file descriptors: a `max_connections` above the process's open-file
//! limit would turn into failed accepts under load instead of clients waiting their turn.
//! At start the soft limit is raised to the hard one, and the connection limits are fitted
//! under it.

use crate::config::Settings;

/// Descriptors kept for everything that is not a client: the listener, the epoll and
/// timer descriptors, cache files being read, the log, the WASI streams of invocations.
const RESERVED: u64 = 256;

/// Raises the open-file soft limit to the hard one and lowers `http.max_connections` and
/// `websocket.max_connections` (in proportion) when together they do not fit under it.
/// Says what it did in the log.
pub fn fit(settings: &mut Settings) {
    let limit = match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => limit,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read or raise the open-file limit");
            return;
        }
    };
    tracing::info!(open_files = limit, "open-file limit raised to the hard limit");
    let (http, ws) =
        fitted(settings.http.max_connections, settings.websocket.max_connections, limit);
    if (http, ws) != (settings.http.max_connections, settings.websocket.max_connections) {
        tracing::warn!(
            open_files = limit,
            http_max_connections = http,
            websocket_max_connections = ws,
            "http.max_connections ({}) and websocket.max_connections ({}) do not fit under the \
             open-file limit: lowered (raise the hard limit, `ulimit -Hn`, to keep them)",
            settings.http.max_connections,
            settings.websocket.max_connections,
        );
        settings.http.max_connections = http;
        settings.websocket.max_connections = ws;
    }
}

/// The connection limits that fit under `limit` descriptors, in the proportion asked for.
fn fitted(http: usize, ws: usize, limit: u64) -> (usize, usize) {
    let budget = limit.saturating_sub(RESERVED).max(2);
    let asked = (http as u64).saturating_add(ws as u64);
    if asked <= budget {
        return (http, ws);
    }
    let http_share = ((http as u128 * budget as u128) / asked as u128) as u64;
    let http_fit = http_share.clamp(1, budget - 1);
    let ws_fit = (budget - http_fit).max(1);
    (http_fit as usize, ws_fit as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_that_fit_are_kept_and_others_shared_out() {
        assert_eq!(fitted(100, 100, 1024), (100, 100));
        assert_eq!(fitted(10_000, 10_000, 20_000), (9872, 9872));
        let (h, w) = fitted(30_000, 10_000, 4096);
        assert_eq!(h + w, 4096 - RESERVED as usize);
        assert_eq!(h, 3 * w);
        assert_eq!(fitted(5, 5, 10), (1, 1));
    }
}
