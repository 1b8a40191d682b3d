//! Starts the remote-write push of `[export.remote_write]`: the figures pushed are those
//! `/metrics` serves, rendered from the latest snapshot by the same registry, and the
//! push's own counters join that registry.

use std::sync::Arc;

use anyhow::Result;
use tokio::sync::watch;

use lookout_api::metrics::Format;
use lookout_api::AppState;

use crate::config::Config;

pub fn start_push(cfg: &Config, state: &AppState, stop: watch::Receiver<bool>) -> Result<()> {
    let rw = &cfg.export.remote_write;
    if rw.url.is_none() {
        return Ok(());
    }
    let host = std::fs::read_to_string(cfg.host.proc_root.join("sys/kernel/hostname"))
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into());
    let st = state.clone();
    let render: lookout_fleet::push::Render = Arc::new(move || {
        let snapshot = st.snapshot.borrow().clone()?;
        let at = snapshot.taken_at_ms;
        Some((
            at,
            st.metrics.render(Some(snapshot), Format::PrometheusText),
        ))
    });
    let stats = lookout_fleet::push::start(rw, &host, render, stop)
        .map_err(|e| anyhow::anyhow!("[export.remote_write] configuration: {e}"))?;
    if let Some(stats) = stats {
        state.metrics.register_collector(stats);
    }
    Ok(())
}
