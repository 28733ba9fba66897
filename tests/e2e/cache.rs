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
