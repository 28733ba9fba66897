//! Writes the export macros with the WIT contract inlined, so that a function crate's own
//! bindings (and so its component type) describe exactly the one world it exports.

use std::{env, fs, path::PathBuf};

fn main() {
    let manifest =
        PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let wit_file = manifest.join("../wit/tern.wit");
    println!("cargo:rerun-if-changed={}", wit_file.display());
    println!("cargo:rerun-if-changed=src/export_macros.rs.in");
    let wit = fs::read_to_string(&wit_file).expect("read ../wit/tern.wit");
    let template = fs::read_to_string(manifest.join("src/export_macros.rs.in"))
        .expect("read src/export_macros.rs.in");
    let out =
        PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("export_macros.rs");
    fs::write(out, template.replace("\"@WIT@\"", &format!("{wit:?}")))
        .expect("write export_macros.rs");
}
