//! The one place the WIT contract (`wit/tern.wit`) becomes Rust types for the host.

/// Bindings of the `http-function` world, and of the `types` and `pubsub` interfaces.
pub mod http {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "tern:function/http-function",
        imports: { default: trappable },
        exports: { default: async },
        with: {
            "tern:function/pubsub.channel": crate::runtime::pubsub_host::ChannelHandle,
        },
    });
}

/// Bindings of the `pubsub-function` world, sharing the interfaces generated above.
pub mod message {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "tern:function/pubsub-function",
        imports: { default: trappable },
        exports: { default: async },
        with: {
            "tern:function/pubsub": super::http::tern::function::pubsub,
            "tern:function/realtime": super::http::tern::function::realtime,
            "tern:function/types": super::http::tern::function::types,
        },
    });
}

pub use http::tern::function::{pubsub, realtime, types};
