//! The server API: Centrifugo's HTTP API (`POST /api/<method>` with a JSON body, answered
//! `{"result": ...}` or `{"error": {"code", "message"}}`), so backends and its client
//! libraries (`cent` on PyPI...) publish and manage sessions from outside. It is on when a
//! key exists (`TERN_API_KEY`, `api.keys_file`), on the admin listener when there is one,
//! else on the public one; each key is limited to the methods and channels it lists.

pub mod keys;
mod methods;

use std::borrow::Cow;

use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use serde_json::{Value, json, value::RawValue};

use crate::{
    reply::{self, Body},
    server::App,
};

/// The path prefix of the API.
pub const PATH_PREFIX: &str = "/api/";

/// An API error: Centrifugo's code and a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    code: u32,
    message: Cow<'static, str>,
}

impl ApiError {
    const fn fixed(code: u32, message: &'static str) -> Self {
        Self { code, message: Cow::Borrowed(message) }
    }

    /// No such channel in the project.
    pub const UNKNOWN_CHANNEL: ApiError = Self::fixed(102, "unknown channel");
    /// The key may not do this.
    pub const PERMISSION_DENIED: ApiError = Self::fixed(103, "permission denied");
    /// No such method.
    pub const METHOD_NOT_FOUND: ApiError = Self::fixed(104, "method not found");
    /// The channel's config does not keep what was asked for.
    pub const NOT_AVAILABLE: ApiError = Self::fixed(108, "not available");
    /// A history position of another epoch.
    pub const UNRECOVERABLE_POSITION: ApiError = Self::fixed(112, "unrecoverable position");

    /// A malformed request: code 107, saying what is wrong.
    pub fn bad(why: &str) -> Self {
        Self { code: 107, message: format!("bad request: {why}").into() }
    }

    /// Something went wrong inside tern: code 100.
    pub fn internal(why: &str) -> Self {
        Self { code: 100, message: format!("internal server error: {why}").into() }
    }

    fn json(&self) -> Value {
        json!({ "code": self.code, "message": &*self.message })
    }
}

/// Whether `req` is for the API (a path under [`PATH_PREFIX`] naming one of its methods).
pub fn is_api_request<B>(req: &Request<B>) -> bool {
    req.uri().path().strip_prefix(PATH_PREFIX).is_some_and(|method| keys::METHODS.contains(&method))
}

/// Answers an API request.
pub async fn handle(app: &App, req: Request<Incoming>) -> Response<Body> {
    let method = req.uri().path().trim_start_matches(PATH_PREFIX).to_owned();
    if !app.api_keys.any() {
        let msg = "the server API is off: give it a key (TERN_API_KEY or api.keys_file)";
        return reply::error(StatusCode::NOT_FOUND, msg);
    }
    if req.method() != Method::POST {
        return reply::error(StatusCode::METHOD_NOT_ALLOWED, "the server API takes POST");
    }
    let Some(key) = app.api_keys.of(req.headers()) else {
        tracing::info!(method, "server API: no valid key");
        let body = json!({ "error": { "code": 101, "message": "unauthorized" } });
        return reply::json(StatusCode::UNAUTHORIZED, &body);
    };
    let answer = if key.may_call(&method) {
        answered(app, key, &method, req).await
    } else {
        Err(ApiError::PERMISSION_DENIED)
    };
    match &answer {
        Ok(_) => tracing::info!(method, key = %key.name, "server API"),
        Err(e) => {
            tracing::info!(method, key = %key.name, code = e.code, error = %e.message, "server API refused")
        }
    }
    let body = match answer {
        Ok(result) => json!({ "result": result }),
        Err(e) => json!({ "error": e.json() }),
    };
    reply::json(StatusCode::OK, &body)
}

async fn answered(
    app: &App,
    key: &keys::ApiKey,
    method: &str,
    req: Request<Incoming>,
) -> Result<Value, ApiError> {
    let body = match crate::server::request::read(req, &app.settings.http, &app.shutdown).await {
        Ok(request) => request.body,
        Err(_) => return Err(ApiError::bad("the body could not be read (too large, or too slow)")),
    };
    let text = if body.iter().all(u8::is_ascii_whitespace) { b"{}".as_slice() } else { &body };
    let params: Box<RawValue> = serde_json::from_slice(text)
        .map_err(|e| ApiError::bad(&format!("the body is not JSON: {e}")))?;
    if !params.get().trim_start().starts_with('{') {
        return Err(ApiError::bad("the body must be a JSON object"));
    }
    methods::Call { app, key }.run(method, &params).await
}
