//! Any bytes as a deploy upload: unpacking never panics, never writes outside the directory
//! it was given, never writes more than the limit, and what it accepts holds only bundle
//! paths (`tern.yaml`, `functions/*.yaml`, `messaging/*.yaml`, `components/<hash>.wasm`, the
//! manifest) as regular files.
#![no_main]

use std::{
    path::{Path, PathBuf},
    sync::atomic::{AtomicU64, Ordering},
};

use libfuzzer_sys::fuzz_target;

const LIMIT: u64 = 1 << 20;

/// Every path under `dir`, relative to it, with whether it is a regular file.
fn walk(dir: &Path, base: &Path, out: &mut Vec<(PathBuf, bool)>) {
    for entry in std::fs::read_dir(dir).expect("read the unpacked directory") {
        let entry = entry.expect("entry");
        let kind = entry.file_type().expect("file type");
        let rel = entry.path().strip_prefix(base).expect("under base").to_path_buf();
        if kind.is_dir() {
            walk(&entry.path(), base, out);
        }
        out.push((rel, kind.is_file()));
    }
}

fuzz_target!(|data: &[u8]| {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let root = std::env::temp_dir()
        .join(format!("tern-fuzz-bundle-{}", std::process::id()))
        .join(NEXT.fetch_add(1, Ordering::Relaxed).to_string());
    let into = root.join("into");
    std::fs::create_dir_all(&into).expect("create the target directory");
    let result = tern::bundle::unpack(data, &into, LIMIT);
    let mut files = Vec::new();
    walk(&root, &root, &mut files);
    let mut total = 0;
    for (path, is_file) in &files {
        assert!(path.starts_with("into"), "wrote outside its directory: {path:?}");
        let rel = path.strip_prefix("into").expect("under into");
        if *is_file {
            total += std::fs::metadata(root.join(path)).expect("metadata").len();
            let text = rel.to_string_lossy();
            let ok = text == "tern.yaml"
                || text == ".tern-deploy.json"
                || ((text.starts_with("functions/") || text.starts_with("messaging/"))
                    && (text.ends_with(".yaml") || text.ends_with(".yml")))
                || (text.starts_with("components/") && text.ends_with(".wasm"));
            assert!(ok, "unpacked a file outside the bundle layout: {text}");
        } else {
            let text = rel.to_string_lossy();
            assert!(
                matches!(text.as_ref(), "" | "functions" | "messaging" | "components"),
                "unpacked a directory or link outside the bundle layout: {text}"
            );
        }
    }
    assert!(total <= LIMIT, "unpacked {total} bytes, past the limit");
    if result.is_err() {
        assert_eq!(total, 0, "a refused bundle left files behind");
    }
    std::fs::remove_dir_all(&root).expect("clean up");
});
