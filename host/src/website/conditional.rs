//! What a request's `Accept-Encoding` and `If-None-Match` headers ask of a file.

use http::{HeaderMap, HeaderValue, header};

/// Whether the client takes gzip: `gzip` (or `x-gzip`, or `*`) listed with a q-value
/// above zero, and not refused by name.
pub fn accepts_gzip(headers: &HeaderMap) -> bool {
    let mut named = None;
    let mut any = false;
    for value in headers.get_all(header::ACCEPT_ENCODING) {
        let Ok(text) = value.to_str() else { continue };
        for item in text.split(',') {
            let mut parts = item.split(';');
            let coding = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let q = parts
                .filter_map(|p| p.trim().strip_prefix("q=").or(p.trim().strip_prefix("Q=")))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            match coding.as_str() {
                "gzip" | "x-gzip" => named = Some(named.unwrap_or(false) || q > 0.0),
                "*" => any = q > 0.0,
                _ => {}
            }
        }
    }
    named.unwrap_or(any)
}

/// Whether `If-None-Match` lists `etag` (weakly compared, as RFC 9110 says for this
/// header) or is `*`: the client's copy is current.
pub fn none_match(headers: &HeaderMap, etag: &HeaderValue) -> bool {
    let ours = etag.as_bytes();
    headers.get_all(header::IF_NONE_MATCH).iter().any(|value| {
        value.to_str().is_ok_and(|text| {
            text.split(',')
                .map(str::trim)
                .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag).as_bytes() == ours)
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(name: header::HeaderName, value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(name, value.parse().unwrap());
        h
    }

    #[test]
    fn gzip_is_taken_when_listed_with_a_positive_q() {
        let accepts = |v: &str| accepts_gzip(&with(header::ACCEPT_ENCODING, v));
        assert!(accepts("gzip, deflate, br"));
        assert!(accepts("br;q=1.0, GZIP;q=0.5"));
        assert!(accepts("*"));
        assert!(!accepts("gzip;q=0"));
        assert!(!accepts("*, gzip;q=0"));
        assert!(!accepts("br, identity"));
        assert!(!accepts_gzip(&HeaderMap::new()));
    }

    #[test]
    fn if_none_match_compares_weakly_and_takes_a_star() {
        let etag = HeaderValue::from_static("\"abc\"");
        let current = |v: &str| none_match(&with(header::IF_NONE_MATCH, v), &etag);
        assert!(current("\"abc\""));
        assert!(current("W/\"abc\""));
        assert!(current("\"x\", \"abc\""));
        assert!(current("*"));
        assert!(!current("\"abcd\""));
        assert!(!current("abc"));
    }
}
