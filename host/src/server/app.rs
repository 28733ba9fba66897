//! Everything a running host serves from: the route table and the compiled functions.

use std::sync::Arc;

use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::{
    broker::Broker,
    config::{Diagnostic, Diagnostics, Project, Settings, Trigger, messaging::ChannelRules},
    gateway::Gateway,
    runtime::{FunctionRuntime, pubsub_host::Pubsub},
};

use super::router::Router;

/// A project compiled and ready to serve.
pub struct App {
    /// Host settings.
    pub settings: Settings,
    /// HTTP routes.
    pub router: Router,
    /// Runs the functions.
    pub runtime: FunctionRuntime,
    /// What functions reach of pub/sub.
    pub pubsub: Arc<Pubsub>,
    /// The WebSocket bridge.
    pub gateway: Gateway,
}

impl App {
    /// Compiles every function of `project`, or lists every problem (a component that is
    /// missing, invalid or of the wrong world), located at the function's `source` field.
    /// `shutdown` is what WebSocket sessions watch to close with 1001.
    pub fn build(project: &Project, shutdown: CancellationToken) -> Result<App, Diagnostics> {
        let settings = project.settings.clone();
        let broker = Broker::new(settings.pubsub.subscriber_queue);
        let rules = Arc::new(ChannelRules::new(project.messaging.clone()));
        let pubsub = Arc::new(Pubsub {
            broker: broker.clone(),
            rules: rules.clone(),
            max_message: usize::try_from(settings.websocket.max_message.0).unwrap_or(usize::MAX),
            max_publishes: settings.pubsub.max_publishes_per_invocation,
        });
        let gateway = Gateway {
            broker,
            rules,
            settings: settings.websocket.clone(),
            shutdown,
            sessions: TaskTracker::new(),
        };
        let max_memory = project.functions.iter().map(|f| f.memory).max().unwrap_or(0);
        let runtime =
            FunctionRuntime::new(settings.http.max_concurrent_invocations, max_memory.max(1 << 20))
                .map_err(|e| Diagnostics(vec![Diagnostic::file(&project.dir, format!("{e:#}"))]))?;
        let mut router = Router::default();
        let mut problems = Diagnostics::default();
        for spec in &project.functions {
            let Trigger::Http { method, paths } = &spec.trigger else {
                continue;
            };
            if !spec.source.is_file() {
                continue; // already reported by the project's own checks
            }
            match runtime.load_http(spec) {
                Ok(function) => {
                    let function = Arc::new(function);
                    for path in paths {
                        router.add(method.clone(), path, function.clone());
                    }
                }
                Err(e) => problems.push(Diagnostic::field(
                    &spec.file,
                    spec.source_location,
                    "source",
                    e.to_string(),
                )),
            }
        }
        problems.into_result(App { settings, router, runtime, pubsub, gateway })
    }
}
