//! The Centrifugo client protocol v2, `GET /connection/websocket`, in JSON or protobuf
//! (`?format=protobuf`, or the `centrifuge-protobuf` subprotocol the SDKs ask for), so
//! Centrifugo's published SDKs work against tern unchanged. What tern implements, and how
//! it departs from Centrifugo, is in `docs/protocol.md`.

mod calls;
pub(crate) mod codec;
mod commands;
pub mod disconnect;
pub(crate) mod proto;
pub mod session;

use std::{net::IpAddr, sync::Arc};

use http::{HeaderValue, Request, Response, header, uri::Authority};
use hyper::body::Incoming;

pub use codec::Format;

use super::{Admitted, Gateway, switching_protocols, upgrade};
use crate::reply::Body;

/// The endpoint's path.
pub const PATH: &str = "/connection/websocket";

/// The WebSocket subprotocol of the protobuf format.
const PROTOBUF_SUBPROTOCOL: &str = "centrifuge-protobuf";

impl Gateway {
    /// Answers a request for [`PATH`] from `peer` to `host`: an upgrade, or why not. Tokens
    /// are checked by the connect command, as the protocol wants, not before the upgrade.
    pub fn handle_centrifuge(
        &self,
        req: Request<Incoming>,
        host: Option<&Authority>,
        peer: IpAddr,
    ) -> Response<Body> {
        let subprotocol = offers_protobuf(&req);
        let format = if subprotocol || protobuf_asked(req.uri().query()) {
            Format::Protobuf
        } else {
            Format::Json
        };
        let Admitted { accept, slots } = match self.admit(&req, host, peer) {
            Ok(admitted) => admitted,
            Err(resp) => return *resp,
        };
        let ctx = session::Context {
            broker: self.broker.clone(),
            rules: self.rules.clone(),
            websocket: self.settings.clone(),
            settings: self.centrifuge.clone(),
            tokens: self.tokens.clone(),
            shutdown: self.shutdown.clone(),
            runtime: self.runtime.clone(),
            functions: self.functions.clone(),
            control: self.control.clone(),
            peer,
            // Kept for the connect hook only: a session does not carry its cookies around
            // for nothing.
            headers: if self.functions.load().has_project_connect() {
                req.headers().clone()
            } else {
                http::HeaderMap::new()
            },
        };
        let connected = self.centrifuge_count.0.clone();
        self.centrifuge_count.1.inc();
        let client = client_id();
        self.sessions.spawn(async move {
            let Some(ws) = upgrade(req, &ctx.websocket).await else { return };
            connected.inc();
            session::run(ws, &ctx, format, client).await;
            connected.dec();
            drop(slots);
        });
        let mut resp = switching_protocols(&accept);
        if subprotocol {
            // A client offering a subprotocol fails the handshake unless one is chosen.
            let chosen = HeaderValue::from_static(PROTOBUF_SUBPROTOCOL);
            resp.headers_mut().insert(header::SEC_WEBSOCKET_PROTOCOL, chosen);
        }
        resp
    }
}

/// Whether the handshake offers the protobuf subprotocol.
fn offers_protobuf<B>(req: &Request<B>) -> bool {
    req.headers()
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .any(|v| v.to_str().is_ok_and(|v| v.split(',').any(|p| p.trim() == PROTOBUF_SUBPROTOCOL)))
}

/// Whether the query asks for protobuf (`format=protobuf`).
fn protobuf_asked(query: Option<&str>) -> bool {
    query.is_some_and(|q| q.split('&').any(|pair| pair == "format=protobuf"))
}

/// A fresh client id: a random UUID (version 4), as Centrifugo's.
pub(crate) fn client_id() -> Arc<str> {
    let mut b = [0u8; 16];
    if getrandom::fill(&mut b).is_err() {
        // No OS randomness: ids must still be unique within the process.
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        b[8..].copy_from_slice(&n.to_be_bytes());
    }
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    let id =
        format!("{}-{}-{}-{}-{}", &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..]);
    Arc::from(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protobuf_is_asked_by_subprotocol_or_query() {
        let req = Request::builder()
            .header(header::SEC_WEBSOCKET_PROTOCOL, "x, centrifuge-protobuf")
            .body(())
            .unwrap();
        assert!(offers_protobuf(&req));
        assert!(protobuf_asked(Some("a=1&format=protobuf")));
        assert!(!protobuf_asked(Some("format=json")));
    }

    #[test]
    fn client_ids_are_uuids() {
        let id = client_id();
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert_ne!(id, client_id());
    }
}
