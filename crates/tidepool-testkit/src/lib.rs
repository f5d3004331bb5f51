//! Test helpers shared by tidepool's crates.
//!
//! Backend tests talk to real servers. [`service`] finds one: it reads the
//! address from an environment variable (falling back to the local default),
//! checks that something answers there, and otherwise either skips the test
//! with a printed reason or — when `TIDEPOOL_REQUIRE_SERVICES=1`, as in CI —
//! fails it.
//!
//! [`proxy::FaultProxy`] sits between a pool and its server and breaks the
//! network on demand (cut, refuse, blackhole, latency); [`load::Load`] puts
//! a pool under load and records every call; [`faults`] holds the fault
//! scenarios every backend runs against its real server.

pub mod faults;
pub mod load;
pub mod proxy;

mod optional;

pub use optional::real_server;

use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// Whether CI asked for every server to be present.
pub fn services_required() -> bool {
    std::env::var("TIDEPOOL_REQUIRE_SERVICES").is_ok_and(|v| v == "1")
}

/// The value of `var`, or `default` when unset or empty.
pub fn env_or(var: &str, default: &str) -> String {
    std::env::var(var)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_owned())
}

/// Whether a TCP server answers at `host:port` within two seconds.
pub fn reachable(host_port: &str) -> bool {
    let Ok(addrs) = host_port.to_socket_addrs() else {
        return false;
    };
    addrs
        .into_iter()
        .any(|a| TcpStream::connect_timeout(&a, Duration::from_secs(2)).is_ok())
}

/// Finds the server `name` at the `host:port` in `var` (default `default`).
/// Returns the address when it answers. When it does not, prints why and
/// returns `None` (the test should return early), unless
/// `TIDEPOOL_REQUIRE_SERVICES=1`, where it panics.
///
/// # Panics
/// When the server is absent and services are required.
pub fn service(name: &str, var: &str, default: &str) -> Option<String> {
    let addr = env_or(var, default);
    if reachable(&addr) {
        return Some(addr);
    }
    let msg = format!("{name} is not reachable at {addr} (set {var} to point elsewhere)");
    if services_required() {
        panic!("{msg}; TIDEPOOL_REQUIRE_SERVICES=1 makes this a failure");
    }
    eprintln!("skipping: {msg}");
    None
}

/// Asserts that a pool served exactly `gets` gets, every one of them, with
/// at most `max_created` connections opened, and that nothing is left checked
/// out or out for a reset: the accounting every backend's concurrent-load
/// test checks.
///
/// # Panics
/// When any of those does not hold; the message shows the statistics.
pub fn assert_all_served(stats: &tidepool::Stats, gets: u64, max_created: u64) {
    let (c, g) = (&stats.counters, &stats.gauges);
    assert_eq!(c.gets, gets, "{c:?}");
    assert_eq!(c.served(), gets, "{c:?}");
    assert_eq!(c.timeouts + c.connect_failures + c.cancelled, 0, "{c:?}");
    assert!(
        c.created <= max_created,
        "created {} > {max_created}: {c:?}",
        c.created
    );
    assert_eq!((g.in_use, g.checking), (0, 0), "{g:?}");
    assert_eq!(g.idle, g.size, "{g:?}");
}

/// A local TCP port with nothing listening on it (bound, then released), for
/// "unreachable server" tests.
pub fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    l.local_addr().expect("local address").port()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_closed_port_is_unreachable() {
        let port = closed_port();
        assert!(!reachable(&format!("127.0.0.1:{port}")));
    }

    #[test]
    fn a_listening_port_is_reachable() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        assert!(reachable(&l.local_addr().unwrap().to_string()));
    }
}
