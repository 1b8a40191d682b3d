//! Prometheus exposition: lookout's own HTTP figures (a prometheus-client registry that
//! lives as long as the process) and the latest snapshot's host, container and GPU figures,
//! encoded from the snapshot at scrape time by the collectors of the submodules (no
//! per-tick registry updates, so sampling costs nothing extra when nobody scrapes).
//!
//! Both exposition formats come from the same registries: the Prometheus text format 0.0.4
//! by default, OpenMetrics 1.0 when the scraper asks for it ([`Format::negotiate`]).

mod alerts;
mod container;
pub mod encode;
mod gpu;
mod host;
mod process;
mod sensors;
mod store;

use std::sync::{Arc, Mutex};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

use lookout_probe::Snapshot;

pub use alerts::AlertsCollector;
pub use process::ProcessFigures;
pub use store::StoreCollector;

/// The exposition format of one scrape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `text/plain; version=0.0.4`: what every Prometheus client library serves by default.
    PrometheusText,
    /// `application/openmetrics-text; version=1.0.0`, only when the `Accept` header asks.
    OpenMetrics,
}

impl Format {
    /// Picks the format from an `Accept` header as the Prometheus client libraries do:
    /// OpenMetrics when `application/openmetrics-text` is accepted (q > 0), else text 0.0.4.
    pub fn negotiate(accept: Option<&str>) -> Self {
        let asks_openmetrics = accept.unwrap_or("").split(',').any(|range| {
            let mut parts = range.split(';').map(str::trim);
            let media = parts.next().unwrap_or("");
            let refused = parts.any(|p| {
                p.strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f64>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            media.eq_ignore_ascii_case("application/openmetrics-text") && !refused
        });
        if asks_openmetrics {
            Format::OpenMetrics
        } else {
            Format::PrometheusText
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::PrometheusText => prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
    revision: &'static str,
}

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

pub struct HttpMetrics {
    registry: Mutex<Registry>,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram>,
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
        registry.register(
            "lookout_build",
            "Version of the running lookout (value 1)",
            Info::new(BuildLabels {
                version: env!("CARGO_PKG_VERSION"),
                revision: option_env!("LOOKOUT_GIT_REVISION").unwrap_or("unknown"),
            }),
        );
        registry.register_collector(Box::new(process::ProcessCollector));
        Self {
            registry: Mutex::new(registry),
            requests,
            latency,
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

    /// Registers a collector of another part of lookout (e.g. the history store's health).
    pub fn register_collector(&self, collector: impl Collector) {
        self.registry
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .register_collector(Box::new(collector));
    }

    /// The whole exposition in `format`: the latest snapshot's families, then lookout's own.
    pub fn render(&self, snapshot: Option<Arc<Snapshot>>, format: Format) -> String {
        let mut scrape = Registry::default();
        if let Some(s) = snapshot {
            scrape.register_collector(Box::new(host::HostCollector(s.clone())));
            scrape.register_collector(Box::new(container::ContainerCollector(s.clone())));
            scrape.register_collector(Box::new(sensors::SensorCollector(s.clone())));
            scrape.register_collector(Box::new(gpu::GpuCollector(s)));
        }
        let registry = self
            .registry
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut out = String::with_capacity(16 * 1024);
        // Writing to a String cannot fail.
        match format {
            Format::PrometheusText => {
                use prometheus_client::encoding::prometheus_text::encode;
                let _ = encode(&mut out, &scrape);
                let _ = encode(&mut out, &registry);
            }
            Format::OpenMetrics => {
                use prometheus_client::encoding::text::{encode_eof, encode_registry};
                let _ = encode_registry(&mut out, &scrape);
                let _ = encode_registry(&mut out, &registry);
                let _ = encode_eof(&mut out);
            }
        }
        out
    }
}

#[cfg(test)]
mod format_tests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_ends_with_eof_and_counts_requests() {
        let m = HttpMetrics::new();
        m.observe("GET", "/data/cpu", 200, 0.0001);
        let text = m.render(None, Format::OpenMetrics);
        assert!(
            text.contains(
                "lookout_http_requests_total{method=\"GET\",route=\"/data/cpu\",status=\"200\"} 1"
            ),
            "{text}"
        );
        assert!(text.trim_end().ends_with("# EOF"));
    }
}
