//! Hostile deploy bundles: refused, and nothing left behind.

use std::{io::Write, path::Path};

use sha2::{Digest, Sha256};

use crate::harness::{Tern, TestProject, client, wasm};

use super::{KEY, hello_project, metrics::scrape, serve_with_admin};

/// A tar archive built entry by entry, with names written as given (even ones `tar`'s
/// own checks would refuse), gzipped by [`Bundle::finish`].
struct Bundle {
    tar: tar::Builder<Vec<u8>>,
}

impl Bundle {
    fn new() -> Self {
        Self { tar: tar::Builder::new(Vec::new()) }
    }

    fn header(path: &str, kind: tar::EntryType, size: usize) -> tar::Header {
        let mut header = tar::Header::new_gnu();
        let name = &mut header.as_old_mut().name;
        assert!(path.len() < name.len(), "{path} is too long for a plain header");
        name[..path.len()].copy_from_slice(path.as_bytes());
        header.set_entry_type(kind);
        header.set_size(size as u64);
        header.set_mode(0o644);
        header
    }

    /// A regular file.
    fn file(mut self, path: &str, bytes: &[u8]) -> Self {
        let mut header = Self::header(path, tar::EntryType::Regular, bytes.len());
        header.set_cksum();
        self.tar.append(&header, bytes).unwrap();
        self
    }

    /// A symbolic (or, with `hard`, a hard) link at `path` to `target`.
    fn link(mut self, path: &str, target: &str, hard: bool) -> Self {
        let kind = if hard { tar::EntryType::Link } else { tar::EntryType::Symlink };
        let mut header = Self::header(path, kind, 0);
        header.set_link_name_literal(target).unwrap();
        header.set_cksum();
        self.tar.append(&header, std::io::empty()).unwrap();
        self
    }

    /// The gzipped archive.
    fn finish(self) -> Vec<u8> {
        let tar = self.tar.into_inner().unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&tar).unwrap();
        gz.finish().unwrap()
    }
}

/// `functions/<name>.yaml` serving `GET <path>` with whatever component the manifest names.
fn function_yaml(path: &str) -> String {
    format!(
        "trigger: {{ type: https, method: GET, paths: [{path}] }}\n\
         execution: {{ timeout: 5s }}\n\
         source: ../target/wasm32-wasip2/release/hello.wasm\n"
    )
}

/// `components/<sha256>.wasm` of `bytes`.
fn component_name(bytes: &[u8]) -> String {
    format!("components/{:x}.wasm", Sha256::digest(bytes))
}

/// The manifest mapping `function` to `component`.
fn manifest(function: &str, component: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({ "format": 1, "sources": { function: component } }))
        .unwrap()
}

/// A bundle `tern deploy` could have made: `GET /greet` runs the `hello` component.
fn good_bundle() -> Vec<u8> {
    let hello = std::fs::read(wasm("hello")).unwrap();
    let component = component_name(&hello);
    Bundle::new()
        .file("tern.yaml", b"# deployed\n")
        .file("functions/greet.yaml", function_yaml("/greet").as_bytes())
        .file(&component, &hello)
        .file(".tern-deploy.json", &manifest("functions/greet.yaml", &component))
        .finish()
}

/// POSTs `bundle` to `/deploy` with the key: (status, JSON body).
async fn deploy(tern: &Tern, bundle: Vec<u8>) -> (u16, serde_json::Value) {
    let resp = client()
        .post(tern.admin_url("/deploy"))
        .bearer_auth(KEY)
        .header("content-type", "application/gzip")
        .body(bundle)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    let body = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{status}: not JSON ({e}): {text:?}"));
    (status, body)
}

