//! `/api/v1/fleet/hosts/{host}/history`: one host's charts over a time range, each one
//! PromQL `query_range` restricted to that host.

use serde::Serialize;
use utoipa::ToSchema;

use crate::promql::QueryError;
use crate::reader::{check_text, now_s, Fleet};

/// Longest range one request may ask for.
pub const MAX_RANGE_S: u64 = 31 * 86_400;
/// Most points per chart (the step grows to stay under it).
pub const MAX_POINTS: u64 = 1_000;
/// Longest host label value accepted.
pub const MAX_HOST_BYTES: usize = 256;

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Chart {
    /// `cpu_percent`, `memory_used_bytes`, `memory_percent`, `filesystem_used_percent`,
    /// `containers_running`, `network_receive_bytes_per_second`,
    /// `network_transmit_bytes_per_second`.
    pub name: String,
    /// `[unix seconds, value]` pairs, oldest first.
    pub points: Vec<[f64; 2]>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HostHistory {
    pub host: String,
    pub start: f64,
    pub end: f64,
    pub step_s: f64,
    pub charts: Vec<Chart>,
}

impl Fleet {
    /// The last `range_s` seconds of `host` (all charts empty when the engine has none).
    pub async fn history(
        &self,
        host: &str,
        range_s: u64,
        step_s: Option<u64>,
    ) -> Result<HostHistory, QueryError> {
        check_text("host", host, MAX_HOST_BYTES)?;
        if range_s == 0 || range_s > MAX_RANGE_S {
            return Err(QueryError::Invalid(format!(
                "range_s: must be 1..={MAX_RANGE_S}"
            )));
        }
        let step = step_s.unwrap_or(0).max(range_s.div_ceil(MAX_POINTS)).max(1) as f64;
        let end = now_s();
        let start = end - range_s as f64;
        let m = self.host_matcher(host);
        let w = self.rate_window(step);
        let charts = [
            (
                "cpu_percent",
                format!(
                    "100 * (1 - sum(rate(lookout_host_cpu_seconds_total{{{m},mode=~\"idle|iowait\"}}[{w}])) \
                     / sum(rate(lookout_host_cpu_seconds_total{{{m}}}[{w}])))"
                ),
            ),
            (
                "memory_used_bytes",
                format!("max(lookout_host_memory_used_bytes{{{m}}})"),
            ),
            (
                "memory_percent",
                format!(
                    "100 * max(lookout_host_memory_used_bytes{{{m}}}) / max(lookout_host_memory_total_bytes{{{m}}})"
                ),
            ),
            (
                "filesystem_used_percent",
                format!(
                    "max(100 * lookout_host_filesystem_used_bytes{{{m}}} / (lookout_host_filesystem_size_bytes{{{m}}} > 0))"
                ),
            ),
            (
                "containers_running",
                format!("sum(lookout_container_running{{{m}}})"),
            ),
            (
                "network_receive_bytes_per_second",
                format!("sum(rate(lookout_host_network_receive_bytes_total{{{m}}}[{w}]))"),
            ),
            (
                "network_transmit_bytes_per_second",
                format!("sum(rate(lookout_host_network_transmit_bytes_total{{{m}}}[{w}]))"),
            ),
        ];
        let answers = futures_util::future::join_all(
            charts
                .iter()
                .map(|(_, q)| self.promql.query_range(q, start, end, step)),
        )
        .await;
        let mut out = Vec::with_capacity(charts.len());
        for ((name, _), answer) in charts.iter().zip(answers) {
            let points = answer?
                .into_iter()
                .next()
                .map(|r| {
                    r.points
                        .into_iter()
                        .filter(|(_, v)| v.is_finite())
                        .map(|(t, v)| [t, v])
                        .collect()
                })
                .unwrap_or_default();
            out.push(Chart {
                name: (*name).to_owned(),
                points,
            });
        }
        Ok(HostHistory {
            host: host.to_owned(),
            start,
            end,
            step_s: step,
            charts: out,
        })
    }
}
