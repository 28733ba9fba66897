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

/// Builds the engine: cranelift, pooling allocator sized for `max_instances` live
/// instances, epoch interruption for deadlines.
pub fn build(max_instances: u32, max_memory: u64) -> anyhow::Result<Engine> {
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(max_instances)
        // A Rust wasip2 component is a handful of core instances (the program and small
        // shim modules), one memory and a few tables.
        .total_core_instances(max_instances.saturating_mul(8))
        .total_memories(max_instances)
        .total_tables(max_instances.saturating_mul(4))
        .max_memory_size(usize::try_from(max_memory).unwrap_or(usize::MAX))
        .max_core_instances_per_component(32)
        .max_memories_per_component(4)
        .max_tables_per_component(16)
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
