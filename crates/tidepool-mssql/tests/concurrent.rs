//! Many tasks share a small pool: every get is served, nothing leaks.

mod common;

const TASKS: usize = 16;
const GETS_PER_TASK: usize = 20;
const MAX_SIZE: usize = 4;

async fn hammer(pool: &tidepool_mssql::MssqlPool) {
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..TASKS {
        let pool = pool.clone();
        tasks.spawn(async move {
            for _ in 0..GETS_PER_TASK {
                let mut conn = pool.get().await.expect("a connection");
                assert_eq!(common::scalar(&mut conn, "SELECT 1").await, Some(1));
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("a task finished");
    }
    common::settled(pool).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_tasks_share_the_pool_on_the_mock_server() {
    let server = common::MockServer::start().await;
    let pool = common::pool(common::mock_config(server.addr()), MAX_SIZE);
    hammer(&pool).await;
    let gets = (TASKS * GETS_PER_TASK) as u64;
    tidepool_testkit::assert_all_served(&pool.stats(), gets, MAX_SIZE as u64);
    assert!(server.logins().await <= MAX_SIZE);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_tasks_share_the_pool_on_a_real_server() {
    let Some(cfg) = common::real_config("concurrent") else {
        return;
    };
    let pool = common::pool(cfg, MAX_SIZE);
    hammer(&pool).await;
    let gets = (TASKS * GETS_PER_TASK) as u64;
    tidepool_testkit::assert_all_served(&pool.stats(), gets, MAX_SIZE as u64);
}
