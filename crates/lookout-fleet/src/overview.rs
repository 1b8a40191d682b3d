//! `/api/v1/fleet/hosts`: every host the engine knows, with its latest figures, from a
//! fixed handful of PromQL queries grouped by the host label (one query per figure for the
//! whole fleet, not one per host) run at once.

use std::collections::BTreeMap;

use serde::Serialize;
use utoipa::ToSchema;

use crate::promql::{literal_regex, QueryError, Sample};
use crate::reader::{now_s, Fleet};

/// Window in which a host's last sample is looked up first (older hosts get a second,
/// longer look-up of their own).
const RECENT_WINDOW_S: u64 = 3600;

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HostRow {
    /// The host label's value.
    pub host: String,
    /// When its latest sample was taken, unix seconds; `null` when older than `forget_after_s`.
    pub last_seen: Option<f64>,
    /// Seconds since `last_seen`.
    pub age_s: Option<f64>,
    /// No sample for longer than `stale_after_s`: its figures below are its last known ones
    /// (or `null` once older than the engine's look-back).
    pub stale: bool,
    /// Busy CPU, percent of all CPUs (100 − idle − iowait), over `rate_window_s`.
    pub cpu_percent: Option<f64>,
    pub memory_used_bytes: Option<f64>,
    pub memory_total_bytes: Option<f64>,
    pub memory_percent: Option<f64>,
    /// The fullest filesystem's use, percent.
    pub filesystem_used_percent: Option<f64>,
    pub containers_running: Option<f64>,
    pub containers_total: Option<f64>,
    /// Alerts firing now on that host.
    pub alerts_firing: Option<f64>,
    /// The host's own lookout dashboard, when known (`fleet.host_urls` or the agent's
    /// `export.remote_write.dashboard_url`).
    pub url: Option<String>,
    pub version: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FleetHosts {
    /// When the figures were read, unix seconds.
    pub at: f64,
    pub hosts: Vec<HostRow>,
    pub stale_hosts: usize,
}

impl Fleet {
    pub async fn overview(&self) -> Result<FleetHosts, QueryError> {
        let now = now_s();
        let l = self.host_label();
        let w = self.rate_window(0.0);
        let by = |expr: String| format!("max by ({l}) ({expr})");
        // Containers of the host's latest sample only: a removed container's last series
        // stays within the engine's look-back for minutes. Every sample of one push (or
        // scrape) carries the same timestamp, so "current" is "as new as the host's newest".
        let current = format!(
            "lookout_container_running and on ({l}, id) (timestamp(lookout_container_running) \
             >= on ({l}) group_left () max by ({l}) (timestamp(lookout_sample_timestamp_seconds)))"
        );
        let queries = [
            by(format!(
                "last_over_time(lookout_sample_timestamp_seconds[{RECENT_WINDOW_S}s])"
            )),
            format!(
                "100 * (1 - sum by ({l}) (rate(lookout_host_cpu_seconds_total{{mode=~\"idle|iowait\"}}[{w}])) \
                 / sum by ({l}) (rate(lookout_host_cpu_seconds_total[{w}])))"
            ),
            by("lookout_host_memory_used_bytes".into()),
            by("lookout_host_memory_total_bytes".into()),
            by("100 * lookout_host_filesystem_used_bytes / (lookout_host_filesystem_size_bytes > 0)".into()),
            format!("sum by ({l}) ({current})"),
            format!("count by ({l}) ({current})"),
            format!("sum by ({l}) (lookout_alerts{{state=\"firing\"}})"),
        ];
        let forget = self.cfg.forget_after_s as f64;
        let (known, figures) = futures_util::future::join(
            self.promql.series("lookout_build_info", now - forget, now),
            futures_util::future::join_all(queries.iter().map(|q| self.promql.query(q, now))),
        )
        .await;
        let known = known?;
        let mut figures: Vec<BTreeMap<String, f64>> = figures
            .into_iter()
            .map(|r| r.map(|v| self.by_host(v)))
            .collect::<Result<_, _>>()?;

        let mut rows: BTreeMap<String, HostRow> = BTreeMap::new();
        for labels in &known {
            let Some(host) = labels.get(l) else { continue };
            let row = rows.entry(host.clone()).or_insert_with(|| empty_row(host));
            if let Some(u) = labels.get("lookout_url") {
                row.url.get_or_insert_with(|| u.clone());
            }
            if let Some(v) = labels.get("version") {
                row.version = Some(v.clone());
            }
        }
        // Hosts fed by a scrape alone may lack lookout_build_info in the window: any figure
        // makes a host known.
        for f in &figures {
            for host in f.keys() {
                rows.entry(host.clone()).or_insert_with(|| empty_row(host));
            }
        }
        let last_seen = std::mem::take(&mut figures[0]);
        let mut last_seen = last_seen;
        let silent: Vec<String> = rows
            .keys()
            .filter(|h| !last_seen.contains_key(*h))
            .cloned()
            .collect();
        if !silent.is_empty() {
            last_seen.extend(self.last_seen_long_ago(&silent, now).await?);
        }
        for (host, row) in rows.iter_mut() {
            let get = |i: usize| figures[i].get(host).copied().filter(|v| v.is_finite());
            row.last_seen = last_seen.get(host).copied();
            row.age_s = row.last_seen.map(|t| (now - t).max(0.0));
            row.stale = row.age_s.is_none_or(|a| a > self.cfg.stale_after_s as f64);
            row.cpu_percent = get(1).map(|v| v.clamp(0.0, 100.0));
            row.memory_used_bytes = get(2);
            row.memory_total_bytes = get(3);
            row.memory_percent = match (get(2), get(3)) {
                (Some(u), Some(t)) if t > 0.0 => Some(100.0 * u / t),
                _ => None,
            };
            row.filesystem_used_percent = get(4);
            row.containers_running = get(5);
            row.containers_total = get(6);
            row.alerts_firing = get(7).or(Some(0.0).filter(|_| !row.stale));
            if let Some(u) = self.cfg.host_urls.get(host) {
                row.url = Some(u.clone());
            }
        }
        let hosts: Vec<HostRow> = rows.into_values().collect();
        Ok(FleetHosts {
            at: now,
            stale_hosts: hosts.iter().filter(|h| h.stale).count(),
            hosts,
        })
    }

    /// Last sample of hosts silent for over [`RECENT_WINDOW_S`], over `forget_after_s`.
    async fn last_seen_long_ago(
        &self,
        hosts: &[String],
        now: f64,
    ) -> Result<BTreeMap<String, f64>, QueryError> {
        let l = self.host_label();
        let alternatives: Vec<String> = hosts.iter().map(|h| literal_regex(h)).collect();
        let q = format!(
            "max by ({l}) (max_over_time(lookout_sample_timestamp_seconds{{{l}=~\"{}\"}}[{}s]))",
            alternatives.join("|"),
            self.cfg.forget_after_s
        );
        Ok(self.by_host(self.promql.query(&q, now).await?))
    }

    fn by_host(&self, samples: Vec<Sample>) -> BTreeMap<String, f64> {
        samples
            .into_iter()
            .filter_map(|s| Some((s.labels.get(self.host_label())?.clone(), s.value)))
            .collect()
    }
}

fn empty_row(host: &str) -> HostRow {
    HostRow {
        host: host.to_owned(),
        last_seen: None,
        age_s: None,
        stale: true,
        cpu_percent: None,
        memory_used_bytes: None,
        memory_total_bytes: None,
        memory_percent: None,
        filesystem_used_percent: None,
        containers_running: None,
        containers_total: None,
        alerts_firing: None,
        url: None,
        version: None,
    }
}
