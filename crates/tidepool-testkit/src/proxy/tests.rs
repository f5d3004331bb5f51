//! The proxy itself, in front of an echo server that counts what reaches it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{Instant, timeout};

use super::FaultProxy;

/// Long enough for a byte to cross the proxy on a loaded machine; used as
/// "it did not arrive" when it must not.
const QUIET: Duration = Duration::from_millis(200);
/// Longest wait for something that must happen.
const PATIENCE: Duration = Duration::from_secs(5);

/// An echo server counting the bytes it received and the connections that
/// ended.
struct Echo {
    addr: SocketAddr,
    received: Arc<AtomicU64>,
    ended: Arc<AtomicU64>,
}

async fn echo() -> Echo {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let received = Arc::new(AtomicU64::new(0));
    let ended = Arc::new(AtomicU64::new(0));
    let (r, e) = (Arc::clone(&received), Arc::clone(&ended));
    tokio::spawn(async move {
        loop {
            let (mut sock, _) = listener.accept().await.unwrap();
            let (r, e) = (Arc::clone(&r), Arc::clone(&e));
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                loop {
                    match sock.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            r.fetch_add(n as u64, Ordering::SeqCst);
                            if sock.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                    }
                }
                e.fetch_add(1, Ordering::SeqCst);
            });
        }
    });
    Echo {
        addr,
        received,
        ended,
    }
}

/// An echo server behind a proxy.
async fn proxied_echo() -> (Echo, FaultProxy) {
    let echo = echo().await;
    let proxy = FaultProxy::start(&echo.addr.to_string()).unwrap();
    (echo, proxy)
}

async fn connect(proxy: &FaultProxy) -> TcpStream {
    TcpStream::connect(proxy.addr()).await.unwrap()
}

/// Sends `msg` and reads the echo, within `within`.
async fn round_trip(sock: &mut TcpStream, msg: &[u8], within: Duration) -> Option<Vec<u8>> {
    sock.write_all(msg).await.ok()?;
    read_exact(sock, msg.len(), within).await
}

async fn read_exact(sock: &mut TcpStream, len: usize, within: Duration) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; len];
    match timeout(within, sock.read_exact(&mut buf)).await {
        Ok(Ok(_)) => Some(buf),
        _ => None,
    }
}

/// Whether the peer has closed `sock` (end of stream or reset) within
/// `PATIENCE`.
async fn closed_by_peer(sock: &mut TcpStream) -> bool {
    let mut buf = [0u8; 16];
    matches!(
        timeout(PATIENCE, sock.read(&mut buf)).await,
        Ok(Ok(0) | Err(_))
    )
}

/// Polls `cond` every millisecond until it holds, for up to `PATIENCE`.
async fn eventually(mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + PATIENCE;
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    cond()
}

#[tokio::test]
async fn relays_both_ways_and_counts_connections() {
    let (echo, proxy) = proxied_echo().await;
    assert_eq!(proxy.upstream(), echo.addr);
    let before = Instant::now();
    let mut a = connect(&proxy).await;
    let mut b = connect(&proxy).await;
    assert_eq!(
        round_trip(&mut a, b"hello", PATIENCE).await.unwrap(),
        b"hello"
    );
    assert_eq!(
        round_trip(&mut b, b"world", PATIENCE).await.unwrap(),
        b"world"
    );
    assert_eq!((proxy.accepted(), proxy.refused(), proxy.open()), (2, 0, 2));
    assert_eq!(echo.received.load(Ordering::SeqCst), 10);
    let first = proxy
        .accepted_since(before)
        .expect("accepted after `before`");
    assert!(first >= before);
    assert_eq!(proxy.accepted_since(Instant::now()), None);

    // A client's close is passed on, and the relay ends.
    drop(a);
    assert!(eventually(|| echo.ended.load(Ordering::SeqCst) == 1).await);
    assert!(eventually(|| proxy.open() == 1).await);
}

#[tokio::test]
async fn cut_all_closes_both_sides_of_every_connection() {
    let (echo, proxy) = proxied_echo().await;
    let mut socks = Vec::new();
    for _ in 0..3 {
        let mut sock = connect(&proxy).await;
        assert!(round_trip(&mut sock, b"ping", PATIENCE).await.is_some());
        socks.push(sock);
    }

    assert_eq!(proxy.cut_all().await, 3);
    assert_eq!(proxy.open(), 0, "every relay ended before cut_all returned");
    for sock in &mut socks {
        assert!(closed_by_peer(sock).await, "the client side is closed");
    }
    assert!(
        eventually(|| echo.ended.load(Ordering::SeqCst) == 3).await,
        "the server side is closed"
    );

    // The proxy itself keeps working.
    let mut sock = connect(&proxy).await;
    assert!(round_trip(&mut sock, b"again", PATIENCE).await.is_some());
    assert_eq!(proxy.accepted(), 4);
}

