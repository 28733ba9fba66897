//! Reading a `.wasm` file into a compiled component, with errors that say what is wrong.

use std::path::{Path, PathBuf};

use wasmtime::{
    Engine,
    component::{Component, types::ComponentItem},
};

use super::cache::{ComponentCache, Origin};

/// The first 8 bytes of a component (magic, then the component-model layer and version).
const COMPONENT_HEADER: [u8; 8] = [0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00];
/// The first 8 bytes of a core wasm module.
const CORE_MODULE_HEADER: [u8; 8] = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];

/// Why a function's component cannot be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file cannot be read.
    #[error("cannot read `{}`: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file does not start with the wasm magic number.
    #[error("`{}` is not a WebAssembly file", path.display())]
    NotWasm {
        /// The file.
        path: PathBuf,
    },
    /// A native program or library (ELF) where a component is needed.
    #[error("`{}` is a native program or library (ELF), not WebAssembly: build the function with `cargo build --release --target wasm32-wasip2`", path.display())]
    Native {
        /// The file.
        path: PathBuf,
    },
    /// A core module where a component is needed.
    #[error("`{}` is a core wasm module, not a component: build it with `--target wasm32-wasip2`", path.display())]
    CoreModule {
        /// The file.
        path: PathBuf,
    },
    /// The component does not validate or compile.
    #[error("`{}` is not a valid component: {reason}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What wasmtime said.
        reason: String,
    },
    /// The component lacks the export its trigger calls.
    #[error("`{}` does not export `{export}`, so it is not a component of the `{world}` world (it exports: {found}); export a handler with tern_sdk::{macro_name}!", path.display())]
    MissingExport {
        /// The file.
        path: PathBuf,
        /// The missing export.
        export: &'static str,
        /// The world the trigger needs.
        world: &'static str,
        /// The SDK macro that exports it.
        macro_name: &'static str,
        /// What it does export.
        found: String,
    },
    /// The component imports something this host does not provide.
    #[error("`{}` cannot be linked: {reason}", path.display())]
    Link {
        /// The file.
        path: PathBuf,
        /// What wasmtime said (it names the missing import).
        reason: String,
    },
}

/// The export a trigger needs from a component.
#[derive(Debug, Clone, Copy)]
pub struct RequiredExport {
    /// The export's name.
    pub export: &'static str,
    /// The world that defines it.
    pub world: &'static str,
    /// The SDK macro that exports it.
    pub macro_name: &'static str,
}

/// What an HTTP-triggered function must export.
pub const HTTP_EXPORT: RequiredExport =
    RequiredExport { export: "handle-http", world: "http-function", macro_name: "http_function" };
/// What a pubsub-triggered function must export.
pub const MESSAGE_EXPORT: RequiredExport = RequiredExport {
    export: "handle-message",
    world: "pubsub-function",
    macro_name: "pubsub_function",
};
/// What an RPC handler must export.
pub const RPC_EXPORT: RequiredExport =
    RequiredExport { export: "handle-rpc", world: "rpc-function", macro_name: "rpc_function" };
/// What a `send` handler must export.
pub const SEND_EXPORT: RequiredExport =
    RequiredExport { export: "handle-send", world: "send-function", macro_name: "send_function" };
/// What a connect hook must export.
pub const CONNECT_EXPORT: RequiredExport =
    RequiredExport { export: "on-connect", world: "connect-hook", macro_name: "connect_hook" };
/// What a subscribe hook must export.
pub const SUBSCRIBE_EXPORT: RequiredExport = RequiredExport {
    export: "on-subscribe",
    world: "subscribe-hook",
    macro_name: "subscribe_hook",
};
/// What a publish hook must export.
pub const PUBLISH_EXPORT: RequiredExport =
    RequiredExport { export: "on-publish", world: "publish-hook", macro_name: "publish_hook" };

/// Reads and compiles `path` (through `cache` when there is one), checking that it exports
/// `required` as a function.
pub fn load(
    engine: &Engine,
    cache: Option<&ComponentCache>,
    path: &Path,
    required: RequiredExport,
) -> Result<(Component, Origin), LoadError> {
    let bytes = std::fs::read(path)
        .map_err(|source| LoadError::Read { path: path.to_path_buf(), source })?;
    match bytes.get(..8) {
        Some(h) if h == COMPONENT_HEADER => {}
        Some(h) if h == CORE_MODULE_HEADER => {
            return Err(LoadError::CoreModule { path: path.to_path_buf() });
        }
        Some(h) if h[..4] == COMPONENT_HEADER[..4] => {}
        Some(h) if h.starts_with(b"\x7fELF") => {
            return Err(LoadError::Native { path: path.to_path_buf() });
        }
        _ => {
            return Err(LoadError::NotWasm { path: path.to_path_buf() });
        }
    }
    let invalid = |e: wasmtime::Error| LoadError::Invalid {
        path: path.to_path_buf(),
        reason: format!("{e:#}"),
    };
    let (component, origin) = match cache {
        Some(cache) => cache.load(engine, &bytes).map_err(invalid)?,
        None => (Component::new(engine, &bytes).map_err(invalid)?, Origin::Compiled),
    };
    let ty = component.component_type();
    let exports: Vec<(String, bool)> = ty
        .exports(engine)
        .map(|(name, item)| (name.to_string(), matches!(item.ty, ComponentItem::ComponentFunc(_))))
        .collect();
    if !exports.iter().any(|(name, is_func)| name == required.export && *is_func) {
        let found: Vec<_> = exports.iter().map(|(n, _)| format!("`{n}`")).collect();
        return Err(LoadError::MissingExport {
            path: path.to_path_buf(),
            export: required.export,
            world: required.world,
            macro_name: required.macro_name,
            found: if found.is_empty() { "nothing".into() } else { found.join(", ") },
        });
    }
    Ok((component, origin))
}
