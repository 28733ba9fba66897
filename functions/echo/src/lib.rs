//! `POST /echo` answers the request body with the request's content type, unchanged.

use tern_sdk::http::{Request, Response};

fn echo(mut req: Request) -> Response {
    let content_type = req.header("content-type").map(str::to_owned);
    let mut resp = Response::new(200).body(req.take_body());
    if let Some(content_type) = content_type {
        resp = resp.header("content-type", content_type);
    }
    resp
}

tern_sdk::http_function!(echo);
