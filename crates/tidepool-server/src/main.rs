//! The `tidepool` binary; see the `tidepool_server` library for the parts.

fn main() -> std::process::ExitCode {
    tidepool_server::cli::main()
}
