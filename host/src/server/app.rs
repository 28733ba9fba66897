//! Everything a running host serves from: routes, compiled functions, pub/sub, triggers.

use std::sync::Arc;

use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::{
    broker::Broker,
    config::{
        Diagnostic, Diagnostics, FunctionSpec, Project, Settings, Trigger, messaging::ChannelRules,
    },
    gateway::Gateway,
    runtime::{FunctionRuntime, LoadError, cache::ComponentCache, pubsub_host::Pubsub},
    trigger::{PubsubTrigger, TriggerStats},
};

use super::router::Router;

/// A project compiled and ready to serve.
pub struct App {
    /// Host settings.
    pub(crate) settings: Settings,
    /// HTTP routes.
    pub(crate) router: Router,
    /// Runs the functions.
    pub(crate) runtime: Arc<FunctionRuntime>,
    /// What functions reach of pub/sub.
    pub(crate) pubsub: Arc<Pubsub>,
    /// The WebSocket bridge.
    pub(crate) gateway: Gateway,
    /// Pubsub-triggered functions.
    pub(crate) triggers: Vec<PubsubTrigger>,
    /// Trigger dispatchers and the invocations they start, waited for on shutdown.
    pub(crate) trigger_tasks: TaskTracker,
}

impl App {
    /// Compiles every function of `project`, or lists every problem (a component that is
    /// missing, invalid or of the wrong world), located at the function's `source` field.
    /// Compiled components are kept in `cache` when there is one. `shutdown` is what
    /// WebSocket sessions and trigger dispatchers watch.
    pub fn build(
        project: &Project,
        cache: Option<ComponentCache>,
        shutdown: CancellationToken,
    ) -> Result<App, Diagnostics> {
        let settings = project.settings.clone();
        let broker = Broker::new(settings.pubsub.subscriber_queue);
        let rules = Arc::new(ChannelRules::new(project.messaging.clone()));
        let pubsub = Arc::new(Pubsub::new(broker.clone(), rules.clone(), &settings));
        let public_origin = pubsub.public_origin.clone();
        let gateway = Gateway::new(
            broker,
            rules.clone(),
            settings.websocket.clone(),
            public_origin,
            shutdown,
        );
        let max_memory = project.functions.iter().map(|f| f.memory).max().unwrap_or(0);
        let runtime = FunctionRuntime::new(
            settings.http.max_concurrent_invocations,
            max_memory.max(1 << 20),
            cache,
        )
        .map_err(|e| Diagnostics(vec![Diagnostic::file(&project.dir, format!("{e:#}"))]))?;
        let mut router = Router::default();
        let mut triggers = Vec::new();
        let mut problems = Diagnostics::default();
        // A component that does not exist was already reported by the project's own checks.
        for spec in project.functions.iter().filter(|f| f.source.is_file()) {
            let loaded = match &spec.trigger {
                Trigger::Http { method, paths } => runtime.load(spec).map(|function| {
                    let function = Arc::new(function);
                    for path in paths {
                        router.add(method.clone(), path, function.clone());
                    }
                }),
                Trigger::Pubsub { channel } => runtime.load(spec).map(|function| {
                    if let Some(config) = rules.by_name(channel) {
                        let function = Arc::new(function);
                        triggers.push(pubsub_trigger(spec, function, config, rules.clone()));
                    }
                }),
            };
            if let Err(e) = loaded {
                problems.push(source_problem(spec, &e));
            }
        }
        problems.into_result(App {
            settings,
            router,
            runtime: Arc::new(runtime),
            pubsub,
            gateway,
            triggers,
            trigger_tasks: TaskTracker::new(),
        })
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

    /// Starts delivering messages to pubsub-triggered functions.
    pub fn start_triggers(&self) {
        for trigger in &self.triggers {
            trigger.start(
                self.runtime.clone(),
                self.pubsub.clone(),
                self.settings.pubsub.max_hops,
                self.gateway.shutdown.clone(),
                &self.trigger_tasks,
            );
        }
        self.trigger_tasks.close();
    }
}

fn pubsub_trigger(
    spec: &FunctionSpec,
    function: Arc<crate::runtime::MessageFunction>,
    config: &crate::config::MessagingSpec,
    rules: Arc<ChannelRules>,
) -> PubsubTrigger {
    PubsubTrigger {
        function,
        config: config.name.clone(),
        rules,
        queue: spec.queue,
        concurrency: spec.concurrency,
        stats: Arc::new(TriggerStats::default()),
    }
}

fn source_problem(spec: &FunctionSpec, e: &LoadError) -> Diagnostic {
    Diagnostic::field(&spec.file, spec.source_location, "source", e.to_string())
}
