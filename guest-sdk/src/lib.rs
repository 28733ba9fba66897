//! Write functions for tern, the host for WebAssembly functions and real-time pub/sub, in
//! plain Rust.
//!
//! A function is a `cdylib` crate built for `wasm32-wasip2`. It exports one handler with
//! [`http_function!`] (for HTTP routes) or [`pubsub_function!`] (for messages on channels),
//! and may open [`pubsub::Channel`]s to publish messages or hand out WebSocket URLs.
//!
//! ```no_run
//! use tern_sdk::http::{Error, Request, Response};
//!
//! fn hello(req: Request) -> Result<Response, Error> {
//!     let name = req
//!         .query("name")
//!         .ok_or_else(|| Error::bad_request("name parameter required"))?;
//!     Ok(Response::text(format!("hello, {name}")))
//! }
//!
//! tern_sdk::http_function!(hello);
//! # fn main() {}
//! ```
//!
//! Each call runs in a fresh instance: nothing a handler keeps in memory (statics included)
//! survives to the next request.
#![deny(missing_docs)]

pub mod http;
pub mod pubsub;
pub mod realtime;
pub mod session;

include!(concat!(env!("OUT_DIR"), "/export_macros.rs"));

/// What the export macros expand to; not part of the public API.
#[doc(hidden)]
pub mod __private {
    pub use wit_bindgen;

    /// Hands what the handler printed without a final newline to the host: the instance is
    /// dropped right after the handler returns, and Rust's stdout buffers up to a newline.
    pub fn flush_output() {
        use std::io::Write as _;
        let _ = std::io::stdout().flush();
        let _ = std::io::stderr().flush();
    }

    /// Bindings of the host's imports, shared by every function crate.
    pub mod bindings {
        wit_bindgen::generate!({
            path: "../wit",
            world: "tern:function/guest-imports",
        });
    }
}
