//! The agent's push: a collector task turns the latest `/metrics` figures into queued
//! samples every interval, a sender task drains the queue into remote-write requests,
//! retrying with back-off. Sampling never waits on either: the collector reads the latest
//! figures through a callback and the queue is bounded (the oldest samples go first).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{watch, Notify};

use crate::config::RemoteWriteConfig;
use crate::exposition;
use crate::http::{chain, EngineClient};
use crate::proto::{encode_body, Label};
use crate::queue::{Batch, Queue};
use crate::stats::{Failure, PushStats};

/// The latest figures as `(sampled at, ms since the epoch; /metrics text 0.0.4)`, or `None`
/// before the first sample.
pub type Render = Arc<dyn Fn() -> Option<(i64, String)> + Send + Sync>;

/// First wait after a retryable failure; doubles up to `max_backoff_s`.
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// A failing receiver is logged at its first failure, then at most this often.
const LOG_EVERY: Duration = Duration::from_secs(60);
/// How much of a receiver's error answer reaches the log.
const ERROR_BODY_CHARS: usize = 300;

/// Starts the push when `export.remote_write.url` is set; the returned figures belong in
/// `/metrics`. `host_name` is the `instance` label unless the configuration names one.
pub fn start(
    cfg: &RemoteWriteConfig,
    host_name: &str,
    render: Render,
    stop: watch::Receiver<bool>,
) -> Result<Option<PushStats>, String> {
    let Some(url) = cfg.url.clone() else {
        return Ok(None);
    };
    cfg.validate()?;
    let client = EngineClient::new(
        "export.remote_write",
        &cfg.auth,
        &cfg.tls,
        Duration::from_secs(cfg.timeout_s.max(1)),
    )?;
    let stats = PushStats::default();
    let queue = Arc::new(Mutex::new(Queue::new(cfg.max_queue_samples)));
    let wake = Arc::new(Notify::new());
    let instance = cfg.instance.clone().unwrap_or_else(|| host_name.to_owned());
    let collector = Collector {
        common: common_labels(cfg, &instance),
        dashboard_url: cfg.dashboard_url.clone(),
        interned: HashMap::new(),
        last_ts: None,
    };
    tracing::info!(
        receiver = %redact(&url),
        %instance,
        interval_s = cfg.interval_s,
        max_queue_samples = cfg.max_queue_samples,
        "remote write: pushing"
    );
    tokio::spawn(collect_forever(
        collector,
        render,
        Duration::from_secs(cfg.interval_s.max(1)),
        queue.clone(),
        wake.clone(),
        stats.clone(),
        stop.clone(),
    ));
    tokio::spawn(send_forever(Sender {
        client,
        url,
        queue,
        wake,
        stats: stats.clone(),
        max_samples: cfg.max_samples_per_request,
        max_backoff: Duration::from_secs(cfg.max_backoff_s.max(1)),
        stop,
    }));
    Ok(Some(stats))
}

fn common_labels(cfg: &RemoteWriteConfig, instance: &str) -> Vec<(String, String)> {
    let mut l = vec![
        ("instance".to_owned(), instance.to_owned()),
        ("job".to_owned(), cfg.job.clone()),
    ];
    l.extend(cfg.labels.iter().map(|(k, v)| (k.clone(), v.clone())));
    l
}

/// The receiver's URL without credentials, for logs.
pub fn redact(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut u) => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.set_query(None);
            u.to_string()
        }
        Err(_) => "<unparsable url>".into(),
    }
}

struct Collector {
    common: Vec<(String, String)>,
    dashboard_url: Option<String>,
    /// Label sets of the previous scrape, by series key, shared by queued samples.
    interned: HashMap<String, Arc<[Label]>>,
    last_ts: Option<i64>,
}

