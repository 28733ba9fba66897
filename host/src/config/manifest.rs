//! A deployed project's manifest: which component each function file runs. `tern deploy`
//! stores components by hash beside the YAML instead of rewriting the YAML's `source`
//! (which usually points into the author's `target/`), so the host reads them from here.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};

/// The file, in a deployed project, mapping function files to their components.
pub const MANIFEST: &str = ".tern-deploy.json";

/// The manifest: `functions/<name>.yaml` -> `components/<sha256>.wasm`.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// The bundle format; 1.
    pub format: u32,
    /// Function file -> component file, both relative to the project.
    pub sources: BTreeMap<String, String>,
}

/// The components a deployed project at `dir` maps its function files to, both joined to
/// `dir`; None when `dir` is not a deployed project.
pub fn deployed_sources(dir: &Path) -> Option<BTreeMap<PathBuf, PathBuf>> {
    let bytes = std::fs::read(dir.join(MANIFEST)).ok()?;
    let manifest: Manifest = serde_json::from_slice(&bytes).ok()?;
    Some(manifest.sources.iter().map(|(f, c)| (dir.join(f), dir.join(c))).collect())
}
