//! [`FaultProxy`]: a TCP proxy that puts network faults between a pool and
//! its database.
//!
//! The proxy listens on `127.0.0.1` (an ephemeral port) and relays every
//! connection to one upstream address. At run time a test can:
//!
//! - [`cut_all`](FaultProxy::cut_all): close every open connection, both
//!   sides at once (the database restarted, a firewall dropped the flows);
//! - [`refuse`](FaultProxy::refuse): accept each new connection and close it
//!   at once (the database is down), counting every attempt;
//! - [`blackhole`](FaultProxy::blackhole): let no byte through, either way,
//!   on new and existing connections (a network partition); new connections
//!   are still accepted;
//! - [`set_latency`](FaultProxy::set_latency): hold every chunk of data for a
//!   while before passing it on (a slow network or a slow database);
//! - [`heal`](FaultProxy::heal): back to normal. Data held by a blackhole or
//!   a latency passes at once, in order, as after a partition heals.
//!
//! It runs on a thread and runtime of its own, so it keeps relaying whatever
//! the test's runtime is doing, and dropping it closes everything it relays.
//!
//! # Implementation notes
//! Each relayed connection is one task, registered under an id so that
//! [`cut_all`](FaultProxy::cut_all) can abort it; aborting drops both
//! sockets, which closes them. Each direction of a connection is a reader
//! and a writer joined by a small queue of chunks stamped with the time they
//! were read: the reader stops reading while blackholed (bytes wait in the
//! kernel's buffers), and the writer sends a chunk only once it is not
//! blackholed and the current latency has passed since the chunk was read.
//! An end of stream is passed on (as a half close) the same way, after the
//! data before it.

use std::collections::HashMap;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// The faults in force.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Faults {
    refusing: bool,
    blackholed: bool,
    latency: Duration,
}

/// What the accept loop and the relay tasks share with the proxy handle.
#[derive(Debug, Default)]
struct Shared {
    accepted: AtomicU64,
    refused: AtomicU64,
    next_id: AtomicU64,
    /// When each connection that was not refused was accepted, in order.
    accepted_at: Mutex<Vec<Instant>>,
    /// The task of every open relayed connection.
    links: Mutex<HashMap<u64, JoinHandle<()>>>,
}

impl Shared {
    fn links(&self) -> std::sync::MutexGuard<'_, HashMap<u64, JoinHandle<()>>> {
        self.links.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A fault-injecting TCP proxy in front of one upstream server (see the
/// [module documentation](self)).
///
/// ```no_run
/// # async fn run() -> std::io::Result<()> {
/// use tidepool_testkit::proxy::FaultProxy;
///
/// let proxy = FaultProxy::start("127.0.0.1:5432")?;
/// let url = format!("postgres://postgres@{}/test", proxy.addr());
/// // ... build a pool on `url`, put load on it ...
/// proxy.refuse();
/// let cut = proxy.cut_all().await; // the database went down
/// proxy.heal(); // and came back
/// # let _ = (url, cut);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct FaultProxy {
    addr: SocketAddr,
    upstream: SocketAddr,
    faults: watch::Sender<Faults>,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
}

impl FaultProxy {
    /// Starts a proxy to `upstream` (`host:port`) on a thread of its own.
    ///
    /// # Errors
    /// When `upstream` does not resolve, or the listener, the thread or its
    /// runtime cannot be made.
    pub fn start(upstream: &str) -> io::Result<Self> {
        let upstream = upstream.to_socket_addrs()?.next().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{upstream:?} resolves to no address"),
            )
        })?;
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let (faults, watching) = watch::channel(Faults::default());
        let shared = Arc::new(Shared::default());
        let (stop, stopped) = oneshot::channel();
        let (ready_tx, ready) = std::sync::mpsc::channel();
        let relay = Arc::clone(&shared);
        std::thread::Builder::new()
            .name(format!("fault-proxy-{}", addr.port()))
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                runtime.block_on(async move {
                    let listener = match TcpListener::from_std(listener) {
                        Ok(listener) => listener,
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                            return;
                        }
                    };
                    let _ = ready_tx.send(Ok(()));
                    tokio::select! {
                        () = accept_loop(listener, upstream, watching, relay) => {}
                        _ = stopped => {}
                    }
                });
                // Dropping the runtime drops every relay task, and with them
                // every socket.
            })?;
        ready
            .recv()
            .map_err(|_| io::Error::other("the proxy thread ended before it was ready"))??;
        Ok(Self {
            addr,
            upstream,
            faults,
            shared,
            stop: Some(stop),
        })
    }

    /// The address to connect to instead of the upstream server.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The server the proxy relays to.
    pub fn upstream(&self) -> SocketAddr {
        self.upstream
    }

    /// Closes every connection open now, both sides at once, and returns how
    /// many there were once all of them are closed. New connections are
    /// accepted as before (unless [`refuse`](Self::refuse) is in force),
    /// including one the kernel had completed but the proxy not yet
    /// accepted when the cut came.
    pub async fn cut_all(&self) -> usize {
        let links: Vec<JoinHandle<()>> = self.shared.links().drain().map(|(_, l)| l).collect();
        for link in &links {
            link.abort();
        }
        let cut = links.len();
        for link in links {
            // An aborted task has dropped its sockets once its handle
            // resolves; a task that had ended by itself resolves too.
            let _ = link.await;
        }
        cut
    }

    /// From now on, accepts each new connection and closes it at once,
    /// counting it in [`refused`](Self::refused). Open connections are not
    /// affected.
    pub fn refuse(&self) {
        self.faults.send_modify(|f| f.refusing = true);
    }

    /// From now on, no byte passes either way, on open connections and on
    /// new ones (which are still accepted). Data waits until
    /// [`heal`](Self::heal).
    pub fn blackhole(&self) {
        self.faults.send_modify(|f| f.blackholed = true);
    }

    /// From now on, each chunk of data is passed on `latency` after the
    /// proxy read it (a chunk already held gets the new latency too).
    pub fn set_latency(&self, latency: Duration) {
        self.faults.send_modify(|f| f.latency = latency);
    }

    /// Ends every fault: new connections are relayed, held data passes at
    /// once, no latency.
    pub fn heal(&self) {
        self.faults.send_replace(Faults::default());
    }

    /// Connections relayed to the upstream server since the start.
    pub fn accepted(&self) -> u64 {
        self.shared.accepted.load(Ordering::SeqCst)
    }

    /// Connection attempts closed at once since the start: refused by
    /// [`refuse`](Self::refuse), or because the upstream server could not be
    /// reached.
    pub fn refused(&self) -> u64 {
        self.shared.refused.load(Ordering::SeqCst)
    }

    /// When the first connection accepted at or after `since` (and not
    /// refused) was accepted, if there was one.
    pub fn accepted_since(&self, since: Instant) -> Option<Instant> {
        let accepted = self
            .shared
            .accepted_at
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let first = accepted.partition_point(|&at| at < since);
        accepted.get(first).copied()
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.shared.links().len()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Accepts connections until the proxy stops: refused ones are closed at
/// once, the others relayed by a task of their own.
async fn accept_loop(
    listener: TcpListener,
    upstream: SocketAddr,
    faults: watch::Receiver<Faults>,
    shared: Arc<Shared>,
) {
    loop {
        let client = match listener.accept().await {
            Ok((client, _)) => client,
            Err(_) => {
                // Out of file descriptors, or a connection reset before it
                // was accepted: try again shortly.
                tokio::time::sleep(Duration::from_millis(1)).await;
                continue;
            }
        };
        if faults.borrow().refusing {
            shared.refused.fetch_add(1, Ordering::SeqCst);
            drop(client);
            continue;
        }
        shared
            .accepted_at
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Instant::now());
        let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
        // Registered under the lock before the task can end and unregister.
        let mut links = shared.links();
        let task = tokio::spawn(link(
            id,
            client,
            upstream,
            faults.clone(),
            Arc::clone(&shared),
        ));
        links.insert(id, task);
    }
}

