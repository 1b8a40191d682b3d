//! The store suite, run against SQLite always and against PostgreSQL and MariaDB/MySQL when
//! `LOOKOUT_TEST_POSTGRES_URL` / `LOOKOUT_TEST_MYSQL_URL` are set (`eval "$(scripts/test-services.sh)"`).
//! Every scenario is one `async fn(Backend)`; the `suite!` macro makes one test per backend.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use lookout_store::{HealthStatus, SeriesKey, Store, StoreError};
use lookout_store::{DAY, HOUR, MINUTE};

const BASE: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z

macro_rules! suite {
    ($($name:ident),* $(,)?) => {
        mod sqlite { $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() { super::$name(super::Backend::Sqlite).await } )* }
        mod postgres { $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() { super::$name(super::Backend::Postgres).await } )* }
        mod mysql { $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() { super::$name(super::Backend::MySql).await } )* }
    };
}

suite!(
    round_trip_and_queries,
    rollups_retention_and_long_windows,
    containers_keep_history,
    bad_queries,
    kill_9_during_writes,
    down_and_back,
    open_while_down,
    limits_count_held_data
);

fn naive(samples: &[(i64, f64)]) -> (u64, f64, f64, f64) {
    let n = samples.len() as u64;
    let sum: f64 = samples.iter().map(|x| x.1).sum();
    let min = samples.iter().map(|x| x.1).fold(f64::INFINITY, f64::min);
    let max = samples
        .iter()
        .map(|x| x.1)
        .fold(f64::NEG_INFINITY, f64::max);
    (n, sum, min, max)
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

async fn check_all(s: &Store, expect: &BTreeMap<String, Vec<(i64, f64)>>, what: &str) {
    for (k, exp) in expect {
        let key = SeriesKey::parse(k).unwrap();
        let got = s.raw(&key, 0, i64::MAX / 2).await.unwrap();
        assert_same(&got, exp, &format!("{what}: raw {k}"));
    }
}

async fn round_trip_and_queries(b: Backend) {
    let Some(env) = Env::new(b, "roundtrip") else {
        return;
    };
    let mut expect = BTreeMap::new();
    let s = env.open().await;
    // 2,500 ticks: crosses raw windows, has a 2-minute gap, a container that comes and goes.
    ingest_range(&s, BASE, 0..1200, &mut expect);
    check_all(&s, &expect, "before any flush (memory)").await;
    s.flush().await.unwrap();
    ingest_range(&s, BASE, 1200..2500, &mut expect);
    check_all(&s, &expect, "half flushed").await;
    s.flush().await.unwrap();
    check_all(&s, &expect, "flushed").await;
    let h = s.health();
    assert_eq!(h.status, HealthStatus::Ok);
    assert_eq!(
        (h.buffered_samples, h.dropped_samples, h.late_samples),
        (0, 0, 0)
    );

    // Windows: summary/stats/range against a naive computation.
    let all = &expect[&cpu().to_string()];
    let (from, to) = (ts_of(BASE, 300) + 1, ts_of(BASE, 2100)); // inclusive bounds
    let win: Vec<(i64, f64)> = all
        .iter()
        .copied()
        .filter(|x| x.0 >= from && x.0 <= to)
        .collect();
    let (n, sum, min, max) = naive(&win);
    let sm = s.summary(&cpu(), from, to).await.unwrap();
    assert_eq!(sm.count, n);
    assert!(close(sm.avg.unwrap(), sum / n as f64));
    assert_eq!((sm.min, sm.max), (Some(min), Some(max)));
    let mut vals: Vec<f64> = win.iter().map(|x| x.1).collect();
    vals.sort_by(f64::total_cmp);
    assert_eq!(sm.p95, Some(vals[(0.95 * n as f64).ceil() as usize - 1]));
    assert!(sm.p95_exact);
    assert_eq!(sm.last, win.last().map(|x| x.1));
    let st = s.stats(&cpu(), from, to).await.unwrap();
    assert_eq!((st.count, st.min, st.max), (n, Some(min), Some(max)));
    for step in [1000, 60_000, 7_000] {
        let pts = s.range(&cpu(), from, to, Some(step)).await.unwrap();
        let mut m: BTreeMap<i64, Vec<f64>> = BTreeMap::new();
        for (t, v) in &win {
            m.entry(t.div_euclid(step) * step).or_default().push(*v);
        }
        assert_eq!(pts.len(), m.len(), "step {step}");
        for (p, (k, v)) in pts.iter().zip(&m) {
            assert_eq!(p.ts_ms, *k);
            assert_eq!(p.count, v.len() as u64);
            assert!(close(p.avg, v.iter().sum::<f64>() / v.len() as f64));
            assert_eq!(p.min, v.iter().copied().fold(f64::INFINITY, f64::min));
            assert_eq!(p.max, v.iter().copied().fold(f64::NEG_INFINITY, f64::max));
        }
    }
    let auto = s.range(&cpu(), from, to, None).await.unwrap();
    assert!(!auto.is_empty() && auto.len() <= 1001);
    // Empty window.
    let e = s
        .summary(&cpu(), BASE - 10 * DAY, BASE - 9 * DAY)
        .await
        .unwrap();
    assert_eq!((e.count, e.avg, e.p95, e.last), (0, None, None, None));

    // Graceful stop, reopen: everything is there, recovered from chunks and the write-ahead rows.
    s.close().await.unwrap();
    drop(s);
    let s = env.open().await;
    check_all(&s, &expect, "after reopen").await;
    // Keep going after a restart: same series ids, new samples appended.
    ingest_range(&s, BASE, 2500..2700, &mut expect);
    s.flush().await.unwrap();
    check_all(&s, &expect, "after restart and more samples").await;
    // Late and duplicate ticks are refused and counted.
    s.ingest(ts_of(BASE, 2600), &points(2600));
    assert_eq!(s.health().late_samples, points(2600).len() as u64);
    s.close().await.unwrap();
    env.cleanup().await;
}

async fn rollups_retention_and_long_windows(b: Backend) {
    let Some(env) = Env::new(b, "rollups") else {
        return;
    };
    let mut cfg = env.config();
    cfg.retention.raw = Duration::from_secs(2 * 86_400);
    cfg.retention.minute = Duration::from_secs(3 * 86_400);
    let s = Store::open(cfg.clone()).await.unwrap();
    // 5 days at one tick per 10 s for two series, starting mid-day.
    let start = BASE + 7 * HOUR + 12_345;
    let ticks = 5 * 8640u64;
    let mut cpu_all = Vec::new();
    let mut mem_all = Vec::new();
    for i in 0..ticks {
        let ts = start + i as i64 * 10_000;
        let c = 100.0 * noise(i);
        let m = (2_000_000_000 + (i / 50) * 4096) as f64;
        cpu_all.push((ts, c));
        mem_all.push((ts, m));
        s.ingest(ts, &[(cpu(), c), (mem(), m)]);
        if i % 2000 == 1999 {
            s.flush().await.unwrap();
        }
    }
    s.flush().await.unwrap();
    let usage = s.usage().await.unwrap();
    assert!(
        usage.iter().any(|u| u.tier == "1m" && u.rows > 0),
        "{usage:?}"
    );
    assert!(
        usage.iter().any(|u| u.tier == "1h" && u.rows > 0),
        "{usage:?}"
    );
    let last = cpu_all.last().unwrap().0;

    // Raw retention (2 days): old raw samples are gone, newer ones intact.
    let raw_all = s.raw(&cpu(), 0, i64::MAX / 2).await.unwrap();
    assert!(
        raw_all.first().unwrap().0 >= last - 3 * DAY,
        "raw retention applied"
    );
    let kept: Vec<_> = cpu_all
        .iter()
        .copied()
        .filter(|x| x.0 >= raw_all[0].0)
        .collect();
    assert_same(&raw_all, &kept, "raw within retention");

    // A window inside raw retention, 30 h long: exact.
    let (from, to) = (last - 30 * HOUR - 4321, last);
    let win: Vec<_> = cpu_all
        .iter()
        .copied()
        .filter(|x| x.0 >= from && x.0 <= to)
        .collect();
    let (n, sum, min, max) = naive(&win);
    let st = s.stats(&cpu(), from, to).await.unwrap();
    assert_eq!((st.count, st.min, st.max), (n, Some(min), Some(max)));
    assert!(close(st.avg.unwrap(), sum / n as f64));

    // All time (older than raw retention): answered from rollups; count/sum/min/max exact
    // because the window's edges are outside the data.
    let (n, sum, min, max) = naive(&cpu_all);
    let st = s.stats(&cpu(), 0, i64::MAX / 2).await.unwrap();
    assert_eq!((st.count, st.min, st.max), (n, Some(min), Some(max)));
    assert!(close(st.sum, sum));
    let (mn, msum, mmin, mmax) = naive(&mem_all);
    let sm = s.summary(&mem(), 0, i64::MAX / 2).await.unwrap();
    assert_eq!((sm.count, sm.min, sm.max), (mn, Some(mmin), Some(mmax)));
    assert!(close(sm.avg.unwrap(), msum / mn as f64));
    assert!(!sm.p95_exact);
    let mut mv: Vec<f64> = mem_all.iter().map(|x| x.1).collect();
    mv.sort_by(f64::total_cmp);
    let exact = mv[(0.95 * mn as f64).ceil() as usize - 1];
    assert!(
        (sm.p95.unwrap() - exact).abs() <= 4096.0 * 2.0,
        "p95 estimate {:?} vs {exact}",
        sm.p95
    );

    // Hourly range over everything equals the naive hourly buckets.
    let pts = s
        .range(&cpu(), start - DAY, last, Some(HOUR))
        .await
        .unwrap();
    let mut m: BTreeMap<i64, Vec<f64>> = BTreeMap::new();
    for (t, v) in &cpu_all {
        m.entry(t.div_euclid(HOUR) * HOUR).or_default().push(*v);
    }
    assert_eq!(pts.len(), m.len());
    for (p, (k, v)) in pts.iter().zip(&m) {
        assert_eq!((p.ts_ms, p.count), (*k, v.len() as u64));
        assert!(close(p.avg, v.iter().sum::<f64>() / v.len() as f64));
    }
    // 1-minute steps over a window older than raw retention come from 1-minute rollups…
    let f2 = lookout_store::ceil_to(last - 60 * HOUR, MINUTE);
    let t2 = f2 + 2 * HOUR;
    let pts = s.range(&cpu(), f2, t2 - 1, Some(MINUTE)).await.unwrap();
    assert_eq!(pts.len(), 120);
    assert!(pts.iter().all(|p| p.count == 6));
    let exp: Vec<_> = cpu_all
        .iter()
        .copied()
        .filter(|x| x.0 >= f2 && x.0 < f2 + MINUTE)
        .collect();
    let (n1, s1, mi1, ma1) = naive(&exp);
    assert_eq!((pts[0].count, pts[0].min, pts[0].max), (n1, mi1, ma1));
    assert!(close(pts[0].avg, s1 / n1 as f64));
    // …and older than minute retention (3 days here) from 1-hour rollups.
    let pts = s
        .range(&cpu(), start + HOUR, start + 3 * HOUR, Some(MINUTE))
        .await
        .unwrap();
    assert!(
        pts.len() <= 3 && pts.iter().all(|p| p.count <= 360),
        "{pts:?}"
    );
    assert!(pts.iter().map(|p| p.count).sum::<u64>() >= 720, "{pts:?}");

    // Reopen: watermarks and rollups survive; a further day moves retention of minute rollups.
    s.close().await.unwrap();
    let s = Store::open(cfg).await.unwrap();
    let again = s.stats(&cpu(), 0, i64::MAX / 2).await.unwrap();
    assert_eq!(again.count, n);
    s.close().await.unwrap();
    env.cleanup().await;
}

async fn containers_keep_history(b: Backend) {
    let Some(env) = Env::new(b, "containers") else {
        return;
    };
    let s = env.open().await;
    let mut expect = BTreeMap::new();
    ingest_range(&s, BASE, 0..600, &mut expect); // the container exists for ticks 100..400 only
    s.flush().await.unwrap();
    let list = s.series().await.unwrap();
    let c = list
        .iter()
        .find(|x| x.name == "container.cpu_percent")
        .expect("container series listed");
    assert_eq!(
        c.labels.get("id").map(String::as_str),
        Some("c0ffee1234567890")
    );
    assert_eq!(c.labels.get("name").map(String::as_str), Some("web"));
    assert_eq!(c.first_ms, Some(ts_of(BASE, 100)));
    assert_eq!(c.last_ms, Some(ts_of(BASE, 399)));
    assert_eq!(SeriesKey::parse(&c.key).unwrap(), container());
    let exp = &expect[&container().to_string()];
    for sel in [
        r#"container.cpu_percent{id="c0ffee"}"#,
        r#"container.cpu_percent{name="web"}"#,
        &c.key,
    ] {
        let got = s
            .raw(&SeriesKey::parse(sel).unwrap(), 0, i64::MAX / 2)
            .await
            .unwrap();
        assert_same(&got, exp, sel);
    }
    s.close().await.unwrap();
    let s = env.open().await;
    let got = s.raw(&container(), 0, i64::MAX / 2).await.unwrap();
    assert_same(&got, exp, "after reopen");
    assert_eq!(s.series().await.unwrap().len(), list.len());
    s.close().await.unwrap();
    env.cleanup().await;
}

async fn bad_queries(b: Backend) {
    let Some(env) = Env::new(b, "badq") else {
        return;
    };
    let s = env.open().await;
    s.ingest(BASE, &[(cpu(), 1.0)]);
    s.ingest(BASE + 2 * DAY, &[(cpu(), 1.0)]);
    assert!(matches!(
        s.raw(&SeriesKey::new("nope"), 0, 1).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        s.summary(&cpu(), 10, 5).await,
        Err(StoreError::InvalidQuery(_))
    ));
    assert!(matches!(
        s.range(&cpu(), 0, 10, Some(0)).await,
        Err(StoreError::InvalidQuery(_))
    ));
    assert!(matches!(
        s.range(&cpu(), 0, i64::MAX / 2, Some(1)).await,
        Err(StoreError::InvalidQuery(_))
    ));
    assert!(SeriesKey::parse("x{a=b}").is_err());
    let mut cfg = env.config();
    cfg.retention.raw = Duration::from_secs(60);
    assert!(matches!(Store::open(cfg).await, Err(StoreError::Config(_))));
    s.close().await.unwrap();
    env.cleanup().await;
}

/// `from=0` ("all time") or a fine step over a store that holds a minute is a minute's worth
/// of points, not 56 years' worth: the limit counts the span that holds samples.
async fn limits_count_held_data(b: Backend) {
    let Some(env) = Env::new(b, "heldspan") else {
        return;
    };
    let s = env.open().await;
    for i in 0..60 {
        s.ingest(BASE + i * 1000, &[(cpu(), i as f64)]);
    }
    assert_eq!(s.extent(&cpu()).unwrap(), Some((BASE, BASE + 59_000)));
    let all_time = s.range(&cpu(), 0, i64::MAX / 2, Some(1000)).await.unwrap();
    assert_eq!(all_time.len(), 60);
    assert_eq!(all_time[0].ts_ms, BASE);
    assert_eq!(all_time[59].avg, 59.0);
    flush_until_ok(&s).await;
    s.close().await.unwrap();
    // Reopened from the database alone.
    let s = env.open().await;
    assert_eq!(s.extent(&cpu()).unwrap(), Some((BASE, BASE + 59_000)));
    let fine = s.range(&cpu(), 0, i64::MAX / 2, Some(1)).await.unwrap();
    assert_eq!(fine.len(), 60, "1 ms steps over the minute held");
    assert_eq!(
        s.range(&cpu(), 0, BASE - 1, Some(1)).await.unwrap().len(),
        0
    );
    s.close().await.unwrap();
    env.cleanup().await;
}

// ---------------------------------------------------------------- kill -9

const CHILD_FLUSH_MS: u64 = 200;

/// Entry point of the child process the kill-9 test starts (the test binary re-invoked with
/// `LOOKOUT_CRASH_URL` set); a no-op in a normal run.
#[test]
fn crash_child_entry() {
    let Ok(url) = std::env::var("LOOKOUT_CRASH_URL") else {
        return;
    };
    let prefix = std::env::var("LOOKOUT_CRASH_PREFIX").unwrap_or_default();
    let start: u64 = std::env::var("LOOKOUT_CRASH_START")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let mut cfg = lookout_store::StoreConfig::new(url);
        cfg.table_prefix = prefix;
        cfg.flush_interval = Duration::from_millis(CHILD_FLUSH_MS);
        let s = Store::open(cfg).await.expect("child open");
        use std::io::Write;
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut i = start;
        while Instant::now() < deadline {
            s.ingest(ts_of(BASE, i), &points(i));
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "tick {i}");
            let _ = out.flush();
            drop(out);
            i += 1;
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    });
}