impl Collector {
    /// One scrape's samples, or nothing when the figures have not changed since the last.
    fn scrape(&mut self, ts: i64, text: &str) -> Vec<crate::queue::Pending> {
        if self.last_ts == Some(ts) {
            return Vec::new();
        }
        self.last_ts = Some(ts);
        let rows = exposition::parse(text);
        let mut next = HashMap::with_capacity(rows.len());
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let mut key = row.name.clone();
            for (k, v) in &row.labels {
                key.push('\u{1}');
                key.push_str(k);
                key.push('\u{2}');
                key.push_str(v);
            }
            let labels = match self.interned.remove(&key) {
                Some(l) => l,
                None => self.series_labels(&row),
            };
            next.insert(key, labels.clone());
            out.push(crate::queue::Pending {
                labels,
                value: row.value,
                timestamp_ms: ts,
            });
        }
        self.interned = next;
        out
    }

    /// `__name__`, the row's labels, then lookout's (which win a clash), sorted by name.
    fn series_labels(&self, row: &exposition::Row) -> Arc<[Label]> {
        let mut map: std::collections::BTreeMap<&str, &str> = std::collections::BTreeMap::new();
        map.insert("__name__", &row.name);
        for (k, v) in &row.labels {
            map.insert(k, v);
        }
        for (k, v) in &self.common {
            map.insert(k, v);
        }
        if row.name == "lookout_build_info" {
            if let Some(u) = &self.dashboard_url {
                map.insert("lookout_url", u);
            }
        }
        map.into_iter()
            .map(|(name, value)| Label {
                name: name.to_owned(),
                value: value.to_owned(),
            })
            .collect()
    }
}

async fn collect_forever(
    mut c: Collector,
    render: Render,
    every: Duration,
    queue: Arc<Mutex<Queue>>,
    wake: Arc<Notify>,
    stats: PushStats,
    mut stop: watch::Receiver<bool>,
) {
    let mut timer = tokio::time::interval(every);
    timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = timer.tick() => {}
            _ = stop.changed() => return,
        }
        let Some((ts, text)) = render() else { continue };
        let samples = c.scrape(ts, &text);
        if samples.is_empty() {
            continue;
        }
        let (dropped, len) = {
            let mut q = queue
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            (q.push_all(samples), q.len())
        };
        if dropped > 0 {
            stats.dropped("queue_full", dropped);
        }
        stats.queue_samples.set(len as i64);
        wake.notify_one();
    }
}

struct Sender {
    client: EngineClient,
    url: String,
    queue: Arc<Mutex<Queue>>,
    wake: Arc<Notify>,
    stats: PushStats,
    max_samples: usize,
    max_backoff: Duration,
    stop: watch::Receiver<bool>,
}

impl Sender {
    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Removes what `batch` held and updates the depth gauge.
    fn commit(&self, batch: &Batch) -> usize {
        let mut q = self.lock();
        let n = q.commit(batch);
        self.stats.queue_samples.set(q.len() as i64);
        n
    }
}

async fn send_forever(mut s: Sender) {
    let mut backoff = FIRST_BACKOFF;
    let mut failing_since: Option<Instant> = None;
    let mut last_log: Option<Instant> = None;
    loop {
        let batch = s.lock().batch(s.max_samples);
        let Some(batch) = batch else {
            tokio::select! {
                _ = s.wake.notified() => continue,
                _ = s.stop.changed() => return,
            }
        };
        let body = match encode_body(&batch.request) {
            Ok(b) => b,
            Err(e) => {
                // Cannot happen for a well-formed request; never loop on it.
                let n = s.commit(&batch);
                s.stats.dropped("refused", n);
                tracing::error!(error = %e, "remote write: could not compress a request");
                continue;
            }
        };
        let bytes = body.len();
        s.stats.requests.inc();
        match post(&s.client, &s.url, body).await {
            Ok(()) => {
                let n = s.commit(&batch);
                s.stats.sent_samples.inc_by(n as u64);
                s.stats.sent_bytes.inc_by(bytes as u64);
                s.stats.last_success_ms.set(now_ms());
                backoff = FIRST_BACKOFF;
                if let Some(since) = failing_since.take() {
                    tracing::info!(
                        receiver = %redact(&s.url),
                        failing_for_s = since.elapsed().as_secs(),
                        "remote write: receiver accepts pushes again"
                    );
                }
                last_log = None;
            }
            Err((failure, detail)) => {
                s.stats.failed(failure);
                failing_since.get_or_insert_with(Instant::now);
                if last_log.is_none_or(|t| t.elapsed() >= LOG_EVERY) {
                    last_log = Some(Instant::now());
                    log_failure(&s.url, failure, &detail, s.lock().len());
                }
                if failure.retryable() {
                    s.stats.retries.inc();
                    let wait = jitter(backoff);
                    backoff = (backoff * 2).min(s.max_backoff);
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = s.stop.changed() => return,
                    }
                } else {
                    // The receiver will refuse these samples whatever we do: drop them
                    // (counted) rather than hold the queue behind them.
                    let n = s.commit(&batch);
                    s.stats.dropped("refused", n);
                }
            }
        }
    }
}

