//! `lookout serve`: the sampler loop, the listeners and graceful shutdown.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result};
use tokio::sync::{watch, Notify};

use lookout_api::auth::{Scope, SharedTokens, TokenFile, TokenSet};
use lookout_api::{ApiConfig, AppState};
use lookout_probe::docker::DockerControl;
use lookout_probe::host::HostPaths;
use lookout_probe::{Sampler, Snapshot};

use crate::config::Config;

/// How often the token file is checked for changes (create/revoke take effect this fast).
const TOKEN_RELOAD_EVERY: Duration = Duration::from_secs(2);
/// Longest a client may take to send its request line and headers.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

pub async fn run(cfg: Config) -> Result<()> {
    create_private_dir(&cfg.data_dir)?;
    let tokens = load_tokens(&cfg)?;

    let (snapshot_tx, snapshot_rx) = watch::channel::<Option<Arc<Snapshot>>>(None);
    let resample = Arc::new(Notify::new());
    let (stop_tx, stop_rx) = watch::channel(false);

    let sampler = Sampler::new(
        HostPaths {
            proc_root: cfg.host.proc_root.clone(),
            sys_root: cfg.host.sys_root.clone(),
            root_fs: cfg.host.root_fs.clone(),
        },
        cfg.sampling.docker,
    )
    .with_gpu(cfg.sampling.gpu);
    let interval = Duration::from_millis(cfg.sampling.interval_ms.max(100));
    let store = open_store(&cfg).await?;
    let meter = crate::concertim::start(&cfg, stop_rx.clone()).await?;
    let sampler_task = tokio::spawn(sample_forever(
        sampler,
        interval,
        snapshot_tx,
        resample.clone(),
        stop_rx.clone(),
        meter,
        store.clone(),
    ));

    let state = AppState::new(
        snapshot_rx,
        tokens,
        Arc::new(DockerControl),
        ApiConfig {
            auth_enabled: cfg.auth.enabled,
            public_docs: cfg.auth.public_docs,
            request_timeout: Duration::from_millis(cfg.limits.request_timeout_ms),
            body_limit_bytes: cfg.limits.body_bytes,
        },
        resample,
    );
    let state = match crate::alerts::start(&cfg, state.snapshot.clone(), stop_rx.clone())? {
        Some(alerts) => state.with_alerts(alerts),
        None => state,
    };
    let state = match &store {
        Some(store) => state.with_store(store.clone()),
        None => state,
    };
    let upstream = smart_upstream(&cfg).await?;
    let state = state
        .with_smart(&upstream, cfg.smart.policy())
        .context("[smart] configuration")?;
    tracing::info!(%upstream, "smart: hedging upstream");
    if !cfg.auth.enabled {
        tracing::warn!("authentication is turned OFF by configuration: every route answers anyone");
    }
    tokio::spawn(reload_tokens_forever(
        cfg.clone(),
        state.clone(),
        stop_rx.clone(),
    ));
    let app = lookout_api::app(state);

    let handle = axum_server::Handle::new();
    tokio::spawn(shutdown_on_signal(handle.clone(), stop_tx));

    let served = if cfg.http {
        tracing::info!(listen = %cfg.listen, "serving plain HTTP");
        let mut server = axum_server::bind(cfg.listen);
        bound_headers(server.http_builder());
        server.handle(handle).serve(app.into_make_service()).await
    } else {
        let tls = crate::tls::listener_config(&cfg)?;
        tracing::info!(listen = %cfg.listen, "serving HTTPS (TLS 1.3 only)");
        let mut server = axum_server::bind_rustls(
            cfg.listen,
            axum_server::tls_rustls::RustlsConfig::from_config(tls),
        );
        bound_headers(server.http_builder());
        server.handle(handle).serve(app.into_make_service()).await
    };
    served.with_context(|| format!("listening on {}", cfg.listen))?;
    let _ = sampler_task.await;
    if let Some(store) = store {
        // A graceful stop loses nothing: everything sampled so far is written.
        match store.close().await {
            Ok(()) => tracing::info!("history flushed"),
            Err(e) => tracing::error!(error = %e, "history could not be flushed on stop"),
        }
    }
    tracing::info!("stopped");
    Ok(())
}

/// A client that trickles its request headers is cut off instead of holding a connection
/// (the request-time bound in the API starts only once headers are in).
pub fn bound_headers(
    builder: &mut hyper_util::server::conn::auto::Builder<hyper_util::rt::TokioExecutor>,
) {
    builder
        .http1()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
}

/// Opens the history store. A server that is down at start is retried in the background
/// (the store buffers); a store that cannot be opened at all leaves lookout serving live
/// figures, with the history routes answering 503 and the reason logged.
async fn open_store(cfg: &Config) -> Result<Option<lookout_store::Store>> {
    if !cfg.store.enabled {
        tracing::info!("history disabled by configuration");
        return Ok(None);
    }
    let store_cfg = cfg.store.store_config(&cfg.data_dir);
    match lookout_store::Store::open(store_cfg).await {
        Ok(store) => {
            tracing::info!(backend = %cfg.store.backend_name(), "history store open");
            Ok(Some(store))
        }
        Err(lookout_store::StoreError::Config(m)) => {
            Err(anyhow::anyhow!("[store] configuration: {m}"))
        }
        Err(e) => {
            tracing::error!(error = %e, "history store unavailable; serving live figures only");
            Ok(None)
        }
    }
}

