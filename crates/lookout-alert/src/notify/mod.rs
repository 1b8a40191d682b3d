//! Delivery on its own task: every firing or resolved transition becomes one job per
//! channel, kept in `alert-queue.json` until delivered (so a restart loses none), retried
//! with exponential back-off, and given up (logged) only after `give_up_after_s`. Firing
//! alerts are re-sent to Alertmanager every `resend_interval_s`, as Prometheus does.

pub mod body;
#[cfg(feature = "email")]
mod email;

use std::path::PathBuf;
use std::time::Duration;

use lookout_util::clock::now_ms;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, watch};

use crate::alert::{AlertState, Transition};
use crate::config::{AlertsConfig, WebhookConfig};
use crate::persist::{load_json, save_json};
use crate::service::AlertService;

const QUEUE_FILE: &str = "alert-queue.json";
/// Jobs kept at most; past it the oldest are dropped (and logged): a channel that is down
/// for days must not grow the file without bound.
pub const MAX_QUEUE: usize = 10_000;
const FIRST_RETRY_MS: i64 = 1_000;
const MAX_RETRY_MS: i64 = 300_000;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// One notification waiting for one channel.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Job {
    channel: String,
    transition: Transition,
    attempts: u32,
    next_ms: i64,
    first_ms: i64,
}

enum Target {
    Webhook(WebhookConfig),
    Alertmanager(String),
    #[cfg(feature = "email")]
    Email(Box<email::Mailer>),
}

struct Channel {
    /// `webhook:0`, `alertmanager:1`, `email`: jobs name their channel by this.
    id: String,
    target: Target,
}

/// Waits to retry after `attempts` failures: 1 s, 2 s, 4 s … capped at 5 min.
pub fn backoff_ms(attempts: u32) -> i64 {
    FIRST_RETRY_MS
        .saturating_mul(1i64 << attempts.min(20))
        .min(MAX_RETRY_MS)
}

pub struct Notifier {
    service: AlertService,
    channels: Vec<Channel>,
    client: reqwest::Client,
    queue: Vec<Job>,
    queue_path: PathBuf,
    resend: Duration,
    give_up_ms: i64,
}

/// An error and its causes on one line (reqwest's own message hides the cause).
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}

