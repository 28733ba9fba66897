//! The admin listener, apart from the public port (`admin.listen`, loopback by default):
//!
//! | request | key | answer |
//! |---|---|---|
//! | `GET /healthz` | no | 200 while the process runs |
//! | `GET /readyz` | no | 200 with the generation once serving; 503 while shutting down |
//! | `GET /metrics` | no | Prometheus text format |
//! | `POST /reload` | yes | re-reads the project served; 200 with what changed, or 422 with every problem |
//! | `POST /deploy[?dry_run=true]` | yes | a bundle from `tern deploy`: checked, stored, swapped in |
//! | `POST /rollback[?version=N]` | yes | back to version N, or the one before the current |
//! | `GET /deployments` | yes | the versions stored and the current one |

pub mod key;
pub mod store;

use std::{convert::Infallible, net::SocketAddr, sync::Arc, time::Duration};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper::{body::Incoming, server::conn::http1, service::service_fn};
use hyper_util::rt::{TokioIo, TokioTimer};
use serde_json::json;
use tokio::{net::TcpListener, sync::Semaphore};
use tokio_util::sync::CancellationToken;

use self::{key::AdminKey, store::DeploymentStore};
use crate::{
    config::Diagnostics,
    reply::{Body, error},
    server::App,
};

/// Most admin connections open at once.
const MAX_CONNECTIONS: usize = 64;
/// How long an admin client may take to send its request headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long an upload may take.
const BODY_TIMEOUT: Duration = Duration::from_secs(300);

/// What the admin endpoints act on.
pub struct Admin {
    app: Arc<App>,
    key: Option<AdminKey>,
    store: DeploymentStore,
    /// `admin.max_deploy_size`.
    max_upload: u64,
    /// One deploy or rollback at a time: each reads and writes `current`.
    deploying: tokio::sync::Mutex<()>,
}

impl Admin {
    /// The admin API of `app`, keyed by `key`, storing deployments in `store`.
    pub fn new(app: Arc<App>, key: Option<AdminKey>, store: DeploymentStore) -> Arc<Self> {
        store.sweep_staging();
        let max_upload = app.settings.admin.max_deploy_size.0;
        Arc::new(Self { app, key, store, max_upload, deploying: tokio::sync::Mutex::new(()) })
    }

