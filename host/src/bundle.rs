//! The packed project `tern deploy` uploads: a gzipped tar of the project's YAML files and
//! the components they name, and the checks that unpack it safely on the host.
//!
//! Layout: `tern.yaml`, `functions/*.yaml`, `messaging/*.yaml` byte for byte (so an error
//! in them names the same line as on the author's machine), each component once as
//! `components/<sha256>.wasm`, and [`MANIFEST`] mapping each function file to its component.
//! A function's `source` usually points outside the project (`../target/...`); the manifest
//! is what lets the host find it without rewriting the YAML.
//!
//! Unpacking trusts nothing: only regular files at those paths, names checked segment by
//! segment, every size and count bounded, each component's name its own hash.

use std::{
    collections::BTreeMap,
    io::{Read, Write},
    path::{Path, PathBuf},
};

use flate2::{Compression, read::GzDecoder, write::GzEncoder};
use sha2::{Digest, Sha256};

use crate::config::Project;
pub use crate::config::manifest::{MANIFEST, Manifest};

/// Most files in a bundle.
const MAX_FILES: usize = 4096;

/// Why a bundle was refused.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// Not a gzipped tar, or cut short.
    #[error("not a tern bundle (a gzipped tar): {0}")]
    Format(String),
    /// An entry that may not be in a bundle.
    #[error("`{path}`: {reason}")]
    Entry {
        /// The entry's path as written in the archive.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// More bytes or files than allowed.
    #[error("too large: {0}")]
    TooLarge(String),
    /// The manifest is missing or inconsistent.
    #[error("{MANIFEST}: {0}")]
    Manifest(String),
    /// Writing the unpacked files failed.
    #[error("cannot write {}: {source}", path.display())]
    Io {
        /// What was being written.
        path: PathBuf,
        /// Why it failed.
        source: std::io::Error,
    },
}

/// Packs the project in `dir` (as `project`, read from it): its YAML files and the
/// components its functions name. A component that does not exist is left out: the host
/// reports it as the missing `source` it is, with the rest of the project's problems.
pub fn pack(dir: &Path, project: &Project) -> anyhow::Result<Vec<u8>> {
    use anyhow::Context as _;
    if let Some(site) = project.websites.first() {
        anyhow::bail!(
            "{}: `tern deploy` does not carry websites yet: serve this project with `tern serve`, or deploy it without its websites/ directory",
            site.file.display()
        );
    }
    let mut tar = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::default()));
    let mut manifest = Manifest { format: 1, sources: BTreeMap::new() };
    let add = |tar: &mut tar::Builder<GzEncoder<Vec<u8>>>, path: &str, bytes: &[u8]| {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append_data(&mut header, path, bytes).with_context(|| format!("cannot pack {path}"))
    };
    if dir.join("tern.yaml").is_file() {
        let bytes = std::fs::read(dir.join("tern.yaml")).context("cannot read tern.yaml")?;
        add(&mut tar, "tern.yaml", &bytes)?;
    }
    let mut components = BTreeMap::new();
    for sub in ["functions", "messaging"] {
        for file in yaml_files(&dir.join(sub))? {
            let name =
                file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let bytes =
                std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            add(&mut tar, &format!("{sub}/{name}"), &bytes)?;
        }
    }
    for f in project.functions.iter().filter(|f| f.source.is_file()) {
        let bytes = std::fs::read(&f.source)
            .with_context(|| format!("cannot read {}", f.source.display()))?;
        let name = format!("components/{:x}.wasm", Sha256::digest(&bytes));
        let file = f.file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        manifest.sources.insert(format!("functions/{file}"), name.clone());
        components.insert(name, bytes);
    }
    for (name, bytes) in &components {
        add(&mut tar, name, bytes)?;
    }
    add(&mut tar, MANIFEST, &serde_json::to_vec_pretty(&manifest)?)?;
    let gz = tar.into_inner().context("cannot pack the project")?;
    gz.finish().context("cannot pack the project")
}

/// The `*.yaml` and `*.yml` files of `dir`, sorted; none when it does not exist.
fn yaml_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    files.sort();
    Ok(files)
}

