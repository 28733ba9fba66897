//! Where a guest's stdout and stderr go: a small per-invocation buffer that is logged with
//! the function's name, so a panic message reaches the operator instead of vanishing.

use std::{
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll},
};

use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};

/// How much of a guest's output one invocation keeps; the rest is counted and dropped, so a
/// guest printing in a loop cannot grow host memory.
pub const GUEST_OUTPUT_CAPACITY: usize = 4096;

/// A bounded buffer shared by a guest's stdout and stderr.
#[derive(Debug, Clone, Default)]
pub struct GuestOutput {
    inner: Arc<Mutex<Captured>>,
}

#[derive(Debug, Default)]
struct Captured {
    bytes: Vec<u8>,
    dropped: usize,
}

impl GuestOutput {
    /// What the guest wrote (lossily decoded, trimmed), with a note of how much was dropped;
    /// None when it wrote nothing.
    pub fn text(&self) -> Option<String> {
        let captured = self.inner.lock().ok()?;
        if captured.bytes.is_empty() && captured.dropped == 0 {
            return None;
        }
        let mut text = String::from_utf8_lossy(&captured.bytes).trim_end().to_string();
        if captured.dropped > 0 {
            text.push_str(&format!(" [{} more bytes dropped]", captured.dropped));
        }
        Some(text)
    }
}

impl IsTerminal for GuestOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestOutput {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl AsyncWrite for GuestOutput {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        if let Ok(mut captured) = self.inner.lock() {
            let room = GUEST_OUTPUT_CAPACITY.saturating_sub(captured.bytes.len());
            let kept = room.min(buf.len());
            captured.bytes.extend_from_slice(&buf[..kept]);
            captured.dropped += buf.len() - kept;
        }
        // Report everything as written: a full buffer must not fail the guest's println!.
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
