//! All SQL lives here: one code path over sqlx's `Any` driver for SQLite, PostgreSQL and
//! MySQL/MariaDB. Statements are written with `?` and renumbered to `$n` for PostgreSQL; dialects,
//! pools and the few spelling differences (blob type, upsert) come from `lookout-sql`.
//!
//! Tables (all names carry the configured prefix, default `lookout_`):
//! - `meta(k, v)`: schema version, sealing and retention watermarks;
//! - `series(id, skey)`: series ids and their canonical keys;
//! - `wal(seq, min_ts, max_ts, data)`: flushed blocks not yet sealed into chunks;
//! - `ticks(start_ts, data)`: the tick timestamps of one raw window, shared by all series;
//! - `chunks(tier, series_id, start_ts, first_ts, last_ts, n, data)`: raw chunks (tier 0) and
//!   1-minute (tier 1) / 1-hour (tier 2) rollup rows.

use std::time::Duration;

use lookout_sql::{Dialect as Backend, PoolSettings};
use sqlx::{AnyPool, AssertSqlSafe, Row};

pub(crate) type DbResult<T> = Result<T, sqlx::Error>;

pub(crate) struct ChunkRow {
    pub tier: i64,
    pub series_id: i64,
    pub start_ts: i64,
    pub first_ts: i64,
    pub last_ts: i64,
    pub n: i64,
    pub data: Vec<u8>,
}

pub(crate) struct Db {
    pool: AnyPool,
    pub backend: Backend,
    p: String,
}

const SCHEMA_VERSION: i64 = 1;
const ROWS_PER_INSERT: usize = 200;

impl Db {
    /// Creates the pool without connecting (servers may be down at start).
    pub fn new(url: &str, prefix: &str) -> DbResult<Db> {
        let backend = Backend::from_url(url).ok_or_else(|| {
            sqlx::Error::Configuration(
                format!("store URL must start with {}", lookout_sql::SCHEMES).into(),
            )
        })?;
        let settings = PoolSettings {
            max_connections: if backend == Backend::Sqlite { 4 } else { 3 },
            idle_timeout: Some(Duration::from_secs(300)),
            // synchronous=FULL: a commit is on disk when it returns, so a flushed block
            // survives even a power cut; it costs one fsync per flush (every few seconds),
            // which is nothing at this rate.
            sqlite_pragmas: &["PRAGMA synchronous=FULL"],
        };
        let pool = lookout_sql::pool_options(backend, &settings)
            .connect_lazy_with(lookout_sql::connect_options(url)?);
        Ok(Db {
            pool,
            backend,
            p: prefix.to_string(),
        })
    }

    /// Renumbers `?` placeholders for PostgreSQL and substitutes the table prefix `{p}`.
    fn sql(&self, s: &str) -> AssertSqlSafe<String> {
        self.backend.sql(&s.replace("{p}", &self.p))
    }

