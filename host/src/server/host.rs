//! The `Host` a request names: exactly one, well-formed, without user info, and one the
//! host answers to (`http.allowed_hosts`). URLs handed to clients are built from it, so a
//! forged one must never get that far; checking it also closes DNS rebinding on a loopback
//! listener when `allowed_hosts` is set.

use http::{Request, Response, StatusCode, Version, header, uri::Authority};

use crate::{
    config::access::HostPattern,
    reply::{Body, error},
};

/// Why a request's host is refused: the status and message of the answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// 400 or 421.
    pub status: StatusCode,
    /// What is wrong, for the client.
    pub message: String,
}

impl Refusal {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self { status, message: message.into() }
    }

    /// The answer to the client.
    pub fn response(&self) -> Response<Body> {
        error(self.status, &self.message)
    }
}

/// The request's validated host (None for an HTTP/1.0 request without one), or the answer
/// refusing it: 400 for a missing, repeated or malformed `Host`, 421 for one not in
/// `allowed`.
pub fn check<B>(req: &Request<B>, allowed: &[HostPattern]) -> Result<Option<Authority>, Refusal> {
    let mut values = req.headers().get_all(header::HOST).iter();
    let host = match (values.next(), values.next()) {
        (Some(_), Some(_)) => {
            return Err(Refusal::new(StatusCode::BAD_REQUEST, "more than one Host header"));
        }
        (Some(value), None) => Some(parse(value.as_bytes())?),
        (None, _) => None,
    };
    // An absolute-form target (`GET http://a/ HTTP/1.1`) names a host too: both must agree.
    let host = match (host, req.uri().authority()) {
        (Some(h), Some(target)) if !h.as_str().eq_ignore_ascii_case(target.as_str()) => {
            return Err(Refusal::new(
                StatusCode::BAD_REQUEST,
                "the Host header and the request target name different hosts",
            ));
        }
        (None, Some(target)) => Some(parse(target.as_str().as_bytes())?),
        (host, _) => host,
    };
    let Some(host) = host else {
        if req.version() == Version::HTTP_11 {
            return Err(Refusal::new(
                StatusCode::BAD_REQUEST,
                "an HTTP/1.1 request needs a Host header",
            ));
        }
        return Ok(None);
    };
    if !allowed.is_empty() && !allowed.iter().any(|p| p.matches(host.host(), host.port_u16())) {
        let msg = format!("this server does not answer for host `{}`", host.host());
        return Err(Refusal::new(StatusCode::MISDIRECTED_REQUEST, &msg));
    }
    Ok(Some(host))
}

fn parse(value: &[u8]) -> Result<Authority, Refusal> {
    let bad = || Refusal::new(StatusCode::BAD_REQUEST, "invalid Host header");
    let authority = Authority::try_from(value).map_err(|_| bad())?;
    // `Authority` accepts `user@host`: a URL built from it would send clients elsewhere.
    if authority.as_str().contains('@') || authority.host().is_empty() {
        return Err(bad());
    }
    Ok(authority)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(hosts: &[&str]) -> Request<()> {
        let mut builder = Request::get("/x");
        for h in hosts {
            builder = builder.header(header::HOST, *h);
        }
        builder.body(()).unwrap()
    }

    fn status(hosts: &[&str], allowed: &[&str]) -> u16 {
        let allowed: Vec<HostPattern> = allowed.iter().map(|a| a.parse().unwrap()).collect();
        match check(&request(hosts), &allowed) {
            Ok(_) => 200,
            Err(refusal) => refusal.status.as_u16(),
        }
    }

    #[test]
    fn forged_hosts_are_refused() {
        assert_eq!(status(&["127.0.0.1:8080"], &[]), 200);
        assert_eq!(status(&["127.0.0.1:8080@evil.example"], &[]), 400);
        assert_eq!(status(&["a", "b"], &[]), 400);
        assert_eq!(status(&["bad host"], &[]), 400);
        assert_eq!(status(&[], &[]), 400);
        assert_eq!(status(&["evil.example"], &["tern.example.com", "127.0.0.1"]), 421);
        assert_eq!(status(&["127.0.0.1:9"], &["tern.example.com", "127.0.0.1"]), 200);
    }

    #[test]
    fn an_absolute_target_must_agree_with_host() {
        let req = Request::get("http://evil.example/x").header(header::HOST, "a").body(()).unwrap();
        assert_eq!(check(&req, &[]).unwrap_err().status, 400);
    }
}
