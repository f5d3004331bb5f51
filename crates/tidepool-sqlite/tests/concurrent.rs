//! Many tasks sharing a small pool all succeed, and the statistics add up.

mod common;

const TASKS: i64 = 64;
const QUERIES: i64 = 100;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_tasks_share_eight_connections() {
    let dir = tempfile::tempdir().unwrap();
    let pool = common::file_pool(dir.path(), 8);
    let mut tasks = Vec::new();
    for task in 0..TASKS {
        let pool = pool.clone();
        tasks.push(tokio::spawn(async move {
            for q in 0..QUERIES {
                let conn = pool.get().await.expect("a connection");
                let n = task * QUERIES + q;
                let got: i64 = conn
                    .interact(move |c| c.query_row("SELECT ?1", [n], |r| r.get(0)))
                    .await
                    .expect("interact")
                    .expect("query");
                assert_eq!(got, n);
            }
        }));
    }
    for task in tasks {
        task.await.expect("task succeeded");
    }
    tidepool_testkit::assert_all_served(&pool.stats(), (TASKS * QUERIES) as u64, 8);
}
