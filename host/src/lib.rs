//! tern: a host for WebAssembly functions and real-time pub/sub over WebSockets.
//!
//! Module map, dependencies pointing one way
//! (`cli -> server -> {runtime, gateway} -> broker`, `config` read by all):
//! - [`config`]: the project directory (YAML), parsed strictly with located errors.
//! - [`channel_name`]: what a valid channel name is.
//! - [`broker`]: channel name -> subscribers, bounded queues, slow consumers dropped.
//! - [`runtime`]: the wasm engine, components, one fresh instance per invocation, and the
//!   host side of the WIT imports (its only way to the broker).
//! - [`gateway`]: the WebSocket bridge `/ws/channel/<name>`.
//! - [`trigger`]: pubsub-triggered functions: queues, concurrency, the hop limit.
//! - [`server`]: the HTTP listener, routing, limits, graceful shutdown, and the generations
//!   a reload swaps.
//! - [`admin`]: the admin listener: metrics, health, reload, deploy, rollback.
//! - [`bundle`]: the packed project `tern deploy` uploads.
//! - [`metrics`]: what tern counts, for Prometheus.
//! - [`watch`]: reloading (and rebuilding) on file changes.
//! - [`logging`]: non-blocking, escaped log output and throttled warnings.
//! - [`cli`]: the `tern` command line.

pub mod admin;
pub mod api;
pub mod auth;
pub mod broker;
pub mod bundle;
pub mod channel_name;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod gateway;
pub mod hooks;
pub mod ip_slots;
pub mod logging;
pub mod metrics;
pub mod reply;
pub mod runtime;
pub mod server;
pub mod trigger;
pub mod watch;
pub mod website;
