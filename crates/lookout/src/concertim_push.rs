//! `[concertim.push]`: the settings of the credits/cost push to Concertim's own API
//! (lookout_cloud::push). Off while `url` is unset; the password comes from
//! `CONCERTIM_PUSH_PASSWORD` (or the file `CONCERTIM_PUSH_PASSWORD_FILE` names) before the
//! configuration, and is never logged.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Result};

use lookout_cloud::local::LocalBackend;
use lookout_cloud::push::{ConcertimPush, PushConfig};
use lookout_cloud::CloudBackend;

use crate::config::ConcertimConfig;

/// The push, when `[concertim.push] url` is set; a URL without a login or password is an
/// error at start (a push that can never sign in would only log failures).
pub fn from_config(
    c: &ConcertimConfig,
    ledger: &Arc<LocalBackend>,
    backend: &Arc<dyn CloudBackend>,
) -> Result<Option<ConcertimPush>> {
    let p = &c.push;
    let Some(url) = p.url.clone().filter(|u| !u.trim().is_empty()) else {
        return Ok(None);
    };
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(anyhow!(
            "[concertim.push] url must start with http:// or https://"
        ));
    }
    let login = p
        .login
        .clone()
        .filter(|l| !l.is_empty())
        .ok_or_else(|| anyhow!("[concertim.push] url is set but login is not"))?;
    let password = crate::env_secrets::secret("CONCERTIM_PUSH_PASSWORD")?
        .or_else(|| p.password.clone().filter(|s| !s.is_empty()))
        .ok_or_else(|| {
            anyhow!(
                "[concertim.push] needs a password: CONCERTIM_PUSH_PASSWORD (or \
                 CONCERTIM_PUSH_PASSWORD_FILE) or [concertim.push] password"
            )
        })?;
    let cfg = PushConfig {
        url,
        login,
        password,
        every: Duration::from_secs(p.every_secs.max(1)),
        timeout: Duration::from_millis(p.timeout_ms.max(100)),
    };
    tracing::info!(url = %cfg.url, every_s = cfg.every.as_secs(), "concertim: pushing credits and costs to Concertim");
    ConcertimPush::new(cfg, ledger.db().clone(), backend.clone())
        .map(Some)
        .map_err(|e| anyhow!("concertim push: {e}"))
}
