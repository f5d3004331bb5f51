//! One client connection: served by hyper's HTTP/1 connection, watched
//! by its task — closed at its deadline (headers too slow, idle too long),
//! when the table sheds it, or, at shutdown, once its request is answered.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::Router;
use axum::body::Body;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::watch;
use tower::ServiceExt;

use super::table::{Conn, Timeouts};

/// The connection's IO: tells its [`Conn`] when bytes arrive.
struct Watched<T> {
    io: T,
    conn: Arc<Conn>,
}

impl<T: AsyncRead + Unpin> AsyncRead for Watched<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.io).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.conn.read_some();
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Watched<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

/// The router as hyper's service, counting each request in flight.
#[derive(Clone)]
struct Tracked {
    app: Router,
    conn: Arc<Conn>,
}

impl hyper::service::Service<hyper::Request<Incoming>> for Tracked {
    type Response = axum::response::Response;
    type Error = Infallible;
    type Future =
        Pin<Box<dyn Future<Output = Result<axum::response::Response, Infallible>> + Send>>;

    fn call(&self, req: hyper::Request<Incoming>) -> Self::Future {
        let in_flight = self.conn.begin();
        let app = self.app.clone();
        Box::pin(async move {
            let response = app.oneshot(req.map(Body::new)).await;
            drop(in_flight);
            response
        })
    }
}

/// Serves `io` until the client leaves, a deadline passes, the table sheds
/// the connection, or — after `shutdown` — its request is answered.
pub(crate) async fn serve<T>(
    io: T,
    conn: Arc<Conn>,
    app: Router,
    timeouts: Timeouts,
    mut shutdown: watch::Receiver<bool>,
) where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = Tracked {
        app,
        conn: Arc::clone(&conn),
    };
    let io = TokioIo::new(Watched {
        io,
        conn: Arc::clone(&conn),
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    // The header-read clock is the connection task's (it starts at a
    // request's first byte, which hyper's own does not see).
    builder.timer(TokioTimer::new()).header_read_timeout(None);
    let http = builder.serve_connection(io, service);
    tokio::pin!(http);
    let mut closing = *shutdown.borrow();
    if closing {
        http.as_mut().graceful_shutdown();
    }
    // A shed connection finishes the response it may be writing, briefly.
    let mut shed_by = None;
    loop {
        let deadline = conn.deadline(timeouts);
        tokio::select! {
            done = http.as_mut() => {
                if let Err(e) = done {
                    tracing::debug!(error = %e, "client connection ended");
                }
                return;
            }
            () = conn.wake.notified() => {
                if conn.is_shed() && shed_by.is_none() {
                    tracing::debug!("client connection closed to make room for a new one");
                    http.as_mut().graceful_shutdown();
                    closing = true;
                    if conn.is_idle() {
                        shed_by = Some(tokio::time::Instant::now() + SHED_GRACE);
                    }
                }
            }
            () = sleep_until(shed_by) => return,
            () = sleep_until(deadline) => {
                if conn.deadline(timeouts).is_some_and(|d| d <= tokio::time::Instant::now()) {
                    tracing::debug!("client connection closed: too slow to send its request, or idle too long");
                    return;
                }
            }
            changed = shutdown.changed(), if !closing => {
                if changed.is_err() || *shutdown.borrow() {
                    http.as_mut().graceful_shutdown();
                    closing = true;
                }
            }
        }
    }
}

/// How long an idle connection asked to make room may take to finish
/// writing a response.
const SHED_GRACE: std::time::Duration = std::time::Duration::from_millis(200);

/// Sleeps until `deadline`, or forever without one.
async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}
