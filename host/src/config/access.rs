//! Who may reach the host by name: the `Host` names it answers to (`http.allowed_hosts`)
//! and the web page origins that may open WebSockets (`websocket.allowed_origins`).

use std::{fmt, str::FromStr};

use serde::{Deserialize, Deserializer, de};

/// A host name the host answers to: `tern.example.com`, `*.example.com` (any subdomain),
/// `127.0.0.1`, `[::1]`, each optionally with `:port` to pin the port, or `*` for any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPattern {
    /// Lower case, without the `*.` of a wildcard; empty for `*`.
    host: String,
    /// Whether `*.` preceded `host`.
    subdomains: bool,
    port: Option<u16>,
}

impl HostPattern {
    /// Whether a request's `host` (lower or mixed case) and `port` (None when the `Host`
    /// header had none) match this pattern.
    pub fn matches(&self, host: &str, port: Option<u16>) -> bool {
        if self.port.is_some() && self.port != port {
            return false;
        }
        let host = host.to_ascii_lowercase();
        if self.host.is_empty() {
            return true;
        }
        if self.subdomains {
            host.strip_suffix(&self.host).is_some_and(|sub| sub.len() > 1 && sub.ends_with('.'))
        } else {
            host == self.host
        }
    }
}

impl FromStr for HostPattern {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if s == "*" {
            return Ok(Self { host: String::new(), subdomains: false, port: None });
        }
        let bad = || {
            format!(
                "invalid host `{s}`: write a host name, optionally `*.` before it and `:port` after \
                 (tern.example.com, *.example.com:8443, 127.0.0.1)"
            )
        };
        let (subdomains, rest) = match s.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, s),
        };
        let authority: http::uri::Authority = rest.parse().map_err(|_| bad())?;
        if authority.as_str() != rest || rest.contains('@') || authority.host().is_empty() {
            return Err(bad());
        }
        Ok(Self {
            host: authority.host().to_ascii_lowercase(),
            subdomains,
            port: authority.port_u16(),
        })
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.is_empty() {
            return f.write_str("*");
        }
        if self.subdomains {
            f.write_str("*.")?;
        }
        f.write_str(&self.host)?;
        match self.port {
            Some(port) => write!(f, ":{port}"),
            None => Ok(()),
        }
    }
}

/// A web page origin allowed to open WebSockets: `https://app.example.com`,
/// `https://*.example.com`, `null` (sandboxed pages and files), or `*` for any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OriginPattern {
    /// Any origin.
    Any,
    /// The opaque origin `null`.
    Null,
    /// A scheme (lower case) and a host pattern.
    Site {
        /// `http` or `https`.
        scheme: String,
        /// The host part.
        host: HostPattern,
    },
}

impl OriginPattern {
    /// Whether the `Origin` header value `origin` matches.
    pub fn matches(&self, origin: &str) -> bool {
        match self {
            OriginPattern::Any => true,
            OriginPattern::Null => origin == "null",
            OriginPattern::Site { scheme, host } => {
                let Some((s, authority)) = origin.split_once("://") else { return false };
                let Ok(authority) = authority.parse::<http::uri::Authority>() else {
                    return false;
                };
                s.eq_ignore_ascii_case(scheme)
                    && host.matches(authority.host(), authority.port_u16())
            }
        }
    }
}

impl FromStr for OriginPattern {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "*" => return Ok(OriginPattern::Any),
            "null" => return Ok(OriginPattern::Null),
            _ => {}
        }
        let bad = |why: &str| {
            format!(
                "invalid origin `{s}`: {why} (https://app.example.com, https://*.example.com, null, *)"
            )
        };
        let (scheme, host) = s.split_once("://").ok_or_else(|| bad("no scheme"))?;
        let scheme = scheme.to_ascii_lowercase();
        if scheme != "http" && scheme != "https" {
            return Err(bad("the scheme must be http or https"));
        }
        if host == "*" || host.contains('/') {
            return Err(bad("an origin is a scheme and a host, with no path"));
        }
        let host = host.parse::<HostPattern>().map_err(|_| bad("invalid host"))?;
        Ok(OriginPattern::Site { scheme, host })
    }
}

/// Deserializes any `FromStr` type from a YAML string, with its error as the message.
fn from_yaml_str<'de, T, D>(d: D) -> Result<T, D::Error>
where
    T: FromStr<Err = String>,
    D: Deserializer<'de>,
{
    String::deserialize(d)?.parse().map_err(de::Error::custom)
}

impl<'de> Deserialize<'de> for HostPattern {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        from_yaml_str(d)
    }
}

impl<'de> Deserialize<'de> for OriginPattern {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        from_yaml_str(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(s: &str) -> HostPattern {
        s.parse().unwrap()
    }

    #[test]
    fn host_patterns_match_names_ports_and_subdomains() {
        assert!(host("tern.example.com").matches("TERN.example.com", Some(8080)));
        assert!(!host("tern.example.com").matches("evil.example", None));
        assert!(host("tern.example.com:8080").matches("tern.example.com", Some(8080)));
        assert!(!host("tern.example.com:8080").matches("tern.example.com", None));
        assert!(host("*.example.com").matches("a.b.example.com", None));
        assert!(!host("*.example.com").matches("example.com", None));
        assert!(!host("*.example.com").matches("badexample.com", None));
        assert!(host("[::1]").matches("[::1]", Some(1)));
        assert!(host("*").matches("anything", Some(1)));
    }

    #[test]
    fn bad_host_patterns_are_refused() {
        for bad in ["", "user@host", "host/path", "*.", "a b"] {
            assert!(bad.parse::<HostPattern>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn origin_patterns_match_scheme_and_host() {
        let o: OriginPattern = "https://app.example.com".parse().unwrap();
        assert!(o.matches("https://app.example.com"));
        assert!(!o.matches("http://app.example.com"));
        assert!(!o.matches("https://evil.example"));
        assert!(!o.matches("null"));
        assert!(OriginPattern::Null.matches("null"));
        assert!(
            "https://*.example.com"
                .parse::<OriginPattern>()
                .unwrap()
                .matches("https://a.example.com")
        );
        assert!("ftp://x".parse::<OriginPattern>().is_err());
        assert!("https://x/path".parse::<OriginPattern>().is_err());
    }
}