fn log_failure(url: &str, failure: Failure, detail: &str, queued: usize) {
    let receiver = redact(url);
    match failure {
        Failure::Auth => tracing::error!(
            %receiver, reason = failure.label(), %detail, queued,
            "remote write: the receiver refused lookout's credentials \
             (check export.remote_write.auth); samples are dropped until it accepts them"
        ),
        Failure::Refused => tracing::error!(
            %receiver, reason = failure.label(), %detail, queued,
            "remote write: the receiver refused the samples; they are dropped"
        ),
        Failure::Server | Failure::Network => tracing::warn!(
            %receiver, reason = failure.label(), %detail, queued,
            "remote write: receiver unavailable; samples wait in the queue and are retried"
        ),
    }
}

async fn post(client: &EngineClient, url: &str, body: Vec<u8>) -> Result<(), (Failure, String)> {
    let resp = client
        .request(reqwest::Method::POST, url)
        .header("content-type", "application/x-protobuf")
        .header("content-encoding", "snappy")
        .header("x-prometheus-remote-write-version", "0.1.0")
        .header("user-agent", concat!("lookout/", env!("CARGO_PKG_VERSION")))
        .body(body)
        .send()
        .await
        .map_err(|e| (Failure::Network, chain(&e)))?;
    let status = resp.status();
    if status.is_success() {
        return Ok(());
    }
    let failure = match status.as_u16() {
        401 | 403 => Failure::Auth,
        429 => Failure::Server,
        400..=499 => Failure::Refused,
        _ => Failure::Server,
    };
    let text = resp.text().await.unwrap_or_default();
    let text: String = text.chars().take(ERROR_BODY_CHARS).collect();
    Err((failure, format!("HTTP {status}: {}", text.trim())))
}

/// `d` ± 20 %, so agents restarted together do not retry in step.
fn jitter(d: Duration) -> Duration {
    let f: f64 = rand::random_range(0.8..1.2);
    d.mul_f64(f)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrape_adds_labels_shares_them_and_skips_repeats() {
        let cfg = RemoteWriteConfig {
            labels: [("region".to_owned(), "eu".to_owned())].into(),
            dashboard_url: Some("https://h1:8443/".into()),
            ..Default::default()
        };
        let mut c = Collector {
            common: common_labels(&cfg, "h1"),
            dashboard_url: cfg.dashboard_url.clone(),
            interned: HashMap::new(),
            last_ts: None,
        };
        let text = "a{z=\"1\"} 2\nlookout_build_info{version=\"0.1\"} 1\n";
        let first = c.scrape(1000, text);
        assert_eq!(first.len(), 2);
        let names: Vec<&str> = first[0].labels.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["__name__", "instance", "job", "region", "z"]);
        assert!(first[1].labels.iter().any(|l| l.name == "lookout_url"));
        assert!(!first[0].labels.iter().any(|l| l.name == "lookout_url"));
        assert!(c.scrape(1000, text).is_empty(), "same sample twice");
        let second = c.scrape(2000, text);
        assert!(Arc::ptr_eq(&first[0].labels, &second[0].labels));
    }

    #[test]
    fn redact_strips_credentials() {
        assert_eq!(
            redact("https://u:p@vm:8428/api/v1/write?token=x"),
            "https://vm:8428/api/v1/write"
        );
    }
}
