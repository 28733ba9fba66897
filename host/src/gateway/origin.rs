//! Which web pages may open a WebSocket here. A browser sends any page's cookies and lets
//! any page open a WebSocket to any host, so without this check any site a user visits
//! could join and publish in their name (cross-site WebSocket hijacking). Non-browser
//! clients send no `Origin` and are not concerned.

use http::{HeaderMap, header, uri::Authority};

use crate::config::access::OriginPattern;

/// Whether the handshake's `Origin` may open a WebSocket: no `Origin` (not a browser), one
/// matching `allowed`, or, when `allowed` is empty, the page's own origin (the same host
/// and port the request was sent to, or `public_origin`).
pub fn allowed(
    headers: &HeaderMap,
    host: Option<&Authority>,
    allowed: &[OriginPattern],
    public_origin: Option<&str>,
) -> Result<(), String> {
    let mut values = headers.get_all(header::ORIGIN).iter();
    let origin = match (values.next(), values.next()) {
        (None, _) => return Ok(()),
        (Some(_), Some(_)) => return Err("more than one Origin header".into()),
        (Some(v), None) => v.to_str().map_err(|_| "invalid Origin header".to_string())?,
    };
    let ok = if allowed.is_empty() {
        same_origin(origin, host) || public_origin.is_some_and(|p| same_site(origin, p))
    } else {
        allowed.iter().any(|p| p.matches(origin))
    };
    if ok {
        Ok(())
    } else {
        Err(format!("pages from origin `{}` may not open WebSockets here", origin.escape_debug()))
    }
}

/// Whether `origin` (`scheme://host[:port]`) names the host the request was sent to.
fn same_origin(origin: &str, host: Option<&Authority>) -> bool {
    let (Some((scheme, authority)), Some(host)) = (origin.split_once("://"), host) else {
        return false;
    };
    let Ok(authority) = authority.parse::<Authority>() else { return false };
    let default_port = match scheme {
        "http" => 80,
        "https" => 443,
        _ => return false,
    };
    authority.host().eq_ignore_ascii_case(host.host())
        && authority.port_u16().unwrap_or(default_port) == host.port_u16().unwrap_or(default_port)
}

/// Whether `origin` is the origin of `public_origin` (a `ws://` or `wss://` URL prefix).
fn same_site(origin: &str, public_origin: &str) -> bool {
    let page = public_origin.replacen("wss://", "https://", 1).replacen("ws://", "http://", 1);
    origin.eq_ignore_ascii_case(page.trim_end_matches('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(origin: Option<&str>, host: &str, allowed: &[&str]) -> bool {
        let mut headers = HeaderMap::new();
        if let Some(o) = origin {
            headers.insert(header::ORIGIN, o.parse().unwrap());
        }
        let allowed: Vec<OriginPattern> = allowed.iter().map(|a| a.parse().unwrap()).collect();
        let host: Authority = host.parse().unwrap();
        super::allowed(&headers, Some(&host), &allowed, Some("wss://chat.example.com")).is_ok()
    }

    #[test]
    fn by_default_only_the_same_origin_and_non_browsers_may_connect() {
        assert!(check(None, "127.0.0.1:8080", &[]));
        assert!(check(Some("http://127.0.0.1:8080"), "127.0.0.1:8080", &[]));
        assert!(check(Some("http://tern.example"), "tern.example:80", &[]));
        assert!(check(Some("https://chat.example.com"), "10.0.0.1:8080", &[]), "public_url");
        assert!(!check(Some("https://evil.example"), "127.0.0.1:8080", &[]));
        assert!(!check(Some("null"), "127.0.0.1:8080", &[]));
        assert!(!check(Some("http://127.0.0.1:9999"), "127.0.0.1:8080", &[]));
    }

    #[test]
    fn allowed_origins_replace_the_default() {
        let allowed = ["https://app.example.com", "null"];
        assert!(check(Some("https://app.example.com"), "api.example.com", &allowed));
        assert!(check(Some("null"), "api.example.com", &allowed));
        assert!(!check(Some("https://api.example.com"), "api.example.com", &allowed));
        assert!(check(Some("https://anything"), "x", &["*"]));
    }
}
