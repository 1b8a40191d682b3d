//! `[alerts]` in lookout.toml: rules, where notifications go, and how history is bounded.

use serde::{Deserialize, Serialize};

use crate::rule::Rule;

#[derive(Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlertsConfig {
    /// Evaluate rules at all.
    pub enabled: bool,
    /// Rules from the file (read-only over the API; API rules live in `alert-rules.json`).
    pub rules: Vec<Rule>,
    /// Base of each alert's `generatorURL`; unset: lookout's own listen address.
    pub external_url: Option<String>,
    /// Seconds between re-sending firing alerts to Alertmanager (Prometheus: `resend_delay`, 1m).
    pub resend_interval_s: u64,
    /// Bytes of `alert-history.jsonl` before it is rotated (one previous file is kept).
    pub history_max_bytes: u64,
    /// Give up on a notification that could not be delivered for this many seconds.
    pub give_up_after_s: u64,
    pub webhooks: Vec<WebhookConfig>,
    pub alertmanagers: Vec<AlertmanagerConfig>,
    pub email: Option<EmailConfig>,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            rules: Vec::new(),
            external_url: None,
            resend_interval_s: 60,
            history_max_bytes: 16 * 1024 * 1024,
            give_up_after_s: 86_400,
            webhooks: Vec::new(),
            alertmanagers: Vec::new(),
            email: None,
        }
    }
}

/// Never prints secrets (webhook tokens, SMTP password).
impl std::fmt::Debug for AlertsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlertsConfig")
            .field("enabled", &self.enabled)
            .field("rules", &self.rules.len())
            .field("webhooks", &self.webhooks.len())
            .field("alertmanagers", &self.alertmanagers.len())
            .field("email", &self.email.is_some())
            .finish_non_exhaustive()
    }
}

/// Body shape of a webhook.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WebhookFormat {
    /// lookout's own JSON: the transition and the alert.
    #[default]
    Json,
    /// `{"text": …}`: Slack and Mattermost incoming webhooks.
    Slack,
    /// Plain-text body with `Title`/`Priority`/`Tags` headers, to an ntfy topic URL.
    Ntfy,
    /// `{"title","message","priority"}`: Gotify's `/message`.
    Gotify,
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    pub url: String,
    #[serde(default)]
    pub format: WebhookFormat,
    /// Sent as `Authorization: Bearer …` (ntfy access tokens; Gotify takes `X-Gotify-Key`
    /// — put the key in the URL's `token` query instead). Never logged.
    #[serde(default)]
    pub bearer_token: Option<String>,
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertmanagerConfig {
    /// Alertmanager's base URL, e.g. `http://127.0.0.1:9093` (lookout posts to `/api/v2/alerts`).
    pub url: String,
}

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpSecurity {
    /// STARTTLS, required (the connection fails rather than send in clear).
    #[default]
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
    /// No encryption: only for a relay on loopback.
    None,
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    pub smtp_host: String,
    #[serde(default = "default_smtp_port")]
    pub smtp_port: u16,
    #[serde(default)]
    pub security: SmtpSecurity,
    /// PEM file of an extra CA to trust (a private relay's certificate).
    #[serde(default)]
    pub ca_file: Option<std::path::PathBuf>,
    #[serde(default)]
    pub username: Option<String>,
    /// Never logged.
    #[serde(default)]
    pub password: Option<String>,
    pub from: String,
    pub to: Vec<String>,
}

fn default_smtp_port() -> u16 {
    587
}
