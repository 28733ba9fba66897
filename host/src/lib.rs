//! tern: a host for WebAssembly functions and real-time pub/sub over WebSockets.
//!
//! Module map, dependencies pointing one way (`cli -> server -> runtime -> config`):
//! - [`config`]: the project directory (YAML), parsed strictly with located errors.
//! - [`channel_name`]: what a valid channel name is.
//! - [`runtime`]: the wasm engine, components, and one fresh instance per invocation.
//! - [`server`]: the HTTP listener, routing, limits and graceful shutdown.
//! - [`cli`]: the `tern` command line.

pub mod channel_name;
pub mod cli;
pub mod config;
pub mod runtime;
pub mod server;
