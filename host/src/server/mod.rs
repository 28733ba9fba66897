//! The HTTP server: accepts connections within the global and per-address limits, serves
//! each with hyper, and on shutdown stops accepting, lets in-flight requests finish within
//! the grace period, and returns.

pub mod app;
pub mod fd_limit;
pub mod generation;
pub mod handler;
pub mod host;
pub mod inventory;
pub mod request;
pub mod response;
pub mod router;

use std::{convert::Infallible, net::SocketAddr, sync::Arc, time::Duration};

use hyper::{server::conn::http1, service::service_fn};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::{OwnedSemaphorePermit, Semaphore},
};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

pub use app::App;

use crate::ip_slots::{IpSlot, IpSlots};

/// hyper's own limit on the number of request headers.
const DEFAULT_MAX_HEADERS: usize = 100;
/// How long a refused connection gets to take its 503.
const REFUSAL_TIMEOUT: Duration = Duration::from_secs(1);
/// Most bytes read and discarded from a refused connection.
const REFUSAL_DRAIN: usize = 64 * 1024;

/// Serves `app` on `listener` until `shutdown` is cancelled, then drains and returns.
pub async fn run(
    listener: TcpListener,
    app: Arc<App>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let connections = Arc::new(Semaphore::new(app.settings.http.max_connections));
    let per_ip = IpSlots::new(app.settings.http.max_connections_per_ip);
    let tracker = TaskTracker::new();
    loop {
        // Past the connection limit, wait here: new clients queue in the kernel's backlog.
        let permit = tokio::select! {
            permit = connections.clone().acquire_owned() => permit?,
            () = shutdown.cancelled() => break,
        };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = shutdown.cancelled() => break,
        };
        match accepted {
            Ok((stream, peer)) => match per_ip.try_acquire(peer.ip()) {
                Some(slot) => {
                    let app = app.clone();
                    let conn =
                        serve_connection(stream, peer, app, shutdown.clone(), (permit, slot));
                    tracker.spawn(conn);
                }
                None => {
                    tracker.spawn(refuse(stream, per_ip.max(), permit));
                }
            },
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                crate::throttled_warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    drop(listener);
    app.drain(tracker, app.settings.http.shutdown_grace.0).await;
    Ok(())
}

/// Answers a connection past `http.max_connections_per_ip` with a 503 and closes it. What
/// it sent is read and discarded for a moment (bounded in bytes and time): closing with
/// unread data makes the kernel reset the connection, and the client lose the answer.
async fn refuse(mut stream: TcpStream, max: usize, _permit: OwnedSemaphorePermit) {
    let body = format!(
        "{{\"error\":\"too many connections from your address (http.max_connections_per_ip = {max})\"}}"
    );
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(REFUSAL_TIMEOUT, async {
        stream.write_all(answer.as_bytes()).await?;
        stream.shutdown().await?;
        let mut discarded = 0;
        let mut buf = [0u8; 4096];
        while discarded < REFUSAL_DRAIN {
            match stream.read(&mut buf).await? {
                0 => break,
                n => discarded += n,
            }
        }
        Ok::<_, std::io::Error>(())
    })
    .await;
}

async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    app: Arc<App>,
    shutdown: CancellationToken,
    _slots: (OwnedSemaphorePermit, IpSlot),
) {
    let _ = stream.set_nodelay(true);
    let service_app = app.clone();
    let service = service_fn(move |req| {
        let app = service_app.clone();
        async move { Ok::<_, Infallible>(handler::handle(&app, req, peer.ip()).await) }
    });
    let http = &app.settings.http;
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(http.header_read_timeout.0)
        .max_header_size(usize::try_from(http.max_header_size.0).unwrap_or(usize::MAX));
    // Any other value than hyper's default moves the header array to the heap (~5% slower).
    if http.max_headers != DEFAULT_MAX_HEADERS {
        builder.max_headers(http.max_headers);
    }
    let conn = builder.serve_connection(TokioIo::new(stream), service).with_upgrades();
    tokio::pin!(conn);
    let result = tokio::select! {
        result = conn.as_mut() => result,
        () = shutdown.cancelled() => {
            // Finish the request in flight, if any, then close. One still sending its body
            // is cut short by the body reader, which watches the same signal.
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = result {
        tracing::debug!(error = %e, "connection ended with an error");
    }
}
