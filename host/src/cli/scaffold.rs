//! `tern new NAME`: a function crate under `<project>/code/functions/NAME` (in a workspace
//! of the project's function crates, `<project>/code`), its `functions/NAME.yaml`, and for
//! a pubsub function its messaging config when missing. `tern build` then `tern serve`
//! answer at once.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};

use super::build::TARGET;

/// Options of `tern new`.
#[derive(Debug, clap::Args)]
pub struct NewArgs {
    /// The function's name: lower-case letters, digits and `_`, starting with a letter.
    name: String,
    /// The project directory (created if missing).
    #[arg(long, default_value = ".")]
    dir: PathBuf,
    /// An HTTP function answering GET on this path [default: /NAME].
    #[arg(long, conflicts_with = "pubsub")]
    http: Option<String>,
    /// A function triggered by every message on the channels of this messaging config
    /// (created, matching channel `CONFIG/...` with the WebSocket bridge on, if missing).
    #[arg(long)]
    pubsub: Option<String>,
    /// The tern-sdk crate to depend on: the `guest-sdk` directory of a tern checkout
    /// [default: $TERN_SDK_PATH, else the one this tern was built from].
    #[arg(long, value_name = "PATH")]
    sdk: Option<PathBuf>,
}

/// Creates the function `args` describes.
pub fn new_function(args: &NewArgs) -> anyhow::Result<()> {
    let name = &args.name;
    check_name(name, "function name")?;
    let dir = &args.dir;
    let sdk = sdk_path(args.sdk.as_deref())?;
    let code = dir.join("code");
    let krate = code.join("functions").join(name);
    let yaml = dir.join("functions").join(format!("{name}.yaml"));
    for existing in [&krate, &yaml] {
        if existing.exists() {
            bail!("{} already exists: choose another name", existing.display());
        }
    }
    if !code.join("Cargo.toml").exists() {
        write(&code.join("Cargo.toml"), &workspace_manifest(&sdk))?;
    }
    write(&krate.join("Cargo.toml"), &crate_manifest(name))?;
    let source = format!("../code/target/{TARGET}/release/{name}.wasm");
    match &args.pubsub {
        Some(config) => {
            check_name(config, "messaging config name")?;
            write(&krate.join("src/lib.rs"), &pubsub_source(name))?;
            write(&yaml, &pubsub_yaml(config, &source))?;
            let messaging = dir.join("messaging").join(format!("{config}.yaml"));
            if !messaging.exists() {
                write(&messaging, &messaging_yaml(config))?;
            }
        }
        None => {
            let path = args.http.clone().unwrap_or_else(|| format!("/{name}"));
            let plain =
                |c: char| c.is_ascii_alphanumeric() || matches!(c, '/' | '-' | '_' | '.' | '~');
            if !path.starts_with('/') || !path.chars().all(plain) || path.len() > 1024 {
                bail!(
                    "--http {path}: a path starts with / and holds only letters, digits and / - _ . ~"
                );
            }
            write(&krate.join("src/lib.rs"), &http_source(name))?;
            write(&yaml, &http_yaml(&path, &source))?;
        }
    }
    println!("created function `{name}`:");
    println!("  {}  (its YAML)", yaml.display());
    println!("  {}  (its crate)", krate.display());
    println!("next: tern build {0} && tern serve {0}   (or: tern dev {0})", dir.display());
    Ok(())
}

fn check_name(name: &str, what: &str) -> anyhow::Result<()> {
    let ok = name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !ok {
        bail!(
            "`{name}` is not a valid {what}: lower-case letters, digits and _, starting with a letter, at most 64"
        );
    }
    Ok(())
}

/// The SDK to depend on: given, from `TERN_SDK_PATH`, or this build's own checkout.
fn sdk_path(given: Option<&Path>) -> anyhow::Result<PathBuf> {
    let built_from = Path::new(env!("CARGO_MANIFEST_DIR")).join("../guest-sdk");
    let path = match (given, std::env::var_os("TERN_SDK_PATH")) {
        (Some(p), _) => p.to_path_buf(),
        (None, Some(p)) => PathBuf::from(p),
        (None, None) => built_from,
    };
    let path = path.canonicalize().map_err(|_| {
        anyhow::anyhow!(
            "cannot find tern-sdk at {}: pass --sdk PATH (the guest-sdk directory of a tern checkout) or set TERN_SDK_PATH",
            path.display()
        )
    })?;
    let manifest = path.join("Cargo.toml");
    let is_sdk =
        std::fs::read_to_string(&manifest).is_ok_and(|t| t.contains("name = \"tern-sdk\""));
    if !is_sdk {
        bail!("{} is not the tern-sdk crate", path.display());
    }
    Ok(path)
}

fn write(path: &Path, text: &str) -> anyhow::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

fn workspace_manifest(sdk: &Path) -> String {
    format!(
        r#"# The project's function crates; `tern build` builds them for {TARGET}.
[workspace]
resolver = "2"
members = ["functions/*"]

[workspace.dependencies]
tern-sdk = {{ path = {sdk:?} }}

[profile.release]
opt-level = "s"
lto = true
codegen-units = 1
strip = true
"#,
        sdk = sdk.display().to_string()
    )
}

fn crate_manifest(name: &str) -> String {
    format!(
        r#"[package]
name = "{name}"
version = "0.1.0"
edition = "2024"
publish = false

[lib]
crate-type = ["cdylib"]

[dependencies]
tern-sdk.workspace = true
"#
    )
}

fn http_source(name: &str) -> String {
    format!(
        r#"//! `{name}`: answers `hello from {name}`, or `hello, <name>` given `?name=<name>`.

use tern_sdk::http::{{Error, Request, Response}};

fn handle(req: Request) -> Result<Response, Error> {{
    match req.query("name") {{
        Some(who) => Ok(Response::text(format!("hello, {{who}}"))),
        None => Ok(Response::text("hello from {name}")),
    }}
}}

tern_sdk::http_function!(handle);
"#
    )
}

fn pubsub_source(name: &str) -> String {
    format!(
        r#"//! `{name}`: runs for every message on its channels; answers `ping` with `pong`.

use tern_sdk::pubsub::{{Channel, Message}};

fn on_message(msg: Message) {{
    if msg.text().map(str::trim) == Some("ping") {{
        if let Err(e) = Channel::open(msg.channel()).and_then(|c| c.publish_text("pong")) {{
            eprintln!("{name} cannot answer in {{}}: {{e}}", msg.channel());
        }}
    }}
}}

tern_sdk::pubsub_function!(on_message);
"#
    )
}

fn http_yaml(path: &str, source: &str) -> String {
    format!(
        "description: answers GET {path}\ntrigger:\n  type: https\n  method: GET\n  paths: [{path}]\nexecution:\n  timeout: 10s\n  memory: 64MB\nsource: {source}\n"
    )
}

fn pubsub_yaml(config: &str, source: &str) -> String {
    format!(
        "description: runs for every message on {config}'s channels\ntrigger:\n  type: pubsub\n  channel: {config}\nexecution:\n  timeout: 10s\n  memory: 64MB\nsource: {source}\n"
    )
}

fn messaging_yaml(config: &str) -> String {
    format!(
        "description: channels {config}/...\nchannel:\n  match: {config}\n  regex: false\nbridges:\n  websocket:\n    enable: true\n"
    )
}
