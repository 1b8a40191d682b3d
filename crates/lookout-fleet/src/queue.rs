//! The bounded queue between sampling and the receiver: samples wait here while the
//! receiver is slow or down; past the bound the oldest go first (and are counted). A
//! sample holds its label set through an `Arc` shared with the other samples of the same
//! series, so an outage costs ~32 bytes per queued sample, not a copy of its labels.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::proto::{Label, Sample, TimeSeries, WriteRequest};

/// One sample waiting to be sent.
#[derive(Debug, Clone)]
pub struct Pending {
    pub labels: Arc<[Label]>,
    pub value: f64,
    pub timestamp_ms: i64,
}

#[derive(Debug)]
pub struct Queue {
    items: VecDeque<(u64, Pending)>,
    next_seq: u64,
    cap: usize,
}

/// A request built from the head of the queue; [`Queue::commit`] removes what it sent.
#[derive(Debug)]
pub struct Batch {
    pub request: WriteRequest,
    pub samples: usize,
    last_seq: u64,
}

impl Queue {
    pub fn new(cap: usize) -> Self {
        Self {
            items: VecDeque::new(),
            next_seq: 0,
            cap: cap.max(1),
        }
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Adds one scrape's samples; returns how many old samples were dropped to make room.
    pub fn push_all(&mut self, samples: impl IntoIterator<Item = Pending>) -> usize {
        for p in samples {
            self.items.push_back((self.next_seq, p));
            self.next_seq += 1;
        }
        let over = self.items.len().saturating_sub(self.cap);
        self.items.drain(..over);
        over
    }

    /// Up to `max` samples from the head, one series entry per sample (several samples of
    /// a series keep their order, oldest first, as the receivers require).
    pub fn batch(&self, max: usize) -> Option<Batch> {
        let n = self.items.len().min(max.max(1));
        if n == 0 {
            return None;
        }
        let mut timeseries = Vec::with_capacity(n);
        let mut last_seq = 0;
        for (seq, p) in self.items.iter().take(n) {
            last_seq = *seq;
            timeseries.push(TimeSeries {
                labels: p.labels.to_vec(),
                samples: vec![Sample {
                    value: p.value,
                    timestamp: p.timestamp_ms,
                }],
            });
        }
        Some(Batch {
            request: WriteRequest { timeseries },
            samples: n,
            last_seq,
        })
    }

    /// Removes the samples of `batch` still queued (some may have been dropped meanwhile
    /// to make room); returns how many were removed.
    pub fn commit(&mut self, batch: &Batch) -> usize {
        let mut removed = 0;
        while self
            .items
            .front()
            .is_some_and(|(seq, _)| *seq <= batch.last_seq)
        {
            self.items.pop_front();
            removed += 1;
        }
        removed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(v: f64) -> Pending {
        Pending {
            labels: Arc::from(vec![Label {
                name: "__name__".into(),
                value: "x".into(),
            }]),
            value: v,
            timestamp_ms: v as i64,
        }
    }

    #[test]
    fn bound_drops_oldest_and_commit_survives_drops() {
        let mut q = Queue::new(3);
        assert_eq!(q.push_all([p(1.0), p(2.0)]), 0);
        let b = q.batch(10).unwrap();
        assert_eq!(b.samples, 2);
        // Two more arrive while the batch is in flight: the oldest goes.
        assert_eq!(q.push_all([p(3.0), p(4.0)]), 1);
        assert_eq!(q.commit(&b), 1);
        let b = q.batch(1).unwrap();
        assert_eq!(b.request.timeseries[0].samples[0].value, 3.0);
        q.commit(&b);
        assert_eq!(q.len(), 1);
    }
}
