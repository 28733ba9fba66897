//! The precompiled-component cache: a second start loads instead of compiling, and a
//! damaged cache costs time, never the start.

use std::{fs, path::Path};

use crate::harness::{Tern, client, repo};

fn entries(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut found: Vec<_> = fs::read_dir(dir)
        .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    found.retain(|p| p.extension().is_some_and(|x| x == "cwasm"));
    found
}

/// Answers `/hello`, and returns the start-up logs (all of them: "serving" comes last).
async fn says_hello(tern: &Tern) -> String {
    let resp = client().get(tern.url("/hello?name=cache")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.unwrap(), "hello, cache");
    tern.wait_for_log("serving")
}

#[tokio::test]
async fn a_second_start_loads_components_from_the_cache() {
    let cache = tempfile::tempdir().unwrap();
    let args = ["--cache-dir", cache.path().to_str().unwrap()];
    let project = repo().join("examples/hello");
    let tern = Tern::serve_with(&project, &args);
    let logs = says_hello(&tern).await;
    assert!(logs.contains("from=compiler"), "{logs}");
    // examples/hello has two functions.
    assert_eq!(entries(cache.path()).len(), 2);
    drop(tern);

    let tern = Tern::serve_with(&project, &args);
    let logs = says_hello(&tern).await;
    assert!(logs.contains("from=cache") && !logs.contains("from=compiler"), "{logs}");
}

#[tokio::test]
async fn a_damaged_cache_entry_is_replaced_and_the_host_serves() {
    let cache = tempfile::tempdir().unwrap();
    let args = ["--cache-dir", cache.path().to_str().unwrap()];
    let project = repo().join("examples/hello");
    drop(Tern::serve_with(&project, &args));
    for entry in entries(cache.path()) {
        fs::write(&entry, b"\x7fELF and then nothing useful").unwrap();
    }
    let tern = Tern::serve_with(&project, &args);
    let logs = says_hello(&tern).await;
    assert!(logs.contains("ignoring an unreadable precompiled-component cache entry"), "{logs}");
    drop(tern);
    let tern = Tern::serve_with(&project, &args);
    let logs = says_hello(&tern).await;
    assert!(!logs.contains("from=compiler"), "{logs}");
}

#[tokio::test]
async fn no_cache_writes_nothing() {
    let cache = tempfile::tempdir().unwrap();
    let dir = cache.path().to_str().unwrap();
    let tern =
        Tern::serve_with(&repo().join("examples/hello"), &["--cache-dir", dir, "--no-cache"]);
    says_hello(&tern).await;
    assert!(entries(cache.path()).is_empty());
}

/// Runs `tern check examples/hello` with exactly the cache variables given (none of the
/// caller's), and returns the `.cwasm` files written under `root`.
fn check_with_env(root: &Path, vars: &[(&str, &Path)]) -> Vec<std::path::PathBuf> {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_tern"));
    command
        .args(["check", "examples/hello"])
        .current_dir(repo())
        .env_remove("TERN_CACHE_DIR")
        .env_remove("XDG_CACHE_HOME")
        .env("HOME", root.join("unused-home"));
    for (key, value) in vars {
        command.env(key, value);
    }
    let out = command.output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    fn walk(dir: &Path, found: &mut Vec<std::path::PathBuf>) {
        for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, found);
            } else if path.extension().is_some_and(|x| x == "cwasm") {
                found.push(path);
            }
        }
    }
    let mut found = Vec::new();
    walk(root, &mut found);
    found
}

#[test]
fn the_cache_directory_is_tern_cache_dir_then_xdg_then_home() {
    let root = tempfile::tempdir().unwrap();
    let (explicit, xdg, home) =
        (root.path().join("explicit"), root.path().join("xdg"), root.path().join("home"));
    let found =
        check_with_env(root.path(), &[("TERN_CACHE_DIR", &explicit), ("XDG_CACHE_HOME", &xdg)]);
    assert!(!found.is_empty() && found.iter().all(|p| p.starts_with(&explicit)), "{found:?}");
    let root = tempfile::tempdir().unwrap();
    let xdg = root.path().join("xdg");
    let found = check_with_env(root.path(), &[("XDG_CACHE_HOME", &xdg), ("HOME", &home)]);
    assert!(
        !found.is_empty() && found.iter().all(|p| p.starts_with(xdg.join("tern"))),
        "{found:?}"
    );
    let root = tempfile::tempdir().unwrap();
    let home = root.path().join("home");
    let found = check_with_env(root.path(), &[("HOME", &home)]);
    assert!(
        !found.is_empty() && found.iter().all(|p| p.starts_with(home.join(".cache/tern"))),
        "{found:?}"
    );
}

#[tokio::test]
async fn a_rebuilt_component_misses_the_cache() {
    let cache = tempfile::tempdir().unwrap();
    let args = ["--cache-dir", cache.path().to_str().unwrap()];
    let project = crate::harness::TestProject::new();
    let component = project.path().join("hello.wasm");
    fs::copy(crate::harness::wasm("hello"), &component).unwrap();
    fs::create_dir_all(project.path().join("functions")).unwrap();
    fs::write(
        project.path().join("functions/hello.yaml"),
        "trigger: { type: http, method: GET, paths: [/hello] }\nsource: ../hello.wasm\n",
    )
    .unwrap();
    drop(Tern::serve_with(project.path(), &args));
    let tern = Tern::serve_with(project.path(), &args);
    assert!(says_hello(&tern).await.contains("from=cache"));
    drop(tern);
    // The same function rebuilt: a custom section appended (id 0, size, name, payload).
    let mut bytes = fs::read(&component).unwrap();
    bytes.extend_from_slice(&[0, 6, 5, b'b', b'u', b'i', b'l', b'd']);
    fs::write(&component, bytes).unwrap();
    let tern = Tern::serve_with(project.path(), &args);
    let logs = says_hello(&tern).await;
    assert!(logs.contains("from=compiler"), "{logs}");
    assert_eq!(entries(cache.path()).len(), 2, "both builds are kept");
}

#[tokio::test]
async fn a_cache_directory_that_cannot_be_created_costs_compiling_not_the_start() {
    // Not even root can create a directory under /proc.
    let tern =
        Tern::serve_with(&repo().join("examples/hello"), &["--cache-dir", "/proc/tern-cache"]);
    let logs = says_hello(&tern).await;
    assert!(logs.contains("compiling every component without a cache"), "{logs}");
    assert!(logs.contains("cannot use the component cache `/proc/tern-cache`"), "{logs}");
}
