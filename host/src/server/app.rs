//! The long-lived host: settings, the wasm engine, the broker, the WebSocket gateway and the
//! metrics, around the [`Generation`] serving now. A reload builds the next generation
//! beside the running one and swaps it in; listeners, sessions and the engine stay.

use std::{
    path::Path,
    sync::{Arc, atomic::AtomicBool},
    time::Instant,
};

use arc_swap::ArcSwap;
use serde::Serialize;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use super::{
    generation::{Generation, HostParts},
    inventory::{Changes, Inventory},
};
use crate::{
    api::keys::ApiKeys,
    auth::{self, Action, TokenAuthority},
    broker::{Broker, BrokerStats, MemoryHistory},
    config::{Diagnostic, Diagnostics, Project, Settings, bounds, messaging::Anonymous},
    gateway::{Gateway, control::SessionRegistry},
    metrics::{Metrics, ReloadLabels},
    runtime::{FunctionRuntime, cache::ComponentCache},
};

/// A project compiled and ready to serve, and what serving it needs.
pub struct App {
    /// Host settings, fixed for the life of the process.
    pub(crate) settings: Settings,
    /// Runs the functions of every generation.
    pub(crate) runtime: Arc<FunctionRuntime>,
    /// Where messages are published.
    pub(crate) broker: Arc<Broker>,
    /// The WebSocket bridge.
    pub(crate) gateway: Gateway,
    /// What is served now.
    current: ArcSwap<Generation>,
    /// Checks and mints access tokens (the secret is fixed for the life of the process).
    tokens: Arc<TokenAuthority>,
    /// Trigger dispatchers and the invocations they start, waited for on shutdown.
    pub(crate) trigger_tasks: TaskTracker,
    /// What the host counts.
    pub(crate) metrics: Arc<Metrics>,
    /// Cancelled on SIGINT/SIGTERM.
    pub(crate) shutdown: CancellationToken,
    /// One reload at a time: each builds on the generation the previous one left.
    reloading: tokio::sync::Mutex<()>,
    /// The server API's keys (none: the API is off).
    pub(crate) api_keys: ApiKeys,
    /// Whether the public listener serves the API (there is no admin listener).
    pub(crate) api_on_public: AtomicBool,
    /// This process's id in the server API's `info`.
    pub(crate) node_id: Arc<str>,
    /// When the host started.
    pub(crate) started: Instant,
}

/// What an applied reload did.
#[derive(Debug, Clone, Serialize)]
pub struct Reloaded {
    /// The generation now serving.
    pub generation: u64,
    /// What it changed.
    pub changes: Changes,
    /// WebSocket clients closed because their channel is no longer configured.
    pub sessions_closed: usize,
    /// Milliseconds from the start of the reload to the new generation serving.
    pub elapsed_ms: u64,
}