async fn kill_9_during_writes(b: Backend) {
    let Some(env) = Env::new(b, "kill9") else {
        return;
    };
    let exe = std::env::current_exe().unwrap();
    let mut next = 0u64;
    for round in 0..3u64 {
        let mut child = std::process::Command::new(&exe)
            .args([
                "crash_child_entry",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("LOOKOUT_CRASH_URL", &env.url)
            .env("LOOKOUT_CRASH_PREFIX", &env.prefix)
            .env("LOOKOUT_CRASH_START", next.to_string())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn child");
        let stdout = child.stdout.take().unwrap();
        let seen: Arc<Mutex<Vec<(Instant, u64)>>> = Arc::default();
        let seen2 = seen.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(n) = line.strip_prefix("tick ").and_then(|x| x.parse().ok()) {
                    seen2.lock().unwrap().push((Instant::now(), n));
                }
            }
        });
        // Wait for the first tick, then let it run into a few flushes and a window seal.
        let t0 = loop {
            if let Some(f) = seen.lock().unwrap().first() {
                break f.0;
            }
            assert!(child.try_wait().unwrap().is_none(), "child exited early");
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        tokio::time::sleep(
            Duration::from_millis(1500 + 450 * round)
                - t0.elapsed().min(Duration::from_millis(100)),
        )
        .await;
        child.kill().unwrap(); // SIGKILL
        let killed = Instant::now();
        child.wait().unwrap();
        reader.join().unwrap();
        let seen = seen.lock().unwrap().clone();
        let last_printed = seen.last().unwrap().1;

        let s = env.open().await;
        let mut expect: BTreeMap<String, Vec<(i64, f64)>> = BTreeMap::new();
        for i in 0..=last_printed {
            for (k, v) in points(i) {
                expect
                    .entry(k.to_string())
                    .or_default()
                    .push((ts_of(BASE, i), v));
            }
        }
        let got_mem = s.raw(&mem(), 0, i64::MAX / 2).await.unwrap();
        let recovered = got_mem.len() as u64; // mem is sampled every tick: ticks 0..recovered survived
        assert!(
            recovered >= next,
            "round {round}: lost data flushed in an earlier round"
        );
        for (k, exp) in &expect {
            let cut: Vec<_> = exp
                .iter()
                .copied()
                .filter(|x| x.0 < ts_of(BASE, recovered))
                .collect();
            let got = s
                .raw(&SeriesKey::parse(k).unwrap(), 0, i64::MAX / 2)
                .await
                .unwrap();
            assert_same(
                &got,
                &cut,
                &format!("round {round} {k}: recovered data is an exact prefix"),
            );
        }
        // At most one flush interval (plus the time a flush takes on a loaded 2-core box) lost.
        let bound = killed - Duration::from_millis(CHILD_FLUSH_MS) - Duration::from_millis(1000);
        let must = seen
            .iter()
            .rev()
            .find(|x| x.0 <= bound)
            .map_or(0, |x| x.1 + 1);
        let lost_ms = seen
            .iter()
            .find(|x| x.1 == recovered)
            .map_or(0, |x| killed.duration_since(x.0).as_millis());
        println!("{} kill-9 round {round}: printed {} ticks, recovered {recovered}, lost the last {lost_ms} ms", b.name(), last_printed + 1);
        assert!(recovered >= must, "round {round}: recovered {recovered} ticks, but everything up to {must} was ingested > flush interval before the kill");
        next = recovered;
        s.close().await.unwrap();
    }
    assert!(
        next > 900,
        "the child crossed at least one raw window ({next} ticks)"
    );
    env.cleanup().await;
}

