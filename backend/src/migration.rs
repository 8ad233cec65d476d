//! Schema migrations embedded in the binary and applied once each, in order, at start.
use tokio_postgres::Client;

/// One migration: a version number and its SQL.
struct Migration {
    version: i32,
    name: &'static str,
    sql: &'static str,
}

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "catalog",
        sql: include_str!("../migrations/0001_catalog.sql"),
    },
    Migration {
        version: 2,
        name: "auth",
        sql: include_str!("../migrations/0002_auth.sql"),
    },
    Migration {
        version: 3,
        name: "orders",
        sql: include_str!("../migrations/0003_orders.sql"),
    },
];

/// An arbitrary constant that names the migration lock, so two releases never migrate at once.
const LOCK_KEY: i64 = 0x766c_6261_636b;

/// Applies every migration the database lacks; returns how many were applied.
pub async fn run(client: &mut Client) -> Result<usize, tokio_postgres::Error> {
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                 version integer PRIMARY KEY,
                 name text NOT NULL,
                 applied_at timestamptz NOT NULL DEFAULT now()
             )",
        )
        .await?;
    client
        .execute("SELECT pg_advisory_lock($1)", &[&LOCK_KEY])
        .await?;
    let result = apply_missing(client).await;
    client
        .execute("SELECT pg_advisory_unlock($1)", &[&LOCK_KEY])
        .await?;
    result
}

async fn apply_missing(client: &mut Client) -> Result<usize, tokio_postgres::Error> {
    let rows = client
        .query("SELECT version FROM schema_migrations", &[])
        .await?;
    let applied: Vec<i32> = rows.iter().map(|row| row.get(0)).collect();
    let mut count = 0;
    for migration in MIGRATIONS.iter().filter(|m| !applied.contains(&m.version)) {
        let transaction = client.transaction().await?;
        transaction.batch_execute(migration.sql).await?;
        transaction
            .execute(
                "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                &[&migration.version, &migration.name],
            )
            .await?;
        transaction.commit().await?;
        tracing::info!(
            version = migration.version,
            name = migration.name,
            "migration_applied"
        );
        count += 1;
    }
    Ok(count)
}

/// The highest version this binary knows.
pub fn latest_version() -> i32 {
    MIGRATIONS.iter().map(|m| m.version).max().unwrap_or(0)
}
