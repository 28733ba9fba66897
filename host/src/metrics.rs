//! What tern counts, in Prometheus' data model (the `prometheus-client` crate, maintained by
//! the Prometheus project): one registry per host, encoded on `GET /metrics` of the admin
//! listener.
//!
//! Handles are cheap clones of atomics. A function's handles are looked up once when it is
//! loaded, not on every call; only the request counter (labelled by status) does a lookup.

use std::sync::Arc;

use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};

/// Labels of a per-function series.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FunctionLabel {
    /// The function's name.
    pub function: String,
}

/// Labels of an HTTP request.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// The function that answered; empty when none did (404, 405, 421...).
    pub function: String,
    /// The status code answered.
    pub status: u16,
}

/// Labels of a failed invocation.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FailureLabels {
    /// The function's name.
    pub function: String,
    /// `timeout`, `memory` or `trap`.
    pub reason: &'static str,
}

/// Labels naming a protocol.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProtocolLabel {
    /// `raw` (the `/ws/channel/` bridge).
    pub protocol: &'static str,
}

/// Labels naming why something was dropped.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TriggerDropLabels {
    /// The function's name.
    pub function: String,
    /// `queue_full` or `hop_limit`.
    pub reason: &'static str,
}

/// Labels of a reload.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReloadLabels {
    /// `applied` or `refused`.
    pub outcome: &'static str,
}

/// Every metric of one host.
pub struct Metrics {
    registry: Registry,
    /// HTTP requests answered, by function and status.
    pub requests: Family<RequestLabels, Counter>,
    /// Seconds an invocation took, instantiation included, by function.
    pub invocation_seconds: Family<FunctionLabel, Histogram>,
    /// Instances created, by function (one per invocation).
    pub instantiations: Family<FunctionLabel, Counter>,
    /// Invocations that timed out, ran out of memory or trapped.
    pub invocation_failures: Family<FailureLabels, Counter>,
    /// WebSocket clients connected now, by protocol.
    pub websocket_connections: Family<ProtocolLabel, Gauge>,
    /// WebSocket clients accepted since start, by protocol.
    pub websocket_accepted: Family<ProtocolLabel, Counter>,
    /// Messages published.
    pub published: Counter,
    /// Copies of messages handed to subscribers' queues.
    pub delivered: Counter,
    /// Subscribers (WebSocket clients) dropped because they read too slowly.
    pub slow_consumers: Counter,
    /// WebSocket clients closed because a reload removed their channel.
    pub sessions_retired: Counter,
    /// Messages queued for a pubsub-triggered function, by function.
    pub trigger_queued: Family<FunctionLabel, Counter>,
    /// Messages waiting in a pubsub-triggered function's queue now, by function.
    pub trigger_queue_depth: Family<FunctionLabel, Gauge>,
    /// Messages not delivered to a function, by function and reason.
    pub trigger_dropped: Family<TriggerDropLabels, Counter>,
    /// Compiled components found in the cache.
    pub cache_hits: Counter,
    /// Components compiled because the cache had none (or there is no cache).
    pub cache_misses: Counter,
    /// Reloads, by outcome.
    pub reloads: Family<ReloadLabels, Counter>,
    /// Seconds from a reload's start to the new generation serving.
    pub reload_seconds: Histogram,
    /// The generation serving now (1 at start, one more per applied reload).
    pub generation: Gauge,
    /// Admin API requests refused for a missing or wrong key.
    pub admin_unauthorized: Counter,
    /// What the cluster link did (zero without a cluster).
    pub cluster: crate::cluster::ClusterStats,
}

/// Invocation buckets, in seconds: from a cached small call (~20 us) to a long timeout.
const INVOCATION_BUCKETS: [f64; 14] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 2.5,
    10.0,
];

fn invocation_histogram() -> Histogram {
    Histogram::new(INVOCATION_BUCKETS)
}

impl Metrics {
    /// The counters the cluster link counts into.
    pub fn cluster_stats(&self) -> crate::cluster::ClusterStats {
        self.cluster.clone()
    }

