//! Starting alerting inside `lookout serve`, and `lookout alerts export-rules`.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use tokio::sync::watch;

use lookout_alert::AlertService;
use lookout_probe::Snapshot;

use crate::config::Config;

/// Opens the alert service and starts its two tasks: the evaluator, which follows every
/// snapshot the sampler publishes, and the notifier. `None` when `[alerts] enabled = false`.
pub fn start(
    cfg: &Config,
    snapshots: watch::Receiver<Option<Arc<Snapshot>>>,
    stop: watch::Receiver<bool>,
) -> Result<Option<AlertService>> {
    if !cfg.alerts.enabled {
        tracing::info!("alerting disabled by configuration");
        return Ok(None);
    }
    let scheme = if cfg.http { "http" } else { "https" };
    let own_url = format!("{scheme}://{}", cfg.listen);
    let (service, feed) = AlertService::open(&cfg.alerts, &cfg.data_dir, &own_url)
        .map_err(|e| anyhow::anyhow!("[alerts]: {e}"))?;
    let notifier =
        lookout_alert::notify::Notifier::new(&cfg.alerts, &cfg.data_dir, service.clone())
            .map_err(|e| anyhow::anyhow!("[alerts]: {e}"))?;
    tracing::info!(rules = service.rules().len(), "alerting on");
    tokio::spawn(service.clone().run_evaluator(snapshots, stop.clone()));
    tokio::spawn(notifier.run(feed, stop));
    Ok(Some(service))
}

/// Writes every rule (config file and API) as a Prometheus rules file, to `output` or stdout.
pub fn export_rules(cfg: &Config, output: Option<PathBuf>) -> Result<()> {
    let (service, _feed) = AlertService::open(&cfg.alerts, &cfg.data_dir, "")
        .map_err(|e| anyhow::anyhow!("[alerts]: {e}"))?;
    let rules: Vec<_> = service.rules().into_iter().map(|e| e.rule).collect();
    let yaml = lookout_alert::prometheus_rules_yaml(&rules);
    match output {
        Some(p) => std::fs::write(&p, yaml).with_context(|| format!("writing {}", p.display())),
        None => {
            print!("{yaml}");
            Ok(())
        }
    }
}
