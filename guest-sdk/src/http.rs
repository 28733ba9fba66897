//! HTTP requests and responses: what an [`http_function!`](crate::http_function) handler
//! receives and returns.

use std::fmt;

use serde::{Serialize, de::DeserializeOwned};

/// An HTTP request routed to this function.
#[derive(Debug, Clone)]
pub struct Request {
    method: String,
    path: String,
    query: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    /// Builds a request from the parts the host passes; used by the export macro and tests.
    #[doc(hidden)]
    pub fn __from_parts(
        method: String,
        path: String,
        query: String,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    ) -> Self {
        Self { method, path, query, headers, body }
    }

    /// The method, upper case (`GET`, `POST`...).
    pub fn method(&self) -> &str {
        &self.method
    }

    /// The path without the query string, as sent (still percent-encoded).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The raw query string without the leading `?` (empty when there is none).
    pub fn query_string(&self) -> &str {
        &self.query
    }

    /// The first value of query parameter `name`, percent-decoded (`+` reads as a space).
    pub fn query(&self, name: &str) -> Option<String> {
        self.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v)
    }

    /// Every query parameter in order, percent-decoded.
    pub fn query_pairs(&self) -> impl Iterator<Item = (String, String)> + '_ {
        form_urlencoded::parse(self.query.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned()))
    }

    /// The first value of header `name`, compared case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// Every header as (lower-case name, value), in the order received.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &str)> {
        self.headers.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The body as bytes.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// Takes the body out of the request, leaving it empty.
    pub fn take_body(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.body)
    }

    /// The body as UTF-8 text; a 400 error when it is not valid UTF-8.
    pub fn text(&self) -> Result<&str, Error> {
        std::str::from_utf8(&self.body)
            .map_err(|e| Error::bad_request(format!("request body is not valid UTF-8: {e}")))
    }

    /// The body parsed as JSON into `T`; a 400 error saying what is wrong otherwise.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, Error> {
        serde_json::from_slice(&self.body)
            .map_err(|e| Error::bad_request(format!("invalid JSON body: {e}")))
    }
}

/// The HTTP response a function returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Response {
    /// An empty response with this status code.
    pub fn new(status: u16) -> Self {
        Self { status, headers: Vec::new(), body: Vec::new() }
    }

    /// A 200 response with a `text/plain; charset=utf-8` body.
    pub fn text(body: impl Into<String>) -> Self {
        Self::new(200)
            .header("content-type", "text/plain; charset=utf-8")
            .body(body.into().into_bytes())
    }

    /// A 200 response with `value` serialized as an `application/json` body.
    ///
    /// A value that cannot be serialized (a map with non-string keys, say) gives a 500.
    pub fn json<T: Serialize + ?Sized>(value: &T) -> Self {
        match serde_json::to_vec(value) {
            Ok(body) => Self::new(200).header("content-type", "application/json").body(body),
            Err(e) => Error::internal(format!("cannot serialize response: {e}")).into_response(),
        }
    }

    /// A 200 response with these bytes as the body and this content type.
    pub fn bytes(content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        Self::new(200).header("content-type", content_type).body(body)
    }

    /// Sets the status code.
    pub fn with_status(mut self, status: u16) -> Self {
        self.status = status;
        self
    }

    /// Adds a header (a header of the same name set earlier stays).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Replaces the body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// The status code.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The first value of header `name`, compared case-insensitively.
    pub fn header_value(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The body.
    pub fn body_bytes(&self) -> &[u8] {
        &self.body
    }

    /// Splits the response into the parts the host receives; used by the export macro.
    #[doc(hidden)]
    pub fn __into_parts(self) -> (u16, Vec<(String, String)>, Vec<u8>) {
        (self.status, self.headers, self.body)
    }
}

/// An error a handler returns with `?`: it becomes a response with its status and a JSON body
/// `{"error": "<message>"}`.
///
/// A [`pubsub::Error`](crate::pubsub::Error) turned into an `Error` with `?` answers a 500
/// `{"error": "internal error"}`: its detail (which names channels) is for the operator, so it
/// is printed to stderr, where the host logs it with the request's id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    status: u16,
    message: String,
    /// What is logged (through stderr) rather than answered.
    detail: Option<String>,
}

impl Error {
    /// An error answered with this status code and message.
    pub fn new(status: u16, message: impl Into<String>) -> Self {
        Self { status, message: message.into(), detail: None }
    }

    /// A 400 Bad Request.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, message)
    }

    /// A 404 Not Found.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(404, message)
    }

    /// A 500 Internal Server Error.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(500, message)
    }

    /// The status code this error is answered with.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The message put in the body.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message, self.status)
    }
}

impl std::error::Error for Error {}

impl From<crate::pubsub::Error> for Error {
    fn from(e: crate::pubsub::Error) -> Self {
        Self { status: 500, message: "internal error".into(), detail: Some(e.to_string()) }
    }
}

/// Anything a handler can return.
pub trait IntoResponse {
    /// Turns `self` into the response sent to the client.
    fn into_response(self) -> Response;
}

impl IntoResponse for Response {
    fn into_response(self) -> Response {
        self
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        if let Some(detail) = &self.detail {
            eprintln!("{detail}");
        }
        let body = serde_json::json!({ "error": self.message });
        Response::new(self.status)
            .header("content-type", "application/json")
            .body(body.to_string().into_bytes())
    }
}

impl IntoResponse for String {
    fn into_response(self) -> Response {
        Response::text(self)
    }
}

impl IntoResponse for &str {
    fn into_response(self) -> Response {
        Response::text(self)
    }
}

impl<T: IntoResponse, E: IntoResponse> IntoResponse for Result<T, E> {
    fn into_response(self) -> Response {
        match self {
            Ok(t) => t.into_response(),
            Err(e) => e.into_response(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(query: &str, headers: &[(&str, &str)], body: &[u8]) -> Request {
        Request::__from_parts(
            "GET".into(),
            "/x".into(),
            query.into(),
            headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            body.to_vec(),
        )
    }

    #[test]
    fn query_parameters_are_percent_decoded() {
        let req = request("name=t%C3%A9rn+x&a=1&name=second", &[], b"");
        assert_eq!(req.query("name").as_deref(), Some("térn x"));
        assert_eq!(req.query("a").as_deref(), Some("1"));
        assert_eq!(req.query("missing"), None);
    }

    #[test]
    fn headers_match_case_insensitively() {
        let req = request("", &[("content-type", "text/plain")], b"");
        assert_eq!(req.header("Content-Type"), Some("text/plain"));
        assert_eq!(req.header("accept"), None);
    }

    #[test]
    fn invalid_json_body_is_a_400_naming_the_problem() {
        let req = request("", &[], b"{nope");
        let err = req.json::<serde_json::Value>().unwrap_err();
        assert_eq!(err.status(), 400);
        assert!(err.message().starts_with("invalid JSON body"), "{}", err.message());
    }

    #[test]
    fn errors_become_json_responses() {
        let resp = Error::bad_request("room parameter required").into_response();
        assert_eq!(resp.status(), 400);
        assert_eq!(resp.header_value("Content-Type"), Some("application/json"));
        assert_eq!(resp.body_bytes(), br#"{"error":"room parameter required"}"#);
    }
}
