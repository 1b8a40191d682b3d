//! Configuration: defaults < `lookout.toml` < `LOOKOUT_*` environment < command-line flags.
//! Nested keys join with `__` in the environment: `LOOKOUT_SMART__UPSTREAM` is `[smart] upstream`.

use std::net::SocketAddr;
use std::path::PathBuf;

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address of the main listener (`HOST:PORT`; `:PORT` is every IPv4 interface).
    #[serde(deserialize_with = "crate::listen::deserialize")]
    pub listen: SocketAddr,
    /// Serve plain HTTP instead of TLS (for use behind a reverse proxy that terminates TLS).
    pub http: bool,
    /// Where lookout keeps its certificate, token hashes and history.
    pub data_dir: PathBuf,
    pub sampling: SamplingConfig,
    pub host: HostConfig,
    pub tls: TlsConfig,
    pub auth: AuthConfig,
    pub limits: LimitsConfig,
    pub log: LogConfig,
    pub smart: SmartConfig,
    pub concertim: ConcertimConfig,
    pub store: StoreSection,
    /// `[alerts]`: rules and notification channels (docs/alerts.md).
    pub alerts: lookout_alert::AlertsConfig,
    /// `[export.remote_write]`: push to a Prometheus remote-write receiver (docs/fleet.md).
    pub export: lookout_fleet::ExportConfig,
    /// `[fleet]`: the hub's view of every host, read from a PromQL engine (docs/fleet.md).
    pub fleet: lookout_fleet::FleetConfig,
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreSection {
    /// Keep history at all.
    pub enabled: bool,
    /// `postgres://…`, `mysql://…` / `mariadb://…`, or `sqlite://PATH`; unset: `history.db`
    /// (SQLite) in the data directory.
    pub url: Option<String>,
    /// Seconds between writes: the most a `kill -9` can lose.
    pub flush_interval_s: u64,
    /// Full-resolution samples are kept this many days.
    pub retention_raw_days: u64,
    /// 1-minute rollups are kept this many days.
    pub retention_minute_days: u64,
    /// 1-hour rollups are kept this many days.
    pub retention_hour_days: u64,
    /// Samples buffered in memory while the database cannot be written.
    pub max_buffered_samples: usize,
}

impl Default for StoreSection {
    fn default() -> Self {
        Self {
            enabled: true,
            url: None,
            flush_interval_s: 10,
            retention_raw_days: 7,
            retention_minute_days: 90,
            retention_hour_days: 730,
            max_buffered_samples: 2_000_000,
        }
    }
}

/// Never prints the URL: it may hold a database password.
impl std::fmt::Debug for StoreSection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreSection")
            .field("enabled", &self.enabled)
            .field("backend", &self.backend_name())
            .field("flush_interval_s", &self.flush_interval_s)
            .finish_non_exhaustive()
    }
}

impl StoreSection {
    pub fn backend_name(&self) -> &'static str {
        match self.url.as_deref() {
            Some(u) if u.starts_with("postgres") => "postgresql",
            Some(u) if u.starts_with("mysql") || u.starts_with("mariadb") => "mysql",
            _ => "sqlite",
        }
    }

    pub fn store_config(&self, data_dir: &std::path::Path) -> lookout_store::StoreConfig {
        let day = std::time::Duration::from_secs(86_400);
        let mut c = match &self.url {
            Some(u) => lookout_store::StoreConfig::new(u.clone()),
            None => lookout_store::StoreConfig::sqlite_in(data_dir),
        };
        c.flush_interval = std::time::Duration::from_secs(self.flush_interval_s.max(1));
        c.retention = lookout_store::Retention {
            raw: day * self.retention_raw_days as u32,
            minute: day * self.retention_minute_days as u32,
            hour: day * self.retention_hour_days as u32,
        };
        c.max_buffered_samples = self.max_buffered_samples;
        c
    }
}

