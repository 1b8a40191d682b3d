//! The history store's health in `/metrics`.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;

use super::encode::{counter, gauge};

pub struct StoreCollector(pub lookout_store::Store);

impl std::fmt::Debug for StoreCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoreCollector")
    }
}

impl Collector for StoreCollector {
    fn encode(&self, mut e: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let h = self.0.health();
        let up = matches!(h.status, lookout_store::HealthStatus::Ok);
        gauge(
            &mut e,
            "lookout_store_up",
            "1 when the history store accepts writes",
            u64::from(up),
        )?;
        gauge(
            &mut e,
            "lookout_store_buffered_samples",
            "Samples waiting in memory to be written",
            h.buffered_samples as u64,
        )?;
        counter(
            &mut e,
            "lookout_store_dropped_samples",
            "Samples dropped because the buffer was full while the store was down",
            h.dropped_samples,
        )?;
        counter(
            &mut e,
            "lookout_store_flush_errors",
            "Failed writes to the history store",
            h.flush_errors,
        )?;
        if let Some(ms) = h.last_flush_ms {
            gauge(
                &mut e,
                "lookout_store_last_flush_timestamp_seconds",
                "When history was last written, seconds since the Unix epoch",
                ms as f64 / 1000.0,
            )?;
        }
        Ok(())
    }
}
