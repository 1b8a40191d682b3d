//! `lookout serve`: the sampler loop, the listeners and graceful shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::sync::{watch, Notify};

use lookout_api::auth::{Scope, SharedTokens, TokenFile, TokenFileError, TokenSet};
use lookout_api::{ApiConfig, AppState};
use lookout_probe::docker::DockerControl;
use lookout_probe::host::HostPaths;
use lookout_probe::{Sampler, Snapshot};

use crate::config::Config;
use crate::conn_limit::{ConnGuard, ConnMetrics, ConnPool};

/// Shortest `LOOKOUT_TOKEN` accepted (lookout's own tokens carry 256 random bits).
const MIN_STATIC_TOKEN_BYTES: usize = 32;
/// How often dashboard sessions of revoked tokens are swept (requests see a revocation at
/// once: every token check compares the token file's stamp; this only frees memory).
const TOKEN_SWEEP_EVERY: Duration = Duration::from_secs(2);
/// Longest a client may take to send its request line and headers, and a new connection
/// (after its TLS handshake) to send its first request.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// HTTP/2 keep-alive: a PING after this much silence...
const H2_PING_EVERY: Duration = Duration::from_secs(20);
/// ...and the connection is dropped when its answer takes longer than this (a dead peer).
const H2_PING_TIMEOUT: Duration = Duration::from_secs(10);

