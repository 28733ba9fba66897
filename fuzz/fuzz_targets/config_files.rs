//! Any bytes as a function file, a messaging file and a tern.yaml: parsing may refuse, with a
//! located diagnostic, but never panic; locating keys never panics either.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use tern::config::{function, messaging, settings, yaml};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let file = Path::new("fuzz/functions/f.yaml");
    if let Err(problems) = function::parse(file, text) {
        assert!(!problems.is_empty());
        for p in problems {
            assert!(!p.to_string().is_empty());
        }
    }
    let _ = messaging::parse(Path::new("fuzz/messaging/m.yaml"), text);
    let _ = settings::parse(Path::new("fuzz/tern.yaml"), text);
    let _ = yaml::locate(text, &["trigger", "paths"]);
});
