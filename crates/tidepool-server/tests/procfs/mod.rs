//! What a test can see of the running server through `/proc`: its memory
//! (resident now, and the peak), and the files it holds open. Linux only;
//! the tests that need it skip elsewhere.
#![allow(dead_code, unreachable_pub)]

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

/// A `kB` line of `/proc/<pid>/status` (`VmRSS`, `VmHWM`), in bytes.
pub fn status_bytes(pid: u32, key: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|line| {
        let rest = line.strip_prefix(key)?.strip_prefix(':')?;
        let kb: u64 = rest.trim().trim_end_matches("kB").trim().parse().ok()?;
        Some(kb * 1024)
    })
}

/// Resident memory now.
pub fn rss(pid: u32) -> u64 {
    status_bytes(pid, "VmRSS").expect("/proc/<pid>/status has VmRSS")
}

/// The most resident memory the process ever had.
pub fn peak_rss(pid: u32) -> u64 {
    status_bytes(pid, "VmHWM").expect("/proc/<pid>/status has VmHWM")
}

/// How many of the process's open files are `path` (a SQLite connection
/// holds its database file open: one per connection).
pub fn open_count(pid: u32, path: &std::path::Path) -> usize {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return 0;
    };
    fds.filter_map(Result::ok)
        .filter_map(|fd| std::fs::read_link(fd.path()).ok())
        .filter(|target| target == path)
        .count()
}

/// Whether `/proc` shows this process (Linux).
pub fn available() -> bool {
    std::path::Path::new(&format!("/proc/{}/status", std::process::id())).exists()
}

/// Samples a count every 20 ms in the background and keeps its highest.
pub struct Peak {
    highest: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Peak {
    pub fn watch<F, Fut>(mut count: F) -> Self
    where
        F: FnMut() -> Fut + Send + 'static,
        Fut: Future<Output = usize> + Send,
    {
        let highest = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let task = tokio::spawn({
            let (highest, stop) = (Arc::clone(&highest), Arc::clone(&stop));
            async move {
                while !stop.load(Ordering::SeqCst) {
                    highest.fetch_max(count().await, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        });
        Self {
            highest,
            stop,
            task,
        }
    }

    /// The highest count seen so far.
    pub fn highest(&self) -> usize {
        self.highest.load(Ordering::SeqCst)
    }

    /// Stops sampling; the highest count seen.
    pub async fn stop(self) -> usize {
        self.stop.store(true, Ordering::SeqCst);
        let highest = Arc::clone(&self.highest);
        self.task.await.unwrap();
        highest.load(Ordering::SeqCst)
    }
}
