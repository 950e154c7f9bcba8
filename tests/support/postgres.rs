//! A real PostgreSQL for the tests: a fresh database on the server `.ci/run` started
//! (`TEST_DATABASE_URL`), else a throwaway server of this test's own
//! (`scripts/postgres-for-tests`, about a second). Never skipped: without PostgreSQL installed
//! the test fails and says how to install it.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;

use sqlx::Connection;

/// The database engines the history tests run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

pub const ENGINES: [Engine; 2] = [Engine::Sqlite, Engine::Postgres];

/// A `DATABASE_URL` for `engine`: SQLite in `dir`, or a fresh PostgreSQL database (kept alive
/// by the returned guard).
pub fn database_url(engine: Engine, dir: &std::path::Path) -> (String, Option<TestPostgres>) {
    match engine {
        Engine::Sqlite => (
            format!("sqlite://{}", dir.join("history.db").display()),
            None,
        ),
        Engine::Postgres => {
            let pg = TestPostgres::new();
            (pg.url.clone(), Some(pg))
        }
    }
}

pub struct TestPostgres {
    pub url: String,
    /// The server's URL and this test's database, dropped at the end.
    shared: Option<(String, String)>,
    /// This test's own server.
    own: Option<(tempfile::TempDir, PathBuf)>,
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/postgres-for-tests")
}

/// Runs `f` on a runtime of its own (the tests and benchmarks are synchronous).
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(f)
}

impl TestPostgres {
    /// A fresh database on the shared server, or on a server of this test's own.
    pub fn new() -> TestPostgres {
        let (base, own) = match std::env::var("TEST_DATABASE_URL") {
            Ok(base) if !base.trim().is_empty() => (base, None),
            _ => {
                let dir = tempfile::tempdir().expect("tempdir");
                // The server runs as `postgres` when the tests run as root: it must reach DIR.
                std::fs::set_permissions(
                    dir.path(),
                    std::os::unix::fs::PermissionsExt::from_mode(0o755),
                )
                .expect("chmod");
                let data = dir.path().join("pg");
                let out = Command::new(script())
                    .arg("start")
                    .arg(&data)
                    .output()
                    .expect("run scripts/postgres-for-tests");
                assert!(
                    out.status.success(),
                    "PostgreSQL could not be started for the tests (install it: apt-get install -y postgresql): {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                let url = String::from_utf8_lossy(&out.stdout).trim().to_string();
                (url, Some((dir, data)))
            }
        };
        let name = format!("test_{:016x}", rand::random::<u64>());
        admin(&base, &format!("CREATE DATABASE {name}")).expect("create the test database");
        let url = match base.rsplit_once('/') {
            Some((server, _)) => format!("{server}/{name}"),
            None => panic!("the server URL has no database part: {base}"),
        };
        TestPostgres {
            url,
            shared: Some((base, name)),
            own,
        }
    }

    /// The database stops taking connections and its open ones are ended: unreachable, as in
    /// an outage, until [`TestPostgres::unblock`]. Other tests' databases on the server are
    /// untouched.
    pub fn block(&self) {
        if let Some((base, name)) = &self.shared {
            admin(
                base,
                &format!("ALTER DATABASE {name} ALLOW_CONNECTIONS false"),
            )
            .expect("block connections");
            admin(
                base,
                &format!(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                     WHERE datname = '{name}' AND pid <> pg_backend_pid()"
                ),
            )
            .expect("end the open connections");
        }
    }

    /// The database is back after [`TestPostgres::block`].
    pub fn unblock(&self) {
        if let Some((base, name)) = &self.shared {
            admin(
                base,
                &format!("ALTER DATABASE {name} ALLOW_CONNECTIONS true"),
            )
            .expect("allow connections");
        }
    }

    /// The rows of a query on this test's database, every column as text (cast with `::text`;
    /// NULL as an empty string).
    pub fn rows(&self, sql: &str) -> Vec<Vec<String>> {
        use sqlx::Row;
        block_on(async {
            let mut conn = sqlx::PgConnection::connect(&self.url).await?;
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
                .fetch_all(&mut conn)
                .await?;
            Ok::<_, sqlx::Error>(
                rows.iter()
                    .map(|r| {
                        (0..r.len())
                            .map(|i| {
                                r.try_get::<Option<String>, _>(i)
                                    .ok()
                                    .flatten()
                                    .unwrap_or_default()
                            })
                            .collect()
                    })
                    .collect(),
            )
        })
        .expect("query the test database")
    }

    /// The database goes away under the bot: dropped, its connections ended.
    pub fn go_away(&self) {
        if let Some((base, name)) = &self.shared {
            admin(
                base,
                &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            )
            .expect("drop the test database");
        }
    }
}

/// Runs one statement on the server's maintenance database.
fn admin(base: &str, statement: &str) -> Result<(), sqlx::Error> {
    block_on(async {
        let mut conn = sqlx::PgConnection::connect(base).await?;
        sqlx::query(sqlx::AssertSqlSafe(statement.to_string()))
            .execute(&mut conn)
            .await
            .map(|_| ())
    })
}

impl Drop for TestPostgres {
    fn drop(&mut self) {
        self.go_away();
        if let Some((_dir, data)) = self.own.take() {
            let _ = Command::new(script()).arg("stop").arg(&data).output();
        }
    }
}
