//! Prometheus exposition: lookout's own HTTP figures (prometheus-client registry) and the
//! latest snapshot's host and container figures, written straight from the snapshot at scrape
//! time (no per-tick registry updates, so sampling costs nothing extra when nobody scrapes).

use std::fmt::Write as _;
use std::sync::Mutex;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use lookout_probe::{ContainersView, Snapshot};

/// The route label of a request no route matched (its path is never a label).
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// The method label: the standard methods by name, anything else `other`. Request methods
/// are chosen by the client (any token up to hyper's limit), so they never become labels.
pub fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    const KNOWN: [(Method, &str); 9] = [
        (Method::GET, "GET"),
        (Method::HEAD, "HEAD"),
        (Method::POST, "POST"),
        (Method::PUT, "PUT"),
        (Method::DELETE, "DELETE"),
        (Method::PATCH, "PATCH"),
        (Method::OPTIONS, "OPTIONS"),
        (Method::CONNECT, "CONNECT"),
        (Method::TRACE, "TRACE"),
    ];
    KNOWN
        .iter()
        .find(|(m, _)| m == method)
        .map_or("other", |(_, name)| name)
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub method: String,
    pub route: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub route: String,
}

/// Extra sections other parts of lookout add to `/metrics` (store health, hedging, GPUs):
/// each writes OpenMetrics text for its own families.
pub trait MetricsSection: Send + Sync {
    fn encode(&self, out: &mut String);
}

pub struct HttpMetrics {
    registry: Mutex<Registry>,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram>,
    sections: Mutex<Vec<std::sync::Arc<dyn MetricsSection>>>,
}

impl Default for HttpMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl HttpMetrics {
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        // 50 µs .. ~13 s: lookout's own answers sit in the lowest buckets, hedged calls higher.
        let latency = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
                0.00005, 2.0, 19,
            ))
        });
        registry.register(
            "lookout_http_requests",
            "HTTP requests answered, by method, route and status",
            requests.clone(),
        );
        registry.register(
            "lookout_http_request_duration_seconds",
            "Time to answer an HTTP request, by route",
            latency.clone(),
        );
        Self {
            registry: Mutex::new(registry),
            requests,
            latency,
            sections: Mutex::new(Vec::new()),
        }
    }

    /// Counts one answered request. `method` and `route` must come from fixed sets
    /// ([`method_label`], matched route templates or [`UNMATCHED_ROUTE`]).
    pub fn observe(&self, method: &'static str, route: &str, status: u16, seconds: f64) {
        self.requests
            .get_or_create(&RequestLabels {
                method: method.to_owned(),
                route: route.to_owned(),
                status,
            })
            .inc();
        self.latency
            .get_or_create(&RouteLabels {
                route: route.to_owned(),
            })
            .observe(seconds);
    }

    /// Registers a metric of another part of lookout (e.g. hedging) in the same exposition.
    pub fn register(
        &self,
        name: &str,
        help: &str,
        metric: impl prometheus_client::registry::Metric,
    ) {
        self.registry
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .register(name, help, metric);
    }

    pub fn add_section(&self, section: std::sync::Arc<dyn MetricsSection>) {
        self.sections
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(section);
    }

    /// The whole exposition, OpenMetrics text.
    pub fn render(&self, snapshot: Option<&Snapshot>) -> String {
        let mut out = String::with_capacity(16 * 1024);
        if let Some(s) = snapshot {
            encode_snapshot(s, &mut out);
            crate::routes::gpu::encode_metrics(s, &mut out);
        }
        for section in self
            .sections
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
        {
            section.encode(&mut out);
        }
        let registry = self
            .registry
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode_registry(&mut out, &registry);
        let _ = prometheus_client::encoding::text::encode_eof(&mut out);
        out
    }
}

/// The history store's health in `/metrics`.
pub struct StoreSection(pub lookout_store::Store);

impl MetricsSection for StoreSection {
    fn encode(&self, out: &mut String) {
        let h = self.0.health();
        family(
            out,
            "lookout_store_up",
            "gauge",
            "1 when the history store accepts writes",
        );
        let _ = writeln!(
            out,
            "lookout_store_up {}",
            u8::from(matches!(h.status, lookout_store::HealthStatus::Ok))
        );
        family(
            out,
            "lookout_store_buffered_samples",
            "gauge",
            "Samples waiting in memory to be written",
        );
        let _ = writeln!(out, "lookout_store_buffered_samples {}", h.buffered_samples);
        family(
            out,
            "lookout_store_dropped_samples",
            "counter",
            "Samples dropped because the buffer was full while the store was down",
        );
        let _ = writeln!(
            out,
            "lookout_store_dropped_samples_total {}",
            h.dropped_samples
        );
        family(
            out,
            "lookout_store_flush_errors",
            "counter",
            "Failed writes to the history store",
        );
        let _ = writeln!(out, "lookout_store_flush_errors_total {}", h.flush_errors);
        if let Some(ms) = h.last_flush_ms {
            family(
                out,
                "lookout_store_last_flush_timestamp_seconds",
                "gauge",
                "When history was last written",
            );
            let _ = writeln!(
                out,
                "lookout_store_last_flush_timestamp_seconds {}",
                ms as f64 / 1000.0
            );
        }
    }
}

