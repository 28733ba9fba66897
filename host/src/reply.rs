//! The HTTP answers every part of the host gives: the body type and JSON error responses.
//! A leaf module, so the server and the WebSocket gateway both use it without depending on
//! each other.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::Full;

/// The body type of every response.
pub type Body = Full<Bytes>;

/// A JSON error response `{"error": message}`.
pub fn error(status: StatusCode, message: &str) -> Response<Body> {
    json(status, &serde_json::json!({ "error": message }))
}

/// A JSON response.
pub fn json(status: StatusCode, value: &serde_json::Value) -> Response<Body> {
    let mut resp = Response::new(Full::new(Bytes::from(value.to_string())));
    *resp.status_mut() = status;
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

/// `error(status, message)` that also closes the connection after it is sent: for a
/// client whose request was not (and will not be) read to its end.
pub fn error_and_close(status: StatusCode, message: &str) -> Response<Body> {
    let mut resp = error(status, message);
    resp.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    resp
}