    /// A fresh set of metrics, registered under the `tern_` prefix.
    pub fn new() -> Arc<Self> {
        let mut registry = Registry::with_prefix("tern");
        let m = Metrics {
            requests: Family::default(),
            invocation_seconds: Family::new_with_constructor(invocation_histogram),
            instantiations: Family::default(),
            invocation_failures: Family::default(),
            websocket_connections: Family::default(),
            websocket_accepted: Family::default(),
            published: Counter::default(),
            delivered: Counter::default(),
            slow_consumers: Counter::default(),
            sessions_retired: Counter::default(),
            trigger_queued: Family::default(),
            trigger_queue_depth: Family::default(),
            trigger_dropped: Family::default(),
            cache_hits: Counter::default(),
            cache_misses: Counter::default(),
            reloads: Family::default(),
            reload_seconds: Histogram::new([0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0]),
            generation: Gauge::default(),
            admin_unauthorized: Counter::default(),
            cluster: crate::cluster::ClusterStats::default(),
            registry: Registry::default(),
        };
        let r = &mut registry;
        r.register("http_requests", "HTTP requests answered", m.requests.clone());
        r.register(
            "invocation_duration_seconds",
            "Time an invocation took, instantiation included",
            m.invocation_seconds.clone(),
        );
        r.register("instantiations", "Function instances created", m.instantiations.clone());
        r.register(
            "invocation_failures",
            "Invocations that timed out, ran out of memory or trapped",
            m.invocation_failures.clone(),
        );
        r.register(
            "websocket_connections",
            "WebSocket clients connected now",
            m.websocket_connections.clone(),
        );
        r.register(
            "websocket_accepted",
            "WebSocket clients accepted",
            m.websocket_accepted.clone(),
        );
        r.register("messages_published", "Messages published", m.published.clone());
        r.register(
            "messages_delivered",
            "Copies of messages queued for subscribers",
            m.delivered.clone(),
        );
        r.register(
            "slow_consumers_dropped",
            "Subscribers dropped for reading too slowly",
            m.slow_consumers.clone(),
        );
        r.register(
            "websocket_sessions_retired",
            "WebSocket clients closed because a reload removed their channel",
            m.sessions_retired.clone(),
        );
        r.register(
            "trigger_messages_queued",
            "Messages queued for a pubsub-triggered function",
            m.trigger_queued.clone(),
        );
        r.register(
            "trigger_queue_depth",
            "Messages waiting for a pubsub-triggered function",
            m.trigger_queue_depth.clone(),
        );
        r.register(
            "trigger_messages_dropped",
            "Messages not delivered to a pubsub-triggered function",
            m.trigger_dropped.clone(),
        );
        r.register("cache_hits", "Compiled components found in the cache", m.cache_hits.clone());
        let c = &m.cluster;
        r.register("cluster_sent", "Publications of this node sent to NATS", c.sent.clone());
        r.register(
            "cluster_received",
            "Publications of other nodes received from NATS and delivered here",
            c.received.clone(),
        );
        r.register(
            "cluster_unsent",
            "Publications of this node that reached its own subscribers only",
            c.unsent.clone(),
        );
        r.register(
            "cluster_refused",
            "Messages on tern's NATS subjects that were not a tern node's publication",
            c.refused.clone(),
        );
        r.register("cache_misses", "Components compiled at load", m.cache_misses.clone());
        r.register("reloads", "Project reloads by outcome", m.reloads.clone());
        r.register(
            "reload_duration_seconds",
            "Time from a reload's start to the new generation serving",
            m.reload_seconds.clone(),
        );
        r.register("generation", "The generation serving now", m.generation.clone());
        r.register(
            "admin_unauthorized",
            "Admin API requests refused for a missing or wrong key",
            m.admin_unauthorized.clone(),
        );
        Arc::new(Metrics { registry, ..m })
    }

    /// The handles one function's invocations update.
    pub fn function(&self, name: &str) -> FunctionMetrics {
        let label = FunctionLabel { function: name.to_string() };
        let failure = |reason| {
            self.invocation_failures
                .get_or_create_owned(&FailureLabels { function: name.to_string(), reason })
        };
        FunctionMetrics {
            seconds: self.invocation_seconds.get_or_create_owned(&label),
            instantiations: self.instantiations.get_or_create_owned(&label),
            timeouts: failure("timeout"),
            memory: failure("memory"),
            traps: failure("trap"),
        }
    }

    /// Counts one HTTP request answered by `function` (empty when none) with `status`.
    pub fn count_request(&self, function: &str, status: u16) {
        self.requests
            .get_or_create(&RequestLabels { function: function.to_string(), status })
            .inc();
    }

    /// The registry in the Prometheus text exposition format (OpenMetrics flavour).
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

/// The metric handles of one function, looked up once at load.
#[derive(Clone)]
pub struct FunctionMetrics {
    /// Duration of each invocation.
    pub seconds: Histogram,
    /// Instances created.
    pub instantiations: Counter,
    /// Invocations past `execution.timeout`.
    pub timeouts: Counter,
    /// Invocations past `execution.memory`.
    pub memory: Counter,
    /// Invocations that trapped.
    pub traps: Counter,
}

impl FunctionMetrics {
    /// Handles registered nowhere, for a runtime used without a host (benchmarks, tests).
    pub fn detached() -> Self {
        Self {
            seconds: invocation_histogram(),
            instantiations: Counter::default(),
            timeouts: Counter::default(),
            memory: Counter::default(),
            traps: Counter::default(),
        }
    }
}