impl Notifier {
    pub fn new(
        cfg: &AlertsConfig,
        data_dir: &std::path::Path,
        service: AlertService,
    ) -> Result<Self, String> {
        let mut channels = Vec::new();
        for (i, w) in cfg.webhooks.iter().enumerate() {
            reqwest::Url::parse(&w.url)
                .map_err(|e| format!("[[alerts.webhooks]] #{}: url: {e}", i + 1))?;
            channels.push(Channel {
                id: format!("webhook:{i}"),
                target: Target::Webhook(w.clone()),
            });
        }
        for (i, a) in cfg.alertmanagers.iter().enumerate() {
            let url = reqwest::Url::parse(&a.url)
                .and_then(|u| u.join("api/v2/alerts"))
                .map_err(|e| format!("[[alerts.alertmanagers]] #{}: url: {e}", i + 1))?;
            channels.push(Channel {
                id: format!("alertmanager:{i}"),
                target: Target::Alertmanager(url.to_string()),
            });
        }
        if let Some(e) = &cfg.email {
            #[cfg(feature = "email")]
            channels.push(Channel {
                id: "email".into(),
                target: Target::Email(Box::new(email::Mailer::new(e)?)),
            });
            #[cfg(not(feature = "email"))]
            {
                let _ = e;
                return Err("[alerts.email] needs lookout built with the `email` feature".into());
            }
        }
        let client = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("HTTP client: {}", chain(&e)))?;
        let queue_path = data_dir.join(QUEUE_FILE);
        let mut queue: Vec<Job> = load_json(&queue_path)?;
        // A channel removed from the config takes its waiting jobs with it.
        queue.retain(|j| channels.iter().any(|c| c.id == j.channel));
        if !queue.is_empty() {
            tracing::info!(
                jobs = queue.len(),
                "alert notifications from before the restart will be sent"
            );
        }
        Ok(Self {
            service,
            channels,
            client,
            queue,
            queue_path,
            resend: Duration::from_secs(cfg.resend_interval_s.max(1)),
            give_up_ms: cfg.give_up_after_s.saturating_mul(1000) as i64,
        })
    }

    fn persist(&self) {
        if let Err(e) = save_json(&self.queue_path, &self.queue) {
            tracing::error!(error = %e, "alert notification queue could not be saved");
        }
    }

    fn enqueue(&mut self, t: Transition) {
        let notify = matches!(t.to, AlertState::Firing | AlertState::Resolved);
        if !notify || t.silenced {
            return;
        }
        let now = now_ms();
        for c in &self.channels {
            self.queue.push(Job {
                channel: c.id.clone(),
                transition: t.clone(),
                attempts: 0,
                next_ms: now,
                first_ms: now,
            });
        }
        if self.queue.len() > MAX_QUEUE {
            let drop = self.queue.len() - MAX_QUEUE;
            tracing::error!(
                dropped = drop,
                "alert notification queue full; oldest notifications dropped"
            );
            self.queue.drain(..drop);
        }
    }

    async fn send(&self, job: &Job) -> Result<(), String> {
        let Some(channel) = self.channels.iter().find(|c| c.id == job.channel) else {
            return Ok(());
        };
        let t = &job.transition;
        match &channel.target {
            Target::Webhook(w) => {
                let (bytes, content_type, headers) = body::webhook_body(w.format, t);
                let mut req = self
                    .client
                    .post(&w.url)
                    .header(reqwest::header::CONTENT_TYPE, content_type)
                    .body(bytes);
                for (k, v) in headers {
                    req = req.header(k, v);
                }
                if let Some(tok) = &w.bearer_token {
                    req = req.bearer_auth(tok);
                }
                check(req.send().await).await
            }
            Target::Alertmanager(url) => {
                let valid_for = 4 * self.resend.as_millis() as i64;
                let body = serde_json::Value::Array(vec![body::alertmanager_alert(
                    &t.alert,
                    self.service.generator_url(),
                    now_ms(),
                    valid_for,
                )]);
                check(self.client.post(url).json(&body).send().await).await
            }
            #[cfg(feature = "email")]
            Target::Email(m) => m.send(t).await,
        }
    }

    async fn deliver_due(&mut self) {
        let now = now_ms();
        let due: Vec<usize> = (0..self.queue.len())
            .filter(|&i| self.queue[i].next_ms <= now)
            .collect();
        if due.is_empty() {
            return;
        }
        let results =
            futures_util::future::join_all(due.iter().map(|&i| self.send(&self.queue[i]))).await;
        let mut done = vec![false; self.queue.len()];
        for (&i, r) in due.iter().zip(results) {
            let job = &mut self.queue[i];
            match r {
                Ok(()) => {
                    tracing::info!(channel = %job.channel, alert = %job.transition.alert.rule, to = job.transition.to.as_str(), attempts = job.attempts + 1, "alert notification delivered");
                    done[i] = true;
                }
                Err(e) if now - job.first_ms >= self.give_up_ms => {
                    tracing::error!(channel = %job.channel, alert = %job.transition.alert.rule, error = %e, "alert notification given up");
                    done[i] = true;
                }
                Err(e) => {
                    job.attempts += 1;
                    job.next_ms = now + backoff_ms(job.attempts - 1);
                    tracing::warn!(channel = %job.channel, alert = %job.transition.alert.rule, error = %e, retry_in_ms = job.next_ms - now, "alert notification failed; will retry");
                }
            }
        }
        let mut i = 0;
        self.queue.retain(|_| {
            i += 1;
            !done[i - 1]
        });
        self.persist();
    }

    /// Re-sends every firing, unsilenced alert to each Alertmanager (best effort: the next
    /// round repeats it), so Alertmanager does not let them expire.
    async fn resend_firing(&self) {
        let firing = self.service.firing_unsilenced();
        if firing.is_empty() {
            return;
        }
        let now = now_ms();
        let valid_for = 4 * self.resend.as_millis() as i64;
        let body: Vec<_> = firing
            .iter()
            .map(|a| body::alertmanager_alert(a, self.service.generator_url(), now, valid_for))
            .collect();
        for c in &self.channels {
            if let Target::Alertmanager(url) = &c.target {
                if let Err(e) = check(self.client.post(url).json(&body).send().await).await {
                    tracing::warn!(channel = %c.id, error = %e, "re-sending firing alerts failed");
                }
            }
        }
    }

    /// Delivers until `stop`; then saves what is still waiting.
    pub async fn run(
        mut self,
        mut rx: mpsc::UnboundedReceiver<Transition>,
        mut stop: watch::Receiver<bool>,
    ) {
        let mut resend = tokio::time::interval(self.resend);
        resend.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        resend.tick().await;
        self.deliver_due().await;
        loop {
            let wait = self
                .queue
                .iter()
                .map(|j| j.next_ms)
                .min()
                .map(|t| Duration::from_millis((t - now_ms()).max(0) as u64))
                .unwrap_or(Duration::from_secs(3600));
            tokio::select! {
                got = rx.recv() => match got {
                    Some(t) => {
                        self.enqueue(t);
                        while let Ok(t) = rx.try_recv() {
                            self.enqueue(t);
                        }
                        self.persist();
                    }
                    None => return,
                },
                _ = tokio::time::sleep(wait) => {}
                _ = resend.tick() => self.resend_firing().await,
                _ = stop.changed() => {
                    while let Ok(t) = rx.try_recv() {
                        self.enqueue(t);
                    }
                    self.persist();
                    return;
                }
            }
            self.deliver_due().await;
        }
    }
}

async fn check(r: Result<reqwest::Response, reqwest::Error>) -> Result<(), String> {
    let r = r.map_err(|e| chain(&e))?;
    if r.status().is_success() {
        Ok(())
    } else {
        let status = r.status();
        let text = r.text().await.unwrap_or_default();
        Err(format!(
            "HTTP {status}: {}",
            text.chars().take(200).collect::<String>()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_then_caps() {
        assert_eq!(backoff_ms(0), 1_000);
        assert_eq!(backoff_ms(3), 8_000);
        assert_eq!(backoff_ms(30), MAX_RETRY_MS);
    }
}