impl App {
    /// Compiles every function of `project` into the first generation, or lists every
    /// problem. `inventory` describes the project as read (before command-line overrides).
    /// Compiled components are kept in `cache` when there is one. `shutdown` is what
    /// WebSocket sessions and trigger dispatchers watch.
    pub fn build(
        project: &Project,
        inventory: Inventory,
        cache: Option<ComponentCache>,
        shutdown: CancellationToken,
    ) -> Result<App, Diagnostics> {
        let settings = project.settings.clone();
        let metrics = Metrics::new();
        let stats = BrokerStats {
            published: metrics.published.clone(),
            delivered: metrics.delivered.clone(),
            slow_consumers_dropped: metrics.slow_consumers.clone(),
            retired: metrics.sessions_retired.clone(),
        };
        let history = MemoryHistory::new(
            settings.history.max_channels,
            usize::try_from(settings.history.max_bytes.0).unwrap_or(usize::MAX),
        );
        let broker = Broker::with_history(settings.pubsub.subscriber_queue, stats, history);
        // The pool's memory ceiling is the largest a function may ever ask for, so that a
        // reload may raise a function's `execution.memory`; each call is still capped at
        // its own. The ceiling costs address space only, and every slot reserves 4 GiB
        // of it anyway.
        let runtime = FunctionRuntime::new(
            settings.http.max_concurrent_invocations,
            bounds::MAX_FUNCTION_MEMORY,
            cache,
        )
        .map_err(|e| Diagnostics(vec![Diagnostic::file(&project.dir, format!("{e:#}"))]))?
        .with_metrics(metrics.clone());
        let runtime = Arc::new(runtime);
        let sessions = SessionRegistry::new();
        let api_keys =
            ApiKeys::load(&settings.api, &project.dir).map_err(|d| Diagnostics(vec![d]))?;
        let tokens = TokenAuthority::load(&settings.auth, &project.dir).map_err(|e| {
            let at = project.dir.join("tern.yaml");
            Diagnostics(vec![Diagnostic::file(&at, e)])
        })?;
        let host = HostParts {
            runtime: &runtime,
            broker: &broker,
            metrics: &metrics,
            tokens: &tokens,
            sessions: &sessions,
        };
        let generation = Generation::build(1, project, inventory, &host)?;
        let rules = generation.rules.clone();
        broker.set_rules(rules.clone());
        let gateway = Gateway::new(
            broker.clone(),
            (rules, generation.functions.clone()),
            &settings,
            shutdown.clone(),
            &metrics,
            (tokens.clone(), runtime.clone(), sessions.clone()),
        );
        metrics.generation.set(1);
        Ok(App {
            settings,
            runtime,
            broker,
            gateway,
            current: ArcSwap::from_pointee(generation),
            tokens,
            trigger_tasks: TaskTracker::new(),
            metrics,
            shutdown,
            reloading: tokio::sync::Mutex::new(()),
            api_keys,
            api_on_public: AtomicBool::new(true),
            node_id: crate::gateway::centrifuge::client_id(),
            started: Instant::now(),
        })
    }

    /// The generation serving now. Keep it for the whole request: a reload swaps the
    /// host's, not this one.
    pub fn generation(&self) -> Arc<Generation> {
        self.current.load_full()
    }

    /// Starts delivering messages to the first generation's pubsub-triggered functions.
    pub fn start_triggers(&self) {
        let generation = self.current.load();
        let listeners = generation.start_triggers(
            &self.runtime,
            &self.settings,
            &self.shutdown,
            &self.trigger_tasks,
        );
        self.broker.set_listeners(listeners);
        // Closed for `wait` only: reloads still spawn dispatchers into it.
        self.trigger_tasks.close();
    }

    /// Reads the project in `dir` again with the same checks as `tern check`, compiles what
    /// changed, and swaps it in: routes, functions, channel rules and triggers at once.
    /// Requests in flight finish on the generation they started on; WebSocket clients stay
    /// connected, except those on a channel no messaging config bridges any more. A project
    /// with problems is refused, every problem returned and logged, and the running
    /// generation keeps serving.
    pub async fn reload(self: &Arc<Self>, dir: &Path) -> Result<Reloaded, Diagnostics> {
        self.reload_from(Some(dir)).await
    }

    /// [`App::reload`] of the directory the serving generation came from (SIGHUP,
    /// `POST /reload`). It is read once the reload has its turn: one queued behind a
    /// deploy reloads the deployed version, not the one before it.
    pub async fn reload_served(self: &Arc<Self>) -> Result<Reloaded, Diagnostics> {
        self.reload_from(None).await
    }

