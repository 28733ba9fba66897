//! Configuration that would break the server: a file too large to be one, and (in the
//! golden projects of `tests/projects/`) values out of range and nesting too deep.

use crate::harness::{TestProject, tern_cli};

#[test]
fn a_yaml_file_over_a_mebibyte_is_refused_before_parsing() {
    let project = TestProject::new().settings(&format!("# {}\n", "x".repeat(2 << 20)));
    let (code, _, stderr) = tern_cli(project.path(), &["check", "."]);
    assert_eq!(code, 1);
    assert!(stderr.contains("tern.yaml: file larger than 1048576 bytes"), "{stderr}");
}

#[test]
fn deep_nesting_is_refused_with_its_place() {
    let deep = format!("trigger: {}\n", "[".repeat(100_000));
    let project = TestProject::new().function("deep", &deep);
    let (code, _, stderr) = tern_cli(project.path(), &["check", "."]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("functions/deep.yaml:1:42: nested more than 32 levels deep"),
        "{stderr}"
    );
}
