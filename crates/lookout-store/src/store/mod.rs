//! The store at run time, one job per file behind [`Store`]'s public surface:
//!
//! - [`head`]: the in-memory side — ingest into the pending buffer, the head of written but
//!   unsealed ticks, and write-ahead blocks to and from ticks;
//! - [`recovery`]: opening, migrating and replaying the write-ahead blocks; the background task;
//! - [`flush`]: the write cycle — pending ticks to write-ahead blocks, closed windows to chunks;
//! - [`compaction`]: day rollups (1 minute, 1 hour) and retention;
//! - [`query`]: range, raw, stats, summary, series, health and usage.

mod compaction;
mod flush;
mod head;
mod query;
mod recovery;
mod types;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::Notify;

use crate::chunk::Runs;
use crate::codec::XorWriter;
use crate::db::Db;
use crate::plan::Avail;
use crate::{SeriesKey, StoreConfig};

pub use types::{HealthStatus, Point, SeriesInfo, Stats, StoreHealth, Summary, TierUsage};

// ------------------------------------------------------------------ state

struct SeriesMeta {
    key: SeriesKey,
    first_ts: i64,
    last_ts: i64,
}

struct Tick {
    ts: i64,
    points: Vec<(u32, f64)>,
}

struct HeadSeries {
    runs: Runs,
    values: XorWriter,
    last_idx: u32,
}

#[derive(Default)]
struct HeadWindow {
    ticks: Vec<i64>,
    series: HashMap<u32, HeadSeries>,
}

struct State {
    registry: Vec<SeriesMeta>,
    index: HashMap<SeriesKey, u32>,
    /// `registry[..persisted]` are in the database.
    persisted: usize,
    pending: VecDeque<Tick>,
    pending_samples: usize,
    head: BTreeMap<i64, HeadWindow>,
    head_samples: usize,
    /// Newest tick accepted by ingest.
    last_ts: i64,
    /// Newest tick in the head (written).
    head_last_ts: i64,
    ready: bool,
    sealed_raw_until: i64,
    avail: Avail,
    next_seq: i64,
    // health
    dropped: u64,
    late: u64,
    last_flush_ms: Option<i64>,
    last_error: Option<String>,
    flush_errors: u64,
}

struct Inner {
    cfg: StoreConfig,
    db: Db,
    state: Mutex<State>,
    /// Serialises flush cycles (background task, `flush`, `close`).
    writer: tokio::sync::Mutex<()>,
    wake: Arc<Notify>,
    closed: AtomicBool,
}

/// The history store. Cheap to clone; all clones share one store.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl Inner {
    fn st(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves consistent-enough state; keep serving.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}
