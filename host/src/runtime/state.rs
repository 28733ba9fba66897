//! What one invocation's `Store` holds: its WASI context, its resources, its memory cap and
//! its view of pub/sub.

use wasmtime::{ResourceLimiter, component::ResourceTable};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::{guest_output::GuestOutput, pubsub_host::PubsubContext};

/// The data of one invocation's store.
pub struct InvocationState {
    wasi: WasiCtx,
    /// Guest resources (WASI streams, open channels); dropped with the store.
    pub table: ResourceTable,
    /// The memory cap and whether the guest ran into it.
    pub limits: MemoryCap,
    /// Pub/sub access for this invocation.
    pub pubsub: PubsubContext,
    /// What the guest printed.
    pub output: GuestOutput,
}

impl InvocationState {
    /// State for one invocation capped at `memory` bytes of linear memory.
    pub fn new(memory: u64, pubsub: PubsubContext) -> Self {
        // No preopened dirs, no env, no args, no network: the function sees nothing of the
        // host but its clocks and random numbers. The network is off by default in this
        // wasmtime-wasi, but its defaults have changed between releases: say it.
        let output = GuestOutput::default();
        let wasi = WasiCtx::builder()
            .stdout(output.clone())
            .stderr(output.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        let mut table = ResourceTable::new();
        table.set_max_capacity(MAX_RESOURCES);
        Self { wasi, table, limits: MemoryCap::new(memory), pubsub, output }
    }
}

impl WasiView for InvocationState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

/// Most resource handles (open channels, WASI streams...) one invocation may hold: a Rust
/// guest uses a handful, and each costs host memory (opening channels in a loop cost tens of
/// megabytes per call with wasmtime's default of a million).
pub const MAX_RESOURCES: usize = 1000;

/// Caps the sum of an instance's linear memories (a component may define several: a cap
/// per memory would let four memories take four times the cap) and remembers a refused
/// growth, because a Rust guest denied memory aborts through its OOM handler: the trap
/// alone does not say why.
#[derive(Debug)]
pub struct MemoryCap {
    cap: usize,
    /// Bytes of all linear memories of the store so far.
    total: usize,
    exceeded: bool,
}

impl MemoryCap {
    /// A cap of `bytes` for all linear memories together.
    pub fn new(bytes: u64) -> Self {
        Self { cap: usize::try_from(bytes).unwrap_or(usize::MAX), total: 0, exceeded: false }
    }

    /// Whether the guest asked for more memory than the cap.
    pub fn exceeded(&self) -> bool {
        self.exceeded
    }
}

/// Most elements a table may grow to; Rust guests use a few hundred.
const MAX_TABLE_ELEMENTS: usize = 10_000;

impl ResourceLimiter for MemoryCap {
    // Also called when a memory is created, with `current` 0: every memory is counted.
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let total = self.total.saturating_sub(current).saturating_add(desired);
        if total > self.cap {
            self.exceeded = true;
            return Ok(false);
        }
        self.total = total;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_is_on_the_sum_of_an_instances_memories() {
        const MIB: usize = 1 << 20;
        let mut cap = MemoryCap::new(64 * MIB as u64);
        assert!(cap.memory_growing(0, 40 * MIB, None).unwrap(), "a first memory");
        assert!(!cap.memory_growing(0, 40 * MIB, None).unwrap(), "a second one past the sum");
        assert!(cap.exceeded());
        assert!(cap.memory_growing(0, 20 * MIB, None).unwrap(), "within the sum");
        assert!(cap.memory_growing(40 * MIB, 44 * MIB, None).unwrap(), "growing counts the growth");
        assert!(!cap.memory_growing(44 * MIB, 45 * MIB, None).unwrap());
    }
}
