//! # lookout-sql — the SQL plumbing shared by lookout's stores
//!
//! The history store (`lookout-store`) and the cloud ledger (`lookout-cloud`) both keep their
//! tables in SQLite, PostgreSQL or MySQL/MariaDB, chosen by URL, through sqlx's `Any` driver.
//! What they have in common lives here, once:
//!
//! - [`Dialect::from_url`]: which engine a URL names (`mariadb:` is MySQL);
//! - [`connect_options`]: the URL as sqlx wants it (`mariadb:` → `mysql:`, SQLite files created
//!   if missing);
//! - [`pool_options`]: a pool with bounded acquire time and, on SQLite, WAL and a busy timeout;
//! - [`Dialect::sql`] and [`numbered_placeholders`]: statements written once with `?`,
//!   renumbered `$1, $2, …` for PostgreSQL;
//! - [`Dialect::upsert`] and [`Dialect::blob_type`]: the few spellings that differ.
//!
//! **This crate must never depend on another lookout crate or on HTTP crates**: it sits below
//! every store.

use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::AssertSqlSafe;

/// The SQL engine a store URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// `sqlite:` — an embedded file.
    Sqlite,
    /// `postgres:` or `postgresql:`.
    Postgres,
    /// `mysql:` or `mariadb:`.
    MySql,
}

/// The schemes [`Dialect::from_url`] accepts, for error messages.
pub const SCHEMES: &str = "sqlite:, postgres: or mysql:";

impl Dialect {
    /// The engine `url` names, or `None` when its scheme is none of [`SCHEMES`].
    pub fn from_url(url: &str) -> Option<Dialect> {
        if url.starts_with("sqlite:") {
            Some(Dialect::Sqlite)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Some(Dialect::Postgres)
        } else if url.starts_with("mysql:") || url.starts_with("mariadb:") {
            Some(Dialect::MySql)
        } else {
            None
        }
    }

    /// `s` ready to run: `?` placeholders renumbered for PostgreSQL, as they are otherwise.
    /// Callers pass constant statement text (values are bound, never spliced), which is what
    /// makes the [`AssertSqlSafe`] true.
    pub fn sql(self, s: &str) -> AssertSqlSafe<String> {
        if self == Dialect::Postgres {
            AssertSqlSafe(numbered_placeholders(s))
        } else {
            AssertSqlSafe(s.to_string())
        }
    }

