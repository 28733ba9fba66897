//! Running functions: one engine, each component compiled once, a fresh instance per call.
//!
//! Every invocation gets its own `Store` with a memory cap (`execution.memory`) and a
//! deadline (`execution.timeout`), so nothing leaks between calls and a trapped, looping or
//! greedy guest costs only its own request.

pub mod bindings;
pub mod cache;
pub mod component;
pub mod engine;
pub mod entry;
pub mod guest_output;
pub mod pubsub_host;
pub mod realtime_host;
pub mod sessions_host;
pub mod state;

use std::{sync::Arc, time::Duration};

use tokio::sync::Semaphore;
use wasmtime::{Engine, Store, component::Linker};

use bindings::{
    http::{HttpFunction as HttpBindings, HttpFunctionPre},
    message::PubsubFunctionPre,
};
pub use component::LoadError;
pub use entry::Entry;
use pubsub_host::PubsubContext;
use state::InvocationState;

use crate::{
    config::{FunctionSpec, units::ByteSize},
    metrics::{FunctionMetrics, Metrics},
};

/// Why an invocation produced no response.
#[derive(Debug, thiserror::Error)]
pub enum InvocationError {
    /// It ran past `execution.timeout`.
    #[error("timed out after {}", humantime::format_duration(*.0))]
    Timeout(Duration),
    /// It asked for more memory than `execution.memory`.
    #[error("exceeded its memory limit of {0}")]
    MemoryExceeded(ByteSize),
    /// It trapped (a panic, an `unreachable`, a stack overflow...).
    #[error("failed: {0}")]
    Trap(String),
}

/// Compiles components and runs invocations.
pub struct FunctionRuntime {
    engine: Engine,
    linker: Linker<InvocationState>,
    /// Bounds live instances to the pooling allocator's capacity: callers past it wait here
    /// instead of failing to allocate.
    slots: Arc<Semaphore>,
    cache: Option<cache::ComponentCache>,
    /// Where invocations and cache lookups are counted; None counts nowhere.
    metrics: Option<Arc<Metrics>>,
}

/// A function compiled and linked for one world, ready to instantiate.
pub struct Function<E> {
    /// Its name (the YAML file stem), for logs and errors.
    pub name: Arc<str>,
    timeout: Duration,
    memory: u64,
    pre: E,
    metrics: FunctionMetrics,
}

/// An HTTP-triggered function.
pub type HttpFunction = Function<HttpFunctionPre<InvocationState>>;
/// A pubsub-triggered function.
pub type MessageFunction = Function<PubsubFunctionPre<InvocationState>>;

impl FunctionRuntime {
    /// A runtime allowing `max_instances` concurrent invocations, each with up to
    /// `max_memory` bytes of linear memory, keeping compiled components in `cache`.
    pub fn new(
        max_instances: usize,
        max_memory: u64,
        cache: Option<cache::ComponentCache>,
    ) -> anyhow::Result<Self> {
        let instances = u32::try_from(max_instances).unwrap_or(u32::MAX);
        let engine = engine::build(instances, max_memory)?;
        engine::start_epoch_ticker(&engine)?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        HttpBindings::add_to_linker::<_, wasmtime::component::HasSelf<_>>(&mut linker, |s| s)?;
        let slots = Arc::new(Semaphore::new(max_instances));
        Ok(Self { engine, linker, slots, cache, metrics: None })
    }