    /// Serves the admin API on `listener` until `stop` (after the host has drained, so
    /// that `/readyz` says 503 while it does).
    pub async fn serve(self: Arc<Self>, listener: TcpListener, stop: CancellationToken) {
        let shutdown = stop;
        let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        loop {
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                () = shutdown.cancelled() => break,
            };
            let Ok((stream, peer)) = accepted else {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            };
            let Ok(slot) = slots.clone().try_acquire_owned() else {
                continue; // dropped: the admin API is not for crowds
            };
            let admin = self.clone();
            let shutdown = shutdown.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req| {
                    let admin = admin.clone();
                    async move { Ok::<_, Infallible>(admin.handle(req, peer).await) }
                });
                let conn = http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(HEADER_TIMEOUT)
                    .serve_connection(TokioIo::new(stream), service);
                tokio::select! {
                    _ = conn => {}
                    () = shutdown.cancelled() => {}
                }
                drop(slot);
            });
        }
    }

    async fn handle(self: &Arc<Self>, req: Request<Incoming>, peer: SocketAddr) -> Response<Body> {
        let path = req.uri().path().to_owned();
        let query = req.uri().query().unwrap_or("").to_owned();
        if crate::api::is_api_request(&req) {
            return crate::api::handle(&self.app, req).await;
        }
        let keyed = matches!(path.as_str(), "/reload" | "/deploy" | "/rollback" | "/deployments");
        if keyed && let Some(refusal) = self.refusal(&req, peer, &path) {
            return refusal;
        }
        match (req.method(), path.as_str()) {
            (&Method::GET, "/healthz") => text(StatusCode::OK, "ok\n"),
            (&Method::GET, "/readyz") => self.ready(),
            (&Method::GET, "/metrics") => metrics(&self.app),
            (&Method::POST, "/reload") => match self.app.reload_served().await {
                Ok(reloaded) => crate::reply::json(StatusCode::OK, &json!(reloaded)),
                Err(problems) => refused(&problems, None),
            },
            (&Method::POST, "/deploy") => {
                let bundle = match self.read_upload(req).await {
                    Ok(bytes) => bytes,
                    Err(resp) => return resp,
                };
                let dry_run = has_flag(&query, "dry_run");
                self.detached(move |admin| async move { admin.deploy(bundle, dry_run).await }).await
            }
            (&Method::POST, "/rollback") => {
                self.detached(move |admin| async move { admin.rollback(&query).await }).await
            }
            (&Method::GET, "/deployments") => self.deployments(),
            (_, "/healthz" | "/readyz" | "/metrics" | "/deployments") => method_not_allowed("GET"),
            (_, "/reload" | "/deploy" | "/rollback") => method_not_allowed("POST"),
            _ => error(StatusCode::NOT_FOUND, &format!("no admin endpoint {path}")),
        }
    }

    /// The answer to a keyed request without the right key; None when it has it.
    fn refusal(
        &self,
        req: &Request<Incoming>,
        peer: SocketAddr,
        path: &str,
    ) -> Option<Response<Body>> {
        let Some(key) = &self.key else {
            let msg = format!(
                "no admin key is configured: set {} (or admin.key_file) on the host",
                key::KEY_VAR
            );
            return Some(error(StatusCode::FORBIDDEN, &msg));
        };
        if key.admits(req.headers()) {
            return None;
        }
        self.app.metrics.admin_unauthorized.inc();
        crate::throttled_warn!(%peer, path, "admin request refused: missing or wrong key");
        let mut resp = error(
            StatusCode::UNAUTHORIZED,
            "missing or wrong admin key (Authorization: Bearer ...)",
        );
        resp.headers_mut()
            .insert(header::WWW_AUTHENTICATE, http::HeaderValue::from_static("Bearer"));
        Some(resp)
    }

    fn ready(&self) -> Response<Body> {
        if self.app.shutdown.is_cancelled() {
            return crate::reply::json(
                StatusCode::SERVICE_UNAVAILABLE,
                &json!({"ready": false, "reason": "shutting down"}),
            );
        }
        let generation = self.app.generation().number;
        crate::reply::json(StatusCode::OK, &json!({"ready": true, "generation": generation}))
    }

    /// Runs `work` in a task of its own: a client that disconnects mid-deploy must not
    /// leave a version stored but not served, or a staging directory behind.
    async fn detached<F, Fut>(self: &Arc<Self>, work: F) -> Response<Body>
    where
        F: FnOnce(Arc<Self>) -> Fut,
        Fut: std::future::Future<Output = Response<Body>> + Send + 'static,
    {
        match tokio::spawn(work(self.clone())).await {
            Ok(resp) => resp,
            Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &format!("deploy failed: {e}")),
        }
    }

    async fn deploy(&self, bundle: Bytes, dry_run: bool) -> Response<Body> {
        let _one_at_a_time = self.deploying.lock().await;
        let staged = match self.store.stage(&bundle, self.max_upload) {
            Ok(staged) => staged,
            Err(e @ crate::bundle::BundleError::Io { .. }) => {
                return error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string());
            }
            Err(e) => return error(StatusCode::BAD_REQUEST, &e.to_string()),
        };
        if dry_run {
            let preview = self.app.preview(&staged.dir).await;
            let staged_dir = staged.dir.clone();
            self.store.discard(staged);
            return match preview {
                Ok(changes) => crate::reply::json(
                    StatusCode::OK,
                    &json!({"dry_run": true, "changes": changes}),
                ),
                Err(problems) => refused(&problems, Some(&staged_dir)),
            };
        }
        let version = match self.store.commit(staged) {
            Ok(version) => version,
            Err(e) => {
                let msg = format!("cannot store the deployment: {e}");
                return error(StatusCode::INTERNAL_SERVER_ERROR, &msg);
            }
        };
        self.switch_to(version, true).await
    }

    async fn rollback(&self, query: &str) -> Response<Body> {
        let _one_at_a_time = self.deploying.lock().await;
        let version = match param(query, "version") {
            Some(v) => match v.parse::<u64>() {
                Ok(v) if self.store.path(v).is_dir() => v,
                _ => {
                    let msg =
                        format!("no deployed version `{v}` (stored: {:?})", self.store.versions());
                    return error(StatusCode::NOT_FOUND, &msg);
                }
            },
            None => match self.store.previous() {
                Some(v) => v,
                None => {
                    let msg = "no earlier deployed version to roll back to";
                    return error(StatusCode::CONFLICT, msg);
                }
            },
        };
        self.switch_to(version, false).await
    }

    /// Serves `version`; a refused new version is removed again.
    async fn switch_to(&self, version: u64, is_new: bool) -> Response<Body> {
        match self.app.reload(&self.store.path(version)).await {
            Ok(reloaded) => {
                let recorded = self.store.set_current(version);
                tracing::info!(version, generation = reloaded.generation, "deployment serving");
                let mut body = json!(reloaded);
                body["version"] = json!(version);
                if let Err(e) = recorded {
                    tracing::error!(error = %e, version, "cannot record the current deployment");
                    body["warning"] = json!(format!(
                        "serving version {version}, but it could not be recorded ({e}): a restart would serve the previous one"
                    ));
                }
                crate::reply::json(StatusCode::OK, &body)
            }
            Err(problems) => {
                if is_new {
                    self.store.remove(version);
                }
                refused(&problems, Some(&self.store.path(version)))
            }
        }
    }

    fn deployments(&self) -> Response<Body> {
        let body = json!({"current": self.store.current(), "versions": self.store.versions()});
        crate::reply::json(StatusCode::OK, &body)
    }

    async fn read_upload(&self, req: Request<Incoming>) -> Result<Bytes, Response<Body>> {
        let max = usize::try_from(self.max_upload).unwrap_or(usize::MAX);
        let body = Limited::new(req.into_body(), max);
        match tokio::time::timeout(BODY_TIMEOUT, body.collect()).await {
            Ok(Ok(collected)) => Ok(collected.to_bytes()),
            Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => {
                let msg = format!(
                    "bundle larger than admin.max_deploy_size ({})",
                    self.app.settings.admin.max_deploy_size
                );
                Err(error(StatusCode::PAYLOAD_TOO_LARGE, &msg))
            }
            Ok(Err(e)) => {
                Err(error(StatusCode::BAD_REQUEST, &format!("cannot read the upload: {e}")))
            }
            Err(_) => Err(error(StatusCode::REQUEST_TIMEOUT, "the upload took too long")),
        }
    }
}

