//! The Concertim listener (docs/architecture.md, "Listeners"): off unless `[concertim] enabled`
//! or `--concertim`.
//! Opens the local cloud backend (lookout's store for identity and billing, the Docker engine
//! for devices), feeds its meter from the sampler, and serves the Concertim routes on their
//! own address — TLS 1.3 like the main listener, or plain HTTP by configuration.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use tokio::sync::{mpsc, watch};

use lookout_api::concertim::{router, ConcertimState};
use lookout_cloud::jwt::{ClaimPolicy, MIN_SECRET_BYTES};
use lookout_cloud::local::{run_meter, AdminPrincipal, LocalBackend, LocalConfig, Quotas};
use lookout_cloud::openstack::run_openstack_meter;
use lookout_cloud::push::run_push;
use lookout_cloud::{
    CloudBackend, CloudEnv, JwtVerifier, OpenStackBackend, OpenStackConfig, Price, PriceList,
};
use lookout_probe::docker::DockerControl;
use lookout_probe::Snapshot;

use crate::config::{ConcertimConfig, Config};
use crate::conn_limit::{ConnGuard, ConnPool, ListenerStats};

/// Snapshots queued for the meter before the sampler starts dropping them (never blocking).
const METER_QUEUE: usize = 64;

/// The HS256 secret: `JWT_SECRET` (or the file `JWT_SECRET_FILE` names) from the
/// environment, else `[concertim] jwt_secret`.
fn jwt_secret(c: &ConcertimConfig) -> Result<Option<String>> {
    Ok(crate::env_secrets::secret("JWT_SECRET")?
        .or_else(|| c.jwt_secret.clone().filter(|s| !s.is_empty())))
}

/// The local backend's admin principal: `CONCERTIM_ADMIN_PASSWORD` (or its `_FILE`) from the
/// environment, else `[concertim] admin_password`; hashed here, off the async threads, so
/// only the hash outlives startup.
async fn admin_principal(c: &ConcertimConfig) -> Result<Option<AdminPrincipal>> {
    let Some(password) = crate::env_secrets::secret("CONCERTIM_ADMIN_PASSWORD")?
        .or_else(|| c.admin_password.clone().filter(|p| !p.is_empty()))
    else {
        return Ok(None);
    };
    let id = c.admin_user_id.clone();
    let admin = tokio::task::spawn_blocking(move || AdminPrincipal::new(&id, &password))
        .await
        .map_err(|e| anyhow!("hashing the concertim admin password: {e}"))?
        .map_err(|e| anyhow!("[concertim] admin principal: {e}"))?;
    Ok(Some(admin))
}

fn quotas(c: &ConcertimConfig) -> Quotas {
    let q = &c.quotas;
    Quotas {
        cores: q.cores,
        ram_mb: q.ram_mb,
        instances: q.instances,
        volumes: q.volumes,
        gigabytes: q.gigabytes,
    }
}

/// `lookout concertim hash-password`: the first line of stdin, hashed as the admin
/// principal's password is (the password itself is never printed).
pub fn hash_password_command() -> Result<()> {
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .context("reading the password on stdin")?;
    let password = line.trim_end_matches(['\n', '\r']);
    if password.is_empty() {
        return Err(anyhow!("no password on stdin"));
    }
    println!("{}", lookout_cloud::local::hash_password(password));
    Ok(())
}

pub fn price_list(c: &ConcertimConfig) -> Result<PriceList> {
    let p = |name: &str, v: &str| {
        Price::parse(v).map_err(|e| anyhow!("[concertim.prices] {name}: {e}"))
    };
    let currency = c.currency.trim().to_ascii_uppercase();
    if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(anyhow!(
            "[concertim] currency must be a three-letter ISO 4217 code, not {:?}",
            c.currency
        ));
    }
    Ok(PriceList {
        currency,
        cpu_core_hour: p("cpu_core_hour", &c.prices.cpu_core_hour)?,
        memory_gb_hour: p("memory_gb_hour", &c.prices.memory_gb_hour)?,
        running_hour: p("running_hour", &c.prices.running_hour)?,
        disk_gb_hour: p("disk_gb_hour", &c.prices.disk_gb_hour)?,
    })
}

/// What a started listener hands back: the meter's queue for the sampler to feed, and the
/// listener's connection figures for `/metrics`.
#[derive(Default)]
pub struct Started {
    pub meter: Option<mpsc::Sender<Arc<Snapshot>>>,
    pub connections: Option<Arc<ListenerStats>>,
}

