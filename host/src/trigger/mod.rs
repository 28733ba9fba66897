//! Pub/sub triggers: a function runs once for every message published on any channel its
//! messaging config governs (matches, and no more specific config matches too).
//!
//! Delivery never blocks publishers: each function has a bounded queue (`execution.queue`),
//! fair across channels ([`fair_queue`]), drained by a dispatcher that runs at most
//! `execution.concurrency` invocations at once. What does not fit is dropped and counted. A message `pubsub.max_hops` function publishes
//! deep is not delivered to functions again, which is what stops a function that publishes
//! to its own trigger channel.

use std::sync::Arc;

pub mod fair_queue;

use prometheus_client::metrics::{counter::Counter, gauge::Gauge};
use tokio::sync::Semaphore;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use self::fair_queue::{FairQueue, Pushed};
use crate::{
    broker::{Listener, Message},
    config::messaging::ChannelRules,
    runtime::{
        FunctionRuntime, MessageFunction,
        bindings::types,
        pubsub_host::{Pubsub, PubsubContext},
    },
};

/// Counters of one trigger: the host's metrics share them, and a function's counters
/// carry on across reloads.
#[derive(Debug, Default, Clone)]
pub struct TriggerStats {
    /// Messages queued for the function.
    pub queued: Counter,
    /// Messages waiting in its queue now.
    pub depth: Gauge,
    /// Messages dropped because the function's queue was full.
    pub dropped_queue_full: Counter,
    /// Messages not delivered because they were past the hop limit.
    pub dropped_hop_limit: Counter,
}

impl TriggerStats {
    /// The counters of `function` in `metrics`.
    pub fn of(metrics: &crate::metrics::Metrics, function: &str) -> Self {
        use crate::metrics::{FunctionLabel, TriggerDropLabels};
        let label = FunctionLabel { function: function.to_string() };
        let dropped = |reason| {
            let labels = TriggerDropLabels { function: function.to_string(), reason };
            metrics.trigger_dropped.get_or_create_owned(&labels)
        };
        Self {
            queued: metrics.trigger_queued.get_or_create_owned(&label),
            depth: metrics.trigger_queue_depth.get_or_create_owned(&label),
            dropped_queue_full: dropped("queue_full"),
            dropped_hop_limit: dropped("hop_limit"),
        }
    }
}

/// A pubsub-triggered function and what decides which messages reach it.
pub struct PubsubTrigger {
    /// The function.
    pub function: Arc<MessageFunction>,
    /// The messaging config it is triggered by, by name.
    pub config: String,
    /// Every messaging config: a channel triggers the function only if `config` governs it.
    pub rules: Arc<ChannelRules>,
    /// `execution.queue`.
    pub queue: usize,
    /// `execution.concurrency`.
    pub concurrency: usize,
    /// What happened so far.
    pub stats: TriggerStats,
}

/// The broker side of a trigger: filters and queues, never blocks.
struct TriggerQueue {
    function: Arc<str>,
    config: String,
    rules: Arc<ChannelRules>,
    max_hops: usize,
    queue: Arc<FairQueue>,
    stats: TriggerStats,
}

impl Listener for TriggerQueue {
    fn offer(&self, message: &Arc<Message>) {
        // A more specific config may govern a channel this config's matcher also covers:
        // that channel is the other config's, and so are its triggers.
        if self.rules.resolve(&message.channel).is_none_or(|spec| spec.name != self.config) {
            return;
        }
        let trail = message.origin.trail();
        if trail.len() >= self.max_hops {
            self.stats.dropped_hop_limit.inc();
            let cycle: Vec<&str> = trail.iter().map(|f| &**f).collect();
            crate::throttled_warn!(
                function = %self.function,
                channel = %message.channel,
                hops = trail.len(),
                cycle = %cycle.join(" -> "),
                "hop limit reached: message not delivered to functions",
            );
            return;
        }
        match self.queue.push(message.clone()) {
            Pushed::Queued => {
                self.stats.queued.inc();
                self.stats.depth.inc();
            }
            pushed => {
                if pushed == Pushed::QueuedDroppingOther {
                    // One in, one out: the depth stays.
                    self.stats.queued.inc();
                }
                let dropped = self.stats.dropped_queue_full.inc() + 1;
                // Every drop is counted; the log says so at 1, 2, 4, 8... to stay readable.
                if dropped.is_power_of_two() {
                    tracing::warn!(
                        function = %self.function,
                        channel = %message.channel,
                        dropped,
                        "function queue full: message dropped",
                    );
                }
            }
        }
    }
}

impl PubsubTrigger {
    /// Starts this trigger's dispatcher and returns the listener that feeds it, for the
    /// broker, and its queue. The dispatcher stops at once on `shutdown`; once the broker
    /// lets go of the listener (a reload replaced it) it runs what is left in the queue
    /// and ends. Invocations in flight are tracked by `tracker`.
    pub fn start(
        &self,
        runtime: Arc<FunctionRuntime>,
        pubsub: Arc<Pubsub>,
        max_hops: usize,
        shutdown: CancellationToken,
        tracker: &TaskTracker,
    ) -> (Arc<dyn Listener>, Arc<FairQueue>) {
        let queue = Arc::new(FairQueue::new(self.queue));
        let listener = Arc::new(TriggerQueue {
            function: self.function.name.clone(),
            config: self.config.clone(),
            rules: self.rules.clone(),
            max_hops,
            queue: queue.clone(),
            stats: self.stats.clone(),
        });
        let function = self.function.clone();
        let depth = self.stats.depth.clone();
        let running = Arc::new(Semaphore::new(self.concurrency));
        let invocations = tracker.clone();
        let returned = queue.clone();
        tracker.spawn(async move {
            loop {
                let message = tokio::select! {
                    () = shutdown.cancelled() => break,
                    message = queue.pop() => match message {
                        Some(m) => m,
                        None => break,
                    },
                };
                depth.dec();
                let permit = tokio::select! {
                    () = shutdown.cancelled() => break,
                    permit = running.clone().acquire_owned() => match permit {
                        Ok(p) => p,
                        Err(_) => break,
                    },
                };
                let (runtime, pubsub, function) =
                    (runtime.clone(), pubsub.clone(), function.clone());
                invocations.spawn(async move {
                    invoke(&runtime, pubsub, &function, &message).await;
                    drop(permit);
                });
            }
            // Stopped with messages still queued (shutdown): they will not be run.
            depth.dec_by(i64::try_from(queue.len()).unwrap_or(i64::MAX));
        });
        (listener, returned)
    }
}

impl Drop for TriggerQueue {
    /// The broker dropped its last reference, so no publisher can be offering a message
    /// any more: from now on the dispatcher runs what is queued, then ends.
    fn drop(&mut self) {
        self.queue.close();
    }
}

async fn invoke(
    runtime: &FunctionRuntime,
    pubsub: Arc<Pubsub>,
    function: &MessageFunction,
    message: &Message,
) {
    let mut trail: Vec<Arc<str>> = message.origin.trail().to_vec();
    trail.push(function.name.clone());
    let origin = pubsub.public_origin.clone();
    let context =
        PubsubContext::new(pubsub, origin, trail.into()).handling(message.envelope.clone());
    let input = types::Message {
        channel: message.channel.to_string(),
        data: message.payload.bytes().to_vec(),
        binary: !message.payload.is_text(),
        id: message.id,
        published_at_ms: message.published_at_ms,
    };
    if let Err(e) = runtime.call(function, &input, context).await {
        crate::throttled_warn!(
            function = %function.name,
            channel = %message.channel,
            error = %e,
            "message handler failed",
        );
    }
}
