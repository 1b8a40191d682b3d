//! `[export.remote_write]` (the agent's push) and `[fleet]` (the hub's reads). Secrets
//! (`bearer_token`, `password`) may come from `LOOKOUT_EXPORT__REMOTE_WRITE__PASSWORD_FILE`
//! and the like (lookout's `_FILE` convention); they are never printed by `Debug`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// How lookout authenticates to the engine: a bearer token or HTTP basic auth (not both).
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthSettings {
    /// `Authorization: Bearer <token>`.
    pub bearer_token: Option<String>,
    /// HTTP basic auth user (with `password`).
    pub username: Option<String>,
    pub password: Option<String>,
}

impl std::fmt::Debug for AuthSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let set = |o: &Option<String>| o.as_ref().map(|_| "<redacted>");
        f.debug_struct("AuthSettings")
            .field("bearer_token", &set(&self.bearer_token))
            .field("username", &self.username)
            .field("password", &set(&self.password))
            .finish()
    }
}

/// TLS towards the engine. Without settings the system's roots verify it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsSettings {
    /// PEM CA bundle that signs the engine's certificate (added to the system roots).
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate and key, for engines that require mutual TLS.
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    /// Accept any certificate. Only for a lab: it makes TLS worthless.
    pub insecure_skip_verify: bool,
}

/// `[export]`: where this lookout sends its figures.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExportConfig {
    pub remote_write: RemoteWriteConfig,
}

/// `[export.remote_write]`: Prometheus remote-write 1.0 push.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RemoteWriteConfig {
    /// The receiver, e.g. `http://vm:8428/api/v1/write`; unset: no push.
    pub url: Option<String>,
    /// `[…auth]`: bearer token or basic auth.
    pub auth: AuthSettings,
    pub tls: TlsSettings,
    /// Seconds between two pushes (each sends the latest sample's figures).
    pub interval_s: u64,
    /// The `instance` label of every series; unset: the host's name.
    pub instance: Option<String>,
    /// The `job` label of every series.
    pub job: String,
    /// This lookout's own address for the hub's links, e.g. `https://web-1:8443/`
    /// (sent as the `lookout_url` label of `lookout_build_info` only).
    pub dashboard_url: Option<String>,
    /// More labels on every series (e.g. `region = "eu-1"`).
    pub labels: BTreeMap<String, String>,
    /// Samples held while the receiver is down; the oldest go first past this.
    pub max_queue_samples: usize,
    /// Most samples in one request.
    pub max_samples_per_request: usize,
    /// Limit of one request.
    pub timeout_s: u64,
    /// Longest wait between two attempts while the receiver fails.
    pub max_backoff_s: u64,
}

impl Default for RemoteWriteConfig {
    fn default() -> Self {
        Self {
            url: None,
            auth: AuthSettings::default(),
            tls: TlsSettings::default(),
            interval_s: 10,
            instance: None,
            job: "lookout".into(),
            dashboard_url: None,
            labels: BTreeMap::new(),
            max_queue_samples: 200_000,
            max_samples_per_request: 5_000,
            timeout_s: 10,
            max_backoff_s: 30,
        }
    }
}

/// `[fleet]`: the hub's view of every host, read from a PromQL engine.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FleetConfig {
    /// The engine's PromQL HTTP API root, e.g. `http://vm:8428` (`/api/v1/query` is added);
    /// unset: no fleet view (its routes answer 503).
    pub query_url: Option<String>,
    /// `[…auth]`: bearer token or basic auth.
    pub auth: AuthSettings,
    pub tls: TlsSettings,
    /// The label that tells hosts apart.
    pub host_label: String,
    /// A host with no sample for this long is marked stale.
    pub stale_after_s: u64,
    /// Hosts silent for longer than this leave the list.
    pub forget_after_s: u64,
    /// Window of the CPU rate (at least two push intervals).
    pub rate_window_s: u64,
    /// Limit of one query to the engine.
    pub timeout_s: u64,
    /// Dashboard URLs of hosts by host label value (wins over the agents' `lookout_url`).
    pub host_urls: BTreeMap<String, String>,
}

impl Default for FleetConfig {
    fn default() -> Self {
        Self {
            query_url: None,
            auth: AuthSettings::default(),
            tls: TlsSettings::default(),
            host_label: "instance".into(),
            stale_after_s: 60,
            forget_after_s: 7 * 86_400,
            rate_window_s: 60,
            timeout_s: 10,
            host_urls: BTreeMap::new(),
        }
    }
}

/// Label names as Prometheus allows them: `[a-zA-Z_][a-zA-Z0-9_]*`, not `__`-reserved.
pub fn valid_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with("__")
}

impl RemoteWriteConfig {
    /// Problems an operator must fix before the push can start.
    pub fn validate(&self) -> Result<(), String> {
        let Some(url) = &self.url else { return Ok(()) };
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err("export.remote_write.url: must be an http:// or https:// URL".into());
        }
        check_auth("export.remote_write", &self.auth)?;
        if self.interval_s == 0 || self.interval_s > 3600 {
            return Err("export.remote_write.interval_s: must be 1..=3600".into());
        }
        if self.max_samples_per_request == 0 || self.max_queue_samples == 0 {
            return Err(
                "export.remote_write: max_queue_samples and max_samples_per_request must be > 0"
                    .into(),
            );
        }
        for name in self.labels.keys() {
            if !valid_label_name(name) || matches!(name.as_str(), "instance" | "job") {
                return Err(format!(
                    "export.remote_write.labels: {name:?} is not a label name lookout may set"
                ));
            }
        }
        Ok(())
    }
}

impl FleetConfig {
    pub fn validate(&self) -> Result<(), String> {
        let Some(url) = &self.query_url else {
            return Ok(());
        };
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err("fleet.query_url: must be an http:// or https:// URL".into());
        }
        check_auth("fleet", &self.auth)?;
        if !valid_label_name(&self.host_label) {
            return Err("fleet.host_label: not a Prometheus label name".into());
        }
        if self.rate_window_s == 0 || self.stale_after_s == 0 || self.forget_after_s == 0 {
            return Err("fleet: rate_window_s, stale_after_s, forget_after_s must be > 0".into());
        }
        Ok(())
    }
}

fn check_auth(section: &str, a: &AuthSettings) -> Result<(), String> {
    if a.bearer_token.is_some() && (a.username.is_some() || a.password.is_some()) {
        return Err(format!(
            "{section}: set bearer_token or username/password, not both"
        ));
    }
    if a.password.is_some() && a.username.is_none() {
        return Err(format!("{section}.password: needs username"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_names_the_key() {
        let mut c = RemoteWriteConfig {
            url: Some("ftp://x".into()),
            ..Default::default()
        };
        assert!(c.validate().unwrap_err().contains("url"));
        c.url = Some("http://127.0.0.1:1/api/v1/write".into());
        c.labels.insert("__name__".into(), "x".into());
        assert!(c.validate().unwrap_err().contains("labels"));
        c.labels.clear();
        c.auth.bearer_token = Some("t".into());
        c.auth.username = Some("u".into());
        assert!(c.validate().unwrap_err().contains("not both"));
    }

    #[test]
    fn debug_hides_secrets() {
        let a = AuthSettings {
            bearer_token: Some("s3cret".into()),
            username: Some("u".into()),
            password: Some("pw-s3cret".into()),
        };
        let text = format!("{a:?}");
        assert!(!text.contains("s3cret"), "{text}");
    }
}