    /// The upsert tail of an `INSERT`: `ON DUPLICATE KEY UPDATE c = VALUES(c), …` on MySQL,
    /// `ON CONFLICT (conflict) DO UPDATE SET c = excluded.c, …` elsewhere (with a leading space).
    pub fn upsert(self, conflict: &str, updates: &[&str]) -> String {
        match self {
            Dialect::MySql => format!(
                " ON DUPLICATE KEY UPDATE {}",
                updates
                    .iter()
                    .map(|c| format!("{c} = VALUES({c})"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            _ => format!(
                " ON CONFLICT ({conflict}) DO UPDATE SET {}",
                updates
                    .iter()
                    .map(|c| format!("{c} = excluded.{c}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }

    /// The binary column type: `BLOB`, `BYTEA` or `LONGBLOB`.
    pub fn blob_type(self) -> &'static str {
        match self {
            Dialect::Sqlite => "BLOB",
            Dialect::Postgres => "BYTEA",
            Dialect::MySql => "LONGBLOB",
        }
    }
}

/// The file an `sqlite:` URL names (`sqlite:///abs/path`, `sqlite://rel/path`, `sqlite:path`,
/// query string removed); `None` for other URLs. May be empty or `:memory:`.
pub fn sqlite_path(url: &str) -> Option<&str> {
    let path = url.strip_prefix("sqlite:")?.trim_start_matches("//");
    Some(path.split('?').next().unwrap_or(path))
}

/// The URL as sqlx wants it: `mariadb:` becomes `mysql:`, and an SQLite file URL without a
/// `mode=` gets `mode=rwc` so that a missing file is created.
pub fn normalize_url(url: &str) -> String {
    let mut url = match url.strip_prefix("mariadb:") {
        Some(rest) => format!("mysql:{rest}"),
        None => url.to_string(),
    };
    if url.starts_with("sqlite:") && !url.contains("mode=") && !url.contains(":memory:") {
        url.push_str(if url.contains('?') {
            "&mode=rwc"
        } else {
            "?mode=rwc"
        });
    }
    url
}

/// Parsed connect options for `url` (normalised with [`normalize_url`]). Installs sqlx's
/// default `Any` drivers first (idempotent).
pub fn connect_options(url: &str) -> Result<AnyConnectOptions, sqlx::Error> {
    sqlx::any::install_default_drivers();
    AnyConnectOptions::from_str(&normalize_url(url))
}

/// How a store sizes its pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolSettings {
    /// Connections at most.
    pub max_connections: u32,
    /// Idle connections are closed after this long (`None`: sqlx's default, 10 minutes).
    pub idle_timeout: Option<Duration>,
    /// Run on every new SQLite connection, after WAL and the busy timeout
    /// (e.g. `PRAGMA synchronous=FULL`).
    pub sqlite_pragmas: &'static [&'static str],
}

/// Pool options for `dialect`: 5 s to acquire a connection, none opened in advance, and on
/// SQLite every connection in WAL mode (readers never block the writer) with a 5 s busy
/// timeout, then `settings.sqlite_pragmas`.
pub fn pool_options(dialect: Dialect, settings: &PoolSettings) -> AnyPoolOptions {
    let mut po = AnyPoolOptions::new()
        .acquire_timeout(Duration::from_secs(5))
        .max_connections(settings.max_connections)
        .min_connections(0);
    if let Some(idle) = settings.idle_timeout {
        po = po.idle_timeout(idle);
    }
    if dialect == Dialect::Sqlite {
        let extra = settings.sqlite_pragmas;
        po = po.after_connect(move |conn, _meta| {
            Box::pin(async move {
                for pragma in ["PRAGMA journal_mode=WAL", "PRAGMA busy_timeout=5000"]
                    .iter()
                    .chain(extra)
                {
                    sqlx::query(*pragma).execute(&mut *conn).await?;
                }
                Ok(())
            })
        });
    }
    po
}

/// Renumbers `?` placeholders as `$1, $2, …`, the form PostgreSQL wants. Statements are
/// written once with `?` (SQLite and MySQL) and passed through this for PostgreSQL. Every
/// caller passes constant statement text: values are bound, never spliced, so a `?` inside a
/// string literal cannot occur.
pub fn numbered_placeholders(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 16);
    let mut n = 0;
    for c in s.chars() {
        if c == '?' {
            n += 1;
            out.push('$');
            out.push_str(&n.to_string());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_in_order() {
        assert_eq!(
            numbered_placeholders("UPDATE t SET a = ?, b = ? WHERE c = ?"),
            "UPDATE t SET a = $1, b = $2 WHERE c = $3"
        );
        assert_eq!(numbered_placeholders("SELECT 1"), "SELECT 1");
        assert_eq!(Dialect::MySql.sql("SELECT ?").0, "SELECT ?");
        assert_eq!(Dialect::Postgres.sql("SELECT ?").0, "SELECT $1");
    }

    #[test]
    fn dialects_and_urls() {
        assert_eq!(Dialect::from_url("sqlite:///a/b.db"), Some(Dialect::Sqlite));
        assert_eq!(
            Dialect::from_url("postgresql://h/db"),
            Some(Dialect::Postgres)
        );
        assert_eq!(Dialect::from_url("mariadb://h/db"), Some(Dialect::MySql));
        assert_eq!(Dialect::from_url("redis://h"), None);
        assert_eq!(normalize_url("mariadb://u@h/db"), "mysql://u@h/db");
        assert_eq!(normalize_url("sqlite:///a.db"), "sqlite:///a.db?mode=rwc");
        assert_eq!(
            normalize_url("sqlite:///a.db?x=1"),
            "sqlite:///a.db?x=1&mode=rwc"
        );
        assert_eq!(normalize_url("sqlite::memory:"), "sqlite::memory:");
        assert_eq!(sqlite_path("sqlite:///abs/h.db?mode=ro"), Some("/abs/h.db"));
        assert_eq!(sqlite_path("sqlite://rel.db"), Some("rel.db"));
        assert_eq!(sqlite_path("postgres://h/db"), None);
    }

    #[test]
    fn upsert_spellings() {
        assert_eq!(
            Dialect::Sqlite.upsert("k", &["v"]),
            " ON CONFLICT (k) DO UPDATE SET v = excluded.v"
        );
        assert_eq!(
            Dialect::MySql.upsert("k", &["v", "w"]),
            " ON DUPLICATE KEY UPDATE v = VALUES(v), w = VALUES(w)"
        );
    }

    /// A real SQLite file: created by the normalised URL, and every connection in WAL mode
    /// with the extra pragmas applied.
    #[tokio::test(flavor = "multi_thread")]
    async fn sqlite_pool_creates_the_file_and_applies_pragmas() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let settings = PoolSettings {
            max_connections: 2,
            idle_timeout: None,
            sqlite_pragmas: &["PRAGMA synchronous=FULL"],
        };
        let pool = pool_options(Dialect::Sqlite, &settings)
            .connect_with(connect_options(&url).unwrap())
            .await
            .unwrap();
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(mode, "wal");
        let sync: i64 = sqlx::query_scalar("PRAGMA synchronous")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(sync, 2, "FULL");
        pool.close().await;
        assert!(dir.path().join("t.db").exists());
    }
}
