//! The HTTP listener: accepts client connections, over TLS when configured,
//! and serves each with hyper's HTTP/1 within the limits of
//! [`ListenerSection`].
//!
//! # Implementation notes
//! A slow client must not hold the server: each connection's task closes it
//! when its request's headers take longer than `header_read_timeout` (from
//! the connection's start, TLS handshake included, or from the first byte
//! of a later request) or when it stays idle longer than
//! `keep_alive_timeout`. hyper's own header timer starts when hyper begins
//! waiting for a request, so it cannot tell an idle keep-alive connection
//! from a slow header; the task sees the first byte through the
//! connection's IO instead.
//!
//! At most `max_connections` connections are counted (by default half the
//! open-file limit, so that the process keeps descriptors for its
//! databases). When all are open, a new connection takes the place of the
//! one idle the longest — no request in flight: a slow header or an idle
//! keep-alive — which is closed at once; so clients that hold connections
//! without sending requests cannot keep a real request out. Only when every
//! connection has a request in flight is the new one refused: answered 503
//! (over plain HTTP) and closed, never queued. When the process runs out of
//! descriptors anyway, the idlest connection is closed to make one.
//!
//! At shutdown the socket is closed at once, idle connections are closed,
//! and each connection with a request in flight closes once it is answered.

mod conn;
mod table;
pub mod tls;

use std::future::Future;
use std::time::Duration;

use axum::Router;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;

use crate::config::ListenerSection;
use table::{Table, Ticket, Timeouts};

/// What a refused connection is told before it is closed.
const REFUSED: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: 99\r\n\r\n{\"error\":\"too_many_connections\",\"detail\":\"every connection is busy with a request; retry shortly\"}";

/// The process's open-file limit (soft), if known.
pub fn open_file_limit() -> Option<u64> {
    rustix::process::getrlimit(rustix::process::Resource::Nofile).current
}

/// Serves `app` on `tcp` (over TLS with `tls`) until `shutdown` resolves;
/// then closes the socket, lets requests in flight finish, and returns once
/// every connection is closed.
pub async fn serve(
    tcp: TcpListener,
    app: Router,
    cfg: &ListenerSection,
    tls: Option<TlsAcceptor>,
    shutdown: impl Future<Output = ()>,
) {
    let max = cfg.max_connections_for(open_file_limit());
    tracing::info!(
        max_connections = max,
        header_read_timeout = ?cfg.header_read_timeout,
        keep_alive_timeout = ?cfg.keep_alive_timeout,
        "client connection limits"
    );
    let table = Table::new(max);
    let timeouts = Timeouts {
        header_read: cfg.header_read_timeout,
        keep_alive: cfg.keep_alive_timeout,
    };
    let (stop, stopped) = watch::channel(false);
    let mut tasks = JoinSet::new();
    let mut refusals = Every::default();
    let mut failures = Every::default();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            accepted = tcp.accept() => match accepted {
                Ok((stream, _)) => {
                    let Some(ticket) = table.admit() else {
                        if let Some(more) = refusals.due() {
                            tracing::warn!(max_connections = max, similar_held_back = more, "connection refused: every connection has a request in flight");
                        }
                        refuse(&stream, tls.is_some());
                        continue;
                    };
                    let _ = stream.set_nodelay(true);
                    tasks.spawn(connection(stream, ticket, app.clone(), timeouts, tls.clone(), stopped.clone()));
                    // Let the new connection read its request before the
                    // next is accepted: a client that sent it at once is
                    // busy, not idle, when a burst of connections needs room.
                    tokio::task::yield_now().await;
                }
                Err(e) => {
                    let out_of_files = matches!(
                        rustix::io::Errno::from_io_error(&e),
                        Some(rustix::io::Errno::MFILE | rustix::io::Errno::NFILE)
                    );
                    if out_of_files {
                        table.shed_one();
                    }
                    if let Some(more) = failures.due() {
                        tracing::warn!(error = %e, open = table.len(), similar_held_back = more, "accepting a connection failed");
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        }
    }
    drop(tcp);
    let _ = stop.send(true);
    table.close_all();
    while tasks.join_next().await.is_some() {}
}

/// Tells a refused client why, if it can be done without waiting, and
/// closes the connection (by dropping it).
fn refuse(stream: &TcpStream, tls: bool) {
    if !tls {
        let _ = stream.try_write(REFUSED);
    }
}

/// One connection, from its TLS handshake (if any) to its end.
async fn connection(
    stream: TcpStream,
    ticket: Ticket,
    app: Router,
    timeouts: Timeouts,
    tls: Option<TlsAcceptor>,
    mut stopped: watch::Receiver<bool>,
) {
    let conn = std::sync::Arc::clone(&ticket.conn);
    match tls {
        None => conn::serve(stream, conn, app, timeouts, stopped).await,
        Some(acceptor) => {
            // The handshake is on the header-read clock, and gives way to
            // shedding and shutdown.
            let handshake = tokio::time::timeout(timeouts.header_read, acceptor.accept(stream));
            let give_way = async {
                loop {
                    tokio::select! {
                        () = conn.wake.notified() => if conn.is_shed() { return },
                        changed = stopped.changed() => if changed.is_err() || *stopped.borrow() { return },
                    }
                }
            };
            let secured = tokio::select! {
                done = handshake => match done {
                    Ok(Ok(s)) => s,
                    Ok(Err(e)) => {
                        tracing::debug!(error = %e, "TLS handshake failed");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!("TLS handshake too slow; connection closed");
                        return;
                    }
                },
                () = give_way => return,
            };
            conn::serve(secured, conn, app, timeouts, stopped).await;
        }
    }
    drop(ticket);
}

/// Lets a repeated warning through at most every ten seconds, counting the
/// rest.
#[derive(Debug, Default)]
struct Every {
    last: Option<Instant>,
    held_back: u64,
}

impl Every {
    fn due(&mut self) -> Option<u64> {
        let now = Instant::now();
        if self
            .last
            .is_some_and(|l| now.duration_since(l) < Duration::from_secs(10))
        {
            self.held_back += 1;
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.held_back))
    }
}
