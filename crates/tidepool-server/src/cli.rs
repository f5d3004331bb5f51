//! The command line: `tidepool serve`, `tidepool check-config`,
//! `tidepool load`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{Config, default_data_dir};

/// tidepool: connection pools served over HTTP — monitoring, admin,
/// Prometheus metrics, sessions and a query gateway.
#[derive(Debug, Parser)]
#[command(name = "tidepool", version, about)]
pub struct Cli {
    /// What to do (default: serve with the bundled configuration).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// A subcommand.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the pools of a configuration file (default: a bundled demo
    /// SQLite database under ./data/).
    Serve {
        /// The TOML configuration file.
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Address to listen on, overriding `[server] listen`.
        #[arg(long, short)]
        listen: Option<SocketAddr>,
    },
    /// Validate a configuration file and exit (0 if valid).
    CheckConfig {
        /// The TOML configuration file.
        file: PathBuf,
    },
    /// Load a configured pool (or the HTTP query gateway) with concurrent
    /// clients and report throughput, latency percentiles, errors and the
    /// pool's own statistics.
    Load(Box<crate::load::LoadArgs>),
}

/// Runs the command line; the process exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    // The load generator's report is the output; the pool's routine logs
    // would only interleave with it.
    let quiet = matches!(cli.command, Some(Command::Load(_)));
    init_logging(if quiet { "warn" } else { "info" });
    match cli.command.unwrap_or(Command::Serve {
        config: None,
        listen: None,
    }) {
        Command::Load(args) => crate::load::main(*args),
        Command::CheckConfig { file } => match Config::load(&file) {
            Ok(cfg) => {
                report_ok(&cfg);
                ExitCode::SUCCESS
            }
            Err(e) => {
                tracing::error!("{e}");
                ExitCode::from(2)
            }
        },
        Command::Serve { config, listen } => {
            let (cfg, data_dir) = match config {
                Some(path) => match Config::load(&path) {
                    Ok(cfg) => (cfg, None),
                    Err(e) => {
                        tracing::error!("{e}");
                        return ExitCode::from(2);
                    }
                },
                None => {
                    let dir = default_data_dir();
                    tracing::info!(
                        "no --config given: serving the bundled demo (SQLite under {}/)",
                        dir.display()
                    );
                    (Config::bundled(&dir), Some(dir))
                }
            };
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    tracing::error!("cannot start the runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            let result = runtime.block_on(crate::serve::run(cfg, listen, data_dir.as_deref()));
            runtime.shutdown_timeout(std::time::Duration::from_secs(2));
            match result {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!("{e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

#[allow(clippy::print_stdout, reason = "check-config reports on stdout")]
fn report_ok(cfg: &Config) {
    let names: Vec<&str> = cfg.pools.keys().map(String::as_str).collect();
    println!(
        "{}: ok ({} pool(s): {})",
        cfg.origin,
        names.len(),
        names.join(", ")
    );
}

fn init_logging(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("TIDEPOOL_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .init();
}
