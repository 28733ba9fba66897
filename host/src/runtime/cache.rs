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

/// Why a cache directory cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// Someone else could write native code into it, which tern would then run.
    #[error(
        "refusing the component cache `{path}`: {why}; entries are native code tern runs, so \
         only this user may write there (fix: `chown $(id -u) {path} && chmod 700 {path}`, or \
         choose another directory with --cache-dir or TERN_CACHE_DIR)"
    )]
    Insecure {
        /// The directory.
        path: String,
        /// What is wrong with its owner or mode.
        why: String,
    },
    /// It cannot be created or read.
    #[error("cannot use the component cache `{path}`: {source}")]
    Io {
        /// The directory.
        path: String,
        /// Why.
        source: std::io::Error,
    },
}

impl ComponentCache {
    /// The cache in `dir`, created (private to this user) when missing. An existing
    /// directory must be owned by this user and writable by nobody else.
    pub fn open(dir: &Path) -> Result<Self, CacheError> {
        let io = |source| CacheError::Io { path: dir.display().to_string(), source };
        let mut builder = fs::DirBuilder::new();
        builder.recursive(true);
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(dir).map_err(io)?;
        let meta = fs::metadata(dir).map_err(io)?;
        if let Some(why) = not_private(&meta) {
            return Err(CacheError::Insecure { path: dir.display().to_string(), why });
        }
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
        match read_entry(&path) {
            Ok(Some(code)) => {
                // SAFETY: `deserialize` trusts the bytes to be wasmtime's own output. They
                // come from a directory only this user can write (checked at open), through
                // a descriptor opened without following links, of a regular file owned by
                // this user and writable by nobody else (checked on that descriptor), written
                // whole under a temporary name then renamed; wasmtime still checks the header
                // and the engine's settings.
                match unsafe { Component::deserialize(engine, &code) } {
                    Ok(component) => return Ok((component, Origin::Cached)),
                    Err(e) => tracing::warn!(
                        entry = %path.display(), error = %e,
                        "ignoring an unreadable precompiled-component cache entry"
                    ),
                }
            }
            Ok(None) => {}
            Err(why) => tracing::warn!(
                entry = %path.display(), problem = %why,
                "refusing a precompiled-component cache entry: recompiling and replacing it"
            ),
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

/// A new file in `dir`, readable by this user only, with a name no other writer uses.
fn tempfile_in(dir: &Path) -> std::io::Result<(PathBuf, fs::File)> {
    use std::os::unix::fs::OpenOptionsExt as _;
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = dir.join(format!(".tmp-{}-{n}", std::process::id()));
    let file = fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&path)?;
    Ok((path, file))
}

/// The bytes of the entry at `path`: None when there is none, an error saying why when it
/// is not one this user alone wrote (a link, another owner, writable by others).
fn read_entry(path: &Path) -> Result<Option<Vec<u8>>, String> {
    use std::{io::Read as _, os::unix::fs::OpenOptionsExt as _};
    let file = match fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
    {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err("it is a symbolic link".into());
        }
        Err(e) => return Err(format!("cannot open it: {e}")),
    };
    let meta = file.metadata().map_err(|e| format!("cannot inspect it: {e}"))?;
    if !meta.is_file() {
        return Err("it is not a regular file".into());
    }
    if let Some(why) = not_private(&meta) {
        return Err(why);
    }
    let mut code = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    (&file).read_to_end(&mut code).map_err(|e| format!("cannot read it: {e}"))?;
    Ok(Some(code))
}

/// Why a file or directory with `meta` is not private to this user, if it is not.
fn not_private(meta: &fs::Metadata) -> Option<String> {
    use std::os::unix::fs::MetadataExt as _;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    if meta.uid() != me {
        return Some(format!("it is owned by uid {}, not this user (uid {me})", meta.uid()));
    }
    if meta.mode() & 0o022 != 0 {
        return Some(format!("its mode {:o} lets others write to it", meta.mode() & 0o777));
    }
    None
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

#[cfg(test)]
mod security_tests {
    use std::os::unix::fs::{PermissionsExt as _, symlink};

    use super::*;

    const EMPTY_COMPONENT: &[u8] = &[0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00];

    #[test]
    fn a_directory_others_can_write_to_is_refused_naming_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o777)).unwrap();
        let err = ComponentCache::open(dir.path()).unwrap_err().to_string();
        assert!(err.contains("its mode 777 lets others write to it"), "{err}");
        assert!(err.contains(&format!("chmod 700 {}", dir.path().display())), "{err}");
    }

    #[test]
    fn the_newest_256_entries_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ComponentCache::open(dir.path()).unwrap();
        let old = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
        for i in 0..300 {
            let entry = dir.path().join(format!("{i:03}.cwasm"));
            fs::write(&entry, b"old").unwrap();
            let file = fs::File::options().write(true).open(&entry).unwrap();
            file.set_modified(old + std::time::Duration::from_secs(i)).unwrap();
        }
        fs::write(dir.path().join("not-an-entry.txt"), b"kept").unwrap();
        // Storing a new entry prunes: it and the 255 newest old ones stay.
        cache.load(&Engine::default(), EMPTY_COMPONENT).unwrap();
        let mut left: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.ends_with(".cwasm"))
            .collect();
        left.sort();
        assert_eq!(left.len(), MAX_ENTRIES);
        assert_eq!(left[0], "045.cwasm", "the oldest 45 went");
        assert!(dir.path().join("not-an-entry.txt").exists(), "only entries are pruned");
    }

    #[test]
    fn entries_are_written_private_and_links_are_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ComponentCache::open(dir.path()).unwrap();
        let engine = Engine::default();
        cache.load(&engine, EMPTY_COMPONENT).unwrap();
        let entry = dir.path().join(format!("{}.cwasm", key(&engine, EMPTY_COMPONENT)));
        assert_eq!(fs::metadata(&entry).unwrap().permissions().mode() & 0o777, 0o600);
        let elsewhere = dir.path().join("elsewhere");
        fs::rename(&entry, &elsewhere).unwrap();
        symlink(&elsewhere, &entry).unwrap();
        assert_eq!(read_entry(&entry).unwrap_err(), "it is a symbolic link");
        let (_, origin) = cache.load(&engine, EMPTY_COMPONENT).unwrap();
        assert_eq!(origin, Origin::Compiled, "a linked entry is not loaded");
        assert!(!fs::symlink_metadata(&entry).unwrap().file_type().is_symlink(), "and is replaced");
        fs::set_permissions(&entry, fs::Permissions::from_mode(0o666)).unwrap();
        assert!(read_entry(&entry).unwrap_err().contains("lets others write"));
    }
}
