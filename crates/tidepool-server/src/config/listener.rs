//! The HTTP listener's keys of `[server]`: how long a client may take, how
//! many may be connected, and HTTPS. Parsed apart from the rest of
//! `[server]` (taken out of its table first), so the listener's settings
//! live in one place.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use toml::Table;

use super::{ConfigError, Ctx, typed};

/// The keys of `[server]` this module owns.
const KEYS: [&str; 5] = [
    "header_read_timeout",
    "keep_alive_timeout",
    "max_connections",
    "tls_cert",
    "tls_key",
];

/// The most connections `max_connections` picks on its own.
pub const AUTO_MAX_CONNECTIONS_CAP: usize = 4096;

/// How the server takes client connections.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ListenerSection {
    /// Longest a client may take to send a request's headers, counted from
    /// the connection's start (including a TLS handshake) or, on a
    /// keep-alive connection, from the request's first byte. Past it the
    /// connection is closed. Default: 10 s.
    #[serde(with = "humantime_serde")]
    pub header_read_timeout: Duration,
    /// Longest a keep-alive connection may wait, idle, for its next
    /// request. Default: 60 s.
    #[serde(with = "humantime_serde")]
    pub keep_alive_timeout: Duration,
    /// Most client connections at once. When they are all open, a new one
    /// takes the place of the connection idle the longest (one with no
    /// request in flight); when none is idle, it is answered 503 and closed
    /// at once. Default (unset): half the process's open-file limit, at most
    /// [`AUTO_MAX_CONNECTIONS_CAP`].
    pub max_connections: Option<usize>,
    /// A PEM certificate chain: with `tls_key`, the server speaks HTTPS
    /// only. Default: unset (HTTP).
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of `tls_cert`.
    pub tls_key: Option<PathBuf>,
}

impl Default for ListenerSection {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            keep_alive_timeout: Duration::from_secs(60),
            max_connections: None,
            tls_cert: None,
            tls_key: None,
        }
    }
}

impl ListenerSection {
    /// `max_connections`, or the default for an open-file limit of
    /// `nofile`: half of it, at least 1, at most
    /// [`AUTO_MAX_CONNECTIONS_CAP`].
    pub fn max_connections_for(&self, nofile: Option<u64>) -> usize {
        self.max_connections.unwrap_or_else(|| {
            let half = nofile.map_or(AUTO_MAX_CONNECTIONS_CAP, |n| {
                usize::try_from(n / 2).unwrap_or(usize::MAX)
            });
            half.clamp(1, AUTO_MAX_CONNECTIONS_CAP)
        })
    }

    /// Whether the server speaks HTTPS.
    pub fn tls(&self) -> Option<(&PathBuf, &PathBuf)> {
        self.tls_cert.as_ref().zip(self.tls_key.as_ref())
    }

    /// The settings as JSON, for `GET /api/v1/config`'s `server` section
    /// (`max_connections: null` is the automatic default).
    pub(super) fn json_into(&self, server: &mut serde_json::Value) {
        use humantime_serde::re::humantime::format_duration;
        server["header_read_timeout"] =
            format_duration(self.header_read_timeout).to_string().into();
        server["keep_alive_timeout"] = format_duration(self.keep_alive_timeout).to_string().into();
        server["max_connections"] = self.max_connections.into();
        server["tls_cert"] = self
            .tls_cert
            .as_ref()
            .map(|p| p.display().to_string())
            .into();
        server["tls_key"] = self
            .tls_key
            .as_ref()
            .map(|p| p.display().to_string())
            .into();
    }
}

/// Takes the listener's keys out of the `[server]` table `server` and
/// parses them.
pub(super) fn take(server: &mut Table, ctx: &Ctx<'_>) -> Result<ListenerSection, ConfigError> {
    let mut mine = Table::new();
    for k in KEYS {
        if let Some(v) = server.remove(k) {
            mine.insert(k.to_owned(), v);
        }
    }
    let out: ListenerSection = typed(&mine, "server", ctx)?;
    for (key, zero) in [
        ("header_read_timeout", out.header_read_timeout.is_zero()),
        ("keep_alive_timeout", out.keep_alive_timeout.is_zero()),
        ("max_connections", out.max_connections == Some(0)),
    ] {
        if zero {
            return Err(ctx.err(Some(&format!("server.{key}")), "must be greater than zero"));
        }
    }
    match (&out.tls_cert, &out.tls_key) {
        (Some(_), None) => Err(ctx.err(
            Some("server.tls_cert"),
            "`tls_cert` needs `tls_key` (the certificate's private key)",
        )),
        (None, Some(_)) => Err(ctx.err(
            Some("server.tls_key"),
            "`tls_key` needs `tls_cert` (the certificate chain)",
        )),
        _ => Ok(out),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_automatic_maximum_is_half_the_open_file_limit_within_bounds() {
        let s = ListenerSection::default();
        assert_eq!(s.max_connections_for(Some(256)), 128);
        assert_eq!(s.max_connections_for(Some(1024)), 512);
        assert_eq!(s.max_connections_for(Some(1_000_000)), 4096);
        assert_eq!(s.max_connections_for(Some(1)), 1);
        assert_eq!(s.max_connections_for(None), 4096);
        let fixed = ListenerSection {
            max_connections: Some(7),
            ..ListenerSection::default()
        };
        assert_eq!(fixed.max_connections_for(Some(256)), 7);
    }
}