// ---------------------------------------------------------------- store down and back

async fn down_and_back(b: Backend) {
    let Some(env) = Env::new(b, "downback") else {
        return;
    };
    if b == Backend::Sqlite {
        return sqlite_locked_and_back(env).await;
    }
    let (upstream, _) = via_proxy(&env.url, 0);
    let proxy = Proxy::start(upstream).await;
    let (_, url) = via_proxy(&env.url, proxy.port);
    let mut cfg = env.config();
    cfg.url = url;
    cfg.max_buffered_samples = 2000;
    let s = Store::open(cfg).await.unwrap();
    let mut expect = BTreeMap::new();
    ingest_range(&s, BASE, 0..300, &mut expect);
    s.flush().await.unwrap();

    // Down: flushing fails, ingest goes on, health says so.
    proxy.cut();
    tokio::time::sleep(Duration::from_millis(50)).await;
    ingest_range(&s, BASE, 300..600, &mut expect);
    assert!(s.flush().await.is_err());
    let h = s.health();
    assert_eq!(h.status, HealthStatus::Degraded);
    assert!(h.buffered_samples > 0 && h.reason.is_some());
    assert_eq!(h.dropped_samples, 0);
    // Live data is still served from memory while the store is down (no DB access needed).
    assert_eq!(s.health().buffered_samples, h.buffered_samples);

    // Back: catches up with nothing lost within the bound.
    proxy.restore();
    flush_until_ok(&s).await;
    check_all(&s, &expect, "caught up").await;
    let h = s.health();
    assert_eq!(
        (h.status, h.buffered_samples, h.dropped_samples),
        (HealthStatus::Ok, 0, 0)
    );

    // Down longer than the bound: the oldest pending samples are dropped and counted.
    proxy.cut();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let before = expect.clone();
    let mut during = BTreeMap::new();
    ingest_range(&s, BASE, 600..1400, &mut during);
    let total_during: usize = during.values().map(Vec::len).sum();
    let h = s.health();
    assert!(h.buffered_samples <= 2000);
    assert_eq!(
        h.dropped_samples as usize + h.buffered_samples,
        total_during
    );
    proxy.restore();
    flush_until_ok(&s).await;
    let got_mem = s.raw(&mem(), 0, i64::MAX / 2).await.unwrap();
    // What survives: everything from before, then a contiguous newest part of the outage.
    let first_kept = got_mem[before[&mem().to_string()].len()].0;
    for (k, v) in &before {
        let mut exp = v.clone();
        exp.extend(
            during
                .get(k)
                .into_iter()
                .flatten()
                .copied()
                .filter(|x| x.0 >= first_kept),
        );
        let got = s
            .raw(&SeriesKey::parse(k).unwrap(), 0, i64::MAX / 2)
            .await
            .unwrap();
        assert_same(&got, &exp, &format!("after overflow {k}"));
    }
    assert!(first_kept > ts_of(BASE, 600));
    s.close().await.unwrap();
    drop(proxy);
    env.cleanup().await;
}

