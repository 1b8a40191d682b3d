//! # lookout-store — history for lookout
//!
//! Keeps every sample the sampler takes (host and containers), compactly, and answers any
//! window in milliseconds. Embedded SQLite by default; the same history can live in PostgreSQL
//! or MySQL/MariaDB by URL — one code path ([`db`](crate) over sqlx's `Any` driver), one test
//! suite for all three.
//!
//! **This crate must never depend on HTTP crates** (axum, hyper, reqwest, tower…): the API
//! crate calls it, not the other way round. Its only lookout dependency is `lookout-probe`,
//! for the sample types ([`points_from_snapshot`]).
//!
//! ## How data flows
//! 1. [`Store::ingest`] (every tick, from the sampler) interns the series keys and appends the
//!    tick to a bounded in-memory *pending* buffer. It takes one short mutex and never awaits.
//! 2. Every `flush_interval` a background task writes the pending ticks as one compressed
//!    write-ahead *block* (one row, one transaction) and moves them to the in-memory *head*.
//!    After `kill -9` at most one flush interval of samples is lost; the next open replays the
//!    write-ahead blocks into the head by itself.
//! 3. When a 15-minute window closes, its ticks (shared by all series) and one compressed chunk
//!    per series are written in one transaction and the window's blocks are dropped.
//! 4. When a day of raw windows is sealed, 1-minute and 1-hour rollups (count, min, max, sum)
//!    are computed from it; retention then deletes what is older than each tier keeps.
//!
//! A store that is down or full never blocks ingest: pending ticks stay in memory up to
//! `max_buffered_samples` (then the oldest are dropped and counted), the task retries with
//! backoff, and [`Store::health`] says what is going on.
//!
//! Compression and the choice of codecs: see [`codec`] and `docs/benchmarks.md` (history store).
//! Query planning ("which tier answers which part of a window"): see `src/plan.rs`.
//! Series names: see [`snapshot`] and [`SeriesKey`].

mod chunk;
pub mod codec;
mod db;
mod key;
mod plan;
mod rollup;
pub mod snapshot;
mod store;

pub use key::SeriesKey;
pub use plan::auto_step;
pub use rollup::{ceil_to, floor_to, DAY, HOUR, MINUTE, SECOND};
pub use snapshot::{perf_history_keys, points_from_snapshot};
pub use store::{HealthStatus, Point, SeriesInfo, Stats, Store, StoreHealth, Summary, TierUsage};

use std::time::Duration;

/// How long each tier is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Full-resolution samples (default 7 days; at least 2 days, so a day can be rolled up).
    pub raw: Duration,
    /// 1-minute rollups (default 90 days).
    pub minute: Duration,
    /// 1-hour rollups (default 730 days).
    pub hour: Duration,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            raw: Duration::from_secs(7 * 86_400),
            minute: Duration::from_secs(90 * 86_400),
            hour: Duration::from_secs(730 * 86_400),
        }
    }
}

/// Store settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreConfig {
    /// `sqlite:///abs/path/history.db` (created if missing), `sqlite://relative.db`,
    /// `postgres://user:pass@host:port/db`, `mysql://…` or `mariadb://…`.
    pub url: String,
    /// How often pending samples are written (default 10 s): the most a `kill -9` loses.
    pub flush_interval: Duration,
    /// How long each tier is kept.
    pub retention: Retention,
    /// Samples held in memory while the database cannot be written (default 2,000,000:
    /// about 30 minutes of host + 100 containers, ~24 MB at worst). Beyond it the oldest
    /// pending samples are dropped and counted in [`StoreHealth::dropped_samples`].
    pub max_buffered_samples: usize,
    /// Prefix of every table name (default `lookout_`), so the history can share a database.
    pub table_prefix: String,
}

impl StoreConfig {
    /// Defaults with the given URL.
    pub fn new(url: impl Into<String>) -> Self {
        StoreConfig {
            url: url.into(),
            flush_interval: Duration::from_secs(10),
            retention: Retention::default(),
            max_buffered_samples: 2_000_000,
            table_prefix: "lookout_".into(),
        }
    }

    /// Defaults with an SQLite file `history.db` in `data_dir`.
    pub fn sqlite_in(data_dir: &std::path::Path) -> Self {
        StoreConfig::new(format!(
            "sqlite://{}",
            data_dir.join("history.db").display()
        ))
    }

    fn validate(&self) -> Result<(), StoreError> {
        let day = Duration::from_secs(86_400);
        if self.flush_interval.is_zero() {
            return Err(StoreError::Config("flush_interval must be > 0".into()));
        }
        if self.retention.raw < 2 * day {
            return Err(StoreError::Config(
                "raw retention must be at least 2 days (rollups are computed a day at a time)"
                    .into(),
            ));
        }
        if self.retention.minute < day || self.retention.hour < day {
            return Err(StoreError::Config(
                "rollup retention must be at least 1 day".into(),
            ));
        }
        if self.max_buffered_samples == 0 {
            return Err(StoreError::Config(
                "max_buffered_samples must be > 0".into(),
            ));
        }
        if self.table_prefix.len() > 32
            || !self
                .table_prefix
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            return Err(StoreError::Config(
                "table_prefix: at most 32 characters of [A-Za-z0-9_]".into(),
            ));
        }
        Ok(())
    }
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig::new("sqlite://history.db")
    }
}

/// Everything that can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A setting of [`StoreConfig`] is out of range.
    #[error("invalid store configuration: {0}")]
    Config(String),
    /// A series key that does not parse (see [`SeriesKey::parse`]).
    #[error("invalid series key: {0}")]
    InvalidKey(String),
    /// A window or step that cannot be answered (`to` before `from`, too many points).
    #[error("invalid query: {0}")]
    InvalidQuery(String),
    /// No series matches the key.
    #[error("unknown series {0}")]
    NotFound(String),
    /// The database cannot be used: not reachable yet (samples are buffered meanwhile), or an
    /// SQLite file that cannot be opened.
    #[error("history store not ready: {0}")]
    Unavailable(String),
    /// The database refused a statement.
    #[error("history database error: {0}")]
    Db(#[from] sqlx::Error),
    /// Stored bytes that do not decode.
    #[error("history data corrupt: {0}")]
    Corrupt(#[from] codec::CodecError),
}