/// After a refused deploy: the running version still answers, and nothing was stored or
/// left behind anywhere the bundle could have aimed at.
async fn assert_nothing_deployed(tern: &Tern, project: &TestProject, what: &str) {
    let resp = client().get(tern.url("/hello?name=a")).send().await.unwrap();
    assert_eq!(resp.status(), 200, "{what}: /hello after the refusal");
    assert_eq!(resp.text().await.unwrap(), "hello, a", "{what}");
    let dir = project.path().join(".tern/deployments");
    let left: Vec<String> = match std::fs::read_dir(&dir) {
        Ok(entries) => {
            entries.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect()
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => panic!("{what}: cannot read {}: {e}", dir.display()),
    };
    assert!(left.is_empty(), "{what}: left in {}: {left:?}", dir.display());
    for escaped in [
        project.path().join("evil.yaml"),
        project.path().join(".tern/evil.yaml"),
        project.path().join("functions/x.yaml"),
    ] {
        assert!(!escaped.exists(), "{what}: {} was written", escaped.display());
    }
    let resp = client().get(tern.admin_url("/deployments")).bearer_auth(KEY).send().await.unwrap();
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body, serde_json::json!({ "current": null, "versions": [] }), "{what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_deploy_bundles_are_refused_and_leave_nothing_behind() {
    let project = hello_project();
    let tern = serve_with_admin(&project);
    let hello = std::fs::read(wasm("hello")).unwrap();
    let component = component_name(&hello);
    let greet = function_yaml("/greet");
    let greet_manifest = manifest("functions/greet.yaml", &component);
    let absolute = project.path().join("abs-evil.yaml");
    let absolute = absolute.to_str().unwrap();
    // A component named after the hash of other bytes.
    let misnamed = component_name(b"not the component");

    let cases: Vec<(&str, Vec<u8>, u16, Vec<String>)> = vec![
        (
            "not gzip",
            b"PK\x03\x04 this is a zip, not a gzipped tar".to_vec(),
            400,
            vec!["not a tern bundle".into()],
        ),
        (
            "gzip of something that is not a tar",
            {
                let mut gz = flate2::write::GzEncoder::new(Vec::new(), Default::default());
                gz.write_all(&[0x55; 1500]).unwrap();
                gz.finish().unwrap()
            },
            400,
            vec!["not a tern bundle".into()],
        ),
        (
            "../evil.yaml",
            Bundle::new()
                .file("../evil.yaml", b"owned: true\n")
                .file("functions/greet.yaml", greet.as_bytes())
                .file(&component, &hello)
                .file(".tern-deploy.json", &greet_manifest)
                .finish(),
            400,
            vec!["`../evil.yaml`".into(), "not a bundle path".into()],
        ),
        (
            "functions/../../../evil.yaml",
            Bundle::new()
                .file("functions/greet.yaml", greet.as_bytes())
                .file("functions/../../../evil.yaml", b"owned: true\n")
                .finish(),
            400,
            vec!["`functions/../../../evil.yaml`".into(), "not a bundle path".into()],
        ),
        (
            "an absolute path",
            Bundle::new().file(absolute, b"owned: true\n").finish(),
            400,
            vec![format!("`{absolute}`"), "not a bundle path".into()],
        ),
        (
            "a symlink to /etc/passwd",
            Bundle::new()
                .link("functions/x.yaml", "/etc/passwd", false)
                .file("functions/greet.yaml", greet.as_bytes())
                .file(&component, &hello)
                .file(".tern-deploy.json", &greet_manifest)
                .finish(),
            400,
            vec!["`functions/x.yaml`".into(), "only regular files".into()],
        ),
        (
            "a hard link to /etc/passwd",
            Bundle::new().link("functions/x.yaml", "/etc/passwd", true).finish(),
            400,
            vec!["`functions/x.yaml`".into(), "only regular files".into()],
        ),
        (
            "a component whose content does not hash to its name",
            Bundle::new()
                .file("functions/greet.yaml", greet.as_bytes())
                .file(&misnamed, &hello)
                .file(".tern-deploy.json", &manifest("functions/greet.yaml", &misnamed))
                .finish(),
            400,
            vec![format!("`{misnamed}`"), "hash".into()],
        ),
        (
            "no manifest",
            Bundle::new()
                .file("functions/greet.yaml", greet.as_bytes())
                .file(&component, &hello)
                .finish(),
            400,
            vec![".tern-deploy.json".into(), "missing".into()],
        ),
        (
            "a manifest naming a component not in the bundle",
            Bundle::new()
                .file("functions/greet.yaml", greet.as_bytes())
                .file(".tern-deploy.json", &greet_manifest)
                .finish(),
            400,
            vec![".tern-deploy.json".into(), format!("`{component}` is not in the bundle")],
        ),
    ];
    for (what, bundle, status, mentions) in cases {
        let (got, body) = deploy(&tern, bundle).await;
        assert_eq!(got, status, "{what}: {body}");
        let error = body["error"].as_str().unwrap_or_else(|| panic!("{what}: no error: {body}"));
        for mention in &mentions {
            assert!(error.contains(mention.as_str()), "{what}: {mention:?} not in {error:?}");
        }
        assert_nothing_deployed(&tern, &project, what).await;
    }
    assert!(!Path::new(absolute).exists(), "{absolute} was written");

    // A well-formed bundle whose YAML is broken is unpacked, read, and refused with the
    // file and line of the problem; the running version keeps serving.
    let broken = "# a typo in the trigger\nexecution: { timeout: 5s }\ntrigger: [\n";
    let bundle = Bundle::new()
        .file("functions/hello.yaml", broken.as_bytes())
        .file(&component, &hello)
        .file(".tern-deploy.json", &manifest("functions/hello.yaml", &component))
        .finish();
    let (got, body) = deploy(&tern, bundle).await;
    assert_eq!(got, 422, "{body}");
    assert!(body["error"].as_str().unwrap().contains("running version keeps serving"), "{body}");
    let problems: Vec<&str> =
        body["problems"].as_array().unwrap().iter().map(|p| p.as_str().unwrap()).collect();
    let located = problems.iter().any(|p| {
        p.split_once("functions/hello.yaml:").is_some_and(|(_, at)| {
            let line = at.split(':').next().unwrap_or("");
            line == "3"
        })
    });
    assert!(located, "no problem names functions/hello.yaml and its line: {problems:?}");
    assert_nothing_deployed(&tern, &project, "broken YAML").await;
    let (_, m) = scrape(&tern).await;
    assert_eq!(m.value("tern_generation", &[]), 1.0);

    // A function the manifest does not map, whose `source` names a component on the host:
    // refused, and the host's file is neither run nor looked at.
    let on_host = wasm("echo").display().to_string();
    let outside =
        format!("trigger: {{ type: https, method: POST, paths: [/evil] }}\nsource: {on_host}\n");
    let bundle = Bundle::new()
        .file("functions/greet.yaml", function_yaml("/greet").as_bytes())
        .file("functions/evil.yaml", outside.as_bytes())
        .file(&component, &hello)
        .file(".tern-deploy.json", &manifest("functions/greet.yaml", &component))
        .finish();
    let (got, body) = deploy(&tern, bundle).await;
    assert_eq!(got, 422, "{body}");
    let problems = body["problems"].to_string();
    assert!(
        problems.contains("functions/evil.yaml") && problems.contains("was-not-in-the-bundle"),
        "{body}"
    );
    assert!(!problems.contains(&on_host), "the host's path leaked: {body}");
    assert_nothing_deployed(&tern, &project, "a source outside the bundle").await;

    // The bundles above were refused for what is wrong with them: the same builder's
    // well-formed bundle deploys.
    let (got, body) = deploy(&tern, good_bundle()).await;
    assert_eq!(got, 200, "{body}");
    assert_eq!((body["version"].as_u64(), body["generation"].as_u64()), (Some(1), Some(2)));
    let resp = client().get(tern.url("/greet?name=b")).send().await.unwrap();
    assert_eq!(resp.text().await.unwrap(), "hello, b");
    let resp = client().get(tern.url("/hello?name=b")).send().await.unwrap();
    assert_eq!(resp.status(), 404);
    let resp = client().get(tern.admin_url("/deployments")).bearer_auth(KEY).send().await.unwrap();
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body, serde_json::json!({ "current": 1, "versions": [1] }));
}

