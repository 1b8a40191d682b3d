//! The in-memory side: ingest into the pending buffer, the head (written ticks of the windows
//! not yet sealed), and write-ahead blocks to and from ticks.

use std::collections::BTreeMap;

use super::{HeadSeries, SeriesMeta, State, Store, Tick};
use crate::chunk::{self, Block, Runs, SeriesColumn};
use crate::codec::{self, XorWriter};
use crate::plan::RAW_WINDOW;
use crate::rollup::floor_to;
use crate::{SeriesKey, StoreError};

impl State {
    /// Nothing older than this is held in any tier.
    pub(super) fn held_floor(&self) -> i64 {
        self.avail
            .hour_from
            .min(self.avail.minute_from)
            .min(self.avail.raw_from)
    }

    pub(super) fn intern(&mut self, key: &SeriesKey) -> u32 {
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
    pub(super) fn apply(&mut self, t: &Tick) -> bool {
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

    pub(super) fn head_bytes(&self) -> usize {
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
    pub(super) fn memory_samples(
        &self,
        id: u32,
        from: i64,
        to: i64,
    ) -> Result<Vec<(i64, f64)>, StoreError> {
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
pub(super) fn block_of(ticks: &[&Tick]) -> Block {
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
pub(super) fn ticks_of(b: &Block) -> Vec<Tick> {
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

impl Store {
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
}
