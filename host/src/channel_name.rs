//! Channel names: `/`-separated segments of `[A-Za-z0-9_.-]`, 1 to 255 bytes, no segment
//! `.` or `..`.

use std::{fmt, sync::Arc};

/// The longest channel name accepted, in bytes.
pub const MAX_CHANNEL_NAME_LEN: usize = 255;

/// Why a string is not a valid channel name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChannelNameError {
    /// The name is empty.
    #[error("invalid channel name ``: empty")]
    Empty,
    /// The name is longer than [`MAX_CHANNEL_NAME_LEN`].
    #[error("invalid channel name `{0}…`: longer than 255 bytes")]
    TooLong(String),
    /// Two slashes in a row, or a slash at either end.
    #[error("invalid channel name `{0}`: empty segment")]
    EmptySegment(String),
    /// A segment that is `.` or `..`: in a URL, a browser would resolve it to another channel.
    #[error(
        "invalid channel name `{0}`: `.` and `..` are not allowed as segments (a URL would resolve them to another channel)"
    )]
    DotSegment(String),
    /// A character outside `[A-Za-z0-9_.-/]`.
    #[error(
        "invalid channel name `{name}`: character {ch:?} is not allowed (use A-Z a-z 0-9 _ . - and / between segments)"
    )]
    BadChar {
        /// The name as given.
        name: String,
        /// The first offending character.
        ch: char,
    },
}

/// A valid channel name, cheap to clone.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChannelName(Arc<str>);

impl ChannelName {
    /// Validates `name`.
    pub fn parse(name: &str) -> Result<Self, ChannelNameError> {
        if name.is_empty() {
            return Err(ChannelNameError::Empty);
        }
        if name.len() > MAX_CHANNEL_NAME_LEN {
            let cut = name.char_indices().nth(40).map_or(name.len(), |(i, _)| i);
            return Err(ChannelNameError::TooLong(name[..cut].to_string()));
        }
        if let Some(ch) = name
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '/')))
        {
            return Err(ChannelNameError::BadChar { name: name.to_string(), ch });
        }
        if name.split('/').any(str::is_empty) {
            return Err(ChannelNameError::EmptySegment(name.to_string()));
        }
        if name.split('/').any(|s| s == "." || s == "..") {
            return Err(ChannelNameError::DotSegment(name.to_string()));
        }
        Ok(Self(Arc::from(name)))
    }

    /// The name as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The `/`-separated segments.
    pub fn segments(&self) -> impl Iterator<Item = &str> {
        self.0.split('/')
    }
}

impl fmt::Display for ChannelName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_segmented_names() {
        let n = ChannelName::parse("chat/rooms/ab-c_1.2").unwrap();
        assert_eq!(n.segments().collect::<Vec<_>>(), ["chat", "rooms", "ab-c_1.2"]);
    }

    #[test]
    fn rejects_bad_names_saying_why() {
        assert_eq!(ChannelName::parse(""), Err(ChannelNameError::Empty));
        assert_eq!(
            ChannelName::parse("a//b").unwrap_err().to_string(),
            "invalid channel name `a//b`: empty segment"
        );
        assert!(matches!(ChannelName::parse("/a"), Err(ChannelNameError::EmptySegment(_))));
        assert!(matches!(
            ChannelName::parse("a b"),
            Err(ChannelNameError::BadChar { ch: ' ', .. })
        ));
        assert!(matches!(ChannelName::parse(&"a".repeat(256)), Err(ChannelNameError::TooLong(_))));
        assert!(ChannelName::parse(&"a".repeat(255)).is_ok());
        for dots in ["chat/rooms/..", "chat/./x", "..", ".", "../x"] {
            assert!(
                matches!(ChannelName::parse(dots), Err(ChannelNameError::DotSegment(_))),
                "{dots}"
            );
        }
        assert!(ChannelName::parse("chat/.hidden/a..b/...").is_ok(), "dots inside a segment");
    }
}
