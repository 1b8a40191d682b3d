//! The push's own figures in `/metrics` (and so in the push itself): what was sent, what
//! was dropped and why, failed requests by reason, the queue's depth, the last success.

use std::sync::atomic::{AtomicI64, AtomicU64};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Reason {
    pub reason: &'static str,
}

/// Why a request failed (a fixed set: these are labels).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// 401/403: the receiver refused the credentials.
    Auth,
    /// Any other 4xx: the receiver refused the data (retrying cannot help).
    Refused,
    /// 5xx or 429: the receiver is in trouble; retried.
    Server,
    /// No answer: connection refused, timeout, TLS failure; retried.
    Network,
}

impl Failure {
    pub fn label(self) -> &'static str {
        match self {
            Failure::Auth => "auth",
            Failure::Refused => "refused",
            Failure::Server => "server",
            Failure::Network => "network",
        }
    }

    /// Worth sending the same samples again later.
    pub fn retryable(self) -> bool {
        matches!(self, Failure::Server | Failure::Network)
    }
}

#[derive(Debug, Default, Clone)]
pub struct PushStats {
    pub sent_samples: Counter,
    pub sent_bytes: Counter,
    pub requests: Counter,
    pub failed_requests: Family<Reason, Counter>,
    pub dropped_samples: Family<Reason, Counter>,
    pub queue_samples: Gauge,
    pub last_success_ms: Gauge<i64, AtomicI64>,
    pub retries: Counter<u64, AtomicU64>,
}

impl PushStats {
    pub fn failed(&self, f: Failure) {
        self.failed_requests
            .get_or_create(&Reason { reason: f.label() })
            .inc();
    }

    pub fn dropped(&self, reason: &'static str, n: usize) {
        if n > 0 {
            self.dropped_samples
                .get_or_create(&Reason { reason })
                .inc_by(n as u64);
        }
    }
}

fn family(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    m: &impl EncodeMetric,
) -> Result<(), std::fmt::Error> {
    m.encode(e.encode_descriptor(name, help, None, m.metric_type())?)
}

impl Collector for PushStats {
    fn encode(&self, mut e: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        family(
            &mut e,
            "lookout_remote_write_samples",
            "Samples the receiver accepted",
            &self.sent_samples,
        )?;
        family(
            &mut e,
            "lookout_remote_write_sent_bytes",
            "Bytes of accepted request bodies (protobuf, snappy-compressed)",
            &self.sent_bytes,
        )?;
        family(
            &mut e,
            "lookout_remote_write_requests",
            "Push requests sent, whatever their outcome",
            &self.requests,
        )?;
        family(
            &mut e,
            "lookout_remote_write_failed_requests",
            "Push requests that failed, by reason (auth, refused, server, network)",
            &self.failed_requests,
        )?;
        family(
            &mut e,
            "lookout_remote_write_dropped_samples",
            "Samples never delivered, by reason (queue_full: the oldest made room; refused: the receiver rejected them)",
            &self.dropped_samples,
        )?;
        family(
            &mut e,
            "lookout_remote_write_retries",
            "Requests sent again after a retryable failure",
            &self.retries,
        )?;
        family(
            &mut e,
            "lookout_remote_write_queue_samples",
            "Samples waiting to be sent",
            &self.queue_samples,
        )?;
        let ms = self.last_success_ms.get();
        if ms > 0 {
            let g = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
            g.set(ms as f64 / 1000.0);
            family(
                &mut e,
                "lookout_remote_write_last_success_timestamp_seconds",
                "When the receiver last accepted a push, seconds since the Unix epoch",
                &g,
            )?;
        }
        Ok(())
    }
}