/// `[concertim]`: the Concertim listener (docs/architecture.md, "Listeners") and its local cloud backend.
#[derive(Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConcertimConfig {
    /// Serve the Concertim routes (also `lookout serve --concertim`).
    pub enabled: bool,
    /// Address of the Concertim listener.
    #[serde(deserialize_with = "crate::listen::deserialize")]
    pub listen: SocketAddr,
    /// Plain HTTP instead of TLS 1.3 on this listener.
    pub http: bool,
    /// HS256 secret of the UI's JWTs; `JWT_SECRET` in the environment wins. Never logged.
    /// At least 32 bytes.
    pub jwt_secret: Option<String>,
    /// When set, every JWT's `aud` must contain it.
    pub jwt_audience: Option<String>,
    /// When set, every JWT's `iss` must equal it.
    pub jwt_issuer: Option<String>,
    /// Longest JWT lifetime accepted (`exp - now`, and `exp - iat`), seconds.
    pub jwt_max_lifetime_s: i64,
    /// Clock skew tolerated on `exp`, `nbf` and `iat`, seconds.
    pub jwt_leeway_s: i64,
    /// Store for users, teams, key pairs and the invoice ledger: `sqlite://…`, `postgres://…`
    /// or `mysql://…`. Unset: `sqlite://<data_dir>/cloud.db`.
    pub store_url: Option<String>,
    /// ISO 4217 code of invoices.
    pub currency: String,
    /// Seconds between moving metered usage to the store (and closing finished months).
    pub flush_secs: u64,
    pub prices: ConcertimPrices,
    /// The cloud behind the routes: `local` (Docker + lookout's store) or `openstack`.
    pub backend: String,
    /// OpenStack catalog region (unset: the first public endpoint of each service).
    pub region: Option<String>,
    pub openstack: ConcertimOpenStack,
    /// Local backend: the id (and name) of the admin principal, the user the UI's Cloud
    /// Environment page names as `admin_user_id`.
    pub admin_user_id: String,
    /// Local backend: the admin principal's password (`admin_foreign_password` in the UI), or
    /// its `pbkdf2-sha256$…` hash (`lookout concertim hash-password`). Unset: no admin
    /// principal. `CONCERTIM_ADMIN_PASSWORD` (or the file `CONCERTIM_ADMIN_PASSWORD_FILE`
    /// names) wins. Kept only hashed; never logged.
    pub admin_password: Option<String>,
    /// Local backend: each team's quotas, reported by `GET /team/limits`.
    pub quotas: ConcertimQuotas,
    pub push: ConcertimPush,
}

/// `[concertim.quotas]`: per-team quotas of the local backend, named as Nova and Cinder name
/// them; -1 is no limit.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConcertimQuotas {
    pub cores: i64,
    pub ram_mb: i64,
    pub instances: i64,
    pub volumes: i64,
    pub gigabytes: i64,
}

impl Default for ConcertimQuotas {
    fn default() -> Self {
        Self {
            cores: -1,
            ram_mb: -1,
            instances: -1,
            volumes: -1,
            gigabytes: -1,
        }
    }
}

/// `[concertim.push]`: pushing each team's credits and cost to Concertim's own API (as the
/// original's billing handler does). Off while `url` is unset.
#[derive(Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConcertimPush {
    /// Concertim's base URL (e.g. `https://concertim.example`).
    pub url: Option<String>,
    /// A Concertim root user's login.
    pub login: Option<String>,
    /// Its password; `CONCERTIM_PUSH_PASSWORD` (or the file `CONCERTIM_PUSH_PASSWORD_FILE`
    /// names) wins. Never logged.
    pub password: Option<String>,
    /// Seconds between pushes when nothing changes.
    pub every_secs: u64,
    /// Bound of each call to Concertim.
    pub timeout_ms: u64,
}

impl Default for ConcertimPush {
    fn default() -> Self {
        Self {
            url: None,
            login: None,
            password: None,
            every_secs: 60,
            timeout_ms: 10_000,
        }
    }
}

impl std::fmt::Debug for ConcertimPush {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConcertimPush")
            .field("url", &self.url)
            .field("login", &self.login)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("every_secs", &self.every_secs)
            .field("timeout_ms", &self.timeout_ms)
            .finish()
    }
}