async fn flush_until_ok(s: &Store) {
    let mut last = None;
    for _ in 0..20 {
        match s.flush().await {
            Ok(()) => return,
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("store did not come back: {last:?}");
}

/// SQLite "down": another process holds the write lock (as a full disk or a stuck backup would
/// make writes fail); writes fail after the busy timeout, ingest goes on, then it catches up.
async fn sqlite_locked_and_back(env: Env) {
    use sqlx::Connection;
    let s = env.open().await;
    let mut expect = BTreeMap::new();
    ingest_range(&s, BASE, 0..200, &mut expect);
    s.flush().await.unwrap();
    sqlx::any::install_default_drivers();
    let mut blocker = sqlx::AnyConnection::connect(&env.url).await.unwrap();
    sqlx::query("BEGIN EXCLUSIVE")
        .execute(&mut blocker)
        .await
        .unwrap();
    ingest_range(&s, BASE, 200..400, &mut expect);
    assert!(
        s.flush().await.is_err(),
        "writes fail while the database is locked"
    );
    assert_eq!(s.health().status, HealthStatus::Degraded);
    check_all(&s, &expect, "served from memory while locked").await;
    sqlx::query("COMMIT").execute(&mut blocker).await.unwrap();
    blocker.close().await.unwrap();
    flush_until_ok(&s).await;
    assert_eq!(s.health().status, HealthStatus::Ok);
    s.close().await.unwrap();
    let s = env.open().await;
    check_all(&s, &expect, "after catch-up and reopen").await;
    s.close().await.unwrap();
}

async fn open_while_down(b: Backend) {
    let Some(env) = Env::new(b, "opendown") else {
        return;
    };
    if b == Backend::Sqlite {
        // Not applicable: an SQLite file that cannot be opened is a configuration error.
        let mut cfg = env.config();
        cfg.url = "sqlite:///proc/no/such/dir/history.db".into();
        assert!(Store::open(cfg).await.is_err());
        return;
    }
    let (upstream, _) = via_proxy(&env.url, 0);
    let proxy = Proxy::start(upstream).await;
    proxy.cut();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let (_, url) = via_proxy(&env.url, proxy.port);
    let mut cfg = env.config();
    cfg.url = url;
    let s = Store::open(cfg)
        .await
        .expect("opens while the server is down");
    assert_eq!(s.health().status, HealthStatus::Starting);
    let mut expect = BTreeMap::new();
    ingest_range(&s, BASE, 0..100, &mut expect);
    assert!(matches!(
        s.raw(&cpu(), 0, i64::MAX / 2).await,
        Err(StoreError::Unavailable(_))
    ));
    proxy.restore();
    flush_until_ok(&s).await;
    check_all(&s, &expect, "after the server came up").await;
    s.close().await.unwrap();
    env.cleanup().await;
}
