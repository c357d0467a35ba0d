//! What a plugin instance can reach beyond the `host` interface: nothing,
//! unless the gateway config grants it (a directory, named env vars, HTTP
//! destinations). Sockets stay denied: a plugin never touches the network of
//! the data path, and its granted HTTP requests go through the host's checks
//! (`outbound`).

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder};

use crate::config::PluginGrants;

use super::PluginError;

/// Bytes of guest stderr kept to explain a failure (e.g. a panic message).
const STDERR_TAIL_BYTES: usize = 4096;

/// Builds the WASI context of one instance from the plugin's grants.
pub(crate) fn wasi_ctx(grants: &PluginGrants, stderr: StderrTail) -> Result<WasiCtx, PluginError> {
    let mut b = WasiCtxBuilder::new();
    // stdin closed, stdout discarded, no args, no env, no preopens, every
    // socket address denied: the builder's defaults. Made explicit where a
    // default could drift.
    b.stderr(stderr);
    b.allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false);
    for dir in &grants.dirs {
        let perms = if dir.writable {
            FsPerms::ReadWrite
        } else {
            FsPerms::ReadOnly
        };
        b.preopened_dir(&dir.host, &dir.guest, perms)
            .map_err(|e| PluginError::Grant(format!("{}: {e}", dir.host.display())))?;
    }
    for name in &grants.env {
        if let Ok(value) = std::env::var(name) {
            b.env(name, value);
        }
    }
    if !grants.http.is_empty() {
        let granted: Vec<String> = grants.http.iter().map(ToString::to_string).collect();
        b.env(super::GRANTS_ENV, granted.join(" "));
    }
    Ok(b.build())
}

/// A guest's stderr: keeps only the last few KiB, never refuses a write.
#[derive(Clone, Default)]
pub(crate) struct StderrTail(Arc<Mutex<VecDeque<u8>>>);

impl StderrTail {
    pub(crate) fn push(&self, bytes: &[u8]) {
        // A poisoned lock only means another writer panicked mid-push; the
        // buffer is still a valid byte queue.
        let mut buf = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let bytes = &bytes[bytes.len().saturating_sub(STDERR_TAIL_BYTES)..];
        let overflow = (buf.len() + bytes.len()).saturating_sub(STDERR_TAIL_BYTES);
        let drop = overflow.min(buf.len());
        buf.drain(..drop);
        buf.extend(bytes);
    }

    pub(crate) fn contents(&self) -> Vec<u8> {
        let buf = self.0.lock().unwrap_or_else(|e| e.into_inner());
        buf.iter().copied().collect()
    }

    pub(crate) fn clear(&self) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}

impl IsTerminal for StderrTail {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for StderrTail {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl OutputStream for StderrTail {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.push(&bytes);
        Ok(())
    }
    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }
    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 * 1024)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for StderrTail {
    async fn ready(&mut self) {}
}

impl AsyncWrite for StderrTail {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.push(buf);
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stderr_keeps_the_tail() {
        let t = StderrTail::default();
        t.push(&vec![b'a'; STDERR_TAIL_BYTES]);
        t.push(b"panicked at x");
        let c = t.contents();
        assert_eq!(c.len(), STDERR_TAIL_BYTES);
        assert!(c.ends_with(b"panicked at x"));
    }
}