/// `[concertim.openstack]`: the OpenStack backend's settings.
#[derive(Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConcertimOpenStack {
    /// The Keystone user every team grants `admin` to.
    pub admin_user: String,
    /// The Keystone user every team grants `watcher` to.
    pub concertim_user: String,
    /// Service credentials (admin) for metering and calls without `cloud_env`; optional.
    pub auth_url: Option<String>,
    pub username: Option<String>,
    /// Never logged.
    pub password: Option<String>,
    pub project_name: Option<String>,
    pub user_domain_name: Option<String>,
    pub project_domain_name: Option<String>,
    /// Keystone URLs a request's `cloud_env.auth_url` may name (empty: `auth_url` only).
    pub allowed_auth_urls: Vec<String>,
    /// Bounds of every call to the cloud.
    pub connect_timeout_ms: u64,
    pub timeout_ms: u64,
}

impl Default for ConcertimOpenStack {
    fn default() -> Self {
        Self {
            admin_user: "admin".into(),
            concertim_user: "concertim".into(),
            auth_url: None,
            username: None,
            password: None,
            project_name: None,
            user_domain_name: None,
            project_domain_name: None,
            allowed_auth_urls: Vec::new(),
            connect_timeout_ms: 5_000,
            timeout_ms: 30_000,
        }
    }
}

impl std::fmt::Debug for ConcertimOpenStack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConcertimOpenStack")
            .field("admin_user", &self.admin_user)
            .field("concertim_user", &self.concertim_user)
            .field("auth_url", &self.auth_url)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("project_name", &self.project_name)
            .field("allowed_auth_urls", &self.allowed_auth_urls)
            .field("connect_timeout_ms", &self.connect_timeout_ms)
            .field("timeout_ms", &self.timeout_ms)
            .finish_non_exhaustive()
    }
}

/// Prices per unit-hour as decimal text (exact, up to nine decimals).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConcertimPrices {
    pub cpu_core_hour: String,
    /// Per GiB of memory in use, per hour.
    pub memory_gb_hour: String,
    /// Per hour a container runs.
    pub running_hour: String,
    /// Per GiB of allocated disk (an OpenStack flavour's root disk), per hour.
    pub disk_gb_hour: String,
}

impl Default for ConcertimConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            listen: SocketAddr::from(([127, 0, 0, 1], 42356)),
            http: false,
            jwt_secret: None,
            jwt_audience: None,
            jwt_issuer: None,
            jwt_max_lifetime_s: 3600,
            jwt_leeway_s: 30,
            store_url: None,
            currency: "GBP".into(),
            flush_secs: 30,
            prices: ConcertimPrices::default(),
            backend: "local".into(),
            region: None,
            openstack: ConcertimOpenStack::default(),
            admin_user_id: "admin".into(),
            admin_password: None,
            quotas: ConcertimQuotas::default(),
            push: ConcertimPush::default(),
        }
    }
}

impl Default for ConcertimPrices {
    fn default() -> Self {
        Self {
            cpu_core_hour: "0.05".into(),
            memory_gb_hour: "0.01".into(),
            running_hour: "0.01".into(),
            disk_gb_hour: "0.0001".into(),
        }
    }
}

