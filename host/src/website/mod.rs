//! Static websites (`websites/<name>.yaml`): each serves a directory's files under its
//! paths, with content types, ETags and `If-None-Match`, gzip for clients that take it,
//! redirects from a directory's path to its index, and the site's `404.html` (or a JSON
//! error) for what is not there. Function routes and the host's own endpoints come first.

pub mod assets;
mod conditional;

use std::sync::Arc;

use http::{HeaderMap, HeaderValue, Method, Response, StatusCode, header};
use http_body_util::Full;
use percent_encoding::percent_decode_str;

pub use assets::{Asset, Assets};

use crate::{
    config::{Diagnostic, Diagnostics, WebsiteSpec},
    reply::{Body, error},
};

/// One website, loaded.
#[derive(Debug)]
pub struct Site {
    /// Its name (the YAML file's stem).
    pub name: String,
    /// The file a directory's path serves.
    index: String,
    /// The `Cache-Control` every file is sent with.
    cache_control: HeaderValue,
    /// Its files.
    pub assets: Assets,
}

/// The websites of one generation, by path prefix, longest first.
#[derive(Debug, Default)]
pub struct Websites {
    prefixes: Vec<(String, Arc<Site>)>,
}

impl Websites {
    /// Reads every site's files, or says, at each site's `directory` field, why one cannot
    /// be served.
    pub fn load(specs: &[WebsiteSpec]) -> Result<Websites, Diagnostics> {
        let mut problems = Diagnostics::default();
        let mut prefixes = Vec::new();
        for spec in specs {
            match Assets::load(&spec.directory) {
                Ok(assets) => {
                    let site = Arc::new(Site::new(spec, assets));
                    prefixes.extend(spec.paths.iter().map(|p| (p.clone(), site.clone())));
                }
                Err(msg) => problems.push(Diagnostic::field(
                    &spec.file,
                    spec.directory_location,
                    "directory",
                    msg,
                )),
            }
        }
        prefixes.sort_by_key(|(prefix, _)| std::cmp::Reverse(prefix.len()));
        problems.into_result(Websites { prefixes })
    }

    /// The site serving `path`, and the part of `path` after the site's prefix.
    pub fn route<'a>(&self, path: &'a str) -> Option<(&Site, &'a str)> {
        self.prefixes.iter().find_map(|(prefix, site)| {
            let rest = if prefix == "/" { path } else { path.strip_prefix(prefix.as_str())? };
            (rest.is_empty() || rest.starts_with('/')).then_some((&**site, rest))
        })
    }

    /// Each site once, with a fingerprint of its files, to tell what a reload changed.
    pub fn fingerprints(&self) -> Vec<(String, String)> {
        let mut seen: Vec<(String, String)> = Vec::new();
        for (_, site) in &self.prefixes {
            if !seen.iter().any(|(name, _)| name == &site.name) {
                seen.push((site.name.clone(), site.assets.fingerprint()));
            }
        }
        seen
    }
}

impl Site {
    fn new(spec: &WebsiteSpec, assets: Assets) -> Site {
        let secs = spec.max_age.as_secs();
        let cache =
            if secs == 0 { "no-cache".to_string() } else { format!("public, max-age={secs}") };
        Site {
            name: spec.name.clone(),
            index: spec.index.clone(),
            cache_control: HeaderValue::from_str(&cache)
                .unwrap_or(HeaderValue::from_static("no-cache")),
            assets,
        }
    }

    /// Answers `method` on `path` (the whole request path, for redirects), whose part
    /// below the site's prefix is `rest`; `query` is kept across a redirect.
    pub fn respond(
        &self,
        method: &Method,
        headers: &HeaderMap,
        (path, rest, query): (&str, &str, Option<&str>),
    ) -> Response<Body> {
        if method != Method::GET && method != Method::HEAD {
            let msg =
                format!("method {method} not allowed on {path}: a website takes GET and HEAD");
            let mut resp = error(StatusCode::METHOD_NOT_ALLOWED, &msg);
            resp.headers_mut().insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
            return resp;
        }
        if rest.is_empty() {
            // `/chat` of a site under `/chat`: its page's relative links need `/chat/`.
            return redirect_to_directory(path, query);
        }
        let name = match file_name(rest) {
            Ok(name) => name,
            Err(msg) => return error(StatusCode::BAD_REQUEST, &format!("{path}: {msg}")),
        };
        let wanted = if name.is_empty() || name.ends_with('/') {
            format!("{name}{}", self.index)
        } else {
            name.clone()
        };
        if let Some(asset) = self.assets.get(&wanted) {
            return self.send(asset, headers, StatusCode::OK);
        }
        if self.assets.get(&format!("{name}/{}", self.index)).is_some() {
            return redirect_to_directory(path, query);
        }
        match self.assets.get("404.html") {
            Some(page) => self.send(page, headers, StatusCode::NOT_FOUND),
            None => {
                let msg = format!("no file for {path} in website `{}`", self.name);
                let mut resp = error(StatusCode::NOT_FOUND, &msg);
                // A 404 is heuristically cacheable: say it is not, a file may be added.
                let no_cache = HeaderValue::from_static("no-cache");
                resp.headers_mut().insert(header::CACHE_CONTROL, no_cache);
                resp
            }
        }
    }