#[tokio::test]
async fn refuse_closes_new_connections_counts_them_and_spares_open_ones() {
    let (_echo, proxy) = proxied_echo().await;
    let mut open = connect(&proxy).await;
    // Relayed for sure (not just queued in the kernel for accepting).
    assert!(round_trip(&mut open, b"warm", PATIENCE).await.is_some());

    proxy.refuse();
    for _ in 0..3 {
        let mut sock = connect(&proxy).await;
        assert!(
            closed_by_peer(&mut sock).await,
            "a new connection is closed"
        );
    }
    assert_eq!(proxy.refused(), 3);
    assert_eq!(proxy.accepted(), 1);
    assert!(
        round_trip(&mut open, b"still", PATIENCE).await.is_some(),
        "a connection opened before keeps working"
    );

    proxy.heal();
    let mut sock = connect(&proxy).await;
    assert!(round_trip(&mut sock, b"back", PATIENCE).await.is_some());
    assert_eq!((proxy.accepted(), proxy.refused()), (2, 3));
}

#[tokio::test]
async fn a_blackhole_holds_every_byte_both_ways_until_healed() {
    let (echo, proxy) = proxied_echo().await;
    let mut before = connect(&proxy).await;
    assert!(round_trip(&mut before, b"warm", PATIENCE).await.is_some());
    let received = echo.received.load(Ordering::SeqCst);

    proxy.blackhole();
    let mut during = connect(&proxy).await;
    assert!(
        round_trip(&mut before, b"lost?", QUIET).await.is_none(),
        "nothing passes on an open connection"
    );
    assert!(
        round_trip(&mut during, b"new?!", QUIET).await.is_none(),
        "nothing passes on a new one"
    );
    assert_eq!(
        echo.received.load(Ordering::SeqCst),
        received,
        "no byte reached the server"
    );
    assert_eq!(proxy.accepted(), 2, "new connections are still accepted");

    proxy.heal();
    assert_eq!(
        read_exact(&mut before, 5, PATIENCE).await.unwrap(),
        b"lost?"
    );
    assert_eq!(
        read_exact(&mut during, 5, PATIENCE).await.unwrap(),
        b"new?!"
    );
}

#[tokio::test]
async fn a_blackhole_holds_the_data_an_echo_sends_back() {
    // A reply already on its way back when the blackhole starts waits too.
    let (echo, proxy) = proxied_echo().await;
    let mut sock = connect(&proxy).await;
    proxy.set_latency(QUIET);
    sock.write_all(b"slow").await.unwrap();
    // The request reaches the server after QUIET; the reply is then held.
    assert!(
        eventually(|| echo.received.load(Ordering::SeqCst) == 4).await,
        "the request arrived"
    );
    proxy.blackhole();
    assert!(read_exact(&mut sock, 4, QUIET * 2).await.is_none());
    proxy.heal();
    assert_eq!(read_exact(&mut sock, 4, PATIENCE).await.unwrap(), b"slow");
}

#[tokio::test]
async fn latency_delays_each_direction_and_heal_releases_held_data() {
    let (_echo, proxy) = proxied_echo().await;
    let mut sock = connect(&proxy).await;
    let latency = Duration::from_millis(100);

    proxy.set_latency(latency);
    let start = Instant::now();
    assert!(round_trip(&mut sock, b"slow", PATIENCE).await.is_some());
    assert!(
        start.elapsed() >= 2 * latency,
        "a round trip crosses the latency twice: {:?}",
        start.elapsed()
    );

    // Held data goes at once when healed, not when its latency ends.
    proxy.set_latency(Duration::from_secs(60));
    sock.write_all(b"held").await.unwrap();
    assert!(read_exact(&mut sock, 4, QUIET).await.is_none());
    proxy.heal();
    assert_eq!(read_exact(&mut sock, 4, PATIENCE).await.unwrap(), b"held");
}

#[tokio::test]
async fn an_unreachable_upstream_counts_as_refused() {
    let proxy = FaultProxy::start(&format!("127.0.0.1:{}", crate::closed_port())).unwrap();
    let mut sock = connect(&proxy).await;
    assert!(closed_by_peer(&mut sock).await);
    assert!(eventually(|| proxy.refused() == 1).await);
    assert_eq!(proxy.accepted(), 0);
}

#[tokio::test]
async fn dropping_the_proxy_closes_what_it_relays() {
    let (echo, proxy) = proxied_echo().await;
    let mut sock = connect(&proxy).await;
    assert!(round_trip(&mut sock, b"ping", PATIENCE).await.is_some());
    drop(proxy);
    assert!(closed_by_peer(&mut sock).await);
    assert!(eventually(|| echo.ended.load(Ordering::SeqCst) == 1).await);
}

#[test]
fn an_upstream_without_a_port_is_an_error() {
    let err = FaultProxy::start("127.0.0.1").unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput, "{err}");
}
