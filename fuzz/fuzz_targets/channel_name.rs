//! Any string as a channel name (from a WebSocket path or a guest's `open`): valid names
//! round-trip and obey the rules; invalid ones are refused without a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tern::channel_name::{ChannelName, MAX_CHANNEL_NAME_LEN};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(name) = ChannelName::parse(text) {
        assert_eq!(name.as_str(), text);
        assert!(!text.is_empty() && text.len() <= MAX_CHANNEL_NAME_LEN);
        assert!(name.segments().all(|s| !s.is_empty()));
    }
});
