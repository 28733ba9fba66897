//! Deployed versions on disk: `<dir>/000001/`, `<dir>/000002/`... each an unpacked bundle,
//! and `<dir>/current` naming the one served. A host that starts serves `current`, so a
//! restart does not undo a deploy; the newest `admin.keep_deployments` are kept for
//! `tern rollback`.

use std::{
    io::Write as _,
    path::{Path, PathBuf},
};

use crate::bundle::{self, BundleError};

/// The deployed versions of one project.
pub struct DeploymentStore {
    dir: PathBuf,
    keep: usize,
}

/// A bundle unpacked beside the versions, not yet one of them.
pub struct Staged {
    /// Where it was unpacked.
    pub dir: PathBuf,
}

impl DeploymentStore {
    /// The store in `dir` (created, private to this user, when first written), keeping the
    /// newest `keep` versions.
    pub fn new(dir: PathBuf, keep: usize) -> Self {
        Self { dir, keep: keep.max(1) }
    }

    /// The version `current` names, when it exists.
    pub fn current(&self) -> Option<u64> {
        let text = std::fs::read_to_string(self.dir.join("current")).ok()?;
        let version = text.trim().parse().ok()?;
        self.path(version).is_dir().then_some(version)
    }

    /// Where version `version` is.
    pub fn path(&self, version: u64) -> PathBuf {
        self.dir.join(format!("{version:06}"))
    }

    /// Every version stored, oldest first.
    pub fn versions(&self) -> Vec<u64> {
        let mut versions: Vec<u64> = std::fs::read_dir(&self.dir)
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .collect();
        versions.sort_unstable();
        versions
    }

    /// Unpacks `bundle` (at most `max_bytes` unpacked) into a staging directory.
    pub fn stage(&self, bundle: &[u8], max_bytes: u64) -> Result<Staged, BundleError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| BundleError::Io { path, source }
        };
        create_private_dir(&self.dir).map_err(io(&self.dir))?;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let dir = self.dir.join(format!(".staging-{}-{nanos}", std::process::id()));
        std::fs::create_dir(&dir).map_err(io(&dir))?;
        let staged = Staged { dir };
        match bundle::unpack(bundle, &staged.dir, max_bytes) {
            Ok(()) => Ok(staged),
            Err(e) => {
                self.discard(staged);
                Err(e)
            }
        }
    }

    /// Makes `staged` the next version and returns its number.
    pub fn commit(&self, staged: Staged) -> std::io::Result<u64> {
        let version = self.versions().last().copied().unwrap_or(0) + 1;
        std::fs::rename(&staged.dir, self.path(version))?;
        Ok(version)
    }

    /// Removes what a crash left staged.
    pub fn sweep_staging(&self) {
        let entries = std::fs::read_dir(&self.dir).into_iter().flatten().filter_map(Result::ok);
        for entry in entries.filter(|e| e.file_name().to_string_lossy().starts_with(".staging-")) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }

    /// Removes a staged bundle.
    pub fn discard(&self, staged: Staged) {
        let _ = std::fs::remove_dir_all(staged.dir);
    }

    /// Removes a version (one the host refused to serve).
    pub fn remove(&self, version: u64) {
        let _ = std::fs::remove_dir_all(self.path(version));
    }

    /// Records `version` as the one served, then removes the oldest versions past the
    /// number kept. The served versions form a stack: a deploy (or a rollback to a chosen
    /// version) pushes, a rollback to [`DeploymentStore::previous`] pops, so rolling back
    /// twice goes two versions back, never forth to one already rolled back from.
    pub fn set_current(&self, version: u64) -> std::io::Result<()> {
        let mut stack = self.served();
        if stack.len() >= 2 && stack[stack.len() - 2] == version {
            stack.pop();
        } else {
            stack.push(version);
        }
        let text: String = stack.iter().map(|v| format!("{v}\n")).collect();
        write_atomically(&self.dir.join("history"), &text)?;
        write_atomically(&self.dir.join("current"), &format!("{version}\n"))?;
        // The oldest go first, but never the current one nor the one a rollback returns to.
        let previous = self.previous();
        let versions = self.versions();
        let mut excess = versions.len().saturating_sub(self.keep);
        for old in versions.into_iter().filter(|v| *v != version && Some(*v) != previous) {
            if excess == 0 {
                break;
            }
            self.remove(old);
            excess -= 1;
        }
        Ok(())
    }

    /// The version a rollback without a version number returns to: the one served before
    /// the current, if it is still stored.
    pub fn previous(&self) -> Option<u64> {
        let stack = self.served();
        let below = stack.len().checked_sub(2)?;
        Some(stack[below]).filter(|v| self.path(*v).is_dir())
    }

    /// The stack of served versions, the current one last.
    fn served(&self) -> Vec<u64> {
        let text = std::fs::read_to_string(self.dir.join("history")).unwrap_or_default();
        text.lines().filter_map(|l| l.trim().parse().ok()).collect()
    }
}

/// Writes `text` to `path` through a temporary file and a rename: never half written.
fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)
}

/// Creates `dir` and its parents; `dir` itself only its owner may read (it holds code).
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt as _;
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn staged(store: &DeploymentStore, n: usize) -> Staged {
        let dir = store.dir.join(format!(".staging-test-{n}"));
        std::fs::create_dir_all(&dir).unwrap();
        Staged { dir }
    }

    #[test]
    fn versions_count_up_and_the_oldest_are_pruned() {
        let tmp = tempfile::tempdir().unwrap();
        let store = DeploymentStore::new(tmp.path().join("d"), 2);
        create_private_dir(&store.dir).unwrap();
        assert_eq!(store.current(), None);
        for n in 1..=3 {
            let v = store.commit(staged(&store, n)).unwrap();
            assert_eq!(v, n as u64);
            store.set_current(v).unwrap();
        }
        assert_eq!(store.versions(), [2, 3]);
        assert_eq!(store.current(), Some(3));
        assert_eq!(store.previous(), Some(2));
        store.set_current(2).unwrap(); // a rollback
        // 1 was pruned: nothing older to roll back to.
        assert_eq!(store.previous(), None);
        let v = store.commit(staged(&store, 4)).unwrap();
        store.set_current(v).unwrap();
        // Rolled back from 3 to 2, then deployed 4: rolling back returns to 2, not 3 (which
        // is the one pruned).
        assert_eq!(store.previous(), Some(2));
        assert_eq!(store.versions(), [2, 4]);
        store.set_current(2).unwrap();
        assert_eq!(store.current(), Some(2));
        assert_eq!(store.previous(), None);
    }
}
