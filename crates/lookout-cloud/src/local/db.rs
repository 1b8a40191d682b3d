//! The SQL side of the local backend: one pool over SQLite, PostgreSQL or MySQL/MariaDB
//! through sqlx's Any driver (dialects, URLs, pools and placeholder renumbering come from
//! `lookout-sql`, shared with the history store), and portable DDL.
//! Referential rules are enforced in transactions here rather than with foreign keys, whose
//! behaviour differs between the three engines.

use lookout_sql::PoolSettings;
use sqlx::{AnyPool, AssertSqlSafe};

use crate::error::{CloudError, CloudResult};

pub use lookout_sql::Dialect;

#[derive(Debug, Clone)]
pub struct Db {
    pub pool: AnyPool,
    pub dialect: Dialect,
}

/// The schema, `{big}` standing for a large text type. Keyed text columns are VARCHAR(255)
/// (MySQL cannot index unbounded TEXT).
const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS cloud_users (
        id VARCHAR(64) PRIMARY KEY,
        username VARCHAR(255) NOT NULL UNIQUE,
        name VARCHAR(255) NOT NULL,
        email VARCHAR(255) NOT NULL,
        password_hash VARCHAR(255) NOT NULL,
        created_at BIGINT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS cloud_teams (
        id VARCHAR(64) PRIMARY KEY,
        name VARCHAR(255) NOT NULL UNIQUE,
        billing_acct_id VARCHAR(64) NOT NULL UNIQUE,
        created_at BIGINT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS cloud_team_roles (
        team_id VARCHAR(64) NOT NULL,
        user_id VARCHAR(64) NOT NULL,
        role VARCHAR(16) NOT NULL,
        created_at BIGINT NOT NULL,
        PRIMARY KEY (team_id, user_id, role))",
    "CREATE TABLE IF NOT EXISTS cloud_key_pairs (
        id VARCHAR(64) PRIMARY KEY,
        user_id VARCHAR(64) NOT NULL,
        name VARCHAR(255) NOT NULL,
        key_type VARCHAR(64) NOT NULL,
        public_key {big} NOT NULL,
        fingerprint VARCHAR(128) NOT NULL,
        created_at BIGINT NOT NULL,
        UNIQUE (user_id, name))",
    "CREATE TABLE IF NOT EXISTS cloud_usage (
        team_id VARCHAR(64) NOT NULL,
        period VARCHAR(7) NOT NULL,
        kind VARCHAR(8) NOT NULL,
        resource_id VARCHAR(255) NOT NULL,
        resource_name VARCHAR(255) NOT NULL,
        cpu_core_ms BIGINT NOT NULL,
        mem_mib_ms BIGINT NOT NULL,
        running_ms BIGINT NOT NULL,
        disk_gib_ms BIGINT NOT NULL DEFAULT 0,
        PRIMARY KEY (team_id, period, kind, resource_id))",
    "CREATE TABLE IF NOT EXISTS cloud_credits (
        id VARCHAR(64) PRIMARY KEY,
        team_id VARCHAR(64) NOT NULL,
        amount_minor BIGINT NOT NULL,
        period VARCHAR(7) NOT NULL,
        created_at BIGINT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS cloud_invoices (
        id VARCHAR(64) PRIMARY KEY,
        team_id VARCHAR(64) NOT NULL,
        invoice_number BIGINT NOT NULL,
        period VARCHAR(7) NOT NULL,
        invoice_date VARCHAR(10) NOT NULL,
        target_date VARCHAR(10) NOT NULL,
        amount_minor BIGINT NOT NULL,
        credit_adj_minor BIGINT NOT NULL,
        balance_minor BIGINT NOT NULL,
        currency VARCHAR(8) NOT NULL,
        items_json {big} NOT NULL,
        created_at BIGINT NOT NULL,
        UNIQUE (team_id, period))",
];

/// Columns added to [`SCHEMA`]'s tables after their first release: (table, column, type).
const ADDED_COLUMNS: &[(&str, &str, &str)] =
    &[("cloud_usage", "disk_gib_ms", "BIGINT NOT NULL DEFAULT 0")];

