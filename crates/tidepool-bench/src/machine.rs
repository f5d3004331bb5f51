//! What the numbers were taken on: the machine and the exact versions.

use std::process::Command;

use serde::{Deserialize, Serialize};

/// The machine and software a run was taken on.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Machine {
    /// CPU model, from `/proc/cpuinfo`.
    pub cpu: String,
    /// Logical cores available to the process.
    pub cores: usize,
    /// Total memory in GiB, from `/proc/meminfo`.
    pub memory_gib: f64,
    /// Kernel release and OS name.
    pub os: String,
    /// The 1-minute load average when the run started (other work on the
    /// machine shows here).
    pub load_average: String,
    /// `rustc --version` of the compiler that built the runner.
    pub rustc: String,
    /// `(crate, version)` of every benchmarked crate, from Cargo.lock at
    /// build time.
    pub crates: Vec<(String, String)>,
}

impl Machine {
    /// Reads the machine this process runs on.
    pub fn detect() -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find_map(|l| {
                let (key, value) = l.split_once(':')?;
                (key.trim() == "model name").then(|| value.trim().to_owned())
            })
            .unwrap_or_else(|| "unknown".to_owned());
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let memory_gib = meminfo
            .lines()
            .find_map(|l| {
                let rest = l.strip_prefix("MemTotal:")?;
                rest.split_whitespace().next()?.parse::<f64>().ok()
            })
            .map_or(0.0, |kib| kib / (1024.0 * 1024.0));
        let os_name = std::fs::read_to_string("/etc/os-release")
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("PRETTY_NAME="))
            .map(|v| v.trim_matches('"').to_owned())
            .unwrap_or_default();
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_owned())
            .unwrap_or_default();
        Self {
            cpu,
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            memory_gib,
            os: format!("{os_name}, Linux {kernel}"),
            load_average: load_average(),
            rustc: env!("TIDEPOOL_BENCH_RUSTC").to_owned(),
            crates: built_versions(),
        }
    }

    /// The built version of `krate`, if it is in the lock file.
    pub fn version_of(&self, krate: &str) -> Option<&str> {
        self.crates
            .iter()
            .find(|(name, _)| name == krate)
            .map(|(_, v)| v.as_str())
    }
}

/// The 1-minute load average, from `/proc/loadavg`.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_owned))
        .unwrap_or_default()
}

/// `(crate, version)` pairs recorded by the build script.
pub fn built_versions() -> Vec<(String, String)> {
    env!("TIDEPOOL_BENCH_VERSIONS")
        .split(';')
        .filter_map(|pair| {
            let (name, version) = pair.split_once('=')?;
            Some((name.to_owned(), version.to_owned()))
        })
        .collect()
}

/// The first line `program --version` prints, if it runs.
pub fn tool_version(program: &str) -> Option<String> {
    let out = Command::new(program).arg("--version").output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    text.lines().next().map(|l| l.trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_build_recorded_the_pools_versions() {
        let m = Machine::detect();
        assert!(m.rustc.starts_with("rustc "), "{}", m.rustc);
        for krate in ["tidepool", "deadpool", "bb8", "qp", "mobc", "r2d2"] {
            assert!(m.version_of(krate).is_some(), "{krate} missing");
        }
        assert!(m.cores >= 1);
    }
}
