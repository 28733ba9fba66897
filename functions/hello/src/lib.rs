//! `GET /hello?name=X` answers `hello, X`; without `name`, a 400 with a JSON error.

use tern_sdk::http::{Error, Request, Response};

fn hello(req: Request) -> Result<Response, Error> {
    let name = req.query("name").ok_or_else(|| Error::bad_request("name parameter required"))?;
    Ok(Response::text(format!("hello, {name}")))
}

tern_sdk::http_function!(hello);
