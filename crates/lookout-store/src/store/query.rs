//! Queries: each window is planned over the tiers (see [`crate::plan`]) and answered from
//! sealed chunks, rollups and memory.

use super::types::{HealthStatus, Point, SeriesInfo, Stats, StoreHealth, Summary, TierUsage};
use super::Store;
use crate::chunk;
use crate::codec;
use crate::plan::{self, Seg, Tier, RAW_WINDOW};
use crate::rollup::{self, floor_to, Agg, Bucket, DAY};
use crate::{SeriesKey, StoreError};

/// Longest window whose p95 is computed exactly from raw samples.
const EXACT_P95_SPAN: i64 = 8 * DAY;
/// Most points a range query may return.
const MAX_POINTS: i64 = 100_000;

fn tier_from_i64(t: Tier) -> i64 {
    t as i64
}

/// Items a query walks over, in time order.
enum Item {
    Sample(i64, f64),
    Bucket(Bucket),
}

impl Store {
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

/// Inclusive public bounds to a half-open window.
fn window(from_ms: i64, to_ms: i64) -> Result<(i64, i64), StoreError> {
    if to_ms < from_ms {
        return Err(StoreError::InvalidQuery("`to` is before `from`".into()));
    }
    Ok((from_ms, to_ms.saturating_add(1)))
}
