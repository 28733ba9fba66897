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
        // host but its clocks and random numbers.
        let output = GuestOutput::default();
        let wasi = WasiCtx::builder().stdout(output.clone()).stderr(output.clone()).build();
        Self { wasi, table: ResourceTable::new(), limits: MemoryCap::new(memory), pubsub, output }
    }
}

impl WasiView for InvocationState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

/// Caps each linear memory of an instance and remembers a refused growth, because a Rust
/// guest denied memory aborts through its OOM handler: the trap alone does not say why.
#[derive(Debug)]
pub struct MemoryCap {
    cap: usize,
    exceeded: bool,
}

impl MemoryCap {
    /// A cap of `bytes` per linear memory.
    pub fn new(bytes: u64) -> Self {
        Self { cap: usize::try_from(bytes).unwrap_or(usize::MAX), exceeded: false }
    }

    /// Whether the guest asked for more memory than the cap.
    pub fn exceeded(&self) -> bool {
        self.exceeded
    }
}

/// Most elements a table may grow to; Rust guests use a few hundred.
const MAX_TABLE_ELEMENTS: usize = 100_000;

impl ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.cap {
            self.exceeded = true;
            return Ok(false);
        }
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