/// The configured upstream, or lookout's own work simulator on a loopback port (`builtin`).
async fn smart_upstream(cfg: &Config) -> Result<String> {
    if cfg.smart.upstream != "builtin" {
        return Ok(cfg.smart.upstream.clone());
    }
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .context("binding the built-in work simulator")?;
    let addr = listener.local_addr()?;
    let sim = lookout_hedge::sim::WorkSim::new(lookout_hedge::sim::WorkSimConfig::default())
        .context("built-in work simulator")?;
    tokio::spawn(async move {
        if let Err(e) = sim.serve(listener).await {
            tracing::error!(error = %e, "built-in work simulator stopped");
        }
    });
    Ok(format!("http://{addr}/api/work"))
}

fn create_private_dir(dir: &std::path::Path) -> Result<()> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("creating data directory {}", dir.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
    }
    Ok(())
}

fn token_set(cfg: &Config, file: &TokenFile) -> Result<TokenSet> {
    let mut set = TokenSet::from_records(&file.load()?);
    if let Ok(t) = std::env::var("LOOKOUT_TOKEN") {
        if !t.trim().is_empty() {
            set = set.with_static("LOOKOUT_TOKEN", t.trim(), Scope::Admin);
        }
    }
    let _ = cfg;
    Ok(set)
}

/// Loads the token hashes; on a first start with no token at all, creates an admin token and
/// prints it once (only its hash is kept).
fn load_tokens(cfg: &Config) -> Result<SharedTokens> {
    let file = TokenFile::new(cfg.data_dir.join("tokens.json"));
    let mut set = token_set(cfg, &file)?;
    if set.is_empty() && cfg.auth.enabled {
        let token = file.create("admin", Scope::Admin)?;
        println!(
            "\nlookout: first start, created an admin token. It is shown only this once:\n\n    {token}\n\n\
             Use it as `Authorization: Bearer <token>`. More: `lookout token create --name NAME --scope read|control|admin`.\n"
        );
        set = token_set(cfg, &file)?;
    }
    tracing::info!(tokens = set.len(), file = %file.path().display(), "tokens loaded");
    Ok(SharedTokens::new(set))
}

async fn reload_tokens_forever(cfg: Config, state: AppState, mut stop: watch::Receiver<bool>) {
    let file = TokenFile::new(cfg.data_dir.join("tokens.json"));
    let modified = |f: &TokenFile| -> Option<SystemTime> {
        std::fs::metadata(f.path()).and_then(|m| m.modified()).ok()
    };
    let mut seen = modified(&file);
    loop {
        tokio::select! {
            _ = tokio::time::sleep(TOKEN_RELOAD_EVERY) => {}
            _ = stop.changed() => return,
        }
        let now = modified(&file);
        if now == seen {
            continue;
        }
        seen = now;
        match token_set(&cfg, &file) {
            Ok(set) => {
                tracing::info!(tokens = set.len(), "token file changed, reloaded");
                state.replace_tokens(set);
            }
            // Keep serving with the previous set rather than locking everyone out.
            Err(e) => {
                tracing::error!(error = %e, "token file unreadable, keeping the previous tokens")
            }
        }
    }
}

/// Samples on a fixed timer (and early when a control action asks), publishing each snapshot
/// whole. A tick that overruns delays the next one instead of bunching ticks up.
async fn sample_forever(
    mut sampler: Sampler,
    interval: Duration,
    publish: watch::Sender<Option<Arc<Snapshot>>>,
    resample: Arc<Notify>,
    mut stop: watch::Receiver<bool>,
    meter: Option<tokio::sync::mpsc::Sender<Arc<Snapshot>>>,
    store: Option<lookout_store::Store>,
) {
    let mut timer = tokio::time::interval(interval);
    timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut docker_was_up: Option<bool> = None;
    loop {
        tokio::select! {
            _ = timer.tick() => {}
            _ = resample.notified() => {}
            _ = stop.changed() => return,
        }
        let snapshot = sampler.sample().await;
        let up = snapshot.containers.containers().is_some();
        if docker_was_up != Some(up) {
            match &snapshot.containers {
                lookout_probe::ContainersView::Available { containers } => {
                    tracing::info!(containers = containers.len(), "docker engine reachable")
                }
                lookout_probe::ContainersView::Unavailable { reason } => {
                    tracing::warn!(%reason, "docker engine unreachable; host figures still served, retrying every tick")
                }
            }
            docker_was_up = Some(up);
        }
        let snapshot = Arc::new(snapshot);
        if let Some(store) = &store {
            // Buffers in memory and returns: the store writes on its own task.
            store.ingest(
                snapshot.taken_at_ms,
                &lookout_store::points_from_snapshot(&snapshot),
            );
        }
        if let Some(meter) = &meter {
            // Never waits: a full queue only drops this tick for metering (the next interval
            // covers the gap).
            let _ = meter.try_send(snapshot.clone());
        }
        publish.send_replace(Some(snapshot));
    }
}

async fn shutdown_on_signal(
    handle: axum_server::Handle<std::net::SocketAddr>,
    stop: watch::Sender<bool>,
) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
    tracing::info!("shutting down: finishing requests in flight");
    let _ = stop.send(true);
    handle.graceful_shutdown(Some(Duration::from_secs(10)));
}
