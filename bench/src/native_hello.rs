//! The ceiling for the HTTP benchmark: `hello` written natively on hyper, with the same
//! routing, query parsing and response bytes as tern's `hello` function, and no wasm.

use std::{convert::Infallible, net::SocketAddr};

use anyhow::Context;
use bytes::Bytes;
use http::{Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::{body::Incoming, server::conn::http1, service::service_fn};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// Where to listen.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Address to listen on (port 0 picks one); the bound address is printed on stdout.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
}

/// Serves until killed.
pub async fn main(args: Args) -> anyhow::Result<()> {
    let listener =
        TcpListener::bind(args.listen).await.with_context(|| format!("bind {}", args.listen))?;
    println!("listening on http://{}", listener.local_addr()?);
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let io = TokioIo::new(stream);
            let _ = http1::Builder::new().serve_connection(io, service_fn(hello)).await;
        });
    }
}

async fn hello(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let name = req.uri().query().and_then(|q| {
        form_urlencoded::parse(q.as_bytes()).find(|(k, _)| k == "name").map(|(_, v)| v)
    });
    let (status, content_type, body) = match (req.uri().path(), name) {
        ("/hello", Some(name)) => {
            (StatusCode::OK, "text/plain; charset=utf-8", format!("hello, {name}"))
        }
        ("/hello", None) => (
            StatusCode::BAD_REQUEST,
            "application/json",
            r#"{"error":"name parameter required"}"#.to_string(),
        ),
        _ => (StatusCode::NOT_FOUND, "application/json", r#"{"error":"no route"}"#.to_string()),
    };
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    resp.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static(content_type));
    Ok(resp)
}
