//! Compaction of sealed days into 1-minute and 1-hour rollups, and retention per tier.

use std::collections::{BTreeMap, HashMap};

use super::{ms, Store};
use crate::chunk;
use crate::codec;
use crate::db::ChunkRow;
use crate::plan::{self, HOUR_ROW, MINUTE_ROW, RAW_WINDOW};
use crate::rollup::{self, floor_to, DAY, HOUR, MINUTE};
use crate::StoreError;

/// Series rolled up per transaction.
const ROLLUP_BATCH: usize = 64;

impl Store {
    pub(super) async fn roll_up(&self) -> Result<(), StoreError> {
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

    pub(super) async fn retention(&self) -> Result<(), StoreError> {
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
}
