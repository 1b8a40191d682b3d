//! Store bench (run by `bench/store.sh`, release build). Prints, each beside the way the
//! original perf-history service did it (one row per sample, `AVG` over the rows) in the same run:
//!   1. bytes per sample on disk (SQLite) for host + 100 containers at 1 s;
//!   2. the time of a week-long `/cpu_average` (the store's `stats`) vs `AVG` over a week of rows;
//!   3. ingest cost per tick.
//!
//! Plus a codec comparison (ours without pco, plain Gorilla XOR, pco alone, and the chosen mix).
//!
//! Synthetic but realistic data: CPU percentages computed from simulated jiffies exactly as the
//! probe does, memory/filesystem bytes moving in 4 KiB pages, counters with rates, containers
//! (20 busy, 80 mostly idle) with the Docker CLI's CPU formula.
//!
//! Usage: store_bench [--hours H (default 12)] [--out DIR] [--naive-ticks N (default 300)]
//!
//! The day's ingest starts at 18:00 UTC, so the first 6 hours are rolled up at midnight and
//! the rollups' cost per sample is measured too.

use std::time::{Duration, Instant};

use lookout_store::codec;
use lookout_store::{SeriesKey, Store, StoreConfig};
use lookout_store::{DAY, HOUR};
use sqlx::{Connection, Row};

// ------------------------------------------------------------------ synthetic fleet

