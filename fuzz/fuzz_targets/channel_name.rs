//! Any string as a channel name (from a WebSocket path or a guest's `open`): it is accepted
//! exactly when it follows the rules (1 to 255 bytes of `/`-separated, non-empty segments
//! of `A-Z a-z 0-9 _ . -`, none of them `.` or `..`), accepted names round-trip, and
//! nothing panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tern::channel_name::{ChannelName, MAX_CHANNEL_NAME_LEN};

/// The rules, written independently of the parser.
fn follows_the_rules(text: &str) -> bool {
    let allowed = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-');
    !text.is_empty()
        && text.len() <= MAX_CHANNEL_NAME_LEN
        && text.split('/').all(|segment| {
            !segment.is_empty() && segment != "." && segment != ".." && segment.bytes().all(allowed)
        })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match ChannelName::parse(text) {
        Ok(name) => {
            assert!(follows_the_rules(text), "accepted {text:?}");
            assert_eq!(name.as_str(), text);
            assert_eq!(name.segments().collect::<Vec<_>>().join("/"), text);
        }
        Err(_) => assert!(!follows_the_rules(text), "refused {text:?}"),
    }
});
