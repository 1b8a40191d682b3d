//! The write cycle: pending ticks to write-ahead blocks (then to the head), closed 15-minute
//! windows to one chunk per series, then rollups and retention (see [`super::compaction`]).

use std::sync::atomic::Ordering;

use super::head::block_of;
use lookout_util::clock::now_ms;

use super::Store;
use crate::chunk::{self, Runs, SeriesColumn};
use crate::codec;
use crate::db::ChunkRow;
use crate::plan::RAW_WINDOW;
use crate::rollup::floor_to;
use crate::StoreError;

/// Samples written per write-ahead block at most (keeps statements small while catching up).
const MAX_BLOCK_SAMPLES: usize = 200_000;

impl Store {
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

    pub(super) async fn cycle(&self) -> Result<(), StoreError> {
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
}
