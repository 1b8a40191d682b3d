//! The alert engine's states in `/metrics`: `lookout_alerts{alertname,state}` (the shape
//! Prometheus' own `ALERTS` series has) and the cost of the last evaluation.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;

use super::encode::{gauge, gauges, Labels};

pub struct AlertsCollector(pub lookout_alert::AlertService);

impl std::fmt::Debug for AlertsCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AlertsCollector")
    }
}

impl Collector for AlertsCollector {
    fn encode(&self, mut e: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let counts = self.0.state_counts();
        let rows: Vec<(Labels<'_>, u64)> = counts
            .iter()
            .map(|(name, state, n)| (vec![("alertname", name.as_str()), ("state", *state)], *n))
            .collect();
        gauges(
            &mut e,
            "lookout_alerts",
            "Alerts now pending or firing, by rule and state",
            &rows,
        )?;
        gauge(
            &mut e,
            "lookout_alert_evaluation_seconds",
            "Time the last evaluation of every rule took",
            self.0.last_eval_ns() as f64 / 1e9,
        )
    }
}
