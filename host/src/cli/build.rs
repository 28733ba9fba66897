//! `tern build`: finds the Rust crate behind each function's component and builds it for
//! `wasm32-wasip2`, adding the target with rustup when it is missing.
//!
//! A function's `source` names the component cargo writes:
//! `<root>/target/wasm32-wasip2/release/<name>.wasm`. The crate is the package called
//! `<name>` (with `-` read as `_`) in `<root>` or up to two directories below it, which
//! covers a lone crate, a workspace of function crates (what `tern new` makes) and this
//! repository's layout.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, bail};

use crate::config::Project;

/// The compilation target of every component.
pub const TARGET: &str = "wasm32-wasip2";

/// A function's crate, and where its build output must land.
#[derive(Debug, Clone)]
pub struct FunctionCrate {
    /// The package name.
    pub package: String,
    /// The crate's directory.
    pub dir: PathBuf,
    /// The target directory `source` points into.
    pub target_dir: PathBuf,
}

impl FunctionCrate {
    /// Builds the crate in release mode for [`TARGET`], cargo's output on stderr.
    pub fn build(&self) -> anyhow::Result<()> {
        let status = Command::new(cargo())
            .args(["build", "--release", "--target", TARGET, "--manifest-path"])
            .arg(self.dir.join("Cargo.toml"))
            .env("CARGO_TARGET_DIR", &self.target_dir)
            .status()
            .context("cannot run cargo")?;
        if !status.success() {
            bail!("building `{}` failed ({status})", self.package);
        }
        Ok(())
    }
}

/// The crates of every function of the project in `dir`, one per crate.
pub fn function_crates(dir: &Path) -> anyhow::Result<Vec<FunctionCrate>> {
    let (project, _) = Project::read(dir);
    if project.functions.is_empty() {
        bail!("{}: no function to build (functions/*.yaml)", dir.display());
    }
    let mut crates: Vec<FunctionCrate> = Vec::new();
    for f in &project.functions {
        let found = crate_of(&f.source).with_context(|| {
            format!(
                "{}: cannot tell which crate builds `{}`: expected <dir>/target/{TARGET}/release/<crate>.wasm with the crate in <dir>",
                f.file.display(),
                f.source.display()
            )
        })?;
        if !crates.iter().any(|c| c.dir == found.dir) {
            crates.push(found);
        }
    }
    Ok(crates)
}

/// `tern build DIR`.
pub fn build_project(dir: &Path) -> anyhow::Result<()> {
    let crates = function_crates(dir)?;
    ensure_target()?;
    let total = crates.len();
    for (i, krate) in crates.iter().enumerate() {
        eprintln!("[{}/{total}] building {} ({})", i + 1, krate.package, krate.dir.display());
        krate.build()?;
    }
    eprintln!("built {total} crate(s) for {TARGET}");
    Ok(())
}

/// The crate whose build writes `source`.
fn crate_of(source: &Path) -> Option<FunctionCrate> {
    let source = std::path::absolute(source).ok()?;
    let stem = source.file_stem()?.to_str()?.to_string();
    let release = source.parent()?;
    let target = release.parent()?;
    let target_dir = target.parent()?;
    if release.file_name()? != "release" || target.file_name()? != TARGET {
        return None;
    }
    let root = target_dir.parent()?;
    let level1 = subdirs(root);
    let level2: Vec<PathBuf> = level1.iter().flat_map(|d| subdirs(d)).collect();
    let candidates = std::iter::once(root.to_path_buf()).chain(level1).chain(level2);
    candidates.into_iter().find_map(|dir| {
        let package = package_name(&dir.join("Cargo.toml"))?;
        (package.replace('-', "_") == stem).then(|| FunctionCrate {
            package,
            dir,
            target_dir: target_dir.to_path_buf(),
        })
    })
}

fn subdirs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_dir()
                && p.file_name()
                    .is_some_and(|n| n != "target" && !n.to_string_lossy().starts_with('.'))
        })
        .collect()
}

/// The `[package] name` of a Cargo manifest.
fn package_name(manifest: &Path) -> Option<String> {
    let text = std::fs::read_to_string(manifest).ok()?;
    let value: toml::Table = toml::from_str(&text).ok()?;
    Some(value.get("package")?.get("name")?.as_str()?.to_string())
}

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

/// Adds the [`TARGET`] with rustup when it is not installed (and rustup is there).
fn ensure_target() -> anyhow::Result<()> {
    let Ok(out) = Command::new("rustup").args(["target", "list", "--installed"]).output() else {
        return Ok(()); // no rustup: cargo will say if the target is missing
    };
    if String::from_utf8_lossy(&out.stdout).lines().any(|l| l.trim() == TARGET) {
        return Ok(());
    }
    eprintln!("adding the {TARGET} target (rustup target add {TARGET})");
    let status = Command::new("rustup").args(["target", "add", TARGET]).status()?;
    if !status.success() {
        bail!("rustup target add {TARGET} failed ({status})");
    }
    Ok(())
}
