//! The precompiled-component cache: compiling a component takes tens of milliseconds,
//! loading its machine code back from disk a fraction of one.
//!
//! An entry is named by the SHA-256 of the engine's compatibility hash (wasmtime's version
//! and every setting that changes the code) and the component's bytes, so a rebuilt
//! function, a new tern or a new configuration simply misses.

use std::{
    fs,
    hash::{Hash, Hasher},
    io::Write as _,
    path::{Path, PathBuf},
};

use sha2::{Digest, Sha256};
use wasmtime::{Engine, component::Component};

/// Most entries kept; past it the least recently written are removed.
const MAX_ENTRIES: usize = 256;

/// A directory of precompiled components for one engine configuration.
#[derive(Debug, Clone)]
pub struct ComponentCache {
    dir: PathBuf,
}

/// Where a component came from, for the load log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Loaded from the cache.
    Cached,
    /// Compiled now (and written to the cache when there is one).
    Compiled,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Origin::Cached => "cache",
            Origin::Compiled => "compiler",
        })
    }
}

impl ComponentCache {
    /// The cache in `dir`, created (readable by this user only) when missing.
    pub fn open(dir: &Path) -> std::io::Result<Self> {
        let mut builder = fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(dir)?;
        Ok(Self { dir: dir.to_path_buf() })
    }

    /// The default location: `$XDG_CACHE_HOME/tern`, else `$HOME/.cache/tern`.
    pub fn default_dir() -> Option<PathBuf> {
        let non_empty = |var| std::env::var_os(var).filter(|v| !v.is_empty()).map(PathBuf::from);
        non_empty("XDG_CACHE_HOME")
            .or_else(|| non_empty("HOME").map(|home| home.join(".cache")))
            .map(|base| base.join("tern"))
    }

    /// `bytes` compiled for `engine`: from the cache when an entry is there and loads,
    /// else compiled and stored. A failure to store is logged, never fatal.
    pub fn load(&self, engine: &Engine, bytes: &[u8]) -> wasmtime::Result<(Component, Origin)> {
        let path = self.dir.join(format!("{}.cwasm", key(engine, bytes)));
        if path.is_file() {
            // SAFETY: `deserialize_file` trusts the file to be wasmtime's own output. The
            // cache directory is created by tern, private to this user, and entries are
            // written whole under a temporary name then renamed, so a reader never sees a
            // partial file; wasmtime still checks the header and the engine's settings.
            match unsafe { Component::deserialize_file(engine, &path) } {
                Ok(component) => return Ok((component, Origin::Cached)),
                Err(e) => tracing::warn!(
                    entry = %path.display(), error = %e,
                    "ignoring an unreadable precompiled-component cache entry"
                ),
            }
        }
        let component = Component::new(engine, bytes)?;
        if let Err(e) = self.store(&path, &component) {
            tracing::warn!(dir = %self.dir.display(), error = %e, "cannot write to the component cache");
        }
        Ok((component, Origin::Compiled))
    }

    fn store(&self, path: &Path, component: &Component) -> anyhow::Result<()> {
        let code = component.serialize()?;
        let (tmp_path, mut tmp) = tempfile_in(&self.dir)?;
        let written = tmp.write_all(&code).and_then(|()| tmp.sync_all());
        if let Err(e) = written.and_then(|()| fs::rename(&tmp_path, path)) {
            // A full disk must not leave half-written files behind to fill it further.
            let _ = fs::remove_file(&tmp_path);
            return Err(e.into());
        }
        self.prune();
        Ok(())
    }

    /// Keeps the newest [`MAX_ENTRIES`] entries, so rebuilding functions over months does
    /// not fill the disk.
    fn prune(&self) {
        let Ok(dir) = fs::read_dir(&self.dir) else { return };
        let mut entries: Vec<_> = dir
            .filter_map(Result::ok)
            .filter(|e| e.path().extension().is_some_and(|x| x == "cwasm"))
            .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
            .collect();
        if entries.len() <= MAX_ENTRIES {
            return;
        }
        entries.sort();
        for (_, path) in &entries[..entries.len() - MAX_ENTRIES] {
            let _ = fs::remove_file(path);
        }
    }
}

/// A new file in `dir` with a name no other writer uses.
fn tempfile_in(dir: &Path) -> std::io::Result<(PathBuf, fs::File)> {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = dir.join(format!(".tmp-{}-{n}", std::process::id()));
    let file = fs::OpenOptions::new().write(true).create_new(true).open(&path)?;
    Ok((path, file))
}

/// The entry name of `bytes` compiled by `engine`.
fn key(engine: &Engine, bytes: &[u8]) -> String {
    let mut hasher = Sha256Hasher(Sha256::new());
    engine.precompile_compatibility_hash().hash(&mut hasher);
    hasher.0.update(bytes);
    hasher.0.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Feeds `Hash` output into SHA-256 (std's `Hasher` is only 64 bits).
struct Sha256Hasher(Sha256);

impl Hasher for Sha256Hasher {
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    fn finish(&self) -> u64 {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn engine() -> Engine {
        Engine::default()
    }

    /// The smallest valid component.
    const EMPTY_COMPONENT: &[u8] = &[0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00];

    #[test]
    fn a_second_load_comes_from_the_cache() {
        let dir = std::env::temp_dir().join(format!("tern-cache-test-{}", std::process::id()));
        let cache = ComponentCache::open(&dir).expect("cache dir");
        let engine = engine();
        let (_, first) = cache.load(&engine, EMPTY_COMPONENT).expect("compiles");
        let (_, second) = cache.load(&engine, EMPTY_COMPONENT).expect("loads");
        assert_eq!((first, second), (Origin::Compiled, Origin::Cached));
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_corrupt_entry_is_recompiled_and_replaced() {
        let dir = std::env::temp_dir().join(format!("tern-cache-corrupt-{}", std::process::id()));
        let cache = ComponentCache::open(&dir).expect("cache dir");
        let engine = engine();
        let path = dir.join(format!("{}.cwasm", key(&engine, EMPTY_COMPONENT)));
        fs::write(&path, b"not machine code").expect("write");
        let (_, origin) = cache.load(&engine, EMPTY_COMPONENT).expect("recompiles");
        assert_eq!(origin, Origin::Compiled);
        let (_, origin) = cache.load(&engine, EMPTY_COMPONENT).expect("loads");
        assert_eq!(origin, Origin::Cached);
        let _ = fs::remove_dir_all(&dir);
    }
}