    async fn reload_from(self: &Arc<Self>, dir: Option<&Path>) -> Result<Reloaded, Diagnostics> {
        let _one_at_a_time = self.reloading.lock().await;
        let started = Instant::now();
        let current = self.current.load_full();
        let app = self.clone();
        let dir = dir.map_or_else(|| current.dir.clone(), Path::to_path_buf);
        // Compiling is CPU work: keep it off the threads serving requests.
        let number = current.number + 1;
        let built =
            tokio::task::spawn_blocking(move || app.build_next(&dir, number)).await.unwrap_or_else(
                |e| Err(Diagnostics(vec![Diagnostic::file("", format!("reload failed: {e}"))])),
            );
        let next = match built {
            Ok(next) => Arc::new(next),
            Err(problems) => {
                self.metrics.reloads.get_or_create(&ReloadLabels { outcome: "refused" }).inc();
                for problem in &problems.0 {
                    tracing::error!(%problem, "reload refused: the running version keeps serving");
                }
                return Err(problems);
            }
        };
        let changes = current.inventory.changes_to(&next.inventory);
        let listeners =
            next.start_triggers(&self.runtime, &self.settings, &self.shutdown, &self.trigger_tasks);
        self.current.store(next.clone());
        self.gateway.set_rules(next.rules.clone(), next.functions.clone());
        self.broker.set_rules(next.rules.clone());
        self.broker.set_listeners(listeners);
        next.adopt_backlog(&current);
        let sessions_closed = self.broker.retire(|channel, grant| {
            next.rules.resolve(channel).is_some_and(|spec| {
                spec.websocket
                    && match grant {
                        // Server-side subscriptions (a token's `channels`) stay.
                        Some(grant) => {
                            grant.channels.contains(channel)
                                || auth::may(grant, spec, Action::Subscribe, channel, true)
                        }
                        // A raw-bridge client without a signed URL.
                        None => {
                            !spec.require_token
                                && auth::raw_bridge_access(spec, channel) != Anonymous::None
                        }
                    }
            })
        });
        let elapsed = started.elapsed();
        self.metrics.reloads.get_or_create(&ReloadLabels { outcome: "applied" }).inc();
        self.metrics.reload_seconds.observe(elapsed.as_secs_f64());
        self.metrics.generation.set(i64::try_from(next.number).unwrap_or(i64::MAX));
        tracing::info!(
            generation = next.number,
            %changes,
            sessions_closed,
            elapsed = ?elapsed,
            "reloaded"
        );
        let elapsed_ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
        Ok(Reloaded { generation: next.number, changes, sessions_closed, elapsed_ms })
    }

    /// What `dir` would change if reloaded now, or its problems; nothing is swapped.
    pub async fn preview(self: &Arc<Self>, dir: &Path) -> Result<Changes, Diagnostics> {
        let current = self.current.load_full();
        let app = self.clone();
        let dir = dir.to_path_buf();
        let number = current.number + 1;
        tokio::task::spawn_blocking(move || app.build_next(&dir, number))
            .await
            .unwrap_or_else(|e| Err(Diagnostics(vec![Diagnostic::file("", e.to_string())])))
            .map(|next| current.inventory.changes_to(&next.inventory))
    }

    fn build_next(&self, dir: &Path, number: u64) -> Result<Generation, Diagnostics> {
        let (mut project, mut problems) = Project::read(dir);
        let inventory = Inventory::of(&project);
        // Host settings are fixed for the life of the process (the listeners and pools are
        // sized by them): the new functions run under the running ones.
        project.settings = self.settings.clone();
        let host = HostParts {
            runtime: &self.runtime,
            broker: &self.broker,
            metrics: &self.metrics,
            tokens: &self.tokens,
            sessions: &self.gateway.control,
        };
        match Generation::build(number, &project, inventory, &host) {
            Ok(next) => problems.into_result(next),
            Err(more) => {
                problems.0.extend(more.0);
                Err(problems)
            }
        }
    }

    /// Waits, for at most `grace`, for the connections in `connections`, the WebSocket
    /// sessions and the trigger invocations to finish; says so when the time runs out.
    pub async fn drain(&self, connections: TaskTracker, grace: std::time::Duration) {
        connections.close();
        // WebSocket sessions live outside hyper's connections once upgraded: wait for them too.
        self.gateway.sessions.close();
        let drained = async {
            connections.wait().await;
            self.gateway.sessions.wait().await;
            self.trigger_tasks.wait().await;
        };
        if tokio::time::timeout(grace, drained).await.is_err() {
            tracing::warn!("shutdown grace period over: closing the remaining connections");
        }
    }
}
