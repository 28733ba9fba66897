//! `tern check` and `tern serve` on broken projects: every problem, located, in one run.
//!
//! Each directory of `tests/projects/` is a broken project beside `expected.txt`, the exact
//! output `tern check` must give. Run with `TERN_BLESS=1` to rewrite them after a deliberate
//! change of wording, and review the diff.

use std::fs;

use crate::harness::{guests, repo, tern_cli};

#[test]
fn check_lists_every_problem_with_file_line_and_field() {
    guests();
    let projects = repo().join("tests/projects");
    let mut cases: Vec<_> = fs::read_dir(&projects)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    assert!(cases.len() >= 7, "golden projects are missing");
    let mut failures = Vec::new();
    for case in cases {
        let name = case.file_name().unwrap().to_string_lossy().into_owned();
        let (code, stdout, stderr) = tern_cli(&projects, &["check", &name]);
        assert_eq!(code, 1, "{name}: tern check should fail; stdout: {stdout}");
        let expected_file = case.join("expected.txt");
        if bless() {
            fs::write(&expected_file, &stderr).unwrap();
            continue;
        }
        let expected = fs::read_to_string(&expected_file).unwrap_or_default();
        if stderr != expected {
            failures.push(format!("{name}:\n--- expected\n{expected}--- got\n{stderr}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Whether to rewrite the expected outputs: only for `TERN_BLESS=1`, so that a stray
/// `TERN_BLESS=0` or empty value in the environment cannot turn the check into a rewrite.
fn bless() -> bool {
    std::env::var("TERN_BLESS").is_ok_and(|v| v == "1")
}

#[test]
fn serve_refuses_to_start_with_the_same_problems() {
    guests();
    let projects = repo().join("tests/projects");
    for name in ["bad_components", "duplicate_route", "bad_units"] {
        let (code, stdout, stderr) =
            tern_cli(&projects, &["serve", name, "--listen", "127.0.0.1:0"]);
        assert_eq!(code, 1, "{name}");
        assert!(stdout.is_empty(), "{name} printed {stdout}");
        let expected = fs::read_to_string(projects.join(name).join("expected.txt")).unwrap();
        assert!(stderr.ends_with(&expected), "{name}: got\n{stderr}\nwanted\n{expected}");
    }
}

#[test]
fn check_passes_on_the_examples() {
    guests();
    let (code, stdout, stderr) = tern_cli(repo(), &["check", "examples/hello"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout, "ok: 2 function(s), 2 route(s), 0 messaging config(s)\n");
}

#[test]
fn check_of_a_missing_directory_says_so() {
    let (code, _, stderr) = tern_cli(repo(), &["check", "no/such/project"]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("no/such/project: does not exist: expected a project directory"),
        "{stderr}"
    );
}
