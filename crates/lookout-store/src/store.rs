//! The store at run time: pending buffer, head, the flush/seal/rollup/retention cycle, queries.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use tokio::sync::Notify;

use crate::chunk::{self, Block, Runs, SeriesColumn};
use crate::codec::{self, XorWriter};
use crate::db::{ChunkRow, Db};
use crate::plan::{self, Avail, Seg, Tier, HOUR_ROW, MINUTE_ROW, RAW_WINDOW};
use crate::rollup::{self, floor_to, Agg, Bucket, DAY, HOUR, MINUTE};
use crate::{SeriesKey, StoreConfig, StoreError};

/// Samples written per write-ahead block at most (keeps statements small while catching up).
const MAX_BLOCK_SAMPLES: usize = 200_000;
/// Series rolled up per transaction.
const ROLLUP_BATCH: usize = 64;
/// Longest window whose p95 is computed exactly from raw samples.
const EXACT_P95_SPAN: i64 = 8 * DAY;
/// Most points a range query may return.
const MAX_POINTS: i64 = 100_000;

// ------------------------------------------------------------------ public types

/// One step of a range query: aggregate of the samples in `[ts_ms, ts_ms + step)`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Point {
    pub ts_ms: i64,
    pub count: u64,
    pub min: f64,
    pub avg: f64,
    pub max: f64,
}

/// Aggregate of a window (cheap: answered from rollups where possible).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Stats {
    pub count: u64,
    pub sum: f64,
    pub avg: Option<f64>,
    pub min: Option<f64>,
    pub max: Option<f64>,
}

/// Summary of a window. `p95` is exact (nearest rank over the samples) when the whole window
/// is within raw retention and at most 8 days long; otherwise it is estimated from 1-minute or
/// 1-hour bucket averages and `p95_exact` is false. `last` is the newest sample in the window
/// (or the newest bucket average when only rollups cover its end).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Summary {
    pub count: u64,
    pub avg: Option<f64>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub p95: Option<f64>,
    pub p95_exact: bool,
    pub last: Option<f64>,
}

/// One series the store knows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SeriesInfo {
    /// Canonical key, usable as the `series` query parameter.
    pub key: String,
    pub name: String,
    pub labels: BTreeMap<String, String>,
    /// First and last sample times still held (ms), if any.
    pub first_ms: Option<i64>,
    pub last_ms: Option<i64>,
}

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
    pub flush_errors: u64,
    pub series: usize,
    /// Samples in the in-memory head (written, not yet sealed into chunks).
    pub head_samples: usize,
    pub head_bytes: usize,
}

/// Rows and bytes of chunk data per tier (see [`Store::usage`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TierUsage {
    pub tier: &'static str,
    pub rows: i64,
    pub bytes: i64,
}

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

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
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

impl State {
    /// Nothing older than this is held in any tier.
    fn held_floor(&self) -> i64 {
        self.avail
            .hour_from
            .min(self.avail.minute_from)
            .min(self.avail.raw_from)
    }

    fn intern(&mut self, key: &SeriesKey) -> u32 {
        if let Some(&id) = self.index.get(key) {
            return id;
        }
        let id = self.registry.len() as u32;
        self.registry.push(SeriesMeta {
            key: key.clone(),
            first_ts: i64::MAX,
            last_ts: i64::MIN,
        });
        self.index.insert(key.clone(), id);
        id
    }

    /// Appends a written tick to the head. Returns false if it is not newer than the head.
    fn apply(&mut self, t: &Tick) -> bool {
        if t.ts <= self.head_last_ts || t.ts < self.sealed_raw_until {
            return false;
        }
        self.head_last_ts = t.ts;
        let w = self.head.entry(floor_to(t.ts, RAW_WINDOW)).or_default();
        let idx = w.ticks.len() as u32;
        w.ticks.push(t.ts);
        for &(id, v) in &t.points {
            let s = w.series.entry(id).or_insert_with(|| HeadSeries {
                runs: Runs::new(),
                values: XorWriter::new(),
                last_idx: u32::MAX,
            });
            if s.last_idx == idx {
                continue; // the same series twice in one tick: keep the first
            }
            s.last_idx = idx;
            chunk::runs_push(&mut s.runs, idx);
            s.values.push(v);
            self.head_samples += 1;
        }
        true
    }

    fn head_bytes(&self) -> usize {
        self.head
            .values()
            .map(|w| {
                w.ticks.capacity() * 8
                    + w.series
                        .values()
                        .map(|s| s.values.heap_bytes() + s.runs.capacity() * 8 + 48)
                        .sum::<usize>()
            })
            .sum()
    }

