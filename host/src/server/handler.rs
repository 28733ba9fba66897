//! One HTTP request: check its host, route it, read its body within the limits, run the
//! function, answer.

use std::{net::IpAddr, sync::Arc};

use http::{HeaderName, HeaderValue, Request, Response, StatusCode, header, uri::Authority};
use hyper::body::Incoming;

use super::{
    app::App,
    host,
    request::{self, RequestId},
    response::{self, Call},
    router::Route,
};
use crate::{
    gateway,
    reply::{Body, error},
    runtime::pubsub_host::PubsubContext,
};

/// The header carrying a request's id back to the client.
const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Answers `req`, which came from `peer`.
pub async fn handle(app: &App, req: Request<Incoming>, peer: IpAddr) -> Response<Body> {
    let host = match host::check(&req, &app.settings.http.allowed_hosts) {
        Ok(host) => host,
        Err(refusal) => return refusal.response(),
    };
    if req.uri().path().starts_with(gateway::PATH_PREFIX) {
        return app.gateway.handle(req, host.as_ref(), peer);
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
    let id = RequestId::of(&req);
    let route = format!("{} {}", req.method(), req.uri().path());
    let origin = websocket_origin(app, host.as_ref());
    let mut resp = match request::read(req, &app.settings.http, &app.gateway.shutdown).await {
        Ok(request) => {
            let trail = Arc::from([function.name.clone()]);
            let pubsub = PubsubContext::new(app.pubsub.clone(), origin, trail);
            let (result, output) = app.runtime.call_with_output(&*function, &request, pubsub).await;
            let call = Call { function: &function, route: &route, id: &id, output };
            match result {
                Ok(out) => response::from_function(&call, out, &app.settings.http),
                Err(e) => response::failure(&call, e, &app.settings.http),
            }
        }
        Err(resp) => resp,
    };
    resp.headers_mut().insert(REQUEST_ID, id.header_value());
    resp
}

/// The `ws://host:port` WebSocket URLs start with: from `public_url` when set (`https`
/// becomes `wss`), else from the request's validated host.
fn websocket_origin(app: &App, host: Option<&Authority>) -> Option<Arc<str>> {
    if let Some(origin) = &app.pubsub.public_origin {
        return Some(origin.clone());
    }
    host.map(|authority| format!("ws://{authority}").into())
}