/// Where deployments of the project in `project_dir` are stored, by its settings.
pub fn store_for(
    app_settings: &crate::config::Settings,
    project_dir: &std::path::Path,
) -> DeploymentStore {
    let admin = &app_settings.admin;
    DeploymentStore::new(project_dir.join(&admin.deployments_dir), admin.keep_deployments)
}

/// 422 with every problem, one per line as `tern check` prints them; paths inside `bundle`
/// (an uploaded project) are given as in the bundle, as the author knows them.
fn refused(problems: &Diagnostics, bundle: Option<&std::path::Path>) -> Response<Body> {
    let prefix = bundle.map(|dir| format!("{}/", dir.display()));
    let list: Vec<String> = problems
        .0
        .iter()
        .map(|p| {
            let text = p.to_string();
            match &prefix {
                Some(prefix) => text.replace(prefix.as_str(), ""),
                None => text,
            }
        })
        .collect();
    crate::reply::json(
        StatusCode::UNPROCESSABLE_ENTITY,
        &json!({"error": "project refused: the running version keeps serving", "problems": list}),
    )
}

fn metrics(app: &App) -> Response<Body> {
    let mut resp = Response::new(Full::new(Bytes::from(app.metrics.encode())));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static(
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        ),
    );
    resp
}

fn text(status: StatusCode, body: &'static str) -> Response<Body> {
    let mut resp = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *resp.status_mut() = status;
    resp.headers_mut().insert(header::CONTENT_TYPE, http::HeaderValue::from_static("text/plain"));
    resp
}

fn method_not_allowed(allow: &'static str) -> Response<Body> {
    let mut resp = error(StatusCode::METHOD_NOT_ALLOWED, &format!("use {allow}"));
    resp.headers_mut().insert(header::ALLOW, http::HeaderValue::from_static(allow));
    resp
}

/// The value of `name` in a query string.
fn param<'q>(query: &'q str, name: &str) -> Option<&'q str> {
    query.split('&').find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
}

fn has_flag(query: &str, name: &str) -> bool {
    param(query, name).is_some_and(|v| matches!(v, "1" | "true" | "yes"))
        || query.split('&').any(|p| p == name)
}
