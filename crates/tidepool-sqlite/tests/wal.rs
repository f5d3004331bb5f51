//! On a file database in WAL mode, readers run while one writer commits:
//! no `SQLITE_BUSY` surfaces, every read sees whole batches, the final count
//! is right; and every connection carries the configured pragmas.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tidepool_sqlite::{SqliteError, SqlitePool, transaction};

const BATCHES: i64 = 40;
const BATCH: i64 = 250;
const READERS: usize = 4;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_run_alongside_one_writer() {
    let dir = tempfile::tempdir().unwrap();
    let pool = common::file_pool(dir.path(), 1 + READERS);
    common::exec(
        &pool,
        "CREATE TABLE events (id INTEGER PRIMARY KEY, batch INTEGER NOT NULL, body TEXT NOT NULL)",
    )
    .await;

    let done = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..READERS)
        .map(|_| {
            let (pool, done) = (pool.clone(), Arc::clone(&done));
            tokio::spawn(async move { read_until(&pool, &done).await })
        })
        .collect();
    let writer = {
        let pool = pool.clone();
        tokio::spawn(async move {
            for batch in 0..BATCHES {
                let mut conn = pool.get().await.expect("a connection");
                transaction(&mut conn, move |tx| {
                    let mut insert =
                        tx.prepare_cached("INSERT INTO events (batch, body) VALUES (?1, ?2)")?;
                    for i in 0..BATCH {
                        insert.execute((batch, format!("event {i} of batch {batch}")))?;
                    }
                    Ok::<_, SqliteError>(())
                })
                .await
                .expect("a batch commits");
            }
        })
    };
    writer.await.expect("the writer succeeded");
    done.store(true, Ordering::Release);
    let mut reads = 0;
    for reader in readers {
        reads += reader.await.expect("a reader succeeded");
    }
    assert!(reads >= READERS, "every reader read at least once");
    assert_eq!(
        common::settled_count(&pool, "events").await,
        BATCHES * BATCH
    );
}

/// Counts rows until `done`, checking each count is whole batches and never
/// goes down. Returns how many reads it made.
async fn read_until(pool: &SqlitePool, done: &AtomicBool) -> usize {
    let mut last = 0;
    let mut reads = 0;
    loop {
        let finished = done.load(Ordering::Acquire);
        let conn = pool.get().await.expect("a connection");
        let n: i64 = conn
            .interact(|c| c.query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0)))
            .await
            .expect("interact")
            .expect("a read never fails with SQLITE_BUSY");
        reads += 1;
        assert_eq!(n % BATCH, 0, "a read saw part of a batch");
        assert!(n >= last, "a read went back in time: {n} after {last}");
        last = n;
        if finished {
            return reads;
        }
    }
}

#[tokio::test]
async fn every_connection_carries_the_pragmas() {
    let dir = tempfile::tempdir().unwrap();
    let pool = common::file_pool(dir.path(), 2);
    let a = pool.get().await.unwrap();
    let b = pool.get().await.unwrap();
    assert_ne!(a.info().id, b.info().id);
    for conn in [&a, &b] {
        let p = conn
            .interact(|c| {
                let int = |name: &str| c.pragma_query_value(None, name, |r| r.get::<_, i64>(0));
                Ok::<_, tidepool_sqlite::rusqlite::Error>((
                    c.pragma_query_value(None, "journal_mode", |r| r.get::<_, String>(0))?,
                    int("synchronous")?,
                    int("busy_timeout")?,
                    int("foreign_keys")?,
                    int("temp_store")?,
                    int("cache_size")?,
                    int("mmap_size")?,
                ))
            })
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            p,
            ("wal".to_owned(), 1, 5000, 1, 2, 10_000, 268_435_456),
            "(journal_mode, synchronous, busy_timeout, foreign_keys, temp_store, cache_size, mmap_size)"
        );
    }
}
