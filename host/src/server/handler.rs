//! One HTTP request: route it, read its body within the limit, run the function, answer.

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;

use super::{app::App, router::Route};
use crate::{
    gateway,
    runtime::{HttpFunction, InvocationError, bindings::types, pubsub_host::PubsubContext},
};

/// The body type of every response.
pub type Body = Full<Bytes>;

/// Answers `req`.
pub async fn handle(app: &App, req: Request<Incoming>) -> Response<Body> {
    if req.uri().path().starts_with(gateway::PATH_PREFIX) {
        return app.gateway.handle(req);
    }
    let function = match app.router.route(req.method(), req.uri().path()) {
        Route::Function(f) => f.clone(),
        Route::MethodNotAllowed(allow) => {
            let msg = format!("method {} not allowed on {}", req.method(), req.uri().path());
            let mut resp = error(StatusCode::METHOD_NOT_ALLOWED, &msg);
            if let Ok(v) = HeaderValue::from_str(&allow) {
                resp.headers_mut().insert(header::ALLOW, v);
            }
            return resp;
        }
        Route::NotFound => {
            return error(StatusCode::NOT_FOUND, &format!("no route for {}", req.uri().path()));
        }
    };
    let origin = websocket_origin(app, &req);
    let request = match read_request(req, app.settings.http.max_body.0).await {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    let pubsub = PubsubContext::new(app.pubsub.clone(), origin, Arc::from([function.name.clone()]));
    match app.runtime.call(&*function, &request, pubsub).await {
        Ok(response) => into_http(&function, response, app.settings.http.max_response_body.0),
        Err(e) => failure(&function, e),
    }
}

/// The `ws://host:port` WebSocket URLs start with: from `public_url` when set (`https`
/// becomes `wss`), else from the request's Host header when it is a valid authority.
fn websocket_origin(app: &App, req: &Request<Incoming>) -> Option<Arc<str>> {
    if let Some(origin) = &app.pubsub.public_origin {
        return Some(origin.clone());
    }
    let host = req.headers().get(header::HOST)?.to_str().ok()?;
    let authority: http::uri::Authority = host.parse().ok()?;
    Some(format!("ws://{authority}").into())
}

/// Reads the whole body (refusing one over `max_body` bytes) into the WIT request.
async fn read_request(
    req: Request<Incoming>,
    max_body: u64,
) -> Result<types::Request, Response<Body>> {
    let too_large = || {
        let msg = format!("request body larger than the limit of {max_body} bytes");
        error(StatusCode::PAYLOAD_TOO_LARGE, &msg)
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > max_body) {
        return Err(too_large());
    }
    let (parts, body) = req.into_parts();
    let limit = usize::try_from(max_body).unwrap_or(usize::MAX);
    let body = match Limited::new(body, limit).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => return Err(too_large()),
        Err(e) => {
            return Err(error(StatusCode::BAD_REQUEST, &format!("cannot read request body: {e}")));
        }
    };
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
        body: body.to_vec(),
    })
}

/// Turns a function's response into an HTTP one, or a 500 saying what was invalid.
fn into_http(function: &HttpFunction, response: types::Response, max_body: u64) -> Response<Body> {
    let invalid = |what: String| {
        tracing::warn!(function = %function.name, problem = %what, "function returned an invalid response");
        error(StatusCode::INTERNAL_SERVER_ERROR, &format!("function `{}` {what}", function.name))
    };
    if response.body.len() as u64 > max_body {
        let len = response.body.len();
        return invalid(format!("returned a body of {len} bytes, over the limit of {max_body}"));
    }
    let Ok(status) = StatusCode::from_u16(response.status) else {
        return invalid(format!("returned invalid status {}", response.status));
    };
    let mut resp = Response::new(Full::new(Bytes::from(response.body)));
    *resp.status_mut() = status;
    for (name, value) in response.headers {
        let Ok(name) = HeaderName::from_bytes(name.as_bytes()) else {
            return invalid(format!("returned invalid header name {name:?}"));
        };
        let Ok(value) = HeaderValue::from_str(&value) else {
            return invalid(format!("returned invalid value for header `{name}`"));
        };
        resp.headers_mut().append(name, value);
    }
    resp
}

/// The response for an invocation that failed: 504 for a timeout, 500 otherwise.
fn failure(function: &HttpFunction, e: InvocationError) -> Response<Body> {
    tracing::warn!(function = %function.name, error = %e, "invocation failed");
    let status = match e {
        InvocationError::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    error(status, &format!("function `{}` {e}", function.name))
}

/// A JSON error response `{"error": message}`.
pub fn error(status: StatusCode, message: &str) -> Response<Body> {
    let body = serde_json::json!({ "error": message }).to_string();
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}