impl std::fmt::Debug for ConcertimConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConcertimConfig")
            .field("enabled", &self.enabled)
            .field("listen", &self.listen)
            .field("http", &self.http)
            .field(
                "jwt_secret",
                &self.jwt_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("jwt_audience", &self.jwt_audience)
            .field("jwt_issuer", &self.jwt_issuer)
            .field("store_url", &self.store_url.as_ref().map(|_| "<set>"))
            .field("currency", &self.currency)
            .field("flush_secs", &self.flush_secs)
            .field("prices", &self.prices)
            .field("backend", &self.backend)
            .field("region", &self.region)
            .field("openstack", &self.openstack)
            .field("admin_user_id", &self.admin_user_id)
            .field(
                "admin_password",
                &self.admin_password.as_ref().map(|_| "<redacted>"),
            )
            .field("quotas", &self.quotas)
            .field("push", &self.push)
            .finish()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SmartConfig {
    /// URL of the upstream `GET /api/work`. `builtin` (the default) starts lookout's own work
    /// simulator on a loopback port, so `/api/smart` works out of the box.
    pub upstream: String,
    /// Wait this long for a success before firing the extra requests.
    pub delay_ms: u64,
    /// How many extra requests to fire after the delay (or at once after an early failure).
    pub extra: usize,
    /// Limit for one upstream request (unset: bounded only by the caller's timeout).
    pub per_attempt_timeout_ms: Option<u64>,
    /// Adaptive mode: delay from a recent latency percentile, extra load capped by a budget.
    pub adaptive: bool,
    /// Adaptive mode: the percentile of recent successful latencies used as the delay.
    pub adaptive_percentile: f64,
    /// Adaptive mode: at most this many extra requests per call in the long run.
    pub budget_ratio: f64,
}

impl Default for SmartConfig {
    fn default() -> Self {
        Self {
            upstream: "builtin".into(),
            delay_ms: 300,
            extra: 2,
            per_attempt_timeout_ms: None,
            adaptive: false,
            adaptive_percentile: 0.95,
            budget_ratio: 0.1,
        }
    }
}

impl SmartConfig {
    pub fn policy(&self) -> lookout_hedge::HedgePolicy {
        lookout_hedge::HedgePolicy {
            delay: std::time::Duration::from_millis(self.delay_ms),
            extra: self.extra,
            per_attempt_timeout: self
                .per_attempt_timeout_ms
                .map(std::time::Duration::from_millis),
            adaptive: self.adaptive.then(|| lookout_hedge::AdaptivePolicy {
                percentile: self.adaptive_percentile,
                budget_ratio: self.budget_ratio,
                ..Default::default()
            }),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SamplingConfig {
    /// Milliseconds between two samples.
    pub interval_ms: u64,
    /// Sample Docker containers (through `DOCKER_HOST` or the default socket).
    pub docker: bool,
    /// Sample NVIDIA GPUs through NVML (loaded on the first tick; absent → reported, not an error).
    pub gpu: bool,
    /// Keep a process table (`/api/v1/processes`) read from the host's procfs.
    pub processes: bool,
    /// Refresh the process table every this many ticks (1 = every tick): its cost grows
    /// with the number of processes, the rest of a tick's does not.
    pub processes_every_ticks: u32,
    /// Read at most this many processes per refresh (the table says `truncated` beyond).
    pub max_processes: usize,
    /// Read temperatures, fans and voltages from the host's sysfs (hwmon, thermal zones).
    pub sensors: bool,
    /// Read sensors every this many ticks (some drivers answer slowly).
    pub sensors_every_ticks: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HostConfig {
    /// The host's procfs (`/host/proc` when lookout runs in a container).
    pub proc_root: PathBuf,
    /// The host's sysfs.
    pub sys_root: PathBuf,
    /// Where the host's `/` is visible, for filesystem sizes.
    pub root_fs: PathBuf,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain; when unset, a self-signed certificate is generated in the data directory.
    pub cert: Option<PathBuf>,
    /// PEM private key matching `cert`.
    pub key: Option<PathBuf>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Require a Bearer token on every route but `/healthz`. Turn off only on purpose.
    pub enabled: bool,
    /// Serve `/docs` and `/openapi.json` without a token.
    pub public_docs: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Largest request body accepted.
    pub body_bytes: usize,
    /// Longest a request may take before a 504.
    pub request_timeout_ms: u64,
    /// Most client connections served at once, all listeners together (lowered at start-up
    /// to leave descriptors for sampling under the open-file limit).
    pub max_connections: usize,
    /// A connection with no request in flight for this long is closed (HTTP/1 and HTTP/2).
    pub idle_timeout_s: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// `auto` (human on a terminal, JSON otherwise), `human` or `json`.
    pub format: String,
    /// A tracing filter, e.g. `info` or `lookout=debug,info`; `RUST_LOG` wins when set.
    pub level: String,
    /// Also write logs to daily-rotated files in this directory.
    pub dir: Option<PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8443)),
            http: false,
            data_dir: default_data_dir(),
            sampling: SamplingConfig::default(),
            host: HostConfig::default(),
            tls: TlsConfig::default(),
            auth: AuthConfig::default(),
            limits: LimitsConfig::default(),
            log: LogConfig::default(),
            smart: SmartConfig::default(),
            store: StoreSection::default(),
            concertim: ConcertimConfig::default(),
            alerts: Default::default(),
            export: Default::default(),
            fleet: Default::default(),
        }
    }
}

impl Default for SamplingConfig {
    fn default() -> Self {
        Self {
            interval_ms: 1000,
            docker: true,
            gpu: true,
            processes: true,
            processes_every_ticks: 2,
            max_processes: 10_000,
            sensors: true,
            sensors_every_ticks: 5,
        }
    }
}

impl Default for HostConfig {
    fn default() -> Self {
        Self {
            proc_root: "/proc".into(),
            sys_root: "/sys".into(),
            root_fs: "/".into(),
        }
    }
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            public_docs: false,
        }
    }
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            body_bytes: 64 * 1024,
            request_timeout_ms: 30_000,
            max_connections: 1000,
            idle_timeout_s: 60,
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: "auto".into(),
            level: "info".into(),
            dir: None,
        }
    }
}

