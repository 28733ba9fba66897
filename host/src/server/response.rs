//! What a client gets from a function: its response, made safe to put on the wire, or the
//! answer for an invocation that failed.
//!
//! A function is not trusted with the HTTP framing: headers that describe the connection or
//! the message's length (`content-length`, `transfer-encoding`, `connection`...) are hyper's
//! to write, and a function that wrote its own could make the next response on a kept-alive
//! connection one it forged. They are dropped. Statuses below 200 (101 above all) are refused.

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Response, StatusCode};
use http_body_util::Full;

use super::request::RequestId;
use crate::{
    config::settings::HttpSettings,
    reply::{Body, json},
    runtime::{HttpFunction, InvocationError, bindings::types},
};

/// Headers about the connection or the framing, which only the host may set.
const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "content-length",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "http2-settings",
];

/// Who asked what, for the log line of a failure.
pub struct Call<'a> {
    /// The function that ran.
    pub function: &'a HttpFunction,
    /// `GET /path`.
    pub route: &'a str,
    /// The request's id.
    pub id: &'a RequestId,
    /// What the guest printed (a panic message, the cause of its own 500).
    pub output: Option<String>,
}

/// Turns a function's response into an HTTP one, or a 500 when it is not one tern sends:
/// a status outside 200-999, a header that is invalid or too many, a body over the limit.
/// A server error the function answered itself is logged with what it printed.
pub fn from_function(
    call: &Call<'_>,
    response: types::Response,
    limits: &HttpSettings,
) -> Response<Body> {
    let status = response.status;
    match build(response, limits) {
        Ok(resp) => {
            if status >= 500 {
                crate::throttled_warn!(
                    function = %call.function.name, route = call.route, request_id = %call.id,
                    status, output = ?call.output, "function answered with a server error"
                );
            } else if let Some(output) = &call.output {
                crate::throttled_info!(
                    function = %call.function.name, request_id = %call.id, ?output,
                    "function output"
                );
            }
            resp
        }
        Err(problem) => {
            crate::throttled_warn!(
                function = %call.function.name, route = call.route, request_id = %call.id,
                status = 500, problem = %problem, output = ?call.output,
                "function returned an invalid response"
            );
            let detail = format!("function `{}` {problem}", call.function.name);
            failure_body(
                StatusCode::INTERNAL_SERVER_ERROR,
                "function returned an invalid response",
                &detail,
                call.id,
                limits,
            )
        }
    }
}

fn build(response: types::Response, limits: &HttpSettings) -> Result<Response<Body>, String> {
    let max_body = limits.max_response_body.0;
    if response.body.len() as u64 > max_body {
        let len = response.body.len();
        return Err(format!("returned a body of {len} bytes, over the limit of {max_body}"));
    }
    let status =
        StatusCode::from_u16(response.status).ok().filter(|s| s.as_u16() >= 200).ok_or_else(
            || format!("returned invalid status {} (200 to 999 are allowed)", response.status),
        )?;
    if response.headers.len() > limits.max_headers {
        let n = response.headers.len();
        return Err(format!("returned {n} headers, over the limit of {}", limits.max_headers));
    }
    let size: u64 = response.headers.iter().map(|(k, v)| (k.len() + v.len() + 4) as u64).sum();
    if size > limits.max_header_size.0 {
        return Err(format!(
            "returned {size} bytes of headers, over the limit of {}",
            limits.max_header_size.0
        ));
    }
    let mut resp = Response::new(Full::new(Bytes::from(response.body)));
    *resp.status_mut() = status;
    for (name, value) in response.headers {
        let Ok(name) = HeaderName::from_bytes(name.as_bytes()) else {
            return Err(format!("returned invalid header name {name:?}"));
        };
        let Ok(value) = HeaderValue::from_str(&value) else {
            return Err(format!("returned invalid value for header `{name}`"));
        };
        if HOP_BY_HOP.contains(&name.as_str()) {
            tracing::debug!(header = %name, "dropped a framing header a function returned");
            continue;
        }
        resp.headers_mut().append(name, value);
    }
    Ok(resp)
}

/// The answer for an invocation that failed (504 for a timeout, 500 otherwise), logged once
/// with the function, the route, the status and the cause.
pub fn failure(call: &Call<'_>, e: InvocationError, limits: &HttpSettings) -> Response<Body> {
    let (status, short) = match e {
        InvocationError::Timeout(_) => (StatusCode::GATEWAY_TIMEOUT, "function timed out"),
        InvocationError::MemoryExceeded(_) => {
            (StatusCode::INTERNAL_SERVER_ERROR, "function exceeded its memory limit")
        }
        InvocationError::Trap(_) => (StatusCode::INTERNAL_SERVER_ERROR, "function failed"),
    };
    crate::throttled_warn!(
        function = %call.function.name, route = call.route, request_id = %call.id,
        status = status.as_u16(), error = %e, output = ?call.output, "invocation failed"
    );
    let detail = format!("function `{}` {e}", call.function.name);
    failure_body(status, short, &detail, call.id, limits)
}

/// `{"error": ..., "request_id": ...}`: a short message for public clients, the whole cause
/// (which names the function and may quote the guest) only with `http.expose_errors`.
fn failure_body(
    status: StatusCode,
    short: &str,
    detail: &str,
    id: &RequestId,
    limits: &HttpSettings,
) -> Response<Body> {
    let message = if limits.expose_errors { detail } else { short };
    json(status, &serde_json::json!({ "error": message, "request_id": id.as_str() }))
}