struct Rng(u64);
impl Rng {
    fn u(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn f(&mut self) -> f64 {
        (self.u() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn normal(&mut self) -> f64 {
        (0..4).map(|_| self.f()).sum::<f64>() - 2.0
    }
    fn chance(&mut self, p: f64) -> bool {
        self.f() < p
    }
}

const CORES: usize = 4;
const PAGE: f64 = 4096.0;

struct Container {
    busy: bool,
    mem: f64,
    limit: f64,
    rx: f64,
    tx: f64,
    br: f64,
    bw: f64,
    pids: f64,
}

struct Fleet {
    rng: Rng,
    keys: Vec<SeriesKey>,
    vals: Vec<f64>,
    mem_used: f64,
    cached: f64,
    buffers: f64,
    fs_used: [f64; 2],
    net: [[f64; 4]; 2],
    disk: [[f64; 4]; 2],
    load: [f64; 3],
    boot: i64,
    prev_ts: i64,
    containers: Vec<Container>,
}

const MEM_TOTAL: f64 = 16.0 * 1024.0 * 1024.0 * 1024.0;
const FS_SIZE: [f64; 2] = [500e9, 2e12];

impl Fleet {
    fn new(n_containers: usize) -> Fleet {
        let mut keys = Vec::new();
        let states = [
            "usage", "user", "nice", "system", "iowait", "irq", "softirq", "steal", "idle",
        ];
        for s in states {
            keys.push(SeriesKey::new(format!("host.cpu.{s}")));
        }
        for c in 0..CORES {
            for s in states {
                keys.push(SeriesKey::new(format!("host.cpu.core.{s}")).with("core", c.to_string()));
            }
        }
        for f in [
            "total",
            "available",
            "used",
            "free",
            "buffers",
            "cached",
            "used_percent",
            "swap_total",
            "swap_used",
            "swap_free",
        ] {
            keys.push(SeriesKey::new(format!("host.memory.{f}")));
        }
        for f in [
            "host.load.1",
            "host.load.5",
            "host.load.15",
            "host.uptime_secs",
        ] {
            keys.push(SeriesKey::new(f));
        }
        for m in ["/", "/data"] {
            for f in ["size", "used", "available", "used_percent"] {
                keys.push(SeriesKey::new(format!("host.fs.{f}")).with("mount", m));
            }
        }
        for i in ["eth0", "lo"] {
            for f in [
                "rx_bytes",
                "tx_bytes",
                "rx_packets",
                "tx_packets",
                "rx_errors",
                "tx_errors",
                "rx_dropped",
                "tx_dropped",
                "rx_bytes_per_sec",
                "tx_bytes_per_sec",
                "rx_packets_per_sec",
                "tx_packets_per_sec",
            ] {
                keys.push(SeriesKey::new(format!("host.net.{f}")).with("iface", i));
            }
        }
        for d in ["nvme0n1", "sda"] {
            for f in [
                "reads_completed",
                "writes_completed",
                "read_bytes",
                "written_bytes",
                "reads_per_sec",
                "writes_per_sec",
                "read_bytes_per_sec",
                "written_bytes_per_sec",
                "busy_percent",
            ] {
                keys.push(SeriesKey::new(format!("host.disk.{f}")).with("device", d));
            }
        }
        let mut rng = Rng(0x1234_5678_9abc_def1);
        let mut containers = Vec::new();
        for c in 0..n_containers {
            let id = format!(
                "{:016x}{:016x}{:016x}{:016x}",
                rng.u(),
                rng.u(),
                rng.u(),
                rng.u()
            );
            let name = format!("svc-{c}");
            for f in [
                "cpu_percent",
                "online_cpus",
                "memory_used_bytes",
                "memory_limit_bytes",
                "memory_percent",
                "net_rx_bytes",
                "net_tx_bytes",
                "block_read_bytes",
                "block_write_bytes",
                "pids",
            ] {
                keys.push(
                    SeriesKey::new(format!("container.{f}"))
                        .with("id", id.clone())
                        .with("name", name.clone()),
                );
            }
            containers.push(Container {
                busy: c % 5 == 0,
                mem: ((20.0 + 400.0 * rng.f()) * 1024.0 * 1024.0 / PAGE).round() * PAGE,
                limit: if c % 3 == 0 {
                    2.0 * 1024.0 * 1024.0 * 1024.0
                } else {
                    MEM_TOTAL
                },
                rx: (rng.f() * 1e9).round(),
                tx: (rng.f() * 1e9).round(),
                br: (rng.f() * 1e8 / PAGE).round() * PAGE,
                bw: (rng.f() * 1e8 / PAGE).round() * PAGE,
                pids: (1.0 + rng.f() * 40.0).round(),
            });
        }
        let n = keys.len();
        Fleet {
            rng,
            keys,
            vals: vec![0.0; n],
            mem_used: 6e9f64.div_euclid(PAGE) * PAGE,
            cached: 4e9f64.div_euclid(PAGE) * PAGE,
            buffers: 3e8f64.div_euclid(PAGE) * PAGE,
            fs_used: [
                (2e11f64 / PAGE).round() * PAGE,
                (9e11f64 / PAGE).round() * PAGE,
            ],
            net: [[1e10, 5e9, 1e7, 6e6], [1e8, 1e8, 1e6, 1e6]],
            disk: [[1e6, 2e6, 5e10, 9e10], [1e5, 1e5, 1e9, 1e9]],
            load: [0.5, 0.5, 0.5],
            boot: 0,
            prev_ts: 0,
            containers,
        }
    }

    /// Fills `vals` for the tick at `ts` (ms).
    fn tick(&mut self, ts: i64) {
        if self.prev_ts == 0 {
            self.prev_ts = ts - 1000;
            self.boot = ts - 86_400_000 * 3;
        }
        let dt = (ts - self.prev_ts) as f64 / 1000.0;
        self.prev_ts = ts;
        let r = &mut self.rng;
        let day_phase = (ts % DAY) as f64 / DAY as f64 * std::f64::consts::TAU;
        let base_busy = (0.18 + 0.10 * day_phase.sin()).max(0.01);
        let mut v = Vec::with_capacity(self.vals.len());
        // CPU: jiffies per core, percentages as the probe computes them.
        let mut tot = [0f64; 8];
        let mut cores = Vec::with_capacity(CORES);
        for _ in 0..CORES {
            let total = (100.0 + r.normal().round()).max(90.0);
            let busy = ((base_busy + 0.15 * r.normal()).clamp(0.0, 1.0) * total).round();
            let user = (busy * (0.6 + 0.1 * r.f())).round();
            let system = (busy - user).max(0.0);
            let softirq = if r.chance(0.3) { 1.0 } else { 0.0 };
            let iowait = if r.chance(0.1) {
                (r.f() * 3.0).round()
            } else {
                0.0
            };
            let idle = (total - user - system - softirq - iowait).max(0.0);
            let j = [user, 0.0, system, idle, iowait, 0.0, softirq, 0.0];
            for (t, x) in tot.iter_mut().zip(j) {
                *t += x;
            }
            cores.push(j);
        }
        let pct = |j: &[f64; 8]| {
            let total: f64 = j.iter().sum();
            let p = |x: f64| (x * 100.0 / total).clamp(0.0, 100.0);
            let (idle, iowait) = (p(j[3]), p(j[4]));
            [
                (100.0 - idle - iowait).clamp(0.0, 100.0),
                p(j[0]),
                p(j[1]),
                p(j[2]),
                iowait,
                p(j[5]),
                p(j[6]),
                p(j[7]),
                idle,
            ]
        };
        v.extend(pct(&tot));
        for c in &cores {
            v.extend(pct(c));
        }
        // Memory in pages.
        if r.chance(0.4) {
            self.mem_used =
                (self.mem_used + (r.normal() * 300.0).round() * PAGE).clamp(1e9, MEM_TOTAL - 2e9);
        }
        if r.chance(0.2) {
            self.cached = (self.cached + (r.normal() * 100.0).round() * PAGE).clamp(1e8, 6e9);
        }
        if r.chance(0.05) {
            self.buffers += PAGE * (r.f() * 4.0).round();
        }
        let avail = MEM_TOTAL - self.mem_used;
        let free = (avail - self.cached - self.buffers).max(0.0);
        v.extend([
            MEM_TOTAL,
            avail,
            self.mem_used,
            free,
            self.buffers,
            self.cached,
            self.mem_used / MEM_TOTAL * 100.0,
            2147483648.0,
            0.0,
            2147483648.0,
        ]);
        // Load (two decimals, updated every 5 s) and uptime (two decimals).
        if ts % 5000 < 1000 {
            for (k, w) in [(0usize, 0.92), (1, 0.983), (2, 0.994)] {
                self.load[k] = ((self.load[k] * w
                    + base_busy * CORES as f64 * (1.0 - w) * (1.0 + r.normal() * 0.5))
                    * 100.0)
                    .round()
                    / 100.0;
            }
        }
        v.extend(self.load);
        v.push(((ts - self.boot) as f64 / 10.0).round() / 100.0);
        // Filesystems.
        for (i, size) in FS_SIZE.iter().enumerate() {
            if r.chance(0.3) {
                self.fs_used[i] += (r.normal() * 50.0).round() * PAGE;
            }
            let avail = size * 0.95 - self.fs_used[i];
            v.extend([
                *size,
                self.fs_used[i],
                avail,
                self.fs_used[i] / (self.fs_used[i] + avail) * 100.0,
            ]);
        }
        // Network: counters and rates.
        for (i, n) in self.net.iter_mut().enumerate() {
            let scale = if i == 0 { 50_000.0 } else { 2_000.0 };
            let rxb = (scale * (1.0 + r.normal()).abs()).round();
            let txb = (scale * 0.6 * (1.0 + r.normal()).abs()).round();
            let rxp = (rxb / 900.0).ceil();
            let txp = (txb / 900.0).ceil();
            n[0] += rxb;
            n[1] += txb;
            n[2] += rxp;
            n[3] += txp;
            v.extend([
                n[0],
                n[1],
                n[2],
                n[3],
                0.0,
                0.0,
                if i == 0 { 12.0 } else { 0.0 },
                0.0,
                rxb / dt,
                txb / dt,
                rxp / dt,
                txp / dt,
            ]);
        }
        // Disks.
        for (i, d) in self.disk.iter_mut().enumerate() {
            let active = i == 0 || r.chance(0.1);
            let rd = if active { (r.f() * 20.0).round() } else { 0.0 };
            let wr = if active { (r.f() * 40.0).round() } else { 0.0 };
            d[0] += rd;
            d[1] += wr;
            d[2] += rd * PAGE * 4.0;
            d[3] += wr * PAGE * 2.0;
            let busy = if active {
                (r.f() * 3.0 * 1000.0).round() / 1000.0 * 100.0 / dt / 10.0
            } else {
                0.0
            };
            v.extend([
                d[0],
                d[1],
                d[2],
                d[3],
                rd / dt,
                wr / dt,
                rd * PAGE * 4.0 / dt,
                wr * PAGE * 2.0 / dt,
                busy,
            ]);
        }
        // Containers, with the Docker CLI's CPU formula.
        let sys_delta = tot.iter().sum::<f64>() * 1e7; // jiffies → ns
        for c in &mut self.containers {
            let cpu_ns = if c.busy {
                (2e8 * (1.0 + 0.4 * r.normal())).max(0.0).round()
            } else if r.chance(0.5) {
                0.0
            } else {
                (r.f() * 5e6).round()
            };
            let cpu = cpu_ns / sys_delta * CORES as f64 * 100.0;
            if r.chance(if c.busy { 0.5 } else { 0.1 }) {
                c.mem = (c.mem + (r.normal() * 20.0).round() * PAGE).max(PAGE);
            }
            if c.busy || r.chance(0.05) {
                c.rx += (r.f() * 20_000.0).round();
                c.tx += (r.f() * 8_000.0).round();
            }
            if r.chance(if c.busy { 0.3 } else { 0.01 }) {
                c.bw += PAGE * (r.f() * 8.0).round();
            }
            if r.chance(0.0005) {
                c.pids += if r.chance(0.5) { 1.0 } else { -1.0 };
            }
            v.extend([
                cpu,
                CORES as f64,
                c.mem,
                c.limit,
                c.mem / c.limit * 100.0,
                c.rx,
                c.tx,
                c.br,
                c.bw,
                c.pids,
            ]);
        }
        debug_assert_eq!(v.len(), self.vals.len());
        self.vals = v;
    }

    fn points(&self) -> Vec<(SeriesKey, f64)> {
        self.keys
            .iter()
            .cloned()
            .zip(self.vals.iter().copied())
            .collect()
    }
}

fn ts_at(start: i64, i: u64) -> i64 {
    start + i as i64 * 1000 + (i % 7) as i64 - 3 // ms jitter like a real sampler
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn du(path: &std::path::Path) -> u64 {
    let mut total = 0;
    for suffix in ["", "-wal", "-shm"] {
        let p = format!("{}{suffix}", path.display());
        total += std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
    }
    total
}

/// Pages in use (file size minus free pages) of an SQLite file, in bytes.
async fn sqlite_used_bytes(url: &str) -> u64 {
    let mut c = sqlx::AnyConnection::connect(url).await.expect("connect");
    let pc: i64 = sqlx::query("PRAGMA page_count")
        .fetch_one(&mut c)
        .await
        .unwrap()
        .get(0);
    let fl: i64 = sqlx::query("PRAGMA freelist_count")
        .fetch_one(&mut c)
        .await
        .unwrap()
        .get(0);
    let ps: i64 = sqlx::query("PRAGMA page_size")
        .fetch_one(&mut c)
        .await
        .unwrap()
        .get(0);
    ((pc - fl) * ps) as u64
}

fn arg(name: &str) -> Option<String> {
    let a: Vec<String> = std::env::args().collect();
    a.iter()
        .position(|x| x == name)
        .and_then(|i| a.get(i + 1).cloned())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    sqlx::any::install_default_drivers();
    let hours: u64 = arg("--hours").and_then(|x| x.parse().ok()).unwrap_or(12);
    let naive_ticks: u64 = arg("--naive-ticks")
        .and_then(|x| x.parse().ok())
        .unwrap_or(300);
    let out = std::path::PathBuf::from(arg("--out").unwrap_or_else(|| "target/bench-store".into()));
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).expect("out dir");
    let start = 1_767_225_600_000i64; // a midnight, UTC
    let t_all = Instant::now();

    // ---------------------------------------------------------- 0. codecs
    let mut fleet = Fleet::new(100);
    let n_series = fleet.keys.len();
    println!("lookout-store bench: {} series (host with {CORES} cores + 100 containers), {hours} h at 1 s", n_series);
    let window = 900usize;
    let windows = 8usize;
    let mut cols: Vec<Vec<f64>> = vec![Vec::with_capacity(window * windows); n_series];
    for i in 0..(window * windows) as u64 {
        fleet.tick(ts_at(start, i));
        for (c, v) in cols.iter_mut().zip(&fleet.vals) {
            c.push(*v);
        }
    }
    let samples = (n_series * window * windows) as f64;
    let classes = |k: &SeriesKey| -> &'static str {
        let n = k.name();
        if n.starts_with("host.cpu") {
            "host cpu %"
        } else if n.starts_with("host.memory") || n.starts_with("host.fs") {
            "host memory/fs"
        } else if n.starts_with("host.") {
            "host load/net/disk"
        } else if n == "container.cpu_percent" {
            "container cpu %"
        } else if n.starts_with("container.memory") {
            "container memory"
        } else {
            "container counters"
        }
    };
    type Enc = fn(&[f64]) -> Vec<u8>;
    let pco_only: Enc =
        |w| pco::standalone::simple_compress(w, &pco::ChunkConfig::default()).unwrap();
    let candidates: [(&str, Enc); 4] = [
        ("lookout without pco", codec::encode_values_without_pco),
        ("gorilla xor only", codec::encode_values_xor_only),
        ("pco 1.1 alone", pco_only),
        ("lookout (smallest, chosen)", codec::encode_values),
    ];
    println!("\n== codecs: values only, {windows} windows of {window} samples per series ==");
    println!(
        "{:<28} {:>10} {:>12} {:>12}",
        "codec", "B/sample", "encode ns/v", "decode ns/v"
    );
    let mut by_class: std::collections::BTreeMap<&str, [usize; 5]> = Default::default();
    for (ci, (name, enc)) in candidates.iter().enumerate() {
        let t = Instant::now();
        let mut total = 0usize;
        let mut encs = Vec::new();
        for (k, c) in fleet.keys.iter().zip(&cols) {
            for w in c.chunks(window) {
                let e = enc(w);
                total += e.len();
                by_class.entry(classes(k)).or_default()[ci] += e.len();
                if ci != 1 {
                    encs.push(e);
                }
            }
        }
        let te = t.elapsed();
        let t = Instant::now();
        for e in &encs {
            if ci == 2 {
                std::hint::black_box(pco::standalone::simple_decompress::<f64>(e).unwrap());
            } else {
                std::hint::black_box(codec::decode_values(e, window).unwrap());
            }
        }
        let td = t.elapsed();
        let dec = if ci == 1 {
            "-".to_string()
        } else {
            format!("{:.1}", td.as_nanos() as f64 / samples)
        };
        println!(
            "{:<28} {:>10.3} {:>12.1} {:>12}",
            name,
            total as f64 / samples,
            te.as_nanos() as f64 / samples,
            dec
        );
    }
    for k in &fleet.keys {
        by_class.entry(classes(k)).or_default()[4] += window * windows;
    }
    println!("by kind of series (B/sample: without pco / xor / pco / chosen):");
    for (cls, v) in &by_class {
        let n = v[4] as f64;
        println!(
            "    {:<20} {:>6} series  {:>6.3} {:>6.3} {:>6.3} {:>6.3}",
            cls,
            v[4] / (window * windows),
            v[0] as f64 / n,
            v[1] as f64 / n,
            v[2] as f64 / n,
            v[3] as f64 / n
        );
    }
    drop(cols);

    // ---------------------------------------------------------- 1+3. store: ingest a day of everything
    let db_path = out.join("store.db");
    let url = format!("sqlite://{}", db_path.display());
    let mut cfg = StoreConfig::new(url.clone());
    cfg.flush_interval = Duration::from_secs(3600); // the bench flushes every 10 simulated seconds itself
    let store = Store::open(cfg).await.expect("open store");
    let mut fleet = Fleet::new(100);
    let ticks = hours * 3600;
    let mut t_ingest = Duration::ZERO;
    let mut t_flush = Duration::ZERO;
    let mut n_samples = 0u64;
    let day_start = start - 6 * HOUR; // 18:00: the first 6 h get rolled up at midnight
    let mut rolled_samples = 0u64;
    for i in 0..ticks {
        let ts = ts_at(day_start, i);
        fleet.tick(ts);
        let p = fleet.points();
        n_samples += p.len() as u64;
        if ts < start {
            rolled_samples += p.len() as u64;
        }
        let t = Instant::now();
        store.ingest(ts, &p);
        t_ingest += t.elapsed();
        if i % 10 == 9 {
            let t = Instant::now();
            store.flush().await.expect("flush");
            t_flush += t.elapsed();
        }
    }
    let t = Instant::now();
    store.close().await.expect("close");
    t_flush += t.elapsed();
    let usage = {
        let s = Store::open(StoreConfig::new(url.clone())).await.unwrap();
        let u = s.usage().await.unwrap();
        s.close().await.unwrap();
        u
    };
    let used = sqlite_used_bytes(&url).await;
    let file = du(&db_path);
    let health_note = format!("{} samples in {} ticks", n_samples, ticks);

    // naive: one row per sample, one transaction per tick
    let naive_path = out.join("naive.db");
    let naive_url = format!("sqlite://{}?mode=rwc", naive_path.display());
    let mut nc = sqlx::AnyConnection::connect(&naive_url).await.unwrap();
    for s in ["PRAGMA journal_mode=WAL", "PRAGMA synchronous=FULL", "CREATE TABLE samples (series_id INTEGER NOT NULL, taken_at INTEGER NOT NULL, value REAL NOT NULL)", "CREATE INDEX samples_series_time ON samples (series_id, taken_at)"] {
        sqlx::query(s).execute(&mut nc).await.unwrap();
    }
    let mut fleet = Fleet::new(100);
    let mut t_naive = Duration::ZERO;
    let mut naive_rows = 0u64;
    for i in 0..naive_ticks {
        fleet.tick(ts_at(start, i));
        let ts = ts_at(start, i);
        let t = Instant::now();
        let mut tx = nc.begin().await.unwrap();
        for (sid, v) in fleet.vals.iter().enumerate() {
            sqlx::query("INSERT INTO samples (series_id, taken_at, value) VALUES (?, ?, ?)")
                .bind(sid as i64)
                .bind(ts)
                .bind(*v)
                .execute(&mut *tx)
                .await
                .unwrap();
        }
        tx.commit().await.unwrap();
        t_naive += t.elapsed();
        naive_rows += fleet.vals.len() as u64;
    }
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(&mut nc)
        .await
        .unwrap();
    nc.close().await.unwrap();
    let naive_used = sqlite_used_bytes(&naive_url).await;

    // ---------------------------------------------------------- 2. a week of the perf-history series
    let week_path = out.join("week.db");
    let wurl = format!("sqlite://{}", week_path.display());
    let mut wcfg = StoreConfig::new(wurl.clone());
    wcfg.flush_interval = Duration::from_secs(3600);
    let ws = Store::open(wcfg).await.unwrap();
    let keys = lookout_store::perf_history_keys();
    let week_ticks = 7 * 86_400 + 3 * 3600 + 1234u64; // a week plus a bit, ending mid-day
    let mut fleet = Fleet::new(0);
    let (ci, mui, mai, fui, fai) = {
        let find = |k: &SeriesKey| fleet.keys.iter().position(|x| x == k).unwrap();
        (
            find(&keys[0]),
            find(&keys[1]),
            find(&keys[2]),
            find(&keys[3]),
            find(&keys[4]),
        )
    };
    let mut nw = sqlx::AnyConnection::connect(&format!(
        "sqlite://{}?mode=rwc",
        out.join("week_naive.db").display()
    ))
    .await
    .unwrap();
    for s in [
        "PRAGMA journal_mode=WAL",
        "CREATE TABLE cpu_usage (usage REAL NOT NULL, taken_at INTEGER NOT NULL)",
        "CREATE INDEX cpu_usage_taken_at ON cpu_usage (taken_at)",
    ] {
        sqlx::query(s).execute(&mut nw).await.unwrap();
    }
    let mut tx = nw.begin().await.unwrap();
    let mut last_ts = 0;
    let t_week_load = Instant::now();
    for i in 0..week_ticks {
        let ts = ts_at(start, i);
        fleet.tick(ts);
        let v = &fleet.vals;
        ws.ingest(
            ts,
            &[
                (keys[0].clone(), v[ci]),
                (keys[1].clone(), v[mui]),
                (keys[2].clone(), v[mai]),
                (keys[3].clone(), v[fui]),
                (keys[4].clone(), v[fai]),
            ],
        );
        // The original stored usage as DECIMAL(5,2); keep the full value here (same AVG work).
        sqlx::query("INSERT INTO cpu_usage (usage, taken_at) VALUES (?, ?)")
            .bind(v[ci])
            .bind(ts)
            .execute(&mut *tx)
            .await
            .unwrap();
        if i % 600 == 599 {
            ws.flush().await.unwrap();
        }
        last_ts = ts;
    }
    tx.commit().await.unwrap();
    ws.flush().await.unwrap();
    let week_load = t_week_load.elapsed();
    let (from, to) = (last_ts - 7 * DAY, last_ts);
    let mut t_store = Vec::new();
    let mut t_summary = Vec::new();
    let mut t_range = Vec::new();
    let mut t_avg = Vec::new();
    let mut avg_store = 0.0;
    let mut avg_naive = 0.0;
    for _ in 0..31 {
        let t = Instant::now();
        avg_store = ws.stats(&keys[0], from, to).await.unwrap().avg.unwrap();
        t_store.push(t.elapsed());
        let t = Instant::now();
        avg_naive =
            sqlx::query("SELECT AVG(usage) FROM cpu_usage WHERE taken_at >= ? AND taken_at <= ?")
                .bind(from)
                .bind(to)
                .fetch_one(&mut nw)
                .await
                .unwrap()
                .get::<f64, _>(0);
        t_avg.push(t.elapsed());
    }
    let mut t_raw = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        std::hint::black_box(ws.raw(&keys[0], from, to).await.unwrap());
        t_raw.push(t.elapsed());
        let t = Instant::now();
        std::hint::black_box(ws.summary(&keys[0], from, to).await.unwrap());
        t_summary.push(t.elapsed());
        let t = Instant::now();
        std::hint::black_box(ws.range(&keys[0], from, to, Some(HOUR)).await.unwrap());
        t_range.push(t.elapsed());
    }
    ws.close().await.unwrap();
    nw.close().await.unwrap();

    // ---------------------------------------------------------- report
    let bps = used as f64 / n_samples as f64;
    let naive_bps = naive_used as f64 / naive_rows as f64;
    println!("\n== 1. bytes per sample on disk (SQLite), {health_note} ==");
    println!(
        "lookout store:     {:>8.3} B/sample  ({} bytes in use, file {} bytes)",
        bps, used, file
    );
    for u in &usage {
        println!(
            "    tier {:<4} {:>8} rows {:>12} bytes  ({:.3} B/sample)",
            u.tier,
            u.rows,
            u.bytes,
            u.bytes as f64
                / if u.tier == "raw" {
                    n_samples
                } else {
                    rolled_samples.max(1)
                } as f64
        );
    }
    let raw_b = usage
        .iter()
        .filter(|u| u.tier == "raw")
        .map(|u| u.bytes)
        .sum::<i64>() as f64;
    let roll_b = usage
        .iter()
        .filter(|u| u.tier != "raw")
        .map(|u| u.bytes)
        .sum::<i64>() as f64;
    let overhead = used as f64 - raw_b - roll_b;
    println!(
        "    (raw B/sample over all {} samples; rollup B/sample over the {} samples of the rolled-up 6 h)",
        n_samples, rolled_samples
    );
    println!(
        "    steady state per sample: raw {:.3} + rollups {:.3} + SQLite pages/indexes/ticks/wal {:.3} = {:.3} B",
        raw_b / n_samples as f64,
        roll_b / rolled_samples.max(1) as f64,
        overhead / n_samples as f64,
        raw_b / n_samples as f64 + roll_b / rolled_samples.max(1) as f64 + overhead / n_samples as f64
    );
    println!(
        "one row per sample:{:>8.3} B/sample  ({} rows of {} ticks; ratio {:.0}x)",
        naive_bps,
        naive_rows,
        naive_ticks,
        naive_bps / bps
    );
    println!(
        "a week of host + 100 containers ≈ {:.2} GB (lookout) vs {:.1} GB (rows)",
        bps * n_series as f64 * 604_800.0 / 1e9,
        naive_bps * n_series as f64 * 604_800.0 / 1e9
    );

    let ts = median(t_store.clone());
    let ta = median(t_avg.clone());
    println!("\n== 2. week-long /cpu_average ({} samples) ==", week_ticks);
    println!(
        "lookout stats():   median {:>9.3} ms  (avg {:.6})",
        ts.as_secs_f64() * 1e3,
        avg_store
    );
    println!(
        "AVG over rows:     median {:>9.3} ms  (avg {:.6}; ratio {:.0}x)",
        ta.as_secs_f64() * 1e3,
        avg_naive,
        ta.as_secs_f64() / ts.as_secs_f64()
    );
    println!(
        "lookout summary() with exact p95 over the week: median {:.3} ms",
        median(t_summary).as_secs_f64() * 1e3
    );
    println!(
        "lookout range(step=1h) over the week:           median {:.3} ms",
        median(t_range).as_secs_f64() * 1e3
    );
    println!(
        "lookout raw() of the whole week (every sample): median {:.3} ms",
        median(t_raw).as_secs_f64() * 1e3
    );
    println!(
        "(loading the week into both took {:.1} s)",
        week_load.as_secs_f64()
    );

    let per_tick_ingest = t_ingest.as_secs_f64() / ticks as f64;
    let per_tick_flush = t_flush.as_secs_f64() / ticks as f64;
    let per_tick_naive = t_naive.as_secs_f64() / naive_ticks as f64;
    println!(
        "\n== 3. ingest cost per tick ({} samples/tick) ==",
        n_series
    );
    println!(
        "lookout ingest() (sampler thread): {:>8.1} µs/tick",
        per_tick_ingest * 1e6
    );
    println!(
        "lookout writer (flush/seal/rollup, background, amortised): {:>8.1} µs/tick",
        per_tick_flush * 1e6
    );
    println!(
        "lookout total:     {:>8.1} µs/tick",
        (per_tick_ingest + per_tick_flush) * 1e6
    );
    println!(
        "one row per sample (1 txn/tick): {:>8.1} µs/tick (ratio {:.0}x)",
        per_tick_naive * 1e6,
        per_tick_naive / (per_tick_ingest + per_tick_flush)
    );
    println!(
        "\nbench took {:.1} s; files in {}",
        t_all.elapsed().as_secs_f64(),
        out.display()
    );
}
