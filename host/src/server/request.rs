//! Reading a request for a function: its body within the size limit, a whole-body deadline
//! and a minimum rate (a client that announces a body and sends it slowly or never must not
//! keep its connection and its buffer), and its id.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::{HeaderValue, Request, Response, StatusCode, header};
use http_body_util::BodyExt;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::{
    config::settings::HttpSettings,
    reply::{Body, error, error_and_close},
    runtime::bindings::types,
};

/// A slow body is measured against `http.min_body_rate` only after this long: the first
/// bytes of a body may trail its headers on a slow link.
const RATE_GRACE: Duration = Duration::from_secs(5);

/// Reads the whole body of `req` into the WIT request: 413 over `http.max_body`, 408 (and
/// the connection closed) past `http.body_read_timeout` or below `http.min_body_rate`, 503
/// (closed) when the host starts shutting down meanwhile.
pub async fn read<B>(
    req: Request<B>,
    settings: &HttpSettings,
    shutdown: &CancellationToken,
) -> Result<types::Request, Response<Body>>
where
    B: hyper::body::Body<Data = Bytes> + Unpin,
    B::Error: std::fmt::Display,
{
    let max_body = settings.max_body.0;
    let too_large = || {
        let msg = format!("request body larger than the limit of {max_body} bytes");
        error_and_close(StatusCode::PAYLOAD_TOO_LARGE, &msg)
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    // A client that asked to `Expect: 100-continue` has not sent its body: refuse at once.
    let waits_for_continue = req
        .headers()
        .get(header::EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    let (parts, mut body) = req.into_parts();
    if declared.is_some_and(|len| len > max_body) {
        if !waits_for_continue {
            linger(&mut body, shutdown).await;
        }
        return Err(too_large());
    }
    let started = Instant::now();
    let give_up = started + settings.body_read_timeout.0;
    let rate = settings.min_body_rate.0.max(1);
    let mut data = BytesMut::new();
    loop {
        // The deadline for the next bytes: the whole body's, or sooner when what arrived so
        // far is below the minimum rate.
        let at_rate =
            started + RATE_GRACE + Duration::from_secs_f64(data.len() as f64 / rate as f64);
        let deadline = give_up.min(at_rate);
        let frame = tokio::select! {
            frame = body.frame() => frame,
            () = tokio::time::sleep_until(deadline) => {
                let msg = if deadline == give_up {
                    format!("request body not received within {}", settings.body_read_timeout)
                } else {
                    format!("request body arriving slower than {} per second", settings.min_body_rate)
                };
                return Err(error_and_close(StatusCode::REQUEST_TIMEOUT, &msg));
            }
            () = shutdown.cancelled() => {
                return Err(error_and_close(StatusCode::SERVICE_UNAVAILABLE, "server shutting down"));
            }
        };
        match frame {
            None => break,
            Some(Ok(frame)) => {
                if let Ok(chunk) = frame.into_data() {
                    if data.len() as u64 + chunk.len() as u64 > max_body {
                        drop(data);
                        linger(&mut body, shutdown).await;
                        return Err(too_large());
                    }
                    data.extend_from_slice(&chunk);
                }
            }
            Some(Err(e)) => {
                return Err(error(
                    StatusCode::BAD_REQUEST,
                    &format!("cannot read request body: {e}"),
                ));
            }
        }
    }
    let headers = parts
        .headers
        .iter()
        .map(|(k, v)| (k.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
        .collect();
    Ok(types::Request {
        method: parts.method.as_str().to_string(),
        path: parts.uri.path().to_string(),
        query: parts.uri.query().unwrap_or("").to_string(),
        headers,
        body: data.to_vec(),
    })
}

/// Most bytes of a refused body read and discarded before answering 413.
const LINGER_BYTES: usize = 32 * 1024 * 1024;
/// Most time spent reading them.
const LINGER_TIME: Duration = Duration::from_secs(10);

/// Reads and discards what is left of a body that will be refused, within [`LINGER_BYTES`]
/// and [`LINGER_TIME`] (nginx's lingering close): many clients (Python's `urllib`,
/// `requests`) send the whole body before reading the answer, and closing with their bytes
/// unread makes the kernel reset the connection, so that they see a broken pipe instead
/// of the 413.
async fn linger<B>(body: &mut B, shutdown: &CancellationToken)
where
    B: hyper::body::Body<Data = Bytes> + Unpin,
{
    let drain = async {
        let mut discarded = 0;
        while discarded < LINGER_BYTES {
            match body.frame().await {
                Some(Ok(frame)) => discarded += frame.data_ref().map_or(0, Bytes::len),
                _ => break,
            }
        }
    };
    tokio::select! {
        _ = tokio::time::timeout(LINGER_TIME, drain) => {}
        () = shutdown.cancelled() => {}
    }
}

/// The id of one request, for its log lines, its error body and its `x-request-id` header.
#[derive(Debug, Clone)]
pub struct RequestId(String);

impl RequestId {
    /// The client's `x-request-id` when it is a sane token (up to 64 of `A-Za-z0-9._-`, so it
    /// cannot forge anything where it is echoed), else a fresh one.
    pub fn of<B>(req: &Request<B>) -> RequestId {
        let given = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).filter(|v| {
            !v.is_empty()
                && v.len() <= 64
                && v.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        });
        match given {
            Some(id) => RequestId(id.to_string()),
            None => RequestId::fresh(),
        }
    }

    /// A new id: unique in this process, unguessable across processes.
    pub fn fresh() -> RequestId {
        use std::sync::{
            OnceLock,
            atomic::{AtomicU64, Ordering},
        };
        static PREFIX: OnceLock<u32> = OnceLock::new();
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let prefix = PREFIX.get_or_init(|| {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos());
            nanos ^ std::process::id().rotate_left(16)
        });
        RequestId(format!("{prefix:08x}-{:x}", NEXT.fetch_add(1, Ordering::Relaxed)))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id as a header value.
    pub fn header_value(&self) -> HeaderValue {
        // Made of token characters only (checked or generated above).
        HeaderValue::from_str(&self.0).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
    }
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sane_client_request_id_is_kept_and_a_forged_one_replaced() {
        let req = |v: &str| Request::get("/").header("x-request-id", v).body(()).unwrap();
        assert_eq!(RequestId::of(&req("abc-123_x.y")).as_str(), "abc-123_x.y");
        assert_ne!(RequestId::of(&req("a b")).as_str(), "a b");
        assert_ne!(RequestId::of(&req(&"a".repeat(65))).as_str(), "a".repeat(65));
        assert_ne!(RequestId::fresh().as_str(), RequestId::fresh().as_str());
    }
}