    /// Counts invocations and cache lookups in `metrics` from now on.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Compiles `spec`'s component for the world `E` calls, checking it has the export.
    pub fn load<E: Entry>(&self, spec: &FunctionSpec) -> Result<Function<E>, LoadError> {
        let started = std::time::Instant::now();
        let (component, origin) =
            component::load(&self.engine, self.cache.as_ref(), &spec.source, E::EXPORT)?;
        tracing::info!(function = %spec.name, from = %origin, elapsed = ?started.elapsed(), "component loaded");
        if let Some(m) = &self.metrics {
            match origin {
                cache::Origin::Cached => m.cache_hits.inc(),
                cache::Origin::Compiled => m.cache_misses.inc(),
            };
        }
        let link_error = |e: wasmtime::Error| LoadError::Link {
            path: spec.source.clone(),
            reason: format!("{e:#}"),
        };
        let pre = self.linker.instantiate_pre(&component).map_err(link_error)?;
        let pre = E::new(pre).map_err(link_error)?;
        Ok(Function {
            name: spec.name.as_str().into(),
            timeout: spec.timeout,
            memory: spec.memory,
            pre,
            metrics: self
                .metrics
                .as_ref()
                .map_or_else(FunctionMetrics::detached, |m| m.function(&spec.name)),
        })
    }

    /// Runs `function` on `input` in a fresh instance; what the guest printed is logged.
    pub async fn call<E: Entry>(
        &self,
        function: &Function<E>,
        input: &E::Input,
        pubsub: PubsubContext,
    ) -> Result<E::Output, InvocationError> {
        let (result, output) = self.call_with_output(function, input, pubsub).await;
        if let Some(output) = output {
            crate::throttled_info!(function = %function.name, ?output, "function output");
        }
        result
    }

    /// Runs `function` on `input` in a fresh instance, returning what the guest printed
    /// (stdout and stderr, at most 4 KiB) for the caller to log with the invocation.
    pub async fn call_with_output<E: Entry>(
        &self,
        function: &Function<E>,
        input: &E::Input,
        pubsub: PubsubContext,
    ) -> (Result<E::Output, InvocationError>, Option<String>) {
        // Waiting for an instance is bounded by the timeout too: a host whose instances are all
        // busy times a call out (a hook then denies) rather than leaving it waiting.
        let _slot = match tokio::time::timeout(function.timeout, self.slots.acquire()).await {
            Ok(Ok(slot)) => slot,
            // The semaphore is never closed, so acquiring only fails if it were.
            Ok(Err(e)) => return (Err(InvocationError::Trap(e.to_string())), None),
            Err(_) => {
                function.metrics.timeouts.inc();
                return (Err(InvocationError::Timeout(function.timeout)), None);
            }
        };
        let started = std::time::Instant::now();
        let metrics = &function.metrics;
        metrics.instantiations.inc();
        let mut store = self.new_store(function.memory, pubsub);
        let outcome =
            tokio::time::timeout(function.timeout, function.pre.call(&mut store, input)).await;
        let output = store.data().output.text();
        let result = match outcome {
            Err(_) => Err(InvocationError::Timeout(function.timeout)),
            Ok(Ok(output)) => Ok(output),
            Ok(Err(e)) => Err(classify(&store, function.memory, e)),
        };
        metrics.seconds.observe(started.elapsed().as_secs_f64());
        match &result {
            Ok(_) => {}
            Err(InvocationError::Timeout(_)) => _ = metrics.timeouts.inc(),
            Err(InvocationError::MemoryExceeded(_)) => _ = metrics.memory.inc(),
            Err(InvocationError::Trap(_)) => _ = metrics.traps.inc(),
        }
        (result, output)
    }

    fn new_store(&self, memory: u64, pubsub: PubsubContext) -> Store<InvocationState> {
        let mut store = Store::new(&self.engine, InvocationState::new(memory, pubsub));
        store.limiter(|s| &mut s.limits);
        // Yield to the scheduler at every epoch tick: a busy guest shares its worker thread,
        // and the timeout around the call can fire and drop it.
        store.set_epoch_deadline(1);
        store.epoch_deadline_async_yield_and_update(1);
        store
    }
}

/// Turns a failed call into the reason a user should see.
fn classify(store: &Store<InvocationState>, memory: u64, e: wasmtime::Error) -> InvocationError {
    if store.data().limits.exceeded() {
        return InvocationError::MemoryExceeded(ByteSize(memory));
    }
    match e.downcast_ref::<wasmtime::Trap>() {
        Some(trap) => InvocationError::Trap(trap.to_string()),
        None => InvocationError::Trap(format!("{e:#}")),
    }
}
