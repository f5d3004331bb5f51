//! Many tasks sharing a small pool all succeed, and the statistics add up.

mod common;

use tidepool_mysql::mysql_async::prelude::Queryable;

const TASKS: u64 = 64;
const QUERIES: u64 = 100;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_tasks_share_eight_connections() {
    let Some(addr) = tidepool_testkit::service("MariaDB", "TIDEPOOL_MYSQL_ADDR", "127.0.0.1:3306")
    else {
        return;
    };
    let pool = common::pool(&addr, 8);
    let mut tasks = Vec::new();
    for task in 0..TASKS {
        let pool = pool.clone();
        tasks.push(tokio::spawn(async move {
            for q in 0..QUERIES {
                let mut conn = pool.get().await.expect("a connection");
                let n = task * QUERIES + q;
                let got: Option<u64> = conn.exec_first("SELECT ?", (n,)).await.expect("query");
                assert_eq!(got, Some(n));
            }
        }));
    }
    for task in tasks {
        task.await.expect("task succeeded");
    }
    // Returned connections are reset in the background; wait for the last.
    common::settled(&pool).await;
    tidepool_testkit::assert_all_served(&pool.stats(), TASKS * QUERIES, 8);
}
