//! Shared helpers: backends, fresh stores, deterministic data, a TCP proxy that can be cut.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use lookout_store::{SeriesKey, Store, StoreConfig};
use sqlx::{AssertSqlSafe, Connection};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
    MySql,
}

impl Backend {
    fn env(self) -> &'static str {
        match self {
            Backend::Sqlite => "",
            Backend::Postgres => "LOOKOUT_TEST_POSTGRES_URL",
            Backend::MySql => "LOOKOUT_TEST_MYSQL_URL",
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
            Backend::MySql => "mysql",
        }
    }
}

/// A place for one test's history: an SQLite file in a temp dir, or uniquely prefixed tables
/// in the shared test database (dropped again when this value is dropped... explicitly via
/// [`Env::cleanup`], since Drop cannot await).
pub struct Env {
    pub backend: Backend,
    pub url: String,
    pub prefix: String,
    _dir: Option<tempfile::TempDir>,
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

impl Env {
    /// None (after printing a SKIPPED line) when the backend's server is not configured.
    pub fn new(backend: Backend, test: &str) -> Option<Env> {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let prefix = format!(
            "t{}_{}_{}_",
            std::process::id(),
            n,
            &test[..test.len().min(8)]
        );
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("tempdir");
                let url = format!("sqlite://{}", dir.path().join("history.db").display());
                Some(Env {
                    backend,
                    url,
                    prefix,
                    _dir: Some(dir),
                })
            }
            _ => match std::env::var(backend.env()) {
                Ok(url) if !url.is_empty() => Some(Env {
                    backend,
                    url,
                    prefix,
                    _dir: None,
                }),
                _ => {
                    println!(
                        "SKIPPED: {} store tests ({} not set; run scripts/test-services.sh) [{test}]",
                        backend.name(),
                        backend.env()
                    );
                    None
                }
            },
        }
    }

    pub fn config(&self) -> StoreConfig {
        let mut c = StoreConfig::new(self.url.clone());
        c.table_prefix = self.prefix.clone();
        c.flush_interval = Duration::from_secs(3600); // tests flush explicitly unless they say otherwise
        c
    }

    pub async fn open(&self) -> Store {
        Store::open(self.config()).await.expect("open store")
    }

    /// Drops this test's tables (servers only; the SQLite temp dir goes away by itself).
    pub async fn cleanup(&self) {
        if self.backend == Backend::Sqlite {
            return;
        }
        sqlx::any::install_default_drivers();
        if let Ok(mut c) = sqlx::AnyConnection::connect(&self.url).await {
            for t in ["meta", "series", "wal", "ticks", "chunks"] {
                let _ = sqlx::query(AssertSqlSafe(format!(
                    "DROP TABLE IF EXISTS {}{t}",
                    self.prefix
                )))
                .execute(&mut c)
                .await;
            }
            let _ = c.close().await;
        }
    }
}

pub fn cpu() -> SeriesKey {
    SeriesKey::new("host.cpu.usage")
}
pub fn mem() -> SeriesKey {
    SeriesKey::new("host.memory.used")
}
pub fn counter() -> SeriesKey {
    SeriesKey::new("host.net.rx_bytes").with("iface", "eth0")
}
pub fn container() -> SeriesKey {
    SeriesKey::new("container.cpu_percent")
        .with("id", "c0ffee1234567890")
        .with("name", "web")
}

/// Deterministic pseudo-noise in [0, 1).
pub fn noise(i: u64) -> f64 {
    let mut x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03;
    x ^= x >> 31;
    x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^= x >> 29;
    (x >> 11) as f64 / (1u64 << 53) as f64
}

/// The points of tick `i` (a realistic mix: noisy float, stepping integer, counter with resets,
/// a container that exists only for a while, a series with missing ticks).
pub fn points(i: u64) -> Vec<(SeriesKey, f64)> {
    let mut p = Vec::new();
    if i % 97 != 5 {
        p.push((cpu(), 100.0 * noise(i) * noise(i / 60 + 1)));
    }
    p.push((mem(), (1_000_000_000 + (i / 37) * 4096) as f64));
    p.push((
        counter(),
        ((i % 500) * 1500 + (noise(i + 7) * 100.0) as u64) as f64,
    ));
    if (100..400).contains(&(i % 2000)) {
        p.push((container(), noise(i + 99) * 3.0));
    }
    p
}

/// Tick timestamps with ms jitter and a gap.
pub fn ts_of(base: i64, i: u64) -> i64 {
    let gap = if i >= 1000 { 120_000 } else { 0 };
    base + i as i64 * 1000 + gap + (i % 5) as i64
}

/// Ingests ticks `range` and returns what was ingested per series.
pub fn ingest_range(
    s: &Store,
    base: i64,
    range: std::ops::Range<u64>,
    expect: &mut BTreeMap<String, Vec<(i64, f64)>>,
) {
    for i in range {
        let ts = ts_of(base, i);
        let p = points(i);
        for (k, v) in &p {
            expect.entry(k.to_string()).or_default().push((ts, *v));
        }
        s.ingest(ts, &p);
    }
}

/// Exact equality including bit patterns.
pub fn assert_same(a: &[(i64, f64)], b: &[(i64, f64)], what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: lengths differ");
    for (x, y) in a.iter().zip(b) {
        assert!(
            x.0 == y.0 && x.1.to_bits() == y.1.to_bits(),
            "{what}: {x:?} != {y:?}"
        );
    }
}

/// A TCP proxy on 127.0.0.1 in front of a database server that a test can cut and restore.
pub struct Proxy {
    pub port: u16,
    up: Arc<AtomicBool>,
    conns: Arc<std::sync::Mutex<Vec<tokio::task::AbortHandle>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    pub async fn start(upstream: String) -> Proxy {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind proxy");
        let port = l.local_addr().expect("addr").port();
        let up = Arc::new(AtomicBool::new(true));
        let conns: Arc<std::sync::Mutex<Vec<tokio::task::AbortHandle>>> = Arc::default();
        let (u2, c2) = (up.clone(), conns.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = l.accept().await else {
                    continue;
                };
                if !u2.load(Ordering::SeqCst) {
                    drop(inbound); // refuse while cut
                    continue;
                }
                let up_addr = upstream.clone();
                let h = tokio::spawn(async move {
                    let Ok(mut outbound) = tokio::net::TcpStream::connect(&up_addr).await else {
                        return;
                    };
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                });
                c2.lock().unwrap().push(h.abort_handle());
            }
        });
        Proxy {
            port,
            up,
            conns,
            task,
        }
    }
    /// Cuts every open connection at once and refuses new ones.
    pub fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for h in self.conns.lock().unwrap().drain(..) {
            h.abort();
        }
    }
    pub fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
        for h in self.conns.lock().unwrap().drain(..) {
            h.abort();
        }
    }
}

/// `scheme://user:pass@host:port/db` → (`host:port`, URL with the proxy's port instead).
pub fn via_proxy(url: &str, proxy_port: u16) -> (String, String) {
    let at = url
        .rfind('@')
        .map_or(url.find("//").map_or(0, |i| i + 2), |i| i + 1);
    let rest = &url[at..];
    let end = rest.find('/').unwrap_or(rest.len());
    let hostport = &rest[..end];
    let new = format!("{}127.0.0.1:{}{}", &url[..at], proxy_port, &rest[end..]);
    (hostport.to_string(), new)
}
