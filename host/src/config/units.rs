//! Human-written quantities in config files: durations (`10s`) and sizes (`64MB`).

use std::{fmt, str::FromStr, time::Duration};

use serde::{Deserialize, Deserializer, de};

/// A duration written as a number and a unit: `500ms`, `10s`, `1m30s`, `2h`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct HumanDuration(pub Duration);

impl HumanDuration {
    /// The longest duration any setting accepts: longer is a typo, and far longer (`300000000000y`)
    /// overflows the clock arithmetic of timers.
    pub const MAX: Duration = Duration::from_secs(24 * 60 * 60);
}

impl FromStr for HumanDuration {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let d = humantime::parse_duration(s.trim()).map_err(|e| {
            // humantime's own messages suggest other spellings (`10sec`): say it one way.
            let why = match e {
                humantime::DurationError::UnknownUnit { unit, .. } if unit.is_empty() => {
                    "a unit is needed".to_string()
                }
                humantime::DurationError::UnknownUnit { unit, .. } => {
                    format!("unknown unit `{unit}`")
                }
                humantime::DurationError::NumberExpected(at) => {
                    format!("a number is expected at {at}")
                }
                humantime::DurationError::InvalidCharacter(at) => {
                    format!("unexpected character at {at}")
                }
                humantime::DurationError::NumberOverflow => "too large".to_string(),
                humantime::DurationError::Empty => "empty".to_string(),
            };
            format!("invalid duration `{s}`: {why} (write a number and a unit: 500ms, 10s, 1m, 2h)")
        })?;
        if d.is_zero() {
            return Err(format!("invalid duration `{s}`: must be greater than zero"));
        }
        if d > Self::MAX {
            return Err(format!("invalid duration `{s}`: at most 24h"));
        }
        Ok(Self(d))
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(de::Error::custom)
    }
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_duration(self.0))
    }
}

/// A size in bytes, written as a number with an optional unit: `65536`, `64KB`, `10MiB`,
/// `1GB`. Units follow the usual convention: `KB`/`MB`/`GB` are powers of 1000,
/// `KiB`/`MiB`/`GiB` powers of 1024.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ByteSize(pub u64);

impl FromStr for ByteSize {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let parsed: bytesize::ByteSize = s.trim().parse().map_err(|_| {
            format!("invalid size `{s}`: write a number and a unit (512KB, 64MB, 1GiB)")
        })?;
        if parsed.as_u64() == 0 {
            return Err(format!("invalid size `{s}`: must be greater than zero"));
        }
        Ok(Self(parsed.as_u64()))
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl de::Visitor<'_> for Visitor {
            type Value = ByteSize;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a size such as 64MB or a number of bytes")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ByteSize, E> {
                if v == 0 {
                    return Err(E::custom("invalid size `0`: must be greater than zero"));
                }
                Ok(ByteSize(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ByteSize, E> {
                u64::try_from(v)
                    .map_err(|_| E::custom(format!("invalid size `{v}`: must be positive")))
                    .and_then(|v| self.visit_u64(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ByteSize, E> {
                v.parse().map_err(E::custom)
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// Displays exactly, in the largest unit that divides the size: `16 MiB`, `64 MB`, `1000 bytes`.
impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [(u64, &str); 6] = [
            (1 << 30, "GiB"),
            (1_000_000_000, "GB"),
            (1 << 20, "MiB"),
            (1_000_000, "MB"),
            (1 << 10, "KiB"),
            (1_000, "KB"),
        ];
        match UNITS.iter().find(|(unit, _)| self.0 >= *unit && self.0.is_multiple_of(*unit)) {
            Some((unit, name)) => write!(f, "{} {name}", self.0 / unit),
            None => write!(f, "{} bytes", self.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!("10s".parse::<HumanDuration>().unwrap().0, Duration::from_secs(10));
        assert_eq!("250ms".parse::<HumanDuration>().unwrap().0, Duration::from_millis(250));
        assert_eq!("1m30s".parse::<HumanDuration>().unwrap().0, Duration::from_secs(90));
    }

    #[test]
    fn bad_durations_say_what_to_write() {
        let err = "10x".parse::<HumanDuration>().unwrap_err();
        assert!(err.starts_with("invalid duration `10x`: unknown unit `x`"), "{err}");
        let err = "10".parse::<HumanDuration>().unwrap_err();
        assert_eq!(
            err,
            "invalid duration `10`: a unit is needed (write a number and a unit: 500ms, 10s, 1m, 2h)"
        );
        assert!("0s".parse::<HumanDuration>().unwrap_err().contains("greater than zero"));
        assert!("300000000000y".parse::<HumanDuration>().is_err());
        assert!("25h".parse::<HumanDuration>().unwrap_err().contains("at most 24h"));
    }

    #[test]
    fn sizes_parse_decimal_and_binary_units() {
        assert_eq!("64MB".parse::<ByteSize>().unwrap().0, 64_000_000);
        assert_eq!("10MiB".parse::<ByteSize>().unwrap().0, 10 * 1024 * 1024);
        assert_eq!("512".parse::<ByteSize>().unwrap().0, 512);
        assert!("lots".parse::<ByteSize>().unwrap_err().starts_with("invalid size `lots`"));
    }
}
