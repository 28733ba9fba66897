//! The one place the WIT contract (`wit/tern.wit`) becomes Rust types for the host.

/// Bindings of the `http-function` world, and of the `types`, `pubsub`, `realtime` and
/// `sessions` interfaces.
pub mod http {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "tern:function/http-function",
        imports: {
            // Waits for the session to attach, so what the function publishes next on
            // the channel reaches the client.
            "tern:function/sessions.subscribe": async | trappable,
            default: trappable,
        },
        exports: { default: async },
        with: {
            "tern:function/pubsub.channel": crate::runtime::pubsub_host::ChannelHandle,
        },
    });
}

/// The interfaces every world imports, as generated once in [`http`]. Takes the world's
/// name and the module to generate.
macro_rules! world_bindings {
    ($(#[$doc:meta])* $module:ident, $world:literal $(, $extra:literal : $path:path)*) => {
        $(#[$doc])*
        pub mod $module {
            wasmtime::component::bindgen!({
                path: "../wit",
                world: $world,
                imports: { default: trappable },
                exports: { default: async },
                with: {
                    "tern:function/pubsub": super::http::tern::function::pubsub,
                    "tern:function/realtime": super::http::tern::function::realtime,
                    "tern:function/sessions": super::http::tern::function::sessions,
                    $($extra: $path,)*
                },
            });
        }
    };
}

world_bindings!(
    /// Bindings of the `pubsub-function` world.
    message,
    "tern:function/pubsub-function",
    "tern:function/types": super::http::tern::function::types
);
world_bindings!(
    /// Bindings of the `rpc-function` world, and of the `session-types` interface.
    rpc,
    "tern:function/rpc-function"
);
world_bindings!(
    /// Bindings of the `send-function` world.
    send,
    "tern:function/send-function",
    "tern:function/session-types": super::rpc::tern::function::session_types
);
world_bindings!(
    /// Bindings of the `connect-hook` world.
    connect,
    "tern:function/connect-hook",
    "tern:function/session-types": super::rpc::tern::function::session_types
);
world_bindings!(
    /// Bindings of the `subscribe-hook` world.
    subscribe,
    "tern:function/subscribe-hook",
    "tern:function/session-types": super::rpc::tern::function::session_types
);
world_bindings!(
    /// Bindings of the `publish-hook` world.
    publish,
    "tern:function/publish-hook",
    "tern:function/session-types": super::rpc::tern::function::session_types
);

pub use http::tern::function::{pubsub, realtime, sessions, types};
pub use rpc::tern::function::session_types;