    /// Samples of one series held in memory (head and pending), in `[from, to)`.
    fn memory_samples(&self, id: u32, from: i64, to: i64) -> Result<Vec<(i64, f64)>, StoreError> {
        let mut out = Vec::new();
        for (_, w) in self.head.range(floor_to(from, RAW_WINDOW)..) {
            if w.ticks.first().is_some_and(|&t| t >= to) {
                break;
            }
            if let Some(s) = w.series.get(&id) {
                let n = chunk::runs_len(&s.runs);
                let mut vals = Vec::with_capacity(n);
                codec::read_xor(&s.values.snapshot(), n, &mut vals)?;
                for (i, v) in chunk::runs_iter(&s.runs).zip(vals) {
                    let t = w.ticks[i as usize];
                    if t >= from && t < to {
                        out.push((t, v));
                    }
                }
            }
        }
        for t in &self.pending {
            if t.ts >= to {
                break;
            }
            if t.ts >= from && t.ts > self.head_last_ts {
                if let Some(&(_, v)) = t.points.iter().find(|p| p.0 == id) {
                    out.push((t.ts, v));
                }
            }
        }
        Ok(out)
    }
}

/// Builds a write-ahead block from ticks.
fn block_of(ticks: &[&Tick]) -> Block {
    let mut cols: BTreeMap<u32, SeriesColumn> = BTreeMap::new();
    for (i, t) in ticks.iter().enumerate() {
        for &(id, v) in &t.points {
            let c = cols.entry(id).or_insert_with(|| SeriesColumn {
                runs: Runs::new(),
                values: Vec::new(),
            });
            if c.runs.last().is_some_and(|r| r.0 + r.1 == i as u32 + 1) {
                continue; // the same series twice in one tick: keep the first
            }
            chunk::runs_push(&mut c.runs, i as u32);
            c.values.push(v);
        }
    }
    Block {
        ticks: ticks.iter().map(|t| t.ts).collect(),
        series: cols.into_iter().collect(),
    }
}

/// Splits a block back into ticks.
fn ticks_of(b: &Block) -> Vec<Tick> {
    let mut ticks: Vec<Tick> = b
        .ticks
        .iter()
        .map(|&ts| Tick {
            ts,
            points: Vec::new(),
        })
        .collect();
    for (id, col) in &b.series {
        for (i, v) in chunk::runs_iter(&col.runs).zip(&col.values) {
            if let Some(t) = ticks.get_mut(i as usize) {
                t.points.push((*id, *v));
            }
        }
    }
    ticks
}

fn tier_from_i64(t: Tier) -> i64 {
    t as i64
}

/// Items a query walks over, in time order.
enum Item {
    Sample(i64, f64),
    Bucket(Bucket),
}

impl Store {
    /// Opens (creating and migrating if needed) the store and recovers what the last run
    /// flushed. For a PostgreSQL/MySQL URL whose server cannot be reached, the store still
    /// opens — status `starting`, samples buffered — and keeps trying in the background;
    /// a configuration error or an SQLite file that cannot be opened is an error.
    pub async fn open(cfg: StoreConfig) -> Result<Store, StoreError> {
        cfg.validate()?;
        let mut url = cfg.url.clone();
        let sqlite = url.starts_with("sqlite:");
        let mut sqlite_path = String::new();
        if sqlite {
            let path = url.trim_start_matches("sqlite:").trim_start_matches("//");
            let path = path.split('?').next().unwrap_or(path);
            sqlite_path = path.to_string();
            if path.is_empty() || path == ":memory:" {
                return Err(StoreError::Config(
                    "the SQLite store needs a file path".into(),
                ));
            }
            if let Some(dir) = std::path::Path::new(path).parent() {
                if !dir.as_os_str().is_empty() {
                    std::fs::create_dir_all(dir).map_err(|e| {
                        StoreError::Config(format!("cannot create {}: {e}", dir.display()))
                    })?;
                }
            }
            if !url.contains("mode=") {
                url.push_str(if url.contains('?') {
                    "&mode=rwc"
                } else {
                    "?mode=rwc"
                });
            }
        }
        let db = Db::new(&url, &cfg.table_prefix)?;
        let far = i64::MIN / 4;
        let inner = Arc::new(Inner {
            db,
            state: Mutex::new(State {
                registry: Vec::new(),
                index: HashMap::new(),
                persisted: 0,
                pending: VecDeque::new(),
                pending_samples: 0,
                head: BTreeMap::new(),
                head_samples: 0,
                last_ts: i64::MIN,
                head_last_ts: i64::MIN,
                ready: false,
                sealed_raw_until: i64::MIN,
                avail: Avail {
                    rollups_until: i64::MIN,
                    raw_from: far,
                    minute_from: far,
                    hour_from: far,
                },
                next_seq: 1,
                dropped: 0,
                late: 0,
                last_flush_ms: None,
                last_error: None,
                flush_errors: 0,
            }),
            writer: tokio::sync::Mutex::new(()),
            wake: Arc::new(Notify::new()),
            closed: AtomicBool::new(false),
            cfg,
        });
        let store = Store { inner };
        {
            let _w = store.inner.writer.lock().await;
            if let Err(e) = store.init().await {
                if sqlite {
                    return Err(sqlite_open_error(&sqlite_path, e));
                }
                if !matches!(e, StoreError::Db(ref d) if is_connectivity(d)) {
                    return Err(e);
                }
                tracing::warn!(error = %e, "history store unreachable at start; buffering and retrying");
                store.inner.st().last_error = Some(e.to_string());
            }
        }
        store.spawn_writer();
        Ok(store)
    }

