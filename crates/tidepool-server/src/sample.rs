//! The bundled default's data: a sample SQLite schema with rows, and the
//! admin token file, both created on first run under `./data/`.

use std::io::Write;
use std::path::Path;

use tidepool_sqlite::SqlitePool;

/// Tables and rows of the sample database (idempotent).
pub const SAMPLE_SQL: &str = "
CREATE TABLE IF NOT EXISTS employees (
    id         INTEGER PRIMARY KEY,
    name       TEXT    NOT NULL,
    department TEXT    NOT NULL,
    hired_on   TEXT    NOT NULL,
    salary     REAL    NOT NULL
);
CREATE TABLE IF NOT EXISTS scores (
    id          INTEGER PRIMARY KEY,
    employee_id INTEGER NOT NULL REFERENCES employees(id),
    quarter     TEXT    NOT NULL,
    score       INTEGER NOT NULL CHECK (score BETWEEN 0 AND 100)
);
INSERT INTO employees (id, name, department, hired_on, salary)
SELECT * FROM (VALUES
    (1, 'Ada Lovelace',     'Engineering', '2021-03-01', 128000.0),
    (2, 'Grace Hopper',     'Engineering', '2019-07-15', 142000.0),
    (3, 'Katherine Johnson','Research',    '2020-01-20', 118000.0),
    (4, 'Alan Turing',      'Research',    '2022-09-05', 121000.0),
    (5, 'Margaret Hamilton','Operations',  '2018-11-11', 135000.0),
    (6, 'Edsger Dijkstra',  'Engineering', '2023-02-27', 109000.0)
) WHERE NOT EXISTS (SELECT 1 FROM employees);
INSERT INTO scores (employee_id, quarter, score)
SELECT * FROM (VALUES
    (1, '2024-Q1', 91), (1, '2024-Q2', 94),
    (2, '2024-Q1', 88), (2, '2024-Q2', 97),
    (3, '2024-Q1', 95), (3, '2024-Q2', 90),
    (4, '2024-Q1', 79), (4, '2024-Q2', 86),
    (5, '2024-Q1', 93), (5, '2024-Q2', 89),
    (6, '2024-Q1', 84), (6, '2024-Q2', 92)
) WHERE NOT EXISTS (SELECT 1 FROM scores);
";

/// Creates the sample tables and rows if they are missing.
///
/// # Errors
/// A message when the database cannot be opened or written.
pub async fn ensure(pool: &SqlitePool) -> Result<(), String> {
    let conn = pool
        .get()
        .await
        .map_err(|e| format!("sample database: {e}"))?;
    conn.interact(|c| c.execute_batch(SAMPLE_SQL))
        .await
        .map_err(|e| format!("sample database: {e}"))?
        .map_err(|e| format!("sample database: {e}"))?;
    Ok(())
}

/// The admin token of the bundled default: read from `dir/admin-token`
/// (held to the rules of [`token_file`](crate::config::token_file)), or
/// made (random, 64 hex digits) and written there with owner-only access.
/// The token itself is never logged; the log says where it is.
///
/// # Errors
/// A message when the file cannot be read or written, is open to others, or
/// holds a short token.
pub fn admin_token(dir: &Path) -> Result<String, String> {
    let path = dir.join("admin-token");
    if path.exists() {
        let read = crate::config::token_file::read(&path)?;
        if let Some(token) = read.into_iter().next() {
            tracing::info!(file = %path.display(), "admin token read from file");
            return Ok(token);
        }
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let token = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(&path)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    writeln!(file, "{token}").map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    tracing::info!(
        file = %path.display(),
        "admin token created; use it as `Authorization: Bearer $(cat {})`",
        path.display()
    );
    Ok(token)
}
