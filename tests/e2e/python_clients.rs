//! The PyPI clients `cent` (the server API) and `centrifuge-python` (a client SDK on the
//! other side of it), unmodified, and the chat page in two headless Chromium sessions
//! (Selenium and Debian's chromium-driver), against the real binary: runs the Python test suite in
//! `tests/python/` (unittest, one process) with the project's virtual environment, whose
//! files start their own `tern serve` with this build of tern.

use std::process::{Command, Stdio};

use crate::harness::{cache_dir, kill_with_parent, repo};

#[test]
fn the_pypi_clients_pass_the_python_tests() {
    let python = repo().join("tools/venv/bin/python");
    assert!(
        python.is_file(),
        "tools/venv is missing: run scripts/setup.sh (it installs cent, centrifuge-python and selenium there)"
    );
    let mut command = Command::new(&python);
    kill_with_parent(&mut command);
    let out = command
        .args(["-m", "unittest", "discover", "-s", "tests/python", "-p", "*_test.py", "-v"])
        .current_dir(repo())
        .env("TERN_BIN", env!("CARGO_BIN_EXE_tern"))
        .env("TERN_CACHE_DIR", cache_dir())
        // Selenium uses /usr/bin/chromedriver; its manager must never download a browser.
        .env("SE_OFFLINE", "true")
        .stdin(Stdio::null())
        .output()
        .expect("run tools/venv/bin/python");
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    assert!(
        out.status.success(),
        "the Python tests failed ({}):\n{}\n{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
}
