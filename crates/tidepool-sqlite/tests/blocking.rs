//! SQLite work runs on blocking threads; a panicking or abandoned closure is
//! reported and its connection is not reused.

mod common;

use std::sync::mpsc;
use std::time::Duration;

use tidepool_sqlite::InteractError;

#[tokio::test]
async fn interact_runs_off_the_runtime_thread() {
    // A current-thread runtime: its one worker is this test's thread.
    let runtime_thread = std::thread::current().id();
    let dir = tempfile::tempdir().unwrap();
    let pool = common::file_pool(dir.path(), 1);
    let conn = pool.get().await.unwrap();
    let (ran_on, one) = conn
        .interact(|c| {
            let one: i64 = c.query_row("SELECT 1", [], |r| r.get(0)).unwrap();
            (std::thread::current().id(), one)
        })
        .await
        .unwrap();
    assert_eq!(one, 1);
    assert_ne!(ran_on, runtime_thread);
}

#[tokio::test]
async fn a_panic_is_reported_and_the_connection_closed() {
    let dir = tempfile::tempdir().unwrap();
    let pool = common::file_pool(dir.path(), 1);
    let conn = pool.get().await.unwrap();
    let err = conn
        .interact(|_| -> i64 { panic!("kaboom") })
        .await
        .expect_err("the closure panicked");
    assert_eq!(err, InteractError::Panicked("kaboom".to_owned()));
    let err = conn
        .interact(|c| c.execute_batch("SELECT 1"))
        .await
        .expect_err("the connection is no longer used");
    assert_eq!(err, InteractError::Poisoned);
    drop(conn);
    assert_eq!(pool.counters().closed.broken, 1);

    let conn = pool.get().await.unwrap();
    conn.interact(|c| c.execute_batch("SELECT 1"))
        .await
        .expect("a fresh connection")
        .unwrap();
    assert_eq!(pool.counters().created, 2);
}

#[tokio::test]
async fn an_abandoned_closure_finishes_and_its_connection_is_closed() {
    let dir = tempfile::tempdir().unwrap();
    let pool = common::file_pool(dir.path(), 1);
    let conn = pool.get().await.unwrap();
    let (started_tx, started_rx) = tokio::sync::oneshot::channel();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let (finished_tx, finished_rx) = tokio::sync::oneshot::channel();
    let work = conn.interact(move |c| {
        started_tx.send(()).unwrap();
        let _ = release_rx.recv_timeout(Duration::from_secs(30));
        let one: i64 = c.query_row("SELECT 1", [], |r| r.get(0)).unwrap();
        finished_tx.send(one).unwrap();
    });
    tokio::select! {
        _ = work => panic!("the closure is held until released"),
        started = started_rx => started.unwrap(),
    }
    // The future is gone; the closure is still running on its thread.
    drop(conn);
    assert_eq!(pool.counters().closed.broken, 1);

    release_tx.send(()).unwrap();
    assert_eq!(finished_rx.await.unwrap(), 1, "the closure ran to its end");
    let conn = pool.get().await.unwrap();
    conn.interact(|c| c.execute_batch("SELECT 1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(pool.counters().created, 2);
}