    fn upsert(&self, cols_conflict: &str, updates: &[&str]) -> String {
        self.backend.upsert(cols_conflict, updates)
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    pub async fn migrate(&self) -> DbResult<()> {
        let blob = self.backend.blob_type();
        let tail = match self.backend {
            Backend::MySql => " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
            _ => "",
        };
        let stmts = [
            format!("CREATE TABLE IF NOT EXISTS {{p}}meta (k VARCHAR(64) NOT NULL PRIMARY KEY, v BIGINT NOT NULL){tail}"),
            format!("CREATE TABLE IF NOT EXISTS {{p}}series (id BIGINT NOT NULL PRIMARY KEY, skey TEXT NOT NULL){tail}"),
            format!("CREATE TABLE IF NOT EXISTS {{p}}wal (seq BIGINT NOT NULL PRIMARY KEY, min_ts BIGINT NOT NULL, max_ts BIGINT NOT NULL, data {blob} NOT NULL){tail}"),
            format!("CREATE TABLE IF NOT EXISTS {{p}}ticks (start_ts BIGINT NOT NULL PRIMARY KEY, data {blob} NOT NULL){tail}"),
            format!(
                "CREATE TABLE IF NOT EXISTS {{p}}chunks (tier BIGINT NOT NULL, series_id BIGINT NOT NULL, start_ts BIGINT NOT NULL, \
                 first_ts BIGINT NOT NULL, last_ts BIGINT NOT NULL, n BIGINT NOT NULL, data {blob} NOT NULL, \
                 PRIMARY KEY (tier, series_id, start_ts)){tail}"
            ),
        ];
        let mut tx = self.pool.begin().await?;
        for s in &stmts {
            sqlx::query(self.sql(s)).execute(&mut *tx).await?;
        }
        // CREATE INDEX IF NOT EXISTS is not MySQL syntax: check first.
        let has_index = match self.backend {
            Backend::Sqlite => sqlx::query(self.sql("SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND name = '{p}chunks_time'")),
            Backend::Postgres => sqlx::query(self.sql("SELECT COUNT(*) FROM pg_indexes WHERE indexname = '{p}chunks_time'")),
            Backend::MySql => sqlx::query(self.sql(
                "SELECT COUNT(*) FROM information_schema.statistics WHERE table_schema = DATABASE() AND table_name = '{p}chunks' AND index_name = '{p}chunks_time'",
            )),
        }
        .fetch_one(&mut *tx)
        .await?
        .try_get::<i64, _>(0)?;
        if has_index == 0 {
            sqlx::query(self.sql("CREATE INDEX {p}chunks_time ON {p}chunks (tier, start_ts)"))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        let v = self
            .load_meta()
            .await?
            .into_iter()
            .find(|(k, _)| k == "schema_version")
            .map(|x| x.1);
        match v {
            None => self.set_meta(&[("schema_version", SCHEMA_VERSION)]).await?,
            Some(v) if v > SCHEMA_VERSION => {
                return Err(sqlx::Error::Configuration(
                    format!("store schema version {v} is newer than this build understands ({SCHEMA_VERSION})").into(),
                ))
            }
            Some(_) => {}
        }
        Ok(())
    }

    pub async fn load_meta(&self) -> DbResult<Vec<(String, i64)>> {
        let rows = sqlx::query(self.sql("SELECT k, v FROM {p}meta"))
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get::<String, _>(0)?, r.try_get::<i64, _>(1)?)))
            .collect()
    }

    fn meta_upsert_sql(&self) -> AssertSqlSafe<String> {
        self.sql(&format!(
            "INSERT INTO {{p}}meta (k, v) VALUES (?, ?){}",
            self.upsert("k", &["v"])
        ))
    }

    pub async fn set_meta(&self, kv: &[(&str, i64)]) -> DbResult<()> {
        let mut tx = self.pool.begin().await?;
        for (k, v) in kv {
            sqlx::query(self.meta_upsert_sql())
                .bind(*k)
                .bind(*v)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await
    }

    pub async fn load_series(&self) -> DbResult<Vec<(i64, String)>> {
        let rows = sqlx::query(self.sql("SELECT id, skey FROM {p}series ORDER BY id"))
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get::<i64, _>(0)?, r.try_get::<String, _>(1)?)))
            .collect()
    }

    /// First and last sample time per series over every tier (at open, for `series()`).
    pub async fn series_bounds(&self) -> DbResult<Vec<(i64, i64, i64)>> {
        let rows = sqlx::query(self.sql(
            "SELECT series_id, MIN(first_ts), MAX(last_ts) FROM {p}chunks GROUP BY series_id",
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get::<i64, _>(0)?,
                    r.try_get::<i64, _>(1)?,
                    r.try_get::<i64, _>(2)?,
                ))
            })
            .collect()
    }

    pub async fn load_wal(&self) -> DbResult<Vec<(i64, Vec<u8>)>> {
        let rows = sqlx::query(self.sql("SELECT seq, data FROM {p}wal ORDER BY seq"))
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get::<i64, _>(0)?, r.try_get::<Vec<u8>, _>(1)?)))
            .collect()
    }

    /// One flush: new series and one write-ahead block, atomically.
    pub async fn write_flush(
        &self,
        new_series: &[(i64, String)],
        wal: Option<(i64, i64, i64, Vec<u8>)>,
    ) -> DbResult<()> {
        let mut tx = self.pool.begin().await?;
        for batch in new_series.chunks(ROWS_PER_INSERT) {
            let mut s = String::from("INSERT INTO {p}series (id, skey) VALUES ");
            s.push_str(&vec!["(?, ?)"; batch.len()].join(", "));
            s.push_str(&self.upsert("id", &["skey"]));
            let sql = self.sql(&s);
            let mut q = sqlx::query(sql);
            for (id, k) in batch {
                q = q.bind(*id).bind(k.as_str());
            }
            q.execute(&mut *tx).await?;
        }
        if let Some((seq, min_ts, max_ts, data)) = wal {
            sqlx::query(
                self.sql("INSERT INTO {p}wal (seq, min_ts, max_ts, data) VALUES (?, ?, ?, ?)"),
            )
            .bind(seq)
            .bind(min_ts)
            .bind(max_ts)
            .bind(data)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await
    }

    fn chunk_insert_sql(&self, rows: usize) -> AssertSqlSafe<String> {
        let mut s = String::from(
            "INSERT INTO {p}chunks (tier, series_id, start_ts, first_ts, last_ts, n, data) VALUES ",
        );
        s.push_str(&vec!["(?, ?, ?, ?, ?, ?, ?)"; rows].join(", "));
        s.push_str(&self.upsert(
            "tier, series_id, start_ts",
            &["first_ts", "last_ts", "n", "data"],
        ));
        self.sql(&s)
    }

    async fn put_chunks(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        rows: &[ChunkRow],
    ) -> DbResult<()> {
        for batch in rows.chunks(ROWS_PER_INSERT) {
            let sql = self.chunk_insert_sql(batch.len());
            let mut q = sqlx::query(sql);
            for r in batch {
                q = q
                    .bind(r.tier)
                    .bind(r.series_id)
                    .bind(r.start_ts)
                    .bind(r.first_ts)
                    .bind(r.last_ts)
                    .bind(r.n)
                    .bind(r.data.as_slice());
            }
            q.execute(&mut **tx).await?;
        }
        Ok(())
    }

    /// Seals one raw window: its ticks, every series' chunk, the watermark, and drops the
    /// write-ahead blocks that hold nothing newer — all in one transaction.
    pub async fn seal(
        &self,
        window: i64,
        ticks: Vec<u8>,
        chunks: &[ChunkRow],
        sealed_until: i64,
    ) -> DbResult<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(self.sql(&format!(
            "INSERT INTO {{p}}ticks (start_ts, data) VALUES (?, ?){}",
            self.upsert("start_ts", &["data"])
        )))
        .bind(window)
        .bind(ticks)
        .execute(&mut *tx)
        .await?;
        self.put_chunks(&mut tx, chunks).await?;
        sqlx::query(self.meta_upsert_sql())
            .bind("sealed_raw_until")
            .bind(sealed_until)
            .execute(&mut *tx)
            .await?;
        sqlx::query(self.sql("DELETE FROM {p}wal WHERE max_ts < ?"))
            .bind(sealed_until)
            .execute(&mut *tx)
            .await?;
        tx.commit().await
    }

    /// Raw chunks of one series with `start_ts` in `[from, to)`, each with its window's ticks.
    pub async fn raw_chunks(
        &self,
        series: i64,
        from: i64,
        to: i64,
    ) -> DbResult<Vec<(i64, Vec<u8>, Vec<u8>)>> {
        let rows = sqlx::query(self.sql(
            "SELECT c.start_ts, c.data, t.data FROM {p}chunks c JOIN {p}ticks t ON t.start_ts = c.start_ts \
             WHERE c.tier = 0 AND c.series_id = ? AND c.start_ts >= ? AND c.start_ts < ? ORDER BY c.start_ts",
        ))
        .bind(series)
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get::<i64, _>(0)?,
                    r.try_get::<Vec<u8>, _>(1)?,
                    r.try_get::<Vec<u8>, _>(2)?,
                ))
            })
            .collect()
    }

    /// Rows of one tier for one series with `start_ts` in `[from, to)`.
    pub async fn tier_rows(
        &self,
        tier: i64,
        series: i64,
        from: i64,
        to: i64,
    ) -> DbResult<Vec<(i64, Vec<u8>)>> {
        let rows = sqlx::query(self.sql(
            "SELECT start_ts, data FROM {p}chunks WHERE tier = ? AND series_id = ? AND start_ts >= ? AND start_ts < ? ORDER BY start_ts",
        ))
        .bind(tier)
        .bind(series)
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get::<i64, _>(0)?, r.try_get::<Vec<u8>, _>(1)?)))
            .collect()
    }

    /// Series that have raw chunks starting in `[from, to)`.
    pub async fn series_in(&self, from: i64, to: i64) -> DbResult<Vec<i64>> {
        let rows = sqlx::query(self.sql("SELECT DISTINCT series_id FROM {p}chunks WHERE tier = 0 AND start_ts >= ? AND start_ts < ? ORDER BY series_id"))
            .bind(from)
            .bind(to)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| r.try_get::<i64, _>(0)).collect()
    }

    pub async fn first_tick(&self) -> DbResult<Option<i64>> {
        sqlx::query(self.sql("SELECT MIN(start_ts) FROM {p}ticks"))
            .fetch_one(&self.pool)
            .await?
            .try_get::<Option<i64>, _>(0)
    }

    pub async fn ticks_in(&self, from: i64, to: i64) -> DbResult<Vec<(i64, Vec<u8>)>> {
        let rows = sqlx::query(self.sql("SELECT start_ts, data FROM {p}ticks WHERE start_ts >= ? AND start_ts < ? ORDER BY start_ts"))
            .bind(from)
            .bind(to)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get::<i64, _>(0)?, r.try_get::<Vec<u8>, _>(1)?)))
            .collect()
    }

    /// Rows of `tier` for the given series with `start_ts` in `[from, to)`: (series, start, data).
    pub async fn rows_for(
        &self,
        tier: i64,
        series: &[i64],
        from: i64,
        to: i64,
    ) -> DbResult<Vec<(i64, i64, Vec<u8>)>> {
        if series.is_empty() {
            return Ok(Vec::new());
        }
        let s = format!(
            "SELECT series_id, start_ts, data FROM {{p}}chunks WHERE tier = ? AND start_ts >= ? AND start_ts < ? AND series_id IN ({}) ORDER BY series_id, start_ts",
            vec!["?"; series.len()].join(", ")
        );
        let sql = self.sql(&s);
        let mut q = sqlx::query(sql).bind(tier).bind(from).bind(to);
        for id in series {
            q = q.bind(*id);
        }
        let rows = q.fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get::<i64, _>(0)?,
                    r.try_get::<i64, _>(1)?,
                    r.try_get::<Vec<u8>, _>(2)?,
                ))
            })
            .collect()
    }

    pub async fn put_rows(&self, rows: &[ChunkRow], meta: &[(&str, i64)]) -> DbResult<()> {
        let mut tx = self.pool.begin().await?;
        self.put_chunks(&mut tx, rows).await?;
        for (k, v) in meta {
            sqlx::query(self.meta_upsert_sql())
                .bind(*k)
                .bind(*v)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await
    }

    /// Deletes rows of `tier` starting before `cut` (and, for raw, their ticks), at most
    /// `step` ms of row starts per call so that no statement runs long. Returns rows deleted
    /// and the time before which nothing of the tier is left (`cut` when done).
    pub async fn delete_before(&self, tier: i64, cut: i64, step: i64) -> DbResult<(u64, i64)> {
        let row = sqlx::query(
            self.sql("SELECT MIN(start_ts) FROM {p}chunks WHERE tier = ? AND start_ts < ?"),
        )
        .bind(tier)
        .bind(cut)
        .fetch_one(&self.pool)
        .await?;
        let upto = match row.try_get::<Option<i64>, _>(0)? {
            Some(min) => cut.min(min.saturating_add(step)),
            None => cut,
        };
        let mut tx = self.pool.begin().await?;
        let n = sqlx::query(self.sql("DELETE FROM {p}chunks WHERE tier = ? AND start_ts < ?"))
            .bind(tier)
            .bind(upto)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if tier == 0 {
            sqlx::query(self.sql("DELETE FROM {p}ticks WHERE start_ts < ?"))
                .bind(upto)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok((n, upto))
    }

    /// Bytes of stored chunk data by tier (for stats and the bench).
    pub async fn tier_bytes(&self) -> DbResult<Vec<(i64, i64, i64)>> {
        let len = match self.backend {
            Backend::Postgres => "OCTET_LENGTH",
            Backend::MySql => "LENGTH",
            Backend::Sqlite => "LENGTH",
        };
        let rows = sqlx::query(self.sql(&format!(
            "SELECT tier, CAST(COUNT(*) AS BIGINT), CAST(SUM({len}(data)) AS BIGINT) FROM {{p}}chunks GROUP BY tier ORDER BY tier"
        )))
        .fetch_all(&self.pool)
        .await;
        // MySQL cannot CAST AS BIGINT; retry with SIGNED.
        let rows = match rows {
            Ok(r) => r,
            Err(_) if self.backend == Backend::MySql => {
                sqlx::query(self.sql("SELECT tier, CAST(COUNT(*) AS SIGNED), CAST(SUM(LENGTH(data)) AS SIGNED) FROM {p}chunks GROUP BY tier ORDER BY tier"))
                    .fetch_all(&self.pool)
                    .await?
            }
            Err(e) => return Err(e),
        };
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get::<i64, _>(0)?,
                    r.try_get::<i64, _>(1)?,
                    r.try_get::<i64, _>(2)?,
                ))
            })
            .collect()
    }

    /// SQLite only: checkpoint the WAL into the main file (bench, graceful close).
    pub async fn checkpoint(&self) -> DbResult<()> {
        if self.backend == Backend::Sqlite {
            sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                .execute(&self.pool)
                .await?;
        }
        Ok(())
    }
}