/// `len` bytes that do not compress (xorshift), as hex text.
fn incompressible_text(len: usize) -> Vec<u8> {
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            b"0123456789abcdef"[(state & 15) as usize]
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bundles_past_max_deploy_size_are_refused() {
    let project = hello_project().settings("admin:\n  max_deploy_size: 4KiB\n");
    let tern = serve_with_admin(&project);

    // An upload larger than the limit: 413, before it is even unpacked.
    let big = Bundle::new()
        .file("tern.yaml", b"# big\n")
        .file("functions/big.yaml", &incompressible_text(24 * 1024))
        .finish();
    assert!(big.len() > 8 * 1024, "{} bytes is not past the limit", big.len());
    let (status, body) = deploy(&tern, big).await;
    assert_eq!(status, 413, "{body}");
    let error = body["error"].as_str().unwrap();
    assert!(error.contains("admin.max_deploy_size") && error.contains("4 KiB"), "{body}");
    assert_nothing_deployed(&tern, &project, "an upload past the limit").await;

    // A small upload that unpacks to more than the limit (a gzip bomb): refused too.
    let mut bomb_yaml = vec![b'#'; 64 * 1024];
    bomb_yaml.push(b'\n');
    let bomb = Bundle::new().file("tern.yaml", &bomb_yaml).finish();
    assert!(bomb.len() < 4096, "{} bytes: the bomb does not fit the upload", bomb.len());
    let (status, body) = deploy(&tern, bomb).await;
    assert_eq!(status, 400, "{body}");
    let error = body["error"].as_str().unwrap();
    assert!(error.contains("too large") && error.contains("admin.max_deploy_size"), "{body}");
    assert_nothing_deployed(&tern, &project, "a gzip bomb").await;
}

// ---------------------------------------------------------------------------------------
// 5. JSON logs.
