//! Real servers a suite may also run against, when the developer points it
//! at one: never required, never skipped silently.

/// The value of `var` when set and not empty: the address (or account) of a
/// real `name` server the suite should also run against. When unset, prints
/// that the real-server part of `test` is skipped and how to run it, and
/// returns `None` — also under `TIDEPOOL_REQUIRE_SERVICES=1`, since CI has
/// no such server.
pub fn real_server(name: &str, var: &str, test: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => Some(v),
        _ => {
            eprintln!("skipping the real {name} part of `{test}`: set {var} to run it");
            None
        }
    }
}