pub async fn run(cfg: Config) -> Result<()> {
    // Bound before anything else, so a port in use fails the start before any "serving"
    // line; it listens only once everything below is ready.
    let socket = bind(cfg.listen).with_context(|| format!("cannot listen on {}", cfg.listen))?;
    make_files_private(&cfg.data_dir);
    create_private_dir(&cfg.data_dir)?;
    crate::data_dir::ensure_writable(&cfg.data_dir)?;
    let tokens = load_tokens(&cfg)?;

    let (snapshot_tx, snapshot_rx) = watch::channel::<Option<Arc<Snapshot>>>(None);
    let resample = Arc::new(Notify::new());
    let (stop_tx, stop_rx) = watch::channel(false);

    // Before anything opens descriptors: a flood of connections must not starve sampling.
    let nofile = crate::conn_limit::raise_nofile_limit();
    let pool = ConnPool::new(crate::conn_limit::effective_cap(
        cfg.limits.max_connections,
        nofile,
    ));
    tracing::info!(
        open_files = nofile,
        max_connections = pool.limit(),
        idle_timeout_s = idle_timeout(&cfg).as_secs(),
        "connection limits"
    );

    let mut sampler = Sampler::new(
        HostPaths {
            proc_root: cfg.host.proc_root.clone(),
            sys_root: cfg.host.sys_root.clone(),
            root_fs: cfg.host.root_fs.clone(),
        },
        cfg.sampling.docker,
    )
    .with_gpu(cfg.sampling.gpu);
    if cfg.sampling.processes {
        sampler = sampler.with_processes(lookout_probe::procs::ProcessLimits {
            every_ticks: cfg.sampling.processes_every_ticks,
            max_processes: cfg.sampling.max_processes,
        });
    }
    if cfg.sampling.sensors {
        sampler = sampler.with_sensors(cfg.sampling.sensors_every_ticks);
    }
    let interval = Duration::from_millis(cfg.sampling.interval_ms.max(100));
    let store = open_store(&cfg).await?;
    let concertim = crate::concertim::start(&cfg, stop_rx.clone(), &pool).await?;
    let sampler_task = tokio::spawn(sample_forever(
        sampler,
        interval,
        snapshot_tx,
        resample.clone(),
        stop_rx.clone(),
        concertim.meter,
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
    let state = match lookout_fleet::Fleet::new(&cfg.fleet).map_err(anyhow::Error::msg)? {
        Some(fleet) => {
            tracing::info!(host_label = %cfg.fleet.host_label, "fleet view: reading a PromQL engine");
            state.with_fleet(fleet)
        }
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
    crate::fleet::start_push(&cfg, &state, stop_rx.clone())?;
    tokio::spawn(sweep_revoked_sessions_forever(
        state.clone(),
        stop_rx.clone(),
    ));
    let guard = ConnGuard::new(pool.clone(), "main", idle_timeout(&cfg), !cfg.http);
    state.metrics.register_collector(ConnMetrics {
        pool,
        listeners: [Some(guard.stats()), concertim.connections]
            .into_iter()
            .flatten()
            .collect(),
    });
    // The peer address reaches handlers (the failed-auth throttle is per address).
    let app = lookout_api::app(state).into_make_service_with_connect_info::<SocketAddr>();

    let handle = axum_server::Handle::new();
    tokio::spawn(shutdown_on_signal(handle.clone(), stop_tx));

    let listener = socket.listen(1024)?.into_std()?;
    let served = if cfg.http {
        tracing::info!(listen = %cfg.listen, "serving plain HTTP");
        let server = bound_connections(axum_server::from_tcp(listener)?.acceptor(guard));
        server.handle(handle).serve(app).await
    } else {
        let tls = crate::tls::listener_config(&cfg)?;
        let server = axum_server::from_tcp_rustls(
            listener,
            axum_server::tls_rustls::RustlsConfig::from_config(tls),
        )?
        .map(|tls| tls.acceptor(guard));
        tracing::info!(listen = %cfg.listen, "serving HTTPS (TLS 1.3 only)");
        bound_connections(server).handle(handle).serve(app).await
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

/// A socket bound to `addr` (address reuse as any server sets it), not yet listening.
fn bind(addr: std::net::SocketAddr) -> std::io::Result<tokio::net::TcpSocket> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    Ok(socket)
}

/// The idle timeout of every listener.
pub fn idle_timeout(cfg: &Config) -> Duration {
    Duration::from_secs(cfg.limits.idle_timeout_s.max(1))
}

/// Bounds what one connection may hold: a client that trickles its request headers, or opens
/// a connection and sends nothing, is cut off (the request-time bound in the API starts only
/// once headers are in); HTTP/2 peers that stop answering PINGs are dropped. (Idle but live
/// connections are closed by [`ConnGuard`].)
pub fn bound_connections<A: axum_server::Address, Acc>(
    mut server: axum_server::Server<A, Acc>,
) -> axum_server::Server<A, Acc> {
    let builder = server.http_builder();
    builder
        .http1()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    builder
        .http2()
        .timer(hyper_util::rt::TokioTimer::new())
        .keep_alive_interval(H2_PING_EVERY)
        .keep_alive_timeout(H2_PING_TIMEOUT);
    server.first_request_timeout(HEADER_READ_TIMEOUT)
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

/// Files lookout creates are for its user only: the umask makes every new one (history.db,
/// cloud.db and SQLite's -wal/-shm beside them, which take the database's mode, log files)
/// 0600, and the databases an older version left readable are tightened.
fn make_files_private(data_dir: &std::path::Path) {
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
    #[cfg(unix)]
    for db in ["history.db", "cloud.db"] {
        for suffix in ["", "-wal", "-shm"] {
            use std::os::unix::fs::PermissionsExt;
            let path = data_dir.join(format!("{db}{suffix}"));
            if path.exists() {
                if let Err(e) =
                    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
                {
                    tracing::warn!(path = %path.display(), error = %e, "could not make private");
                }
            }
        }
    }
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

fn token_set(file: &TokenFile) -> Result<TokenSet> {
    let mut set = TokenSet::from_records(&file.load()?);
    if let Some(t) = crate::env_secrets::secret("LOOKOUT_TOKEN")? {
        let t = t.trim();
        if !t.is_empty() {
            // An admin token short enough to guess is worse than none.
            if t.len() < MIN_STATIC_TOKEN_BYTES {
                anyhow::bail!(
                    "LOOKOUT_TOKEN is {} bytes: an admin token must be at least {MIN_STATIC_TOKEN_BYTES} \
                     (e.g. `openssl rand -hex 32`, or `lookout token create` for a generated one)",
                    t.len()
                );
            }
            set = set.with_static("LOOKOUT_TOKEN", t, Scope::Admin);
        }
    }
    Ok(set)
}

/// Loads the token hashes; on a first start with no token at all, creates an admin token and
/// prints it once (only its hash is kept). The set follows the file from then on.
fn load_tokens(cfg: &Config) -> Result<SharedTokens> {
    let file = TokenFile::new(cfg.data_dir.join("tokens.json"));
    match file.remove_stale_temps() {
        Ok(0) => {}
        Ok(n) => tracing::info!(
            files = n,
            "removed temporary token files left by a killed writer"
        ),
        Err(e) => tracing::warn!(error = %e, "could not sweep temporary token files"),
    }
    let set = token_set(&file)?;
    if set.is_empty() && cfg.auth.enabled {
        let token = file.create("admin", Scope::Admin)?;
        println!(
            "\nlookout: first start, created an admin token. It is shown only this once:\n\n    {token}\n\n\
             Use it as `Authorization: Bearer <token>`. More: `lookout token create --name NAME --scope read|control|admin`.\n"
        );
    }
    let build_file = file.clone();
    let shared = SharedTokens::from_file(file.path(), move || {
        token_set(&build_file).map_err(|e| match e.downcast::<TokenFileError>() {
            Ok(e) => e,
            Err(other) => TokenFileError::Io {
                path: build_file.path().to_path_buf(),
                source: std::io::Error::other(other.to_string()),
            },
        })
    })?;
    tracing::info!(tokens = shared.current().len(), file = %file.path().display(), "tokens loaded");
    Ok(shared)
}

/// Ends the dashboard sessions of tokens that are gone. Requests never depend on this
/// sweep: a session is checked against the current token set on each use.
async fn sweep_revoked_sessions_forever(state: AppState, mut stop: watch::Receiver<bool>) {
    let mut seen = state.tokens.current();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(TOKEN_SWEEP_EVERY) => {}
            _ = stop.changed() => return,
        }
        let now = state.tokens.current();
        if !Arc::ptr_eq(&now, &seen) {
            state.sweep_revoked_sessions();
            seen = now;
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
