//! Attacks through the runtime: a planted cache entry, a component with several memories,
//! greedy calls, hoarded channel handles, the network.

use std::{
    fs,
    os::unix::fs::{MetadataExt, PermissionsExt, symlink},
    path::{Path, PathBuf},
};

use crate::harness::{Tern, TestProject, client, repo, tern_cli};

/// The `.cwasm` entries of a cache directory.
fn entries(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<_> = fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    found.retain(|p| p.extension().is_some_and(|x| x == "cwasm"));
    found
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Serves examples/hello with `cache`, checks it answers, and returns its logs.
async fn serve_hello(cache: &Path) -> String {
    let tern =
        Tern::serve_with(&repo().join("examples/hello"), &["--cache-dir", cache.to_str().unwrap()]);
    let resp = client().get(tern.url("/hello?name=cache")).send().await.unwrap();
    assert_eq!(resp.text().await.unwrap(), "hello, cache");
    tern.wait_for_log("serving")
}

#[tokio::test]
async fn cache_entries_planted_linked_or_left_writable_are_not_run() {
    let parent = tempfile::tempdir().unwrap();
    let cache = parent.path().join("cache");
    let logs = serve_hello(&cache).await;
    assert!(logs.contains("from=compiler"), "{logs}");
    assert_eq!(fs::metadata(&cache).unwrap().mode() & 0o777, 0o700, "created private");
    let written = entries(&cache);
    assert_eq!(written.len(), 2);
    for entry in &written {
        assert_eq!(fs::metadata(entry).unwrap().mode() & 0o777, 0o600, "{}", entry.display());
    }
    let (hello, echo) = (&written[0], &written[1]);
    // A symbolic link to a valid entry elsewhere, and an entry others may write to.
    let elsewhere = &cache.join("elsewhere.bin");
    fs::rename(hello, elsewhere).unwrap();
    symlink(elsewhere, hello).unwrap();
    fs::set_permissions(echo, fs::Permissions::from_mode(0o666)).unwrap();
    let logs = serve_hello(&cache).await;
    assert!(logs.contains("problem=it is a symbolic link"), "{logs}");
    assert!(logs.contains("problem=its mode 666 lets others write to it"), "{logs}");
    assert_eq!(logs.matches("from=compiler").count(), 2, "{logs}");
    assert!(!fs::symlink_metadata(hello).unwrap().file_type().is_symlink(), "replaced");
    // An entry owned by another user (the audit's attack): refused too.
    if is_root() {
        std::os::unix::fs::chown(echo, Some(65534), Some(65534)).unwrap();
        let logs = serve_hello(&cache).await;
        assert!(logs.contains("problem=it is owned by uid 65534, not this user"), "{logs}");
        assert_eq!(fs::metadata(echo).unwrap().uid(), 0, "replaced by this user's entry");
    }
    let logs = serve_hello(&cache).await;
    assert!(!logs.contains("from=compiler"), "clean entries load again: {logs}");
}

#[test]
fn a_cache_directory_others_could_write_to_stops_the_start() {
    let cache = tempfile::tempdir().unwrap();
    let dir = cache.path().to_str().unwrap();
    fs::set_permissions(cache.path(), fs::Permissions::from_mode(0o777)).unwrap();
    let (code, stdout, stderr) = tern_cli(repo(), &["check", "examples/hello", "--cache-dir", dir]);
    assert_eq!(code, 1, "{stdout}");
    assert!(stderr.contains(&format!("refusing the component cache `{dir}`")), "{stderr}");
    assert!(stderr.contains("its mode 777 lets others write to it"), "{stderr}");
    assert!(stderr.contains(&format!("chmod 700 {dir}")), "the fix is named: {stderr}");
    fs::set_permissions(cache.path(), fs::Permissions::from_mode(0o700)).unwrap();
    if is_root() {
        std::os::unix::fs::chown(cache.path(), Some(65534), None).unwrap();
        let (code, _, stderr) = tern_cli(repo(), &["check", "examples/hello", "--cache-dir", dir]);
        assert_eq!(code, 1);
        assert!(stderr.contains("it is owned by uid 65534, not this user"), "{stderr}");
    }
}

#[test]
fn a_component_with_several_memories_is_refused_when_it_loads() {
    // Four core instances of a module with one memory each: four linear memories, each of
    // which the audit grew to the memory cap.
    let component = wat::parse_str(
        "(component
           (core module $m (memory (export \"mem\") 1))
           (core instance (instantiate $m))
           (core instance (instantiate $m))
           (core instance (instantiate $m))
           (core instance (instantiate $m)))",
    )
    .unwrap();
    let project = TestProject::new().http("hello", "GET", "/hello", "hello", "timeout: 5s");
    fs::write(project.path().join("four_memories.wasm"), component).unwrap();
    fs::write(
        project.path().join("functions/greedy.yaml"),
        "trigger: { type: http, method: GET, paths: [/greedy] }\nsource: ../four_memories.wasm\n",
    )
    .unwrap();
    let (code, _, stderr) = tern_cli(project.path(), &["check", "."]);
    assert_eq!(code, 1);
    assert!(
        stderr
            .contains("contains 4 Wasm linear memories, which exceeds the configured maximum of 1"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_at_their_memory_cap_never_fail_another_functions_calls() {
    let project = TestProject::new()
        .settings("http:\n  max_concurrent_invocations: 4\n")
        .http("oom", "GET", "/oom", "hostile", "timeout: 10s, memory: 64MiB")
        .http("hello", "GET", "/hello", "hello", "timeout: 10s");
    let tern = Tern::serve(project.path());
    let client = client();
    let greedy: Vec<_> =
        (0..8).map(|_| tokio::spawn(client.get(tern.url("/oom")).send())).collect();
    for i in 0..30 {
        let resp = client.get(tern.url(&format!("/hello?name={i}"))).send().await.unwrap();
        assert_eq!(resp.status(), 200, "call {i} of another function failed");
    }
    for call in greedy {
        assert_eq!(call.await.unwrap().unwrap().status(), 500);
    }
}

#[tokio::test]
async fn opening_channels_in_a_loop_is_capped_per_invocation() {
    let project = TestProject::new().messaging("hoard", "channel: { match: hoard }\n").http(
        "channels",
        "GET",
        "/channels",
        "attacker",
        "timeout: 10s",
    );
    let tern = Tern::serve(project.path());
    let before = tern.rss_kib();
    let resp = client().get(tern.url("/channels")).send().await.unwrap();
    assert_eq!(
        resp.text().await.unwrap(),
        "opened 256, then: pub/sub unavailable: too many channels open in this invocation (at most 256)"
    );
    let after = tern.rss_kib();
    assert!(after < before + 20 * 1024, "a call cost {} KiB of host memory", after - before);
}

#[tokio::test]
async fn functions_cannot_use_the_network() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let project = TestProject::new().http("net", "GET", "/net", "attacker", "timeout: 10s");
    let tern = Tern::serve(project.path());
    let resp = client().get(tern.url(&format!("/net?port={port}"))).send().await.unwrap();
    let body = resp.text().await.unwrap();
    assert!(body.starts_with("tcp: refused"), "{body}");
    assert!(body.contains("lookup: refused"), "{body}");
    // A connection would be in the accept queue by the time the function answered.
    assert!(listener.accept().is_err(), "the function reached the listener");
}