/// Unregisters a relayed connection when its task ends, however it ends.
struct Registered {
    id: u64,
    shared: Arc<Shared>,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.shared.links().remove(&self.id);
    }
}

/// Relays one connection until both directions have ended, or one failed.
async fn link(
    id: u64,
    client: TcpStream,
    upstream: SocketAddr,
    faults: watch::Receiver<Faults>,
    shared: Arc<Shared>,
) {
    let _registered = Registered {
        id,
        shared: Arc::clone(&shared),
    };
    let Ok(server) = TcpStream::connect(upstream).await else {
        shared.refused.fetch_add(1, Ordering::SeqCst);
        return;
    };
    shared.accepted.fetch_add(1, Ordering::SeqCst);
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (client_rx, client_tx) = client.into_split();
    let (server_rx, server_tx) = server.into_split();
    // The first error in either direction ends both: the sockets are
    // dropped, as a broken network would leave them.
    let _ = tokio::try_join!(
        pump(client_rx, server_tx, faults.clone()),
        pump(server_rx, client_tx, faults),
    );
}

/// Chunks read but not yet passed on, per direction.
const QUEUED_CHUNKS: usize = 64;

/// Passes data from `from` to `to` under the faults in force, then the end
/// of stream.
async fn pump(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    faults: watch::Receiver<Faults>,
) -> io::Result<()> {
    let (queue, mut queued) = mpsc::channel::<(Instant, Vec<u8>)>(QUEUED_CHUNKS);
    let mut reading = faults.clone();
    let read = async move {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            flowing(&mut reading).await;
            let n = from.read(&mut buf).await?;
            if n == 0 {
                // End of stream: dropping `queue` tells the writer.
                return Ok::<(), io::Error>(());
            }
            if queue
                .send((Instant::now(), buf[..n].to_vec()))
                .await
                .is_err()
            {
                return Ok(());
            }
        }
    };
    let mut writing = faults;
    let write = async move {
        while let Some((read_at, chunk)) = queued.recv().await {
            due(&mut writing, read_at).await;
            to.write_all(&chunk).await?;
        }
        flowing(&mut writing).await;
        to.shutdown().await
    };
    tokio::try_join!(read, write).map(|_| ())
}

/// Returns once nothing is blackholed (at once if the proxy is stopping).
async fn flowing(faults: &mut watch::Receiver<Faults>) {
    let _ = faults.wait_for(|f| !f.blackholed).await;
}

/// Returns once a chunk read at `read_at` may be passed on: not blackholed,
/// and the latency in force has passed since it was read.
async fn due(faults: &mut watch::Receiver<Faults>, read_at: Instant) {
    loop {
        let now = *faults.borrow_and_update();
        if !now.blackholed {
            let due = read_at + now.latency;
            if Instant::now() >= due {
                return;
            }
            // Either way, look again: the faults may have changed.
            tokio::select! {
                () = tokio::time::sleep_until(due) => {}
                changed = faults.changed() => if changed.is_err() { return },
            }
        } else if faults.changed().await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests;