    /// `asset` as `status`, gzipped when the client takes it, or 304 when its copy is
    /// current.
    fn send(&self, asset: &Asset, headers: &HeaderMap, status: StatusCode) -> Response<Body> {
        let gzip = asset.gzip.as_ref().filter(|_| conditional::accepts_gzip(headers));
        let etag = if gzip.is_some() { &asset.gzip_etag } else { &asset.etag };
        let not_modified = status == StatusCode::OK && conditional::none_match(headers, etag);
        let mut resp = match (not_modified, gzip) {
            (true, _) => Response::new(Full::default()),
            (false, Some(body)) => Response::new(Full::new(body.clone())),
            (false, None) => Response::new(Full::new(asset.body.clone())),
        };
        *resp.status_mut() = if not_modified { StatusCode::NOT_MODIFIED } else { status };
        let h = resp.headers_mut();
        h.insert(header::ETAG, etag.clone());
        // A missing file may be added any time: its 404 page is never cached as long as a file.
        let cache = if status == StatusCode::OK {
            self.cache_control.clone()
        } else {
            HeaderValue::from_static("no-cache")
        };
        h.insert(header::CACHE_CONTROL, cache);
        if asset.gzip.is_some() {
            h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
        }
        if !not_modified {
            h.insert(header::CONTENT_TYPE, asset.content_type.clone());
            h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
            if gzip.is_some() {
                h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            }
        }
        resp
    }
}

/// The file a request path below a site's prefix names (`/js/app.js` -> `js/app.js`),
/// percent-decoded, or why it can name none: a `..` or `.` segment, an empty segment, a
/// backslash or a NUL (which some file systems read as separators or ends).
fn file_name(rest: &str) -> Result<String, String> {
    let rest = rest.strip_prefix('/').unwrap_or(rest);
    let decoded = percent_decode_str(rest)
        .decode_utf8()
        .map_err(|_| "the path is not UTF-8 once percent-decoded".to_string())?;
    let body = decoded.strip_suffix('/').unwrap_or(&decoded);
    if body.is_empty() {
        return Ok(decoded.into_owned());
    }
    for segment in body.split('/') {
        if segment == ".." || segment == "." {
            return Err("the path has a `.` or `..` segment".into());
        }
        if segment.is_empty() {
            return Err("the path has an empty segment (`//`)".into());
        }
        if segment.contains(['\\', '\0']) {
            return Err("the path holds a backslash or a NUL".into());
        }
    }
    Ok(decoded.into_owned())
}

/// A 308 from the directory path `path` to `path/`, keeping the query.
fn redirect_to_directory(path: &str, query: Option<&str>) -> Response<Body> {
    let location = match query {
        Some(q) => format!("{path}/?{q}"),
        None => format!("{path}/"),
    };
    match HeaderValue::from_str(&location) {
        Ok(location) => {
            let mut resp = Response::new(Full::default());
            *resp.status_mut() = StatusCode::PERMANENT_REDIRECT;
            resp.headers_mut().insert(header::LOCATION, location);
            resp
        }
        Err(_) => error(StatusCode::BAD_REQUEST, "a path that cannot be redirected"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_paths_name_files_or_say_why_not() {
        assert_eq!(file_name("").unwrap(), "");
        assert_eq!(file_name("/").unwrap(), "");
        assert_eq!(file_name("/js/app.js").unwrap(), "js/app.js");
        assert_eq!(file_name("/a%20b.txt").unwrap(), "a b.txt");
        assert_eq!(file_name("/docs/").unwrap(), "docs/");
        for bad in [
            "/../etc/passwd",
            "/a/%2e%2e/b",
            "/%2e%2e%2fetc",
            "//etc",
            "/a\\b",
            "/a%5c..",
            "/%00",
            "/%ff",
        ] {
            assert!(file_name(bad).is_err(), "{bad} was taken");
        }
    }
}
