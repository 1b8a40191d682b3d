//! The public answers of the store: points, aggregates, series and health.

use std::collections::BTreeMap;

use serde::Serialize;

/// One step of a range query: aggregate of the samples in `[ts_ms, ts_ms + step)`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Point {
    /// Start of the step (ms, aligned to the epoch).
    pub ts_ms: i64,
    /// Samples in the step.
    pub count: u64,
    /// Smallest sample.
    pub min: f64,
    /// Mean of the samples.
    pub avg: f64,
    /// Largest sample.
    pub max: f64,
}

/// Aggregate of a window (cheap: answered from rollups where possible).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Stats {
    /// Samples in the window.
    pub count: u64,
    /// Their sum.
    pub sum: f64,
    /// Their mean (`None` without samples).
    pub avg: Option<f64>,
    /// Smallest (`None` without samples).
    pub min: Option<f64>,
    /// Largest (`None` without samples).
    pub max: Option<f64>,
}

/// Summary of a window. `p95` is exact (nearest rank over the samples) when the whole window
/// is within raw retention and at most 8 days long; otherwise it is estimated from 1-minute or
/// 1-hour bucket averages and `p95_exact` is false. `last` is the newest sample in the window
/// (or the newest bucket average when only rollups cover its end).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Summary {
    /// Samples in the window.
    pub count: u64,
    /// Their mean (`None` without samples).
    pub avg: Option<f64>,
    /// Smallest (`None` without samples).
    pub min: Option<f64>,
    /// Largest (`None` without samples).
    pub max: Option<f64>,
    /// 95th percentile: exact or estimated, see `p95_exact`.
    pub p95: Option<f64>,
    /// True when `p95` is the nearest rank over the raw samples.
    pub p95_exact: bool,
    /// Newest sample in the window (or newest bucket average).
    pub last: Option<f64>,
}

/// One series the store knows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SeriesInfo {
    /// Canonical key, usable as the `series` query parameter.
    pub key: String,
    /// Metric name.
    pub name: String,
    /// Labels, sorted by name.
    pub labels: BTreeMap<String, String>,
    /// First and last sample times still held (ms), if any.
    pub first_ms: Option<i64>,
    /// Newest sample time still held (ms).
    pub last_ms: Option<i64>,
}

/// Whether the store is writing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthStatus {
    /// Opened and the last write succeeded.
    Ok,
    /// Not yet opened (server unreachable at start); samples are buffered.
    Starting,
    /// The last write failed; samples are buffered and retried.
    Degraded,
}

/// For `/readyz` and `/metrics`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoreHealth {
    /// `ok`, `starting` or `degraded`.
    pub status: HealthStatus,
    /// Why the store is not `ok` (the last error), if it is not.
    pub reason: Option<String>,
    /// Samples in memory not yet written to the database.
    pub buffered_samples: usize,
    /// Samples dropped because the buffer was full (database down too long).
    pub dropped_samples: u64,
    /// Samples dropped because their timestamp was not newer than the previous tick.
    pub late_samples: u64,
    /// Wall-clock time (ms) of the last successful write.
    pub last_flush_ms: Option<i64>,
    /// Writes that failed since start.
    pub flush_errors: u64,
    /// Series known.
    pub series: usize,
    /// Samples in the in-memory head (written, not yet sealed into chunks).
    pub head_samples: usize,
    /// Heap bytes of the in-memory head.
    pub head_bytes: usize,
}

/// Rows and bytes of chunk data per tier (see [`Store::usage`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TierUsage {
    /// `raw`, `1m` or `1h`.
    pub tier: &'static str,
    /// Chunk rows of the tier.
    pub rows: i64,
    /// Bytes of chunk data in the tier.
    pub bytes: i64,
}
