//! The flags of `tidepool load`, and the checks clap cannot make alone
//! (which flags go together), each failing with a message that names the
//! flag.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

/// Concurrent clients when `--clients` is not given, in a closed loop.
pub const DEFAULT_CLIENTS: usize = 8;
/// Concurrent clients when `--clients` is not given, with `--rate`: an open
/// loop needs clients to spare so that it keeps to its schedule.
pub const DEFAULT_OPEN_LOOP_CLIENTS: usize = 64;
/// How long a run lasts when neither `--duration` nor `--requests` is given.
pub const DEFAULT_DURATION: Duration = Duration::from_secs(10);
/// The statement when neither `--sql` nor `--workload` is given.
pub const DEFAULT_SQL: &str = "SELECT 1";

/// `tidepool load`: drives a configured pool (or the HTTP query gateway)
/// with concurrent clients and reports throughput, latency percentiles,
/// errors and the pool's own statistics.
#[derive(Debug, Clone, Args)]
pub struct LoadArgs {
    /// The TOML configuration file whose pool to load (as `tidepool serve`
    /// reads it).
    #[arg(long, short, conflicts_with = "url", required_unless_present = "url")]
    pub config: Option<PathBuf>,
    /// Drive the HTTP query gateway of a running `tidepool serve` at this
    /// base URL (e.g. http://127.0.0.1:7070) instead of a pool of this
    /// process.
    #[arg(long, requires = "token_file")]
    pub url: Option<String>,
    /// With --url: a file holding the bearer token (its first line).
    #[arg(long, requires = "url")]
    pub token_file: Option<PathBuf>,
    /// The pool to load, by its name in the configuration.
    #[arg(long, short)]
    pub pool: String,
    /// Concurrent clients: each runs one request at a time. Default: 8;
    /// with --rate, 64 (the most requests in flight at once).
    #[arg(long, short = 'n')]
    pub clients: Option<usize>,
    /// How long to run, e.g. 30s, 2m. Default: 10s.
    #[arg(long, short, value_parser = humantime::parse_duration, conflicts_with = "requests")]
    pub duration: Option<Duration>,
    /// Stop after this many requests instead of after a duration.
    #[arg(long, short)]
    pub requests: Option<u64>,
    /// The statement every request runs. Default: SELECT 1.
    #[arg(long, conflicts_with = "workload")]
    pub sql: Option<String>,
    /// A TOML file of weighted statements with parameters (the format is in
    /// crates/tidepool-server/README.md).
    #[arg(long, short)]
    pub workload: Option<PathBuf>,
    /// Open loop: start requests at this fixed rate per second, whatever
    /// the latency; latency is then measured from each request's intended
    /// start (corrected for coordinated omission).
    #[arg(long)]
    pub rate: Option<f64>,
    /// Run the same workload again with a new connection per request and
    /// print both side by side.
    #[arg(long, conflicts_with_all = ["url", "sweep_sizes"])]
    pub compare_unpooled: bool,
    /// Run the same open-loop rate (--rate) at each pool size, e.g.
    /// 2,4,8,16,32, and find where throughput stops growing and latency
    /// turns, beside the pool's own Little's-law advice.
    #[arg(long, value_delimiter = ',', conflicts_with = "url")]
    pub sweep_sizes: Option<Vec<usize>>,
    /// Write every figure as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write a chart as SVG to this file: latency over time, or throughput
    /// and latency per pool size for a sweep.
    #[arg(long)]
    pub svg: Option<PathBuf>,
    /// Once the run ends (or on Ctrl-C), how long requests still running
    /// may take to finish before they are abandoned and counted as
    /// cancelled.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "10s")]
    pub drain_timeout: Duration,
}

/// When a run stops.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Limit {
    /// After this long.
    Duration(Duration),
    /// After this many requests.
    Requests(u64),
}

/// The checked shape of one run.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// Concurrent clients.
    pub clients: usize,
    /// When to stop.
    pub limit: Limit,
    /// Open-loop arrival rate per second; `None` for a closed loop.
    pub rate: Option<f64>,
    /// How long in-flight requests may take to finish at the end.
    pub drain_timeout: Duration,
}