/// Starts the listener when enabled; its connections come out of `pool`.
pub async fn start(
    cfg: &Config,
    mut stop: watch::Receiver<bool>,
    pool: &Arc<ConnPool>,
) -> Result<Started> {
    let c = &cfg.concertim;
    if !c.enabled {
        return Ok(Started::default());
    }
    let secret = jwt_secret(c)?.context(
        "the concertim listener needs a JWT secret: set JWT_SECRET (or JWT_SECRET_FILE) or [concertim] jwt_secret",
    )?;
    if secret.len() < MIN_SECRET_BYTES {
        return Err(anyhow!(
            "the concertim JWT secret (JWT_SECRET or [concertim] jwt_secret) is {} bytes: it must be \
             at least {MIN_SECRET_BYTES} (e.g. `openssl rand -hex 32`), or tokens can be forged by guessing it",
            secret.len()
        ));
    }
    let jwt = JwtVerifier::new(secret)
        .context("empty JWT secret")?
        .with_policy(ClaimPolicy {
            max_lifetime_s: c.jwt_max_lifetime_s.max(1),
            leeway_s: c.jwt_leeway_s.clamp(0, 300),
            audience: c.jwt_audience.clone().filter(|a| !a.is_empty()),
            issuer: c.jwt_issuer.clone().filter(|i| !i.is_empty()),
        });
    let prices = price_list(c)?;
    let store_url = c
        .store_url
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}", cfg.data_dir.join("cloud.db").display()));
    let (backend, tx, ledger): (Arc<dyn CloudBackend>, _, Arc<LocalBackend>) =
        match c.backend.as_str() {
            "local" => {
                let backend = LocalBackend::open(
                    LocalConfig { store_url, prices },
                    Arc::new(DockerControl),
                    None,
                )
                .await
                .map_err(|e| anyhow!("concertim store: {e}"))?
                .with_quotas(quotas(c));
                let backend = match admin_principal(c).await? {
                    Some(admin) => {
                        tracing::info!(
                            admin_user_id = admin.user_id(),
                            "concertim: admin principal set"
                        );
                        backend.with_admin(admin)
                    }
                    None => backend,
                };
                let backend = Arc::new(backend);
                let (tx, rx) = mpsc::channel(METER_QUEUE);
                tokio::spawn(run_meter(
                    backend.clone(),
                    rx,
                    Duration::from_secs(c.flush_secs.max(1)),
                ));
                (backend.clone(), Some(tx), backend)
            }
            "openstack" => {
                let backend = OpenStackBackend::open(
                    openstack_config(c, store_url, prices),
                    Arc::new(DockerControl),
                )
                .await
                .map_err(|e| anyhow!("concertim openstack backend: {e}"))?;
                let backend = Arc::new(backend);
                tokio::spawn(run_openstack_meter(
                    backend.clone(),
                    Duration::from_secs(c.flush_secs.max(1)),
                ));
                tracing::info!(region = ?c.region, "concertim: OpenStack backend");
                // Devices are Nova servers: the sampler's containers are not billed here.
                let ledger = backend.ledger();
                (backend, None, ledger)
            }
            other => {
                return Err(anyhow!(
                    "[concertim] backend must be \"local\" or \"openstack\", not {other:?}"
                ))
            }
        };

    if let Some(push) = crate::concertim_push::from_config(c, &ledger, &backend)? {
        tokio::spawn(run_push(Arc::new(push), ledger.changes()));
    }

    let app = router(ConcertimState {
        backend,
        jwt,
        body_limit_bytes: cfg.limits.body_bytes,
        request_timeout: Duration::from_millis(cfg.limits.request_timeout_ms),
    });
    // Bind now, so a taken port fails the start instead of a background task.
    let listener = std::net::TcpListener::bind(c.listen)
        .with_context(|| format!("concertim listener on {}", c.listen))?;
    let handle = axum_server::Handle::<SocketAddr>::new();
    {
        let handle = handle.clone();
        tokio::spawn(async move {
            let _ = stop.changed().await;
            handle.graceful_shutdown(Some(Duration::from_secs(10)));
        });
    }
    let listen = c.listen;
    let guard = ConnGuard::new(
        pool.clone(),
        "concertim",
        crate::serve::idle_timeout(cfg),
        !c.http,
    );
    let connections = Some(guard.stats());
    let app = app.into_make_service_with_connect_info::<SocketAddr>();
    if c.http {
        tracing::info!(%listen, "concertim: serving plain HTTP");
        let server = axum_server::from_tcp(listener)?.acceptor(guard);
        let server = crate::serve::bound_connections(server).handle(handle);
        tokio::spawn(async move {
            if let Err(e) = server.serve(app).await {
                tracing::error!(error = %e, %listen, "concertim listener stopped");
            }
        });
    } else {
        let tls = crate::tls::listener_config(cfg)?;
        tracing::info!(%listen, "concertim: serving HTTPS (TLS 1.3 only)");
        let server = axum_server::tls_rustls::from_tcp_rustls(
            listener,
            axum_server::tls_rustls::RustlsConfig::from_config(tls),
        )?
        .map(|tls| tls.acceptor(guard));
        let server = crate::serve::bound_connections(server).handle(handle);
        tokio::spawn(async move {
            if let Err(e) = server.serve(app).await {
                tracing::error!(error = %e, %listen, "concertim listener stopped");
            }
        });
    }
    Ok(Started {
        meter: tx,
        connections,
    })
}

/// The OpenStack backend's settings from `[concertim]` and `[concertim.openstack]`.
fn openstack_config(c: &ConcertimConfig, store_url: String, prices: PriceList) -> OpenStackConfig {
    let o = &c.openstack;
    let service = match (&o.auth_url, &o.username, &o.password) {
        (Some(auth_url), Some(username), Some(password)) => Some(CloudEnv {
            auth_url: auth_url.clone(),
            username: Some(username.clone()),
            password: password.clone(),
            project_name: o.project_name.clone(),
            user_domain_name: o.user_domain_name.clone(),
            project_domain_name: o.project_domain_name.clone(),
            ..Default::default()
        }),
        _ => None,
    };
    OpenStackConfig {
        region: c.region.clone().filter(|r| !r.is_empty()),
        admin_user: o.admin_user.clone(),
        concertim_user: o.concertim_user.clone(),
        service,
        allowed_auth_urls: o.allowed_auth_urls.clone(),
        connect_timeout: Duration::from_millis(o.connect_timeout_ms.max(100)),
        timeout: Duration::from_millis(o.timeout_ms.max(100)),
        store_url,
        prices,
    }
}
