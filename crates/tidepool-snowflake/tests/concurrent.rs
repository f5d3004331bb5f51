//! Many tasks share a small pool of sessions: every get is served, every
//! insert lands, at most `max_size` sessions are opened.

mod common;

const TASKS: i64 = 6;
const INSERTS_PER_TASK: i64 = 5;
const MAX_SIZE: usize = 3;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_tasks_share_the_pool_on_fakesnow() {
    let Some(server) = common::Fakesnow::start() else {
        return;
    };
    let before = server.logins();
    let pool = common::pool(server.config(), MAX_SIZE);
    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..TASKS {
        let pool = pool.clone();
        tasks.spawn(async move {
            for i in 0..INSERTS_PER_TASK {
                let conn = pool.get().await.expect("a session");
                assert_eq!(common::insert(&conn, task * 100 + i).await, 1);
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("a task finished");
    }
    let gets = (TASKS * INSERTS_PER_TASK) as u64;
    tidepool_testkit::assert_all_served(&pool.stats(), gets, MAX_SIZE as u64);
    assert!(server.logins() - before <= MAX_SIZE);
    assert_eq!(server.rows(), TASKS * INSERTS_PER_TASK);
}