impl Db {
    /// Opens the store at `url` (`sqlite://…`, `postgres://…`, `mysql://…`) and creates the
    /// tables that are missing.
    pub async fn open(url: &str) -> CloudResult<Db> {
        let dialect = Dialect::from_url(url).ok_or_else(|| {
            CloudError::InvalidField(format!(
                "concertim.store_url must start with {}",
                lookout_sql::SCHEMES
            ))
        })?;
        let opts = lookout_sql::connect_options(url)
            .map_err(|e| CloudError::InvalidField(format!("concertim.store_url: {e}")))?;
        let po = lookout_sql::pool_options(
            dialect,
            &PoolSettings {
                // One SQLite connection serialises writers (no SQLITE_BUSY) and lets an
                // in-memory database be shared; the volume here is small.
                max_connections: if dialect == Dialect::Sqlite { 1 } else { 4 },
                idle_timeout: None,
                sqlite_pragmas: &[],
            },
        );
        let pool = po.connect_with(opts).await?;
        let db = Db { pool, dialect };
        let big = if dialect == Dialect::MySql {
            "MEDIUMTEXT"
        } else {
            "TEXT"
        };
        for ddl in SCHEMA {
            sqlx::query(AssertSqlSafe(ddl.replace("{big}", big)))
                .execute(&db.pool)
                .await?;
        }
        db.add_missing_columns().await?;
        Ok(db)
    }

    /// Brings a store made by an older lookout up to date: `CREATE TABLE IF NOT EXISTS` leaves
    /// an existing table as it was, so columns added since are added here. The probe is a
    /// `SELECT` of the column, which all three engines refuse alike when it is missing.
    async fn add_missing_columns(&self) -> CloudResult<()> {
        for (table, column, ddl) in ADDED_COLUMNS {
            let probe = format!("SELECT {column} FROM {table} WHERE 1 = 0");
            if sqlx::query(AssertSqlSafe(probe))
                .fetch_optional(&self.pool)
                .await
                .is_err()
            {
                tracing::info!(table, column, "cloud store: adding a column");
                sqlx::query(AssertSqlSafe(format!(
                    "ALTER TABLE {table} ADD COLUMN {column} {ddl}"
                )))
                .execute(&self.pool)
                .await?;
            }
        }
        Ok(())
    }

    /// Renumbers `?` as `$1, $2, …` for PostgreSQL. Every statement is a constant of this
    /// crate: no value is ever spliced into SQL text.
    pub fn sql(&self, s: &str) -> AssertSqlSafe<String> {
        self.dialect.sql(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_store_from_before_the_disk_column_is_upgraded_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("cloud.db").display());
        {
            sqlx::any::install_default_drivers();
            let pool = sqlx::AnyPool::connect(&format!("{url}?mode=rwc"))
                .await
                .unwrap();
            sqlx::query(
                "CREATE TABLE cloud_usage (team_id VARCHAR(64) NOT NULL, period VARCHAR(7) NOT NULL,
                 kind VARCHAR(8) NOT NULL, resource_id VARCHAR(255) NOT NULL,
                 resource_name VARCHAR(255) NOT NULL, cpu_core_ms BIGINT NOT NULL,
                 mem_mib_ms BIGINT NOT NULL, running_ms BIGINT NOT NULL,
                 PRIMARY KEY (team_id, period, kind, resource_id))",
            )
            .execute(&pool)
            .await
            .unwrap();
            sqlx::query(
                "INSERT INTO cloud_usage VALUES ('t', '2026-11', 'device', 'd', 'd', 1, 2, 3)",
            )
            .execute(&pool)
            .await
            .unwrap();
            pool.close().await;
        }
        let db = Db::open(&url).await.unwrap();
        let disk: i64 = sqlx::query_scalar("SELECT disk_gib_ms FROM cloud_usage")
            .fetch_one(&db.pool)
            .await
            .unwrap();
        assert_eq!(disk, 0);
        // A second open finds the column and changes nothing.
        drop(db);
        Db::open(&url).await.unwrap();
    }
}
