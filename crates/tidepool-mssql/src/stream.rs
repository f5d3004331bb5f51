//! [`MssqlStream`]: the TCP stream under a connection, noting when it ends.
//!
//! tiberius keeps no "closed" state a caller can read, so the socket itself
//! is watched: the first end of stream or I/O error, in either direction,
//! sets a flag the connection shares. Reading it costs nothing, which is
//! what [`Manager::has_broken`](tidepool::Manager::has_broken) needs.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// Whether the socket under a connection has ended; shared by the stream
/// (which sets it) and the connection (which reads it).
#[derive(Debug, Clone, Default)]
pub(crate) struct Closed(Arc<AtomicBool>);

impl Closed {
    pub(crate) fn get(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }

    fn set(&self) {
        self.0.store(true, Ordering::Release);
    }
}

/// The TCP stream under a pooled connection: a [`TcpStream`] that notes the
/// first end of stream or I/O error, so the pool can tell a dead connection
/// without a round trip.
#[derive(Debug)]
pub struct MssqlStream {
    inner: TcpStream,
    closed: Closed,
}

impl MssqlStream {
    pub(crate) fn new(inner: TcpStream) -> (Self, Closed) {
        let closed = Closed::default();
        (
            Self {
                inner,
                closed: closed.clone(),
            },
            closed,
        )
    }

    fn note<T>(&self, result: &Poll<io::Result<T>>) {
        if let Poll::Ready(Err(_)) = result {
            self.closed.set();
        }
    }
}

impl AsyncRead for MssqlStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let wanted = buf.remaining() > 0;
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        self.note(&result);
        if matches!(result, Poll::Ready(Ok(()))) && wanted && buf.filled().len() == before {
            // Zero bytes into a non-empty buffer: the server closed the
            // connection.
            self.closed.set();
        }
        result
    }
}

impl AsyncWrite for MssqlStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, data);
        self.note(&result);
        if matches!(result, Poll::Ready(Ok(0))) && !data.is_empty() {
            self.closed.set();
        }
        result
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let result = Pin::new(&mut self.inner).poll_flush(cx);
        self.note(&result);
        result
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.closed.set();
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    #[tokio::test]
    async fn the_flag_is_set_when_the_peer_closes() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (client, server) = tokio::join!(TcpStream::connect(addr), listener.accept());
        let (mut watched, closed) = MssqlStream::new(client.unwrap());
        let (mut server, _) = server.unwrap();

        server.write_all(b"hi").await.unwrap();
        let mut buf = [0u8; 2];
        watched.read_exact(&mut buf).await.unwrap();
        assert!(!closed.get(), "data is not an end");

        drop(server);
        let n = watched.read(&mut buf).await.unwrap();
        assert_eq!(n, 0);
        assert!(closed.get());
    }
}
