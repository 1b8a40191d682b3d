//! The hub's handle on the engine: the PromQL client and the settings every fleet query
//! shares (host label, windows, known dashboard URLs).

use crate::config::FleetConfig;
use crate::promql::{quote, PromQl, QueryError};

#[derive(Clone, Debug)]
pub struct Fleet {
    pub promql: PromQl,
    pub cfg: FleetConfig,
}

impl Fleet {
    /// `None` when `fleet.query_url` is unset.
    pub fn new(cfg: &FleetConfig) -> Result<Option<Self>, String> {
        Ok(PromQl::new(cfg)?.map(|promql| Self {
            promql,
            cfg: cfg.clone(),
        }))
    }

    pub fn host_label(&self) -> &str {
        &self.cfg.host_label
    }

    /// `{host_label="host"}` (the value quoted as PromQL requires).
    pub fn host_matcher(&self, host: &str) -> String {
        format!("{}=\"{}\"", self.cfg.host_label, quote(host))
    }

    /// A rate window of at least `rate_window_s` and at least two steps of a chart.
    pub fn rate_window(&self, step_s: f64) -> String {
        let w = (self.cfg.rate_window_s as f64).max(2.0 * step_s).ceil() as u64;
        format!("{w}s")
    }
}

/// Host names and search texts as clients send them: bounded and printable.
pub fn check_text(what: &str, s: &str, max: usize) -> Result<(), QueryError> {
    if s.is_empty() || s.len() > max || s.chars().any(char::is_control) {
        return Err(QueryError::Invalid(format!(
            "{what}: 1..={max} bytes without control characters"
        )));
    }
    Ok(())
}

pub fn now_s() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}
