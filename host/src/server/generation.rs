//! One version of the project being served: its routes, compiled functions, channel rules
//! and triggers. The host holds the current one in an `ArcSwap`; a request or a WebSocket
//! handshake takes it once and keeps it to the end, so a reload never changes what an
//! in-flight request runs.

use std::{
    path::PathBuf,
    sync::{Arc, OnceLock},
};

use tokio_util::{sync::CancellationToken, task::TaskTracker};

use super::{inventory::Inventory, router::Router};
use crate::{
    auth::TokenAuthority,
    broker::{Broker, Listener},
    config::{
        Diagnostic, Diagnostics, FunctionSpec, MessagingSpec, Project, Settings, Trigger,
        messaging::ChannelRules,
    },
    gateway::control::SessionRegistry,
    hooks::SessionFunctions,
    metrics::Metrics,
    runtime::{FunctionRuntime, LoadError, MessageFunction, pubsub_host::Pubsub},
    trigger::{
        PubsubTrigger, TriggerStats,
        fair_queue::{FairQueue, Pushed},
    },
    website::Websites,
};

/// A started trigger: its function's name, its queue, its counters.
type StartedTrigger = (Arc<str>, Arc<FairQueue>, TriggerStats);

/// The long-lived parts of the host a generation is built on.
pub struct HostParts<'a> {
    /// Compiles and runs functions.
    pub runtime: &'a FunctionRuntime,
    /// Where messages go.
    pub broker: &'a Arc<Broker>,
    /// What the host counts.
    pub metrics: &'a Metrics,
    /// Mints access tokens for functions.
    pub tokens: &'a Arc<TokenAuthority>,
    /// The live sessions functions may control.
    pub sessions: &'a Arc<SessionRegistry>,
}

/// A project compiled and ready to serve.
pub struct Generation {
    /// 1 for the project tern started with, one more per applied reload.
    pub(crate) number: u64,
    /// Where it was read from.
    pub(crate) dir: PathBuf,
    /// HTTP routes.
    pub(crate) router: Router,
    /// Static websites, served where no route is.
    pub(crate) websites: Websites,
    /// Which channel names exist and which are bridged.
    pub(crate) rules: Arc<ChannelRules>,
    /// What this generation's functions reach of pub/sub.
    pub(crate) pubsub: Arc<Pubsub>,
    /// RPC and send handlers, hooks.
    pub(crate) functions: Arc<SessionFunctions>,
    /// Pubsub-triggered functions.
    triggers: Vec<PubsubTrigger>,
    /// Once started: each trigger's function, queue and counters.
    queues: OnceLock<Vec<StartedTrigger>>,
    /// What it serves, to tell what the next one changes.
    pub(crate) inventory: Inventory,
}

impl Generation {
    /// Compiles every function of `project` with `runtime`, or lists every problem (a
    /// component that is missing, invalid or of the wrong world), located at the function's
    /// `source` field. `inventory` is what the project serves, from [`Inventory::of`].
    pub fn build(
        number: u64,
        project: &Project,
        mut inventory: Inventory,
        host: &HostParts<'_>,
    ) -> Result<Generation, Diagnostics> {
        let HostParts { runtime, broker, metrics, tokens, sessions } = *host;
        let settings = &project.settings;
        let rules = Arc::new(ChannelRules::new(project.messaging.clone()));
        let pubsub = Arc::new(Pubsub::new(
            broker.clone(),
            rules.clone(),
            settings,
            (tokens.clone(), sessions.clone()),
        ));
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
                        let trigger = pubsub_trigger(spec, function, config, &rules, metrics);
                        triggers.push(trigger);
                    }
                }),
                // Compiled below, with the other functions of the real-time path.
                Trigger::Rpc { .. } | Trigger::Send | Trigger::Hook(_) => Ok(()),
            };
            if let Err(e) = loaded {
                problems.push(source_problem(spec, &e));
            }
        }
        let (functions, failed) = SessionFunctions::build(project, runtime, pubsub.clone());
        for (spec, e) in failed {
            problems.push(source_problem(&spec, &e));
        }
        let websites = Websites::load(&project.websites).unwrap_or_else(|more| {
            problems.0.extend(more.0);
            Websites::default()
        });
        inventory.add_websites(websites.fingerprints());
        problems.into_result(Generation {
            functions: Arc::new(functions),
            number,
            dir: project.dir.clone(),
            router,
            websites,
            rules,
            pubsub,
            triggers,
            queues: OnceLock::new(),
            inventory,
        })
    }

    /// Starts this generation's trigger dispatchers (tracked by `tracker`, stopped by
    /// `shutdown`, or once the broker lets go of their listeners) and returns the listeners
    /// the broker must offer messages to.
    pub fn start_triggers(
        &self,
        runtime: &Arc<FunctionRuntime>,
        settings: &Settings,
        shutdown: &CancellationToken,
        tracker: &TaskTracker,
    ) -> Vec<Arc<dyn Listener>> {
        let mut listeners = Vec::new();
        let mut queues = Vec::new();
        for trigger in &self.triggers {
            let (listener, queue) = trigger.start(
                runtime.clone(),
                self.pubsub.clone(),
                settings.pubsub.max_hops,
                shutdown.clone(),
                tracker,
            );
            listeners.push(listener);
            queues.push((trigger.function.name.clone(), queue, trigger.stats.clone()));
        }
        let _ = self.queues.set(queues);
        listeners
    }

    /// Moves the messages still queued for `previous`'s triggers to this generation's
    /// trigger of the same function (a reload replaced it): they run on the new version,
    /// and a backlog never outlives its generation. What the new queue cannot take is
    /// dropped and counted; a function that no longer exists has its backlog run by the
    /// old version.
    pub fn adopt_backlog(&self, previous: &Generation) {
        let (Some(ours), Some(theirs)) = (self.queues.get(), previous.queues.get()) else {
            return;
        };
        for (name, queue, stats) in ours {
            let Some((_, old, _)) = theirs.iter().find(|(n, ..)| n == name) else { continue };
            for message in old.take_all() {
                // Moved, not added: the function's depth gauge already counts it.
                if queue.push(message) != Pushed::Queued {
                    stats.dropped_queue_full.inc();
                    stats.depth.dec();
                }
            }
        }
    }
}

fn pubsub_trigger(
    spec: &FunctionSpec,
    function: MessageFunction,
    config: &MessagingSpec,
    rules: &Arc<ChannelRules>,
    metrics: &Metrics,
) -> PubsubTrigger {
    PubsubTrigger {
        stats: TriggerStats::of(metrics, &function.name),
        function: Arc::new(function),
        config: config.name.clone(),
        rules: rules.clone(),
        queue: spec.queue,
        concurrency: spec.concurrency,
    }
}

fn source_problem(spec: &FunctionSpec, e: &LoadError) -> Diagnostic {
    Diagnostic::field(&spec.file, spec.source_location, "source", e.to_string())
}