/// `$XDG_DATA_HOME/lookout`, `~/.local/share/lookout`, or `/var/lib/lookout` without a home.
pub fn default_data_dir() -> PathBuf {
    if let Some(x) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(x).join("lookout");
    }
    if let Some(h) = std::env::var_os("HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(h).join(".local/share/lookout");
    }
    PathBuf::from("/var/lib/lookout")
}

/// Flags given on the command line; each one set overrides every other source.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub config_file: Option<PathBuf>,
    pub listen: Option<SocketAddr>,
    pub http: bool,
    pub data_dir: Option<PathBuf>,
    pub store_url: Option<String>,
    /// `--concertim`: turn the Concertim listener on.
    pub concertim: bool,
}

/// Environment variables that are not configuration keys (secrets read on their own, test knobs).
const NOT_CONFIG: &[&str] = &["token"];

/// The configuration, or every problem in it (unknown keys included), named as the operator
/// wrote it and with where it came from.
pub fn load(o: &Overrides) -> anyhow::Result<Config> {
    let file = o
        .config_file
        .clone()
        .or_else(|| std::env::var_os("LOOKOUT_CONFIG").map(PathBuf::from));
    let mut fig = Figment::from(Serialized::defaults(Config::default()));
    if let Some(path) = &file {
        fig = fig.merge(Toml::file_exact(path));
    } else {
        fig = fig.merge(Toml::file("lookout.toml"));
    }
    fig = fig.merge(
        Env::prefixed("LOOKOUT_")
            .ignore(NOT_CONFIG)
            // Keys keep the environment's case (`TEST_…`): compare without it.
            .filter(|k| {
                let k = k.as_str().to_ascii_lowercase();
                !k.starts_with("test_")
                    && k != "config"
                    && !crate::env_secrets::handled_elsewhere(&k)
            })
            .split("__"),
    );
    // `LOOKOUT_<KEY>_FILE`: the key's value is the file's content (Docker secrets).
    for (key, value) in crate::env_secrets::config_files(NOT_CONFIG)? {
        fig = fig.merge(Serialized::default(&key, value));
    }
    if let Some(l) = o.listen {
        fig = fig.merge(Serialized::default("listen", l));
    }
    if o.http {
        fig = fig.merge(Serialized::default("http", true));
    }
    if let Some(u) = &o.store_url {
        fig = fig.merge(Serialized::default("store.url", u));
    }
    if let Some(d) = &o.data_dir {
        fig = fig.merge(Serialized::default("data_dir", d));
    }
    if o.concertim {
        fig = fig.merge(Serialized::default("concertim.enabled", true));
    }
    fig.extract()
        .map_err(|e| anyhow::anyhow!(crate::config_error::describe(e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::result_large_err)] // figment's Jail closure signature is fixed
    fn layering_env_and_flags() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "lookout.toml",
                "listen = \"127.0.0.1:9000\"\n[sampling]\ninterval_ms = 500\n",
            )?;
            jail.set_env("LOOKOUT_SAMPLING__INTERVAL_MS", "250");
            jail.set_env("LOOKOUT_TOKEN", "not-a-config-key");
            jail.set_env("LOOKOUT_TEST_POSTGRES_URL", "postgres://x");
            jail.set_env("LOOKOUT_CONFIG", "lookout.toml");
            let c = load(&Overrides::default()).map_err(|e| e.to_string())?;
            assert_eq!(c.listen.port(), 9000);
            assert_eq!(c.sampling.interval_ms, 250);
            let c = load(&Overrides {
                listen: Some("127.0.0.1:7000".parse().unwrap()),
                http: true,
                ..Default::default()
            })
            .map_err(|e| e.to_string())?;
            assert_eq!(c.listen.port(), 7000);
            assert!(c.http);
            Ok(())
        });
    }
}