/// Unpacks `bundle` into `into` (which must exist and be empty), at most `max_bytes`
/// unpacked in all, checking every entry and the manifest.
pub fn unpack(bundle: &[u8], into: &Path, max_bytes: u64) -> Result<(), BundleError> {
    // Headers count too (a long-name header can declare any size, and `tar` reads it into
    // memory): cap what is decompressed at all, not only the files' contents.
    let header_room = MAX_FILES as u64 * 4096;
    let decompressed = GzDecoder::new(bundle).take(max_bytes.saturating_add(header_room));
    let mut archive = tar::Archive::new(decompressed);
    let entries = archive.entries().map_err(|e| BundleError::Format(e.to_string()))?;
    let (mut total, mut count) = (0u64, 0usize);
    let mut written = BTreeMap::new();
    for entry in entries {
        let mut entry = entry.map_err(|e| BundleError::Format(e.to_string()))?;
        let mut raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        if raw.len() > 300 {
            // Named in the error, which is echoed back: a path is never that long in a bundle.
            raw = format!("{}...", raw.chars().take(100).collect::<String>());
        }
        let refuse = |reason: &str| BundleError::Entry { path: raw.clone(), reason: reason.into() };
        if !entry.header().entry_type().is_file() {
            return Err(refuse("only regular files may be in a bundle"));
        }
        let kind = classify(&raw).ok_or_else(|| {
            refuse("not a bundle path (tern.yaml, functions/*.yaml, messaging/*.yaml, components/<sha256>.wasm)")
        })?;
        count += 1;
        if count > MAX_FILES {
            return Err(BundleError::TooLarge(format!("more than {MAX_FILES} files")));
        }
        let room = max_bytes.saturating_sub(total);
        let mut bytes = Vec::new();
        // Read one byte past the room left, to tell "fits exactly" from "too large".
        (&mut entry)
            .take(room + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| BundleError::Format(e.to_string()))?;
        total += bytes.len() as u64;
        if total > max_bytes {
            return Err(BundleError::TooLarge(format!(
                "more than {} unpacked (admin.max_deploy_size)",
                crate::config::units::ByteSize(max_bytes)
            )));
        }
        if kind == Kind::Component && format!("components/{:x}.wasm", Sha256::digest(&bytes)) != raw
        {
            return Err(refuse("its content does not have the hash its name says"));
        }
        if written.insert(raw.clone(), bytes).is_some() {
            return Err(refuse("appears twice"));
        }
    }
    let manifest = check_manifest(&written)?;
    drop(manifest);
    for (path, bytes) in &written {
        let target = into.join(path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|source| BundleError::Io { path: parent.to_path_buf(), source })?;
        }
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&target)
            .map_err(|source| BundleError::Io { path: target.clone(), source })?;
        file.write_all(bytes).map_err(|source| BundleError::Io { path: target.clone(), source })?;
    }
    Ok(())
}

/// The manifest of the unpacked files, checked against them.
fn check_manifest(files: &BTreeMap<String, Vec<u8>>) -> Result<Manifest, BundleError> {
    let bytes = files.get(MANIFEST).ok_or_else(|| BundleError::Manifest("missing".into()))?;
    let manifest: Manifest =
        serde_json::from_slice(bytes).map_err(|e| BundleError::Manifest(e.to_string()))?;
    if manifest.format != 1 {
        let msg = format!("format {} is not one this tern reads (1)", manifest.format);
        return Err(BundleError::Manifest(msg));
    }
    for (function, component) in &manifest.sources {
        if classify(function) != Some(Kind::Yaml) || !function.starts_with("functions/") {
            return Err(BundleError::Manifest(format!("`{function}` is not a function file")));
        }
        if !files.contains_key(function) {
            return Err(BundleError::Manifest(format!("`{function}` is not in the bundle")));
        }
        if classify(component) != Some(Kind::Component) || !files.contains_key(component) {
            return Err(BundleError::Manifest(format!("`{component}` is not in the bundle")));
        }
    }
    Ok(manifest)
}

/// What a bundle path holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Yaml,
    Component,
    Manifest,
}

/// The kind of file at `path`, or None when a bundle may not contain it.
fn classify(path: &str) -> Option<Kind> {
    let is_name = |s: &str| {
        !s.is_empty()
            && !s.starts_with('.')
            && s.len() <= 255
            && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
    };
    match path.split('/').collect::<Vec<_>>().as_slice() {
        ["tern.yaml"] => Some(Kind::Yaml),
        [m] if *m == MANIFEST => Some(Kind::Manifest),
        ["functions" | "messaging", file]
            if is_name(file) && (file.ends_with(".yaml") || file.ends_with(".yml")) =>
        {
            Some(Kind::Yaml)
        }
        ["components", file] => {
            let hash = file.strip_suffix(".wasm")?;
            (hash.len() == 64 && hash.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
                .then_some(Kind::Component)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_bundle_paths_are_accepted() {
        assert_eq!(classify("tern.yaml"), Some(Kind::Yaml));
        assert_eq!(classify("functions/hello.yaml"), Some(Kind::Yaml));
        assert_eq!(classify("messaging/chat.yml"), Some(Kind::Yaml));
        assert_eq!(classify(MANIFEST), Some(Kind::Manifest));
        let hash = "a".repeat(64);
        assert_eq!(classify(&format!("components/{hash}.wasm")), Some(Kind::Component));
        for bad in [
            "../tern.yaml",
            "functions/../../etc/passwd.yaml",
            "functions/.hidden.yaml",
            "functions/a/b.yaml",
            "/tern.yaml",
            "functions/x.sh",
            "components/abc.wasm",
            "components/../x.wasm",
            "README.md",
            "",
        ] {
            assert_eq!(classify(bad), None, "{bad}");
        }
    }
}
