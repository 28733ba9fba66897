//! The wasmtime `Engine` every function shares, and the epoch ticker that bounds run time.

use std::{thread, time::Duration};

use anyhow::Context as _;
use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// How often the epoch advances. A running guest yields to the scheduler (and notices its
/// deadline) at this granularity. Every tick wakes a thread on a busy machine: at 1 ms the
/// ticks cost about 2 us of CPU per request at 60k requests/s on 2 cores (18.5 -> 16.6 us
/// measured from /proc under wrk -c64), at 10 ms a tenth of that, and a looping guest still
/// gives its worker back 100 times a second.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Most core module instances per component: a Rust wasip2 component has a handful (the
/// program and small shim modules).
const MAX_CORE_INSTANCES: u32 = 8;
/// Linear memories per component: one, so that `execution.memory` is what an invocation
/// may use, and one pooled memory slot per instance suffices.
const MAX_MEMORIES: u32 = 1;
/// Tables per component: the program's function table and the shims'.
const MAX_TABLES: u32 = 4;

/// Builds the engine: cranelift, pooling allocator sized for `max_instances` live
/// instances, epoch interruption for deadlines.
pub fn build(max_instances: u32, max_memory: u64) -> anyhow::Result<Engine> {
    let mut pool = PoolingAllocationConfig::default();
    // Every total is the per-component maximum times the instances that may be alive at
    // once (the runtime's semaphore admits no more), so no mix of components can exhaust a
    // pool and make another function's call fail. A component past a per-component maximum
    // is refused when it loads, with wasmtime's message naming the count.
    pool.total_component_instances(max_instances)
        .total_core_instances(max_instances.saturating_mul(MAX_CORE_INSTANCES))
        .total_memories(max_instances.saturating_mul(MAX_MEMORIES))
        .total_tables(max_instances.saturating_mul(MAX_TABLES))
        .max_memory_size(usize::try_from(max_memory).unwrap_or(usize::MAX))
        .max_core_instances_per_component(MAX_CORE_INSTANCES)
        .max_memories_per_component(MAX_MEMORIES)
        .max_tables_per_component(MAX_TABLES)
        // Reset the first pages of a memory slot with memset instead of returning them to
        // the kernel: a Rust guest touches its stack and first heap pages on every call,
        // and faulting them back in dominated the cost of a small request.
        .linear_memory_keep_resident(2 << 20)
        .table_keep_resident(64 << 10)
        // ...and only the pages the call dirtied (Linux 6.7+; elsewhere the whole 2 MiB
        // above is reset): a memset of 2 MiB per call was half the cost of a small call.
        .pagemap_scan(Enabled::Auto);
    let mut config = Config::new();
    config.epoch_interruption(true).allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    Engine::new(&config).map_err(anyhow::Error::from).context("cannot create the wasm engine")
}

/// Starts the thread that advances the engine's epoch every [`EPOCH_TICK`]. It holds the
/// engine weakly and stops once the engine is dropped.
pub fn start_epoch_ticker(engine: &Engine) -> anyhow::Result<()> {
    let weak = engine.weak();
    thread::Builder::new()
        .name("tern-epoch".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                thread::sleep(EPOCH_TICK);
            }
        })
        .context("cannot start the epoch ticker thread")?;
    Ok(())
}
