//! One HTTP request: check its host, route it, read its body within the limits, run the
//! function, answer.

use std::{net::IpAddr, sync::Arc, time::Instant};

use http::{HeaderName, HeaderValue, Request, Response, StatusCode, header, uri::Authority};
use hyper::body::Incoming;

use super::{
    app::App,
    generation::Generation,
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

/// Answers `req`, which came from `peer`, and logs it once (target `tern::access`) with
/// its method, path, function, status, duration and request id.
pub async fn handle(app: &App, req: Request<Incoming>, peer: IpAddr) -> Response<Body> {
    let started = Instant::now();
    let id = RequestId::of(&req);
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    // Taken once: a reload during this request does not change what it runs.
    let generation = app.generation();
    let (mut resp, function) = answer(app, &generation, req, peer, &id).await;
    resp.headers_mut().insert(REQUEST_ID, id.header_value());
    let status = resp.status().as_u16();
    let function = function.as_deref().unwrap_or("");
    app.metrics.count_request(function, status);
    tracing::info!(
        target: "tern::access",
        request_id = %id,
        %method,
        path,
        function,
        status,
        duration_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
        "request"
    );
    resp
}

/// The answer to `req`, and the function that gave it, if one did.
async fn answer(
    app: &App,
    generation: &Generation,
    req: Request<Incoming>,
    peer: IpAddr,
    id: &RequestId,
) -> (Response<Body>, Option<Arc<str>>) {
    let host = match host::check(&req, &app.settings.http.allowed_hosts) {
        Ok(host) => host,
        Err(refusal) => return (refusal.response(), None),
    };
    if crate::api::is_api_request(&req)
        && app.api_on_public.load(std::sync::atomic::Ordering::Relaxed)
        && app.api_keys.any()
    {
        return (crate::api::handle(app, req).await, None);
    }
    if req.uri().path().starts_with(gateway::PATH_PREFIX) {
        return (app.gateway.handle(req, host.as_ref(), peer).await, None);
    }
    if req.uri().path() == gateway::centrifuge::PATH {
        return (app.gateway.handle_centrifuge(req, host.as_ref(), peer), None);
    }
    if req.uri().path() == gateway::realtime::PATH {
        return (app.gateway.handle_realtime(req, host.as_ref(), peer).await, None);
    }
    let function = match generation.router.route(req.method(), req.uri().path()) {
        Route::Function(f) => f.clone(),
        Route::MethodNotAllowed(allow) => {
            let msg = format!("method {} not allowed on {}", req.method(), req.uri().path());
            let mut resp = error(StatusCode::METHOD_NOT_ALLOWED, &msg);
            if let Ok(v) = HeaderValue::from_str(&allow) {
                resp.headers_mut().insert(header::ALLOW, v);
            }
            return (resp, None);
        }
        Route::NotFound => {
            if let Some((site, rest)) = generation.websites.route(req.uri().path()) {
                let at = (req.uri().path(), rest, req.uri().query());
                return (site.respond(req.method(), req.headers(), at), None);
            }
            let msg = format!("no route for {}", req.uri().path());
            return (error(StatusCode::NOT_FOUND, &msg), None);
        }
    };
    let route = format!("{} {}", req.method(), req.uri().path());
    let origin = websocket_origin(generation, host.as_ref());
    let resp = match request::read(req, &app.settings.http, &app.shutdown).await {
        Ok(request) => {
            let trail = Arc::from([function.name.clone()]);
            let pubsub = PubsubContext::new(generation.pubsub.clone(), origin, trail);
            let (result, output) = app.runtime.call_with_output(&*function, &request, pubsub).await;
            let call = Call { function: &function, route: &route, id, output };
            match result {
                Ok(out) => response::from_function(&call, out, &app.settings.http),
                Err(e) => response::failure(&call, e, &app.settings.http),
            }
        }
        Err(resp) => resp,
    };
    (resp, Some(function.name.clone()))
}

/// The `ws://host:port` WebSocket URLs start with: from `public_url` when set (`https`
/// becomes `wss`), else from the request's validated host.
fn websocket_origin(generation: &Generation, host: Option<&Authority>) -> Option<Arc<str>> {
    if let Some(origin) = &generation.pubsub.public_origin {
        return Some(origin.clone());
    }
    host.map(|authority| format!("ws://{authority}").into())
}
