//! `lookout work-sim --listen ADDR`: the stand-in upstream `GET /api/work` for demos, tests
//! and benchmarks of `/api/smart` (docs/architecture.md, "Hedged requests").
//!
//! The simulator itself lives in `lookout-hedge` (feature `sim`) so the hedge crate's own
//! end-to-end tests and benchmark use exactly the same code; this module only binds the
//! listener and logs. Requires `lookout-hedge = { workspace = true, features = ["sim"] }`.

use std::net::SocketAddr;

use anyhow::Context as _;

use lookout_hedge::sim::WorkSim;
pub use lookout_hedge::sim::WorkSimConfig;

/// Binds `listen` and serves work-sim until the task is dropped (e.g. on shutdown).
pub async fn run(listen: SocketAddr, cfg: WorkSimConfig) -> anyhow::Result<()> {
    let sim = WorkSim::new(cfg.clone()).context("work-sim configuration")?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("work-sim: binding {listen}"))?;
    let addr = listener.local_addr().context("work-sim: local address")?;
    tracing::info!(
        %addr,
        seed = cfg.seed,
        latency_min_ms = cfg.latency_min_ms,
        latency_max_ms = cfg.latency_max_ms,
        fail_rate = cfg.fail_rate,
        invalid_json_rate = cfg.invalid_json_rate,
        hang_rate = cfg.hang_rate,
        "work-sim serving GET /api/work and /api/work/stats"
    );
    sim.serve(listener).await.context("work-sim: serving")
}