impl LoadArgs {
    /// Checks the combinations of flags; the plan of each run.
    ///
    /// # Errors
    /// A message naming the flag at fault.
    pub fn plan(&self) -> Result<Plan, String> {
        if let Some(rate) = self.rate
            && !(rate.is_finite() && rate > 0.0)
        {
            return Err("--rate must be a number of requests per second above 0".into());
        }
        if self.clients == Some(0) {
            return Err("--clients must be at least 1".into());
        }
        if self.requests == Some(0) {
            return Err("--requests must be at least 1".into());
        }
        if self.duration.is_some_and(|d| d.is_zero()) {
            return Err("--duration must be longer than 0".into());
        }
        if let Some(sizes) = &self.sweep_sizes {
            if sizes.is_empty() || sizes.contains(&0) {
                return Err("--sweep-sizes takes pool sizes of 1 or more, e.g. 2,4,8,16".into());
            }
            if self.rate.is_none() {
                return Err(
                    "--sweep-sizes needs --rate R: the open-loop arrival rate every size is held to (a closed-loop run first shows what the database sustains)"
                        .into(),
                );
            }
        }
        if let Some(url) = &self.url
            && !url.starts_with("http://")
        {
            return Err(format!(
                "--url takes the server's plain-HTTP address, as `tidepool serve` listens (e.g. http://127.0.0.1:7070), not `{url}`"
            ));
        }
        let limit = match (self.duration, self.requests) {
            (_, Some(n)) => Limit::Requests(n),
            (Some(d), None) => Limit::Duration(d),
            (None, None) => Limit::Duration(DEFAULT_DURATION),
        };
        let clients = self.clients.unwrap_or(if self.rate.is_some() {
            DEFAULT_OPEN_LOOP_CLIENTS
        } else {
            DEFAULT_CLIENTS
        });
        Ok(Plan {
            clients,
            limit,
            rate: self.rate,
            drain_timeout: self.drain_timeout,
        })
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        load: LoadArgs,
    }

    fn parse(args: &[&str]) -> Result<LoadArgs, String> {
        let mut all = vec!["load"];
        all.extend_from_slice(args);
        Cli::try_parse_from(all)
            .map(|c| c.load)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_make_a_ten_second_closed_loop_of_eight_clients() {
        let args = parse(&["--config", "t.toml", "--pool", "p"]).unwrap();
        let plan = args.plan().unwrap();
        assert_eq!(plan.clients, DEFAULT_CLIENTS);
        assert_eq!(plan.limit, Limit::Duration(DEFAULT_DURATION));
        assert_eq!(plan.rate, None);
        let open = parse(&["--config", "t.toml", "--pool", "p", "--rate", "500"]).unwrap();
        assert_eq!(open.plan().unwrap().clients, DEFAULT_OPEN_LOOP_CLIENTS);
    }

    #[test]
    fn flags_that_do_not_go_together_are_refused_by_name() {
        let e = parse(&["--config", "t", "--pool", "p", "-d", "1s", "-r", "5"]).unwrap_err();
        assert!(e.contains("--requests") && e.contains("--duration"), "{e}");
        let e = parse(&["--config", "t", "--url", "http://x", "--pool", "p"]).unwrap_err();
        assert!(e.contains("--url"), "{e}");
        let e = parse(&["--pool", "p"]).unwrap_err();
        assert!(e.contains("--config"), "{e}");
        let e = parse(&["--url", "http://x", "--pool", "p"]).unwrap_err();
        assert!(e.contains("--token-file"), "{e}");
        let e = parse(&["--config", "t", "--pool", "p", "--sql", "x", "-w", "w"]).unwrap_err();
        assert!(e.contains("--workload"), "{e}");
        let e = parse(&["--url", "https://x", "--token-file", "t", "--pool", "p"])
            .unwrap()
            .plan()
            .unwrap_err();
        assert!(e.contains("plain-HTTP"), "{e}");
        let e = parse(&["--config", "t", "--pool", "p", "-d", "soon"]).unwrap_err();
        assert!(e.contains("soon"), "{e}");
    }

    #[test]
    fn values_out_of_range_are_refused_by_name() {
        let plan = |args: &[&str]| {
            let mut all = vec!["--config", "t", "--pool", "p"];
            all.extend_from_slice(args);
            parse(&all).unwrap().plan()
        };
        assert!(plan(&["--rate", "0"]).unwrap_err().contains("--rate"));
        assert!(plan(&["--rate", "NaN"]).unwrap_err().contains("--rate"));
        assert!(plan(&["--clients", "0"]).unwrap_err().contains("--clients"));
        assert!(
            plan(&["--requests", "0"])
                .unwrap_err()
                .contains("--requests")
        );
        assert!(
            plan(&["--duration", "0s"])
                .unwrap_err()
                .contains("--duration")
        );
        let e = plan(&["--sweep-sizes", "2,4"]).unwrap_err();
        assert!(e.contains("--rate"), "{e}");
        let e = plan(&["--sweep-sizes", "2,0", "--rate", "9"]).unwrap_err();
        assert!(e.contains("--sweep-sizes"), "{e}");
        let ok = plan(&["--sweep-sizes", "2,4,8", "--rate", "100"]).unwrap();
        assert_eq!(ok.rate, Some(100.0));
        assert_eq!(
            plan(&["--requests", "7"]).unwrap().limit,
            Limit::Requests(7)
        );
    }
}
