//! Chunk and block layouts (pure).
//!
//! All series sampled in one tick share its timestamp, so timestamps are stored once per raw
//! window (a *ticks* column) and each series' chunk holds only which ticks it has (runs of tick
//! indices) and its values. A flushed write-ahead *block* is the same thing for a handful of
//! ticks: its own ticks column plus one (runs, values) entry per series.

use crate::codec::{self, CodecError, Cursor, MAX_COLUMN_LEN};

/// Runs of tick indices `(start, len)`, sorted and non-overlapping.
pub type Runs = Vec<(u32, u32)>;

/// Appends tick index `i` to `runs` (indices must be appended in increasing order).
#[inline]
pub fn runs_push(runs: &mut Runs, i: u32) {
    if let Some(last) = runs.last_mut() {
        if last.0 + last.1 == i {
            last.1 += 1;
            return;
        }
    }
    runs.push((i, 1));
}

pub fn runs_len(runs: &Runs) -> usize {
    runs.iter().map(|r| r.1 as usize).sum()
}

pub fn runs_iter(runs: &Runs) -> impl Iterator<Item = u32> + '_ {
    runs.iter().flat_map(|&(s, l)| s..s + l)
}

fn put_runs(out: &mut Vec<u8>, runs: &Runs) {
    codec::put_uvarint(out, runs.len() as u64);
    let mut end = 0u32;
    for &(s, l) in runs {
        codec::put_uvarint(out, (s - end) as u64);
        codec::put_uvarint(out, l as u64);
        end = s + l;
    }
}

fn get_runs(c: &mut Cursor<'_>, max_index: usize) -> Result<Runs, CodecError> {
    let n = c.count(MAX_COLUMN_LEN)?;
    let mut runs = Vec::with_capacity(n.min(1024));
    let mut end = 0u64;
    for _ in 0..n {
        let s = end + c.uvarint()?;
        let l = c.uvarint()?;
        end = s + l;
        if l == 0 || end > max_index as u64 {
            return Err(CodecError("run out of range"));
        }
        runs.push((s as u32, l as u32));
    }
    Ok(runs)
}

/// One series inside a window: which ticks it has and its values.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesColumn {
    pub runs: Runs,
    pub values: Vec<f64>,
}

/// Encodes a series chunk (runs + values); `values.len()` must equal the runs' total.
pub fn encode_chunk(col: &SeriesColumn) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + col.values.len());
    put_runs(&mut out, &col.runs);
    out.extend_from_slice(&codec::encode_values(&col.values));
    out
}

/// Decodes a series chunk whose window has `n_ticks` ticks.
pub fn decode_chunk(data: &[u8], n_ticks: usize) -> Result<SeriesColumn, CodecError> {
    let mut c = Cursor::new(data);
    let runs = get_runs(&mut c, n_ticks)?;
    let n = runs_len(&runs);
    let values = codec::decode_values(c.rest(), n)?;
    Ok(SeriesColumn { runs, values })
}

/// Pairs a decoded column with its window's ticks.
pub fn samples(ticks: &[i64], col: &SeriesColumn) -> Result<Vec<(i64, f64)>, CodecError> {
    let mut out = Vec::with_capacity(col.values.len());
    for (i, v) in runs_iter(&col.runs).zip(&col.values) {
        let t = *ticks
            .get(i as usize)
            .ok_or(CodecError("tick index beyond ticks"))?;
        out.push((t, *v));
    }
    Ok(out)
}

/// A write-ahead block: a few ticks and every series sampled in them.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Block {
    pub ticks: Vec<i64>,
    pub series: Vec<(u32, SeriesColumn)>,
}

const BLOCK_MAGIC: u8 = 0xB1;

pub fn encode_block(b: &Block) -> Vec<u8> {
    let mut out = vec![BLOCK_MAGIC];
    let t = codec::encode_ticks(&b.ticks);
    codec::put_uvarint(&mut out, t.len() as u64);
    out.extend_from_slice(&t);
    codec::put_uvarint(&mut out, b.series.len() as u64);
    for (id, col) in &b.series {
        codec::put_uvarint(&mut out, *id as u64);
        let c = encode_chunk(col);
        codec::put_uvarint(&mut out, c.len() as u64);
        out.extend_from_slice(&c);
    }
    out
}

pub fn decode_block(data: &[u8]) -> Result<Block, CodecError> {
    let mut c = Cursor::new(data);
    if c.u8()? != BLOCK_MAGIC {
        return Err(CodecError("not a block"));
    }
    let tl = c.len_prefix()?;
    let ticks = codec::decode_ticks(c.bytes(tl)?)?;
    let n = c.count(MAX_COLUMN_LEN)?;
    let mut series = Vec::with_capacity(n.min(1 << 16));
    for _ in 0..n {
        let id = c.uvarint()?;
        let id = u32::try_from(id).map_err(|_| CodecError("series id out of range"))?;
        let l = c.len_prefix()?;
        series.push((id, decode_chunk(c.bytes(l)?, ticks.len())?));
    }
    Ok(Block { ticks, series })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn runs_build_and_iterate() {
        let mut r = Runs::new();
        for i in [0, 1, 2, 5, 6, 9] {
            runs_push(&mut r, i);
        }
        assert_eq!(r, vec![(0, 3), (5, 2), (9, 1)]);
        assert_eq!(runs_iter(&r).collect::<Vec<_>>(), vec![0, 1, 2, 5, 6, 9]);
        assert_eq!(runs_len(&r), 6);
    }

    proptest! {
        #[test]
        fn block_round_trip(nt in 1usize..50, cols in prop::collection::vec((0u32..5000, prop::collection::vec(any::<bool>(), 50), prop::collection::vec(-1e6f64..1e6, 50)), 0..10)) {
            let ticks: Vec<i64> = (0..nt as i64).map(|i| 1_700_000_000_000 + i * 1000 + (i % 3)).collect();
            let mut b = Block { ticks: ticks.clone(), series: vec![] };
            for (id, present, vals) in cols {
                let mut runs = Runs::new();
                let mut values = vec![];
                for (i, p) in present.iter().take(nt).enumerate() {
                    if *p { runs_push(&mut runs, i as u32); values.push(vals[i]); }
                }
                b.series.push((id, SeriesColumn { runs, values }));
            }
            let enc = encode_block(&b);
            let d = decode_block(&enc).unwrap();
            prop_assert_eq!(&d, &b);
            for cut in [0, enc.len() / 3, enc.len().saturating_sub(1)] {
                if cut < enc.len() { let _ = decode_block(&enc[..cut]); }
            }
        }
    }
}
