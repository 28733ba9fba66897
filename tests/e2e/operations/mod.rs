//! Running tern for real: reloads under load, deploys and rollbacks, the author's loop.

mod deploy;
mod reload;
mod scaffold;

use std::{path::Path, process::Command};

use crate::harness::{cache_dir, kill_with_parent};

/// Runs `tern ARGS` in `cwd` with `env` set: exit code, stdout, stderr.
fn run_tern(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tern"));
    kill_with_parent(&mut command);
    command.args(args).current_dir(cwd).env("TERN_CACHE_DIR", cache_dir());
    command.env_remove("CARGO_TARGET_DIR").env_remove("TERN_ADMIN_KEY");
    for (key, value) in env {
        command.env(key, value);
    }
    let out = command.output().expect("run tern");
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code().unwrap_or(-1), text(&out.stdout), text(&out.stderr))
}
