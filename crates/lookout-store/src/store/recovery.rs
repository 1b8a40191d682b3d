//! Opening the store: connection, migration, recovery of the registry and replay of the
//! write-ahead blocks into the head; and the background task that runs the write cycle.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::sync::Notify;

use super::head::ticks_of;
use super::{Inner, SeriesMeta, State, Store};
use crate::chunk;
use crate::db::Db;
use crate::plan::Avail;
use crate::{SeriesKey, StoreConfig, StoreError};

impl Store {
    /// Opens (creating and migrating if needed) the store and recovers what the last run
    /// flushed. For a PostgreSQL/MySQL URL whose server cannot be reached, the store still
    /// opens — status `starting`, samples buffered — and keeps trying in the background;
    /// a configuration error or an SQLite file that cannot be opened is an error.
    pub async fn open(cfg: StoreConfig) -> Result<Store, StoreError> {
        cfg.validate()?;
        let sqlite_path = lookout_sql::sqlite_path(&cfg.url).map(str::to_string);
        if let Some(path) = &sqlite_path {
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
        }
        let db = Db::new(&cfg.url, &cfg.table_prefix)?;
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
                if let Some(path) = &sqlite_path {
                    return Err(sqlite_open_error(path, e));
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
    pub(super) async fn init(&self) -> Result<(), StoreError> {
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