    fn spawn_writer(&self) {
        let weak: Weak<Inner> = Arc::downgrade(&self.inner);
        let wake = self.inner.wake.clone();
        let interval = self.inner.cfg.flush_interval;
        tokio::spawn(async move {
            let mut backoff = Duration::ZERO;
            loop {
                let wait = if backoff.is_zero() { interval } else { backoff };
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = wake.notified() => {}
                }
                let Some(inner) = weak.upgrade() else { break };
                if inner.closed.load(Ordering::Acquire) {
                    break;
                }
                let store = Store { inner };
                match store.cycle().await {
                    Ok(()) => backoff = Duration::ZERO,
                    Err(e) => {
                        backoff = (backoff * 2)
                            .clamp(Duration::from_secs(1), Duration::from_secs(30))
                            .min(interval.max(Duration::from_secs(1)) * 3);
                        tracing::warn!(error = %e, retry_in = ?backoff, "history flush failed");
                    }
                }
            }
        });
    }

    /// Migrates and recovers. Caller holds the writer lock.
    async fn init(&self) -> Result<(), StoreError> {
        let db = &self.inner.db;
        db.migrate().await?;
        let meta: HashMap<String, i64> = db.load_meta().await?.into_iter().collect();
        let series = db.load_series().await?;
        let bounds = db.series_bounds().await?;
        let wal = db.load_wal().await?;
        let mut blocks = Vec::with_capacity(wal.len());
        for (seq, data) in &wal {
            match chunk::decode_block(data) {
                Ok(b) => blocks.push(b),
                Err(e) => tracing::error!(seq, error = %e, "skipping unreadable write-ahead block"),
            }
        }
        let next_seq = wal.last().map_or(1, |w| w.0 + 1);
        let far = i64::MIN / 4;
        let mut st = self.inner.st();
        // Registry from the database; series interned before it was reachable are re-mapped.
        let old = std::mem::take(&mut st.registry);
        st.index.clear();
        let max_id = series.iter().map(|s| s.0).max().unwrap_or(-1);
        for id in 0..=max_id {
            st.registry.push(SeriesMeta {
                key: SeriesKey::new(format!("__missing_{id}")),
                first_ts: i64::MAX,
                last_ts: i64::MIN,
            });
        }
        for (id, skey) in &series {
            let key = SeriesKey::parse(skey)
                .unwrap_or_else(|_| SeriesKey::new(format!("__unparsable_{id}")));
            if let Some(m) = usize::try_from(*id)
                .ok()
                .and_then(|i| st.registry.get_mut(i))
            {
                m.key = key.clone();
            }
            st.index.insert(key, *id as u32);
        }
        for (id, first, last) in bounds {
            if let Some(m) = usize::try_from(id)
                .ok()
                .and_then(|i| st.registry.get_mut(i))
            {
                m.first_ts = first;
                m.last_ts = last;
            }
        }
        st.persisted = st.registry.len();
        let remap: Vec<u32> = old
            .iter()
            .map(|m| {
                let id = st.intern(&m.key);
                let r = &mut st.registry[id as usize];
                r.first_ts = r.first_ts.min(m.first_ts);
                r.last_ts = r.last_ts.max(m.last_ts);
                id
            })
            .collect();
        for t in st.pending.iter_mut() {
            for p in t.points.iter_mut() {
                p.0 = remap[p.0 as usize];
            }
        }
        st.sealed_raw_until = meta.get("sealed_raw_until").copied().unwrap_or(i64::MIN);
        st.avail = Avail {
            rollups_until: meta.get("rollups_until").copied().unwrap_or(i64::MIN),
            raw_from: meta.get("raw_from").copied().unwrap_or(far),
            minute_from: meta.get("minute_from").copied().unwrap_or(far),
            hour_from: meta.get("hour_from").copied().unwrap_or(far),
        };
        st.head.clear();
        st.head_samples = 0;
        st.head_last_ts = i64::MIN;
        let mut replayed = 0usize;
        for b in &blocks {
            for t in ticks_of(b) {
                for &(id, _) in &t.points {
                    if let Some(m) = st.registry.get_mut(id as usize) {
                        m.first_ts = m.first_ts.min(t.ts);
                        m.last_ts = m.last_ts.max(t.ts);
                    }
                }
                if st.apply(&t) {
                    replayed += t.points.len();
                }
            }
        }
        st.last_ts = st.last_ts.max(st.head_last_ts);
        st.next_seq = next_seq;
        st.ready = true;
        st.last_error = None;
        tracing::info!(
            series = st.registry.len(),
            replayed,
            blocks = blocks.len(),
            "history store opened"
        );
        Ok(())
    }

    /// Records one tick. Never blocks on I/O: takes one short lock. Points of a tick whose
    /// timestamp is not newer than the previous tick's are dropped and counted as late
    /// (call once per tick with all its points).
    pub fn ingest(&self, ts_ms: i64, points: &[(SeriesKey, f64)]) {
        let mut st = self.inner.st();
        if ts_ms <= st.last_ts {
            st.late += points.len() as u64;
            return;
        }
        st.last_ts = ts_ms;
        let mut pts = Vec::with_capacity(points.len());
        for (k, v) in points {
            let id = st.intern(k);
            let m = &mut st.registry[id as usize];
            m.first_ts = m.first_ts.min(ts_ms);
            m.last_ts = m.last_ts.max(ts_ms);
            pts.push((id, *v));
        }
        st.pending_samples += pts.len();
        st.pending.push_back(Tick {
            ts: ts_ms,
            points: pts,
        });
        let max = self.inner.cfg.max_buffered_samples;
        while st.pending_samples > max {
            match st.pending.pop_front() {
                Some(t) => {
                    st.pending_samples -= t.points.len();
                    st.dropped += t.points.len() as u64;
                }
                None => break,
            }
        }
    }

    /// Writes everything pending, seals closed windows, rolls up and applies retention.
    /// Call on graceful stop (the background task does the same every flush interval).
    pub async fn flush(&self) -> Result<(), StoreError> {
        self.cycle().await
    }

    /// Flushes, stops the background task and closes the database connections.
    pub async fn close(&self) -> Result<(), StoreError> {
        let r = self.cycle().await;
        self.inner.closed.store(true, Ordering::Release);
        self.inner.wake.notify_one();
        let _ = self.inner.db.checkpoint().await;
        self.inner.db.close().await;
        r
    }

    async fn cycle(&self) -> Result<(), StoreError> {
        let _w = self.inner.writer.lock().await;
        let r = self.cycle_locked().await;
        let mut st = self.inner.st();
        match &r {
            Ok(()) => {
                st.last_error = None;
                st.last_flush_ms = Some(now_ms());
            }
            Err(e) => {
                st.flush_errors += 1;
                st.last_error = Some(e.to_string());
            }
        }
        r
    }

    async fn cycle_locked(&self) -> Result<(), StoreError> {
        if !self.inner.st().ready {
            self.init().await?;
        }
        self.write_pending().await?;
        self.seal_closed().await?;
        self.roll_up().await?;
        self.retention().await?;
        Ok(())
    }

    async fn write_pending(&self) -> Result<(), StoreError> {
        loop {
            let (blob, new_series, n_ticks, min_ts, max_ts, seq, n_series) = {
                let st = self.inner.st();
                let mut take = Vec::new();
                let mut samples = 0;
                for t in &st.pending {
                    if !take.is_empty() && samples + t.points.len() > MAX_BLOCK_SAMPLES {
                        break;
                    }
                    samples += t.points.len();
                    take.push(t);
                }
                let new_series: Vec<(i64, String)> = st.registry[st.persisted..]
                    .iter()
                    .enumerate()
                    .map(|(i, m)| ((st.persisted + i) as i64, m.key.to_string()))
                    .collect();
                if take.is_empty() && new_series.is_empty() {
                    return Ok(());
                }
                let blob = (!take.is_empty()).then(|| chunk::encode_block(&block_of(&take)));
                (
                    blob,
                    new_series,
                    take.len(),
                    take.first().map_or(0, |t| t.ts),
                    take.last().map_or(0, |t| t.ts),
                    st.next_seq,
                    st.registry.len(),
                )
            };
            let wal = blob.map(|b| (seq, min_ts, max_ts, b));
            self.inner.db.write_flush(&new_series, wal).await?;
            let mut st = self.inner.st();
            st.persisted = st.persisted.max(n_series);
            if n_ticks > 0 {
                st.next_seq = seq + 1;
                // Move what was written to the head; ticks dropped meanwhile are simply gone.
                while st.pending.front().is_some_and(|t| t.ts <= max_ts) {
                    if let Some(t) = st.pending.pop_front() {
                        st.pending_samples -= t.points.len();
                        if !st.apply(&t) {
                            st.late += t.points.len() as u64;
                        }
                    }
                }
            }
            if st.pending.is_empty() {
                return Ok(());
            }
        }
    }

    async fn seal_closed(&self) -> Result<(), StoreError> {
        loop {
            // Copy the oldest closed window out under the lock; encode outside it.
            let (start, ticks, cols) = {
                let st = self.inner.st();
                let newest = floor_to(st.head_last_ts, RAW_WINDOW);
                let Some((&start, w)) = st.head.iter().next() else {
                    return Ok(());
                };
                if start >= newest {
                    return Ok(());
                }
                let cols: Vec<(u32, Runs, Vec<u8>)> = w
                    .series
                    .iter()
                    .map(|(id, s)| (*id, s.runs.clone(), s.values.snapshot()))
                    .collect();
                (start, w.ticks.clone(), cols)
            };
            let mut rows = Vec::with_capacity(cols.len());
            for (id, runs, xor) in cols {
                let n = chunk::runs_len(&runs);
                let mut values = Vec::with_capacity(n);
                codec::read_xor(&xor, n, &mut values)?;
                let first = runs.first().map_or(start, |r| ticks[r.0 as usize]);
                let last = runs
                    .last()
                    .map_or(start, |r| ticks[(r.0 + r.1 - 1) as usize]);
                let data = chunk::encode_chunk(&SeriesColumn { runs, values });
                rows.push(ChunkRow {
                    tier: 0,
                    series_id: id as i64,
                    start_ts: start,
                    first_ts: first,
                    last_ts: last,
                    n: n as i64,
                    data,
                });
            }
            rows.sort_by_key(|r| r.series_id);
            let end = start + RAW_WINDOW;
            self.inner
                .db
                .seal(start, codec::encode_ticks(&ticks), &rows, end)
                .await?;
            let mut st = self.inner.st();
            if let Some(w) = st.head.remove(&start) {
                st.head_samples -= w
                    .series
                    .values()
                    .map(|s| chunk::runs_len(&s.runs))
                    .sum::<usize>();
            }
            st.sealed_raw_until = st.sealed_raw_until.max(end);
        }
    }

    async fn roll_up(&self) -> Result<(), StoreError> {
        let db = &self.inner.db;
        let (mut r, sealed) = {
            let st = self.inner.st();
            (st.avail.rollups_until, st.sealed_raw_until)
        };
        if r == i64::MIN {
            // First rollup ever: start at the day of the oldest raw chunk.
            let Some(first) = db.first_tick().await? else {
                return Ok(());
            };
            r = floor_to(first, DAY);
        }
        let mut days = 0;
        while r + DAY <= sealed && days < 60 {
            self.roll_up_day(r).await?;
            r += DAY;
            days += 1;
            self.inner.st().avail.rollups_until = r;
        }
        Ok(())
    }

    async fn roll_up_day(&self, day: i64) -> Result<(), StoreError> {
        let db = &self.inner.db;
        let end = day + DAY;
        let series = db.series_in(day, end).await?;
        let mut ticks: HashMap<i64, Vec<i64>> = HashMap::new();
        for (start, data) in db.ticks_in(day, end).await? {
            ticks.insert(start, codec::decode_ticks(&data)?);
        }
        let hour_row = floor_to(day, HOUR_ROW);
        let batches: Vec<&[i64]> = series.chunks(ROLLUP_BATCH).collect();
        if batches.is_empty() {
            db.put_rows(&[], &[("rollups_until", end)]).await?;
        }
        for (bi, batch) in batches.iter().enumerate() {
            let raw = db.rows_for(0, batch, day, end).await?;
            let old_hours: HashMap<i64, Vec<u8>> = db
                .rows_for(2, batch, hour_row, hour_row + 1)
                .await?
                .into_iter()
                .map(|(s, _, d)| (s, d))
                .collect();
            let mut per_series: BTreeMap<i64, Vec<(i64, f64)>> = BTreeMap::new();
            for (sid, start, data) in raw {
                let Some(t) = ticks.get(&start) else { continue };
                let col = chunk::decode_chunk(&data, t.len())?;
                per_series
                    .entry(sid)
                    .or_default()
                    .extend(chunk::samples(t, &col)?);
            }
            let mut rows = Vec::with_capacity(per_series.len() * 2);
            for (sid, samples) in per_series {
                let minute = rollup::bucketize(&samples, MINUTE);
                let hour = rollup::coarsen(&minute, HOUR);
                let (Some(f), Some(l)) = (minute.first(), minute.last()) else {
                    continue;
                };
                rows.push(ChunkRow {
                    tier: 1,
                    series_id: sid,
                    start_ts: day,
                    first_ts: f.ts,
                    last_ts: l.ts,
                    n: minute.len() as i64,
                    data: rollup::encode_buckets(&minute),
                });
                let old = match old_hours.get(&sid) {
                    Some(d) => rollup::decode_buckets(d)?,
                    None => Vec::new(),
                };
                let merged = rollup::merge(&old, &hour);
                let (Some(f), Some(l)) = (merged.first(), merged.last()) else {
                    continue;
                };
                rows.push(ChunkRow {
                    tier: 2,
                    series_id: sid,
                    start_ts: hour_row,
                    first_ts: f.ts,
                    last_ts: l.ts,
                    n: merged.len() as i64,
                    data: rollup::encode_buckets(&merged),
                });
            }
            let meta: &[(&str, i64)] = if bi + 1 == batches.len() {
                &[("rollups_until", end)]
            } else {
                &[]
            };
            db.put_rows(&rows, meta).await?;
            tokio::task::yield_now().await;
        }
        Ok(())
    }

    async fn retention(&self) -> Result<(), StoreError> {
        let (now, avail) = {
            let st = self.inner.st();
            (st.head_last_ts.max(st.sealed_raw_until), st.avail)
        };
        if now == i64::MIN || avail.rollups_until == i64::MIN {
            return Ok(());
        }
        let r = &self.inner.cfg.retention;
        let cuts = plan::cutoffs(
            now,
            ms(r.raw),
            ms(r.minute),
            ms(r.hour),
            avail.rollups_until,
        );
        let floors = [avail.raw_from, avail.minute_from, avail.hour_from];
        let steps = [4 * RAW_WINDOW, MINUTE_ROW, HOUR_ROW];
        for tier in 0..3 {
            if cuts[tier] <= floors[tier] {
                continue;
            }
            // A few bounded deletes per cycle; the rest next cycle (never blocks the sampler).
            // The availability floor follows each delete, so queries never plan on deleted rows.
            for _ in 0..8 {
                let (n, upto) = self
                    .inner
                    .db
                    .delete_before(tier as i64, cuts[tier], steps[tier])
                    .await?;
                tracing::debug!(tier, deleted = n, upto, "retention");
                let key = ["raw_from", "minute_from", "hour_from"][tier];
                self.inner.db.set_meta(&[(key, upto)]).await?;
                {
                    let mut st = self.inner.st();
                    let f = match tier {
                        0 => &mut st.avail.raw_from,
                        1 => &mut st.avail.minute_from,
                        _ => &mut st.avail.hour_from,
                    };
                    *f = (*f).max(upto);
                }
                if upto >= cuts[tier] {
                    break;
                }
            }
        }
        Ok(())
    }

    // -------------------------------------------------------------- queries

    fn ensure_ready(&self) -> Result<(), StoreError> {
        let st = self.inner.st();
        if st.ready {
            Ok(())
        } else {
            Err(StoreError::Unavailable(
                st.last_error
                    .clone()
                    .unwrap_or_else(|| "not opened yet".into()),
            ))
        }
    }

    /// Finds the series a key selects: an exact match, else the most recently sampled series
    /// the key selects (see [`SeriesKey::selects`]).
    fn resolve(&self, key: &SeriesKey) -> Result<u32, StoreError> {
        let st = self.inner.st();
        if let Some(&id) = st.index.get(key) {
            return Ok(id);
        }
        st.registry
            .iter()
            .enumerate()
            .filter(|(_, m)| key.selects(&m.key))
            .max_by_key(|(_, m)| m.last_ts)
            .map(|(i, _)| i as u32)
            .ok_or_else(|| StoreError::NotFound(key.to_string()))
    }

    /// Raw samples of series `id` in `[from, to)`: sealed chunks from the database, the rest
    /// from memory. The memory part and the seal watermark are read together.
    async fn raw_samples(
        &self,
        id: u32,
        from: i64,
        to: i64,
    ) -> Result<Vec<(i64, f64)>, StoreError> {
        if from >= to {
            return Ok(Vec::new());
        }
        let (mem, sealed) = {
            let st = self.inner.st();
            let s = st.sealed_raw_until;
            (st.memory_samples(id, from.max(s), to)?, s)
        };
        let mut out = Vec::new();
        if from < sealed {
            let upto = to.min(sealed);
            for (_, cdata, tdata) in self
                .inner
                .db
                .raw_chunks(id as i64, floor_to(from, RAW_WINDOW), upto)
                .await?
            {
                let ticks = codec::decode_ticks(&tdata)?;
                let col = chunk::decode_chunk(&cdata, ticks.len())?;
                for (t, v) in chunk::samples(&ticks, &col)? {
                    if t >= from && t < upto {
                        out.push((t, v));
                    }
                }
            }
        }
        out.extend(mem);
        Ok(out)
    }

    async fn buckets(
        &self,
        tier: Tier,
        id: u32,
        from: i64,
        to: i64,
    ) -> Result<Vec<Bucket>, StoreError> {
        let rows = self
            .inner
            .db
            .tier_rows(
                tier_from_i64(tier),
                id as i64,
                floor_to(from, tier.row_span()),
                to,
            )
            .await?;
        let mut out = Vec::new();
        for (_, data) in rows {
            out.extend(
                rollup::decode_buckets(&data)?
                    .into_iter()
                    .filter(|b| b.ts >= from && b.ts < to),
            );
        }
        Ok(out)
    }

    /// Walks `[from, to)` as planned, calling `f` for every sample or bucket in time order.
    async fn walk(
        &self,
        id: u32,
        from: i64,
        to: i64,
        step: Option<i64>,
        mut f: impl FnMut(Item),
    ) -> Result<(), StoreError> {
        let avail = self.inner.st().avail;
        for Seg {
            tier,
            from: a,
            to: b,
        } in plan::plan(from, to, avail, step)
        {
            match tier {
                Tier::Raw => {
                    for (t, v) in self.raw_samples(id, a, b).await? {
                        f(Item::Sample(t, v));
                    }
                }
                _ => {
                    for bk in self.buckets(tier, id, a, b).await? {
                        f(Item::Bucket(bk));
                    }
                }
            }
        }
        Ok(())
    }

    /// Points of `series` between `from_ms` and `to_ms` (both inclusive), folded into steps of
    /// `step_ms` aligned to the epoch (each point: min/avg/max/count of its step). Without a
    /// step, one is chosen so that at most ~1000 points come back (1 s for short windows, so a
    /// point per sample). Only steps that hold samples are returned.
    pub async fn range(
        &self,
        series: &SeriesKey,
        from_ms: i64,
        to_ms: i64,
        step_ms: Option<i64>,
    ) -> Result<Vec<Point>, StoreError> {
        self.ensure_ready()?;
        let (from, to) = window(from_ms, to_ms)?;
        if step_ms.is_some_and(|s| s <= 0) {
            return Err(StoreError::InvalidQuery("step must be > 0".into()));
        }
        let id = self.resolve(series)?;
        // The limit counts the steps that can hold data: `from=0` ("all time") over a store
        // that holds a day is a day's worth, not 56 years' worth.
        let Some((from, to)) = self.held_span(id).and_then(|(first, last)| {
            let (f, t) = (from.max(first), to.min(last.saturating_add(1)));
            (f < t).then_some((f, t))
        }) else {
            return Ok(Vec::new());
        };
        let step = step_ms.unwrap_or_else(|| plan::auto_step(to - from, 1000));
        if (to - from) / step > MAX_POINTS {
            return Err(StoreError::InvalidQuery(format!(
                "window/step gives more than {MAX_POINTS} points"
            )));
        }
        let mut acc: Vec<(i64, Agg)> = Vec::new();
        self.walk(id, from, to, Some(step), |it| {
            let t = match &it {
                Item::Sample(t, _) => *t,
                Item::Bucket(b) => b.ts,
            };
            let k = floor_to(t, step);
            if acc.last().is_none_or(|(lk, _)| *lk != k) {
                acc.push((k, Agg::default()));
            }
            if let Some((_, a)) = acc.last_mut() {
                match it {
                    Item::Sample(_, v) => a.add(v),
                    Item::Bucket(b) => a.add_bucket(&b),
                }
            }
        })
        .await?;
        Ok(acc
            .into_iter()
            .filter_map(|(k, a)| {
                Some(Point {
                    ts_ms: k,
                    count: a.count,
                    min: a.min()?,
                    avg: a.avg()?,
                    max: a.max()?,
                })
            })
            .collect())
    }

    /// Full-resolution samples of `series` between `from_ms` and `to_ms` (both inclusive),
    /// oldest first. Only what raw retention still holds.
    pub async fn raw(
        &self,
        series: &SeriesKey,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<(i64, f64)>, StoreError> {
        self.ensure_ready()?;
        let (from, to) = window(from_ms, to_ms)?;
        let id = self.resolve(series)?;
        self.raw_samples(id, from, to).await
    }

    /// count/sum/avg/min/max of a window (inclusive bounds), answered from 1-hour and
    /// 1-minute rollups wherever whole buckets fit and from raw samples at the edges: a week
    /// costs a few rows. Use this for the `*_average` routes.
    pub async fn stats(
        &self,
        series: &SeriesKey,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Stats, StoreError> {
        self.ensure_ready()?;
        let (from, to) = window(from_ms, to_ms)?;
        let id = self.resolve(series)?;
        let mut a = Agg::default();
        self.walk(id, from, to, None, |it| match it {
            Item::Sample(_, v) => a.add(v),
            Item::Bucket(b) => a.add_bucket(&b),
        })
        .await?;
        Ok(Stats {
            count: a.count,
            sum: a.sum,
            avg: a.avg(),
            min: a.min(),
            max: a.max(),
        })
    }

    /// count/avg/min/max/p95/last of a window (inclusive bounds); see [`Summary`].
    pub async fn summary(
        &self,
        series: &SeriesKey,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Summary, StoreError> {
        self.ensure_ready()?;
        let (from, to) = window(from_ms, to_ms)?;
        let id = self.resolve(series)?;
        let raw_from = self.inner.st().avail.raw_from;
        if from >= raw_from && to - from <= EXACT_P95_SPAN {
            let s = self.raw_samples(id, from, to).await?;
            let mut a = Agg::default();
            for &(_, v) in &s {
                a.add(v);
            }
            let last = s.last().map(|x| x.1);
            let mut vals: Vec<f64> = s.into_iter().map(|x| x.1).collect();
            let p95 = rollup::percentile(&mut vals, 0.95);
            return Ok(Summary {
                count: a.count,
                avg: a.avg(),
                min: a.min(),
                max: a.max(),
                p95,
                p95_exact: true,
                last,
            });
        }
        let mut a = Agg::default();
        let mut weighted: Vec<(f64, u64)> = Vec::new();
        let mut last = None;
        self.walk(id, from, to, None, |it| match it {
            Item::Sample(_, v) => {
                a.add(v);
                weighted.push((v, 1));
                last = Some(v);
            }
            Item::Bucket(b) => {
                a.add_bucket(&b);
                if b.count > 0 {
                    let avg = b.sum / b.count as f64;
                    weighted.push((avg, b.count));
                    last = Some(avg);
                }
            }
        })
        .await?;
        let p95 = rollup::weighted_percentile(&mut weighted, 0.95);
        Ok(Summary {
            count: a.count,
            avg: a.avg(),
            min: a.min(),
            max: a.max(),
            p95,
            p95_exact: false,
            last,
        })
    }

    /// First and last sample time of `series` that the store still holds (older samples
    /// fall to retention); `None` when it has none.
    pub fn extent(&self, series: &SeriesKey) -> Result<Option<(i64, i64)>, StoreError> {
        self.ensure_ready()?;
        let id = self.resolve(series)?;
        Ok(self.held_span(id))
    }

    fn held_span(&self, id: u32) -> Option<(i64, i64)> {
        let st = self.inner.st();
        let floor = st.held_floor();
        let m = st.registry.get(id as usize)?;
        (m.first_ts != i64::MAX && m.last_ts != i64::MIN)
            .then_some((m.first_ts.max(floor), m.last_ts))
    }

    /// Every series known, with its first and last sample time.
    pub async fn series(&self) -> Result<Vec<SeriesInfo>, StoreError> {
        self.ensure_ready()?;
        let st = self.inner.st();
        let floor = st.held_floor();
        let mut out: Vec<SeriesInfo> = st
            .registry
            .iter()
            .filter(|m| !m.key.name().starts_with("__"))
            .map(|m| SeriesInfo {
                key: m.key.to_string(),
                name: m.key.name().to_string(),
                labels: m.key.labels().clone(),
                first_ms: (m.first_ts != i64::MAX).then_some(m.first_ts.max(floor)),
                last_ms: (m.last_ts != i64::MIN).then_some(m.last_ts),
            })
            .collect();
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    /// State for `/readyz` and `/metrics`.
    pub fn health(&self) -> StoreHealth {
        let st = self.inner.st();
        let status = if !st.ready {
            HealthStatus::Starting
        } else if st.last_error.is_some() {
            HealthStatus::Degraded
        } else {
            HealthStatus::Ok
        };
        StoreHealth {
            status,
            reason: st.last_error.clone(),
            buffered_samples: st.pending_samples,
            dropped_samples: st.dropped,
            late_samples: st.late,
            last_flush_ms: st.last_flush_ms,
            flush_errors: st.flush_errors,
            series: st.registry.len(),
            head_samples: st.head_samples,
            head_bytes: st.head_bytes(),
        }
    }

    /// Rows and bytes of chunk data per tier (for the bench and diagnostics).
    pub async fn usage(&self) -> Result<Vec<TierUsage>, StoreError> {
        Ok(self
            .inner
            .db
            .tier_bytes()
            .await?
            .into_iter()
            .map(|(t, rows, bytes)| TierUsage {
                tier: ["raw", "1m", "1h"].get(t as usize).copied().unwrap_or("?"),
                rows,
                bytes,
            })
            .collect())
    }
}

/// SQLite says "unable to open database file" without the file: name it, and what to check.
fn sqlite_open_error(path: &str, e: StoreError) -> StoreError {
    let cause = match &e {
        StoreError::Db(d) => d.to_string(),
        other => other.to_string(),
    };
    let dir = std::path::Path::new(path)
        .parent()
        .map(|d| d.display().to_string())
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| ".".into());
    StoreError::Unavailable(format!(
        "cannot open the SQLite database {path}: {cause} (is {path} a file, and {dir} writable by the user lookout runs as?)"
    ))
}

/// Inclusive public bounds to a half-open window.
fn window(from_ms: i64, to_ms: i64) -> Result<(i64, i64), StoreError> {
    if to_ms < from_ms {
        return Err(StoreError::InvalidQuery("`to` is before `from`".into()));
    }
    Ok((from_ms, to_ms.saturating_add(1)))
}

/// True for errors that mean "the server is not reachable" (retry) rather than "misconfigured".
fn is_connectivity(e: &sqlx::Error) -> bool {
    matches!(
        e,
        sqlx::Error::Io(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Tls(_)
            | sqlx::Error::Protocol(_)
    )
}