/// Escapes a label value as the exposition format requires.
pub fn escape_label(v: &str) -> std::borrow::Cow<'_, str> {
    if !v.contains(['\\', '"', '\n']) {
        return std::borrow::Cow::Borrowed(v);
    }
    let mut s = String::with_capacity(v.len() + 4);
    for c in v.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    std::borrow::Cow::Owned(s)
}

/// Writes one metric family header.
pub fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn encode_snapshot(s: &Snapshot, out: &mut String) {
    let h = &s.host;
    family(
        out,
        "lookout_host_cpu_usage_percent",
        "gauge",
        "Busy CPU share since the previous tick (100 - idle - iowait)",
    );
    let _ = writeln!(
        out,
        "lookout_host_cpu_usage_percent{{cpu=\"total\"}} {}",
        h.cpu.total.usage
    );
    for (i, c) in h.cpu.per_core.iter().enumerate() {
        let _ = writeln!(
            out,
            "lookout_host_cpu_usage_percent{{cpu=\"{i}\"}} {}",
            c.usage
        );
    }
    family(
        out,
        "lookout_host_cpu_mode_percent",
        "gauge",
        "Host-wide CPU share by mode since the previous tick",
    );
    let t = &h.cpu.total;
    for (mode, v) in [
        ("user", t.user),
        ("nice", t.nice),
        ("system", t.system),
        ("iowait", t.iowait),
        ("irq", t.irq),
        ("softirq", t.softirq),
        ("steal", t.steal),
        ("idle", t.idle),
    ] {
        let _ = writeln!(out, "lookout_host_cpu_mode_percent{{mode=\"{mode}\"}} {v}");
    }
    family(
        out,
        "lookout_host_memory_bytes",
        "gauge",
        "Host memory by kind",
    );
    let m = &h.memory;
    for (kind, v) in [
        ("total", m.total),
        ("available", m.available),
        ("used", m.used),
        ("free", m.free),
        ("buffers", m.buffers),
        ("cached", m.cached),
        ("swap_total", m.swap_total),
        ("swap_used", m.swap_used),
        ("swap_free", m.swap_free),
    ] {
        let _ = writeln!(out, "lookout_host_memory_bytes{{kind=\"{kind}\"}} {v}");
    }
    family(out, "lookout_host_load", "gauge", "Load average");
    for (p, v) in [
        ("1m", h.load.one),
        ("5m", h.load.five),
        ("15m", h.load.fifteen),
    ] {
        let _ = writeln!(out, "lookout_host_load{{period=\"{p}\"}} {v}");
    }
    family(out, "lookout_host_uptime_seconds", "gauge", "Host uptime");
    let _ = writeln!(out, "lookout_host_uptime_seconds {}", h.uptime_secs);
    family(
        out,
        "lookout_host_filesystem_bytes",
        "gauge",
        "Filesystem space by kind",
    );
    for f in &h.filesystems {
        let (d, mp, ft) = (
            escape_label(&f.device),
            escape_label(&f.mount_point),
            escape_label(&f.fs_type),
        );
        for (kind, v) in [
            ("size", f.size_bytes),
            ("used", f.used_bytes),
            ("available", f.available_bytes),
        ] {
            let _ = writeln!(out, "lookout_host_filesystem_bytes{{device=\"{d}\",mountpoint=\"{mp}\",fstype=\"{ft}\",kind=\"{kind}\"}} {v}");
        }
    }
    family(
        out,
        "lookout_host_network_bytes",
        "counter",
        "Bytes through a network interface",
    );
    for n in &h.network {
        let d = escape_label(&n.name);
        let _ = writeln!(
            out,
            "lookout_host_network_bytes_total{{device=\"{d}\",direction=\"rx\"}} {}",
            n.rx_bytes
        );
        let _ = writeln!(
            out,
            "lookout_host_network_bytes_total{{device=\"{d}\",direction=\"tx\"}} {}",
            n.tx_bytes
        );
    }
    family(
        out,
        "lookout_host_network_errors",
        "counter",
        "Errors on a network interface",
    );
    for n in &h.network {
        let d = escape_label(&n.name);
        let _ = writeln!(
            out,
            "lookout_host_network_errors_total{{device=\"{d}\",direction=\"rx\"}} {}",
            n.rx_errors
        );
        let _ = writeln!(
            out,
            "lookout_host_network_errors_total{{device=\"{d}\",direction=\"tx\"}} {}",
            n.tx_errors
        );
    }
    family(
        out,
        "lookout_host_disk_bytes",
        "counter",
        "Bytes read from and written to a block device",
    );
    for dsk in &h.disks {
        let d = escape_label(&dsk.name);
        let _ = writeln!(
            out,
            "lookout_host_disk_bytes_total{{device=\"{d}\",direction=\"read\"}} {}",
            dsk.read_bytes
        );
        let _ = writeln!(
            out,
            "lookout_host_disk_bytes_total{{device=\"{d}\",direction=\"write\"}} {}",
            dsk.written_bytes
        );
    }
    family(
        out,
        "lookout_docker_up",
        "gauge",
        "1 when the Docker engine answered at the last tick",
    );
    match &s.containers {
        ContainersView::Unavailable { .. } => {
            let _ = writeln!(out, "lookout_docker_up 0");
        }
        ContainersView::Available { containers } => {
            let _ = writeln!(out, "lookout_docker_up 1");
            family(
                out,
                "lookout_container_running",
                "gauge",
                "1 when the container is running",
            );
            for c in containers {
                let _ = writeln!(
                    out,
                    "lookout_container_running{{id=\"{}\",name=\"{}\",image=\"{}\"}} {}",
                    escape_label(&c.id),
                    escape_label(&c.name),
                    escape_label(&c.image),
                    u8::from(c.state == "running")
                );
            }
            family(
                out,
                "lookout_container_cpu_percent",
                "gauge",
                "Container CPU as docker stats shows it (0..cores x 100)",
            );
            for c in containers {
                if let Some(v) = c.cpu_percent {
                    let _ = writeln!(
                        out,
                        "lookout_container_cpu_percent{{id=\"{}\",name=\"{}\"}} {v}",
                        escape_label(&c.id),
                        escape_label(&c.name)
                    );
                }
            }
            family(
                out,
                "lookout_container_memory_used_bytes",
                "gauge",
                "Container memory as docker stats shows it (usage - inactive file)",
            );
            for c in containers {
                if let Some(v) = c.memory_used_bytes {
                    let _ = writeln!(
                        out,
                        "lookout_container_memory_used_bytes{{id=\"{}\",name=\"{}\"}} {v}",
                        escape_label(&c.id),
                        escape_label(&c.name)
                    );
                }
            }
            family(
                out,
                "lookout_container_memory_limit_bytes",
                "gauge",
                "Container memory limit",
            );
            for c in containers {
                if let Some(v) = c.memory_limit_bytes {
                    let _ = writeln!(
                        out,
                        "lookout_container_memory_limit_bytes{{id=\"{}\",name=\"{}\"}} {v}",
                        escape_label(&c.id),
                        escape_label(&c.name)
                    );
                }
            }
            family(
                out,
                "lookout_container_network_bytes",
                "counter",
                "Container network bytes",
            );
            for c in containers {
                if let (Some(rx), Some(tx)) = (c.net_rx_bytes, c.net_tx_bytes) {
                    let (id, name) = (escape_label(&c.id), escape_label(&c.name));
                    let _ = writeln!(out, "lookout_container_network_bytes_total{{id=\"{id}\",name=\"{name}\",direction=\"rx\"}} {rx}");
                    let _ = writeln!(out, "lookout_container_network_bytes_total{{id=\"{id}\",name=\"{name}\",direction=\"tx\"}} {tx}");
                }
            }
            family(
                out,
                "lookout_container_block_bytes",
                "counter",
                "Container block I/O bytes",
            );
            for c in containers {
                if let (Some(r), Some(w)) = (c.block_read_bytes, c.block_write_bytes) {
                    let (id, name) = (escape_label(&c.id), escape_label(&c.name));
                    let _ = writeln!(out, "lookout_container_block_bytes_total{{id=\"{id}\",name=\"{name}\",direction=\"read\"}} {r}");
                    let _ = writeln!(out, "lookout_container_block_bytes_total{{id=\"{id}\",name=\"{name}\",direction=\"write\"}} {w}");
                }
            }
            family(
                out,
                "lookout_container_pids",
                "gauge",
                "Processes in the container",
            );
            for c in containers {
                if let Some(v) = c.pids {
                    let _ = writeln!(
                        out,
                        "lookout_container_pids{{id=\"{}\",name=\"{}\"}} {v}",
                        escape_label(&c.id),
                        escape_label(&c.name)
                    );
                }
            }
        }
    }
    family(
        out,
        "lookout_sample_timestamp_seconds",
        "gauge",
        "When the latest sample was taken",
    );
    let _ = writeln!(
        out,
        "lookout_sample_timestamp_seconds {}",
        s.taken_at_ms as f64 / 1000.0
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_escaping() {
        assert_eq!(escape_label("plain"), "plain");
        assert_eq!(escape_label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }

    #[test]
    fn render_ends_with_eof_and_counts_requests() {
        let m = HttpMetrics::new();
        m.observe("GET", "/data/cpu", 200, 0.0001);
        let text = m.render(None);
        assert!(
            text.contains(
                "lookout_http_requests_total{method=\"GET\",route=\"/data/cpu\",status=\"200\"} 1"
            ),
            "{text}"
        );
        assert!(text.trim_end().ends_with("# EOF"));
    }
}
