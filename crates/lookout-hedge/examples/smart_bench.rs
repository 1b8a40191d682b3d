//! Benchmark harness for hedged `/api/work` calls (driven by `bench/smart.sh`).
//!
//! Subcommands (all targets must be 127.0.0.1; every loop is bounded in time):
//! - `sim --listen ADDR [--seed N --min-ms --max-ms --fail-rate --invalid-rate --hang-rate
//!   --slow-rate --slow-ms --max-secs S]`: serve work-sim for at most S seconds;
//! - `drive --url URL --mode direct|hedged|adaptive|all3|get [--concurrency N --secs S --warmup-secs W
//!   --timeout-ms T --delay-ms D --stats-url URL --label L]`: N closed-loop callers for S
//!   seconds; prints one markdown row (p50/p99/p99.9, success, upstream requests per call);
//! - `serve-smart --listen ADDR --upstream URL [--max-secs S]`: a minimal `/api/smart`
//!   (engine + pooled client) to measure requests/s;
//! - `engine-overhead [--iters N]`: in-process cost of the engine around a ready future.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use lookout_hedge::http::{ClientOptions, WorkClient};
use lookout_hedge::sim::{WorkSim, WorkSimConfig};
use lookout_hedge::{hedge, AdaptivePolicy, HedgeOutcome, HedgePolicy, Hedger};

type Args = HashMap<String, String>;

fn parse_args(raw: &[String]) -> Result<Args, String> {
    let mut out = HashMap::new();
    let mut it = raw.iter();
    while let Some(k) = it.next() {
        let key = k
            .strip_prefix("--")
            .ok_or_else(|| format!("unexpected argument {k}"))?;
        let v = it.next().ok_or_else(|| format!("--{key} needs a value"))?;
        out.insert(key.to_owned(), v.clone());
    }
    Ok(out)
}

fn get<T: std::str::FromStr>(a: &Args, k: &str, default: T) -> Result<T, String> {
    match a.get(k) {
        None => Ok(default),
        Some(v) => v.parse().map_err(|_| format!("--{k}: bad value {v:?}")),
    }
}

fn need<'a>(a: &'a Args, k: &str) -> Result<&'a str, String> {
    a.get(k)
        .map(String::as_str)
        .ok_or_else(|| format!("--{k} is required"))
}

fn loopback_only(url: &str) -> Result<(), String> {
    if url.starts_with("http://127.0.0.1:") {
        Ok(())
    } else {
        Err(format!("{url}: only http://127.0.0.1 targets are allowed"))
    }
}

fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let res = match argv.split_first() {
        Some((cmd, rest)) => parse_args(rest).and_then(|a| run(cmd, &a)),
        None => Err("usage: smart_bench sim|drive|serve-smart|engine-overhead [--k v]...".into()),
    };
    if let Err(e) = res {
        eprintln!("smart_bench: {e}");
        std::process::exit(2);
    }
}

fn run(cmd: &str, a: &Args) -> Result<(), String> {
    let threads = get(a, "threads", 0usize)?;
    let mut b = tokio::runtime::Builder::new_multi_thread();
    if threads > 0 {
        b.worker_threads(threads);
    }
    let rt = b.enable_all().build().map_err(|e| e.to_string())?;
    rt.block_on(async {
        match cmd {
            "sim" => sim(a).await,
            "drive" => drive(a).await,
            "serve-smart" => serve_smart(a).await,
            "engine-overhead" => engine_overhead(a).await,
            other => Err(format!("unknown subcommand {other}")),
        }
    })
}

async fn sim(a: &Args) -> Result<(), String> {
    let listen = need(a, "listen")?;
    if !listen.starts_with("127.0.0.1:") {
        return Err("--listen must be 127.0.0.1:PORT".into());
    }
    let cfg = WorkSimConfig {
        seed: get(a, "seed", 42)?,
        latency_min_ms: get(a, "min-ms", 100)?,
        latency_max_ms: get(a, "max-ms", 600)?,
        slow_rate: get(a, "slow-rate", 0.0)?,
        slow_ms: get(a, "slow-ms", 2000)?,
        fail_rate: get(a, "fail-rate", 0.0)?,
        invalid_json_rate: get(a, "invalid-rate", 0.0)?,
        hang_rate: get(a, "hang-rate", 0.0)?,
        ..Default::default()
    };
    let max = Duration::from_secs(get(a, "max-secs", 300)?);
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| e.to_string())?;
    let sim = WorkSim::new(cfg).map_err(|e| e.to_string())?;
    match tokio::time::timeout(max, sim.serve(listener)).await {
        Ok(r) => r.map_err(|e| e.to_string()),
        Err(_) => Ok(()),
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Direct,
    Hedged,
    Adaptive,
    All3,
    Get,
}

struct Sample {
    latency_us: u64,
    ok: bool,
    attempts: u8,
}

async fn drive(a: &Args) -> Result<(), String> {
    let url = need(a, "url")?.to_owned();
    loopback_only(&url)?;
    let mode = match need(a, "mode")? {
        "direct" => Mode::Direct,
        "hedged" => Mode::Hedged,
        "adaptive" => Mode::Adaptive,
        "all3" => Mode::All3,
        "get" => Mode::Get,
        m => return Err(format!("unknown mode {m}")),
    };
    let label = a
        .get("label")
        .cloned()
        .unwrap_or_else(|| need(a, "mode").unwrap_or("?").to_owned());
    let concurrency = get(a, "concurrency", 64usize)?.clamp(1, 4096);
    let secs = get(a, "secs", 10u64)?.clamp(1, 120);
    let warmup = get(a, "warmup-secs", 1u64)?.min(30);
    let timeout = Duration::from_millis(get(a, "timeout-ms", 2000u64)?);
    let delay = Duration::from_millis(get(a, "delay-ms", 300u64)?);
    let stats_url = a.get("stats-url").cloned();
    if let Some(s) = &stats_url {
        loopback_only(s)?;
    }

    let client = WorkClient::new(&url, &ClientOptions::default()).map_err(|e| e.to_string())?;
    let policy = match mode {
        Mode::All3 => HedgePolicy {
            delay: Duration::ZERO,
            ..Default::default()
        },
        // Finagle/gRPC style: delay at the recent p90, at most +10 % extra attempts.
        Mode::Adaptive => HedgePolicy {
            delay,
            adaptive: Some(AdaptivePolicy {
                percentile: 0.9,
                budget_ratio: 0.1,
                ..Default::default()
            }),
            ..Default::default()
        },
        _ => HedgePolicy {
            delay,
            ..Default::default()
        },
    };
    let hedger = Arc::new(Hedger::new(policy).map_err(|e| e.to_string())?);
    let raw = reqwest::Client::builder()
        .pool_max_idle_per_host(4096)
        .tcp_nodelay(true)
        .build()
        .map_err(|e| e.to_string())?;

    let start = Instant::now();
    let measure_from = start + Duration::from_secs(warmup);
    let end = measure_from + Duration::from_secs(secs);
    let mut before = None;
    let mut workers = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        let (client, hedger, raw, url) = (client.clone(), hedger.clone(), raw.clone(), url.clone());
        workers.push(tokio::spawn(async move {
            let mut out = Vec::new();
            while Instant::now() < end {
                let t = Instant::now();
                let (ok, attempts) = match mode {
                    Mode::Direct => {
                        let r = tokio::time::timeout(timeout, client.call()).await;
                        (matches!(r, Ok(Ok(_))), 1)
                    }
                    Mode::Hedged | Mode::Adaptive | Mode::All3 => {
                        let r = hedger.run(Some(timeout), |_| client.call()).await;
                        (
                            matches!(r.outcome, HedgeOutcome::Success { .. }),
                            r.attempts_fired() as u8,
                        )
                    }
                    Mode::Get => {
                        let r = raw.get(&url).timeout(timeout).send().await;
                        let ok = match r {
                            Ok(resp) => resp.status().is_success() && resp.bytes().await.is_ok(),
                            Err(_) => false,
                        };
                        (ok, 1)
                    }
                };
                if t >= measure_from {
                    out.push(Sample {
                        latency_us: t.elapsed().as_micros() as u64,
                        ok,
                        attempts,
                    });
                }
            }
            out
        }));
    }
    // Upstream counter at the start of the measured window.
    if let Some(s) = &stats_url {
        tokio::time::sleep_until(measure_from.into()).await;
        before = fetch_received(&raw, s).await;
    }
    let mut samples = Vec::new();
    for w in workers {
        samples.extend(w.await.map_err(|e| e.to_string())?);
    }
    let after = match &stats_url {
        Some(s) => fetch_received(&raw, s).await,
        None => None,
    };
    report(&label, &mut samples, secs, before.zip(after));
    Ok(())
}

async fn fetch_received(c: &reqwest::Client, url: &str) -> Option<u64> {
    let v: serde_json::Value = c.get(url).send().await.ok()?.json().await.ok()?;
    v.get("received")?.as_u64()
}

fn report(label: &str, s: &mut [Sample], secs: u64, upstream: Option<(u64, u64)>) {
    let n = s.len();
    if n == 0 {
        println!("| {label} | 0 calls |");
        return;
    }
    let ok = s.iter().filter(|x| x.ok).count();
    let attempts: u64 = s.iter().map(|x| u64::from(x.attempts)).sum();
    s.sort_unstable_by_key(|x| x.latency_us);
    let pct = |p: f64| {
        let idx = ((p * n as f64).ceil() as usize).clamp(1, n) - 1;
        s[idx].latency_us as f64 / 1000.0
    };
    let per_call = match upstream {
        Some((b, a)) => format!("{:.2}", a.saturating_sub(b) as f64 / n as f64),
        None => format!("{:.2}*", attempts as f64 / n as f64),
    };
    println!(
        "| {label} | {n} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} % | {per_call} |",
        n as f64 / secs as f64,
        pct(0.5),
        pct(0.99),
        pct(0.999),
        100.0 * ok as f64 / n as f64,
    );
}

async fn serve_smart(a: &Args) -> Result<(), String> {
    let listen = need(a, "listen")?;
    if !listen.starts_with("127.0.0.1:") {
        return Err("--listen must be 127.0.0.1:PORT".into());
    }
    let upstream = need(a, "upstream")?;
    loopback_only(upstream)?;
    let max = Duration::from_secs(get(a, "max-secs", 120)?);
    let client = WorkClient::new(upstream, &ClientOptions::default()).map_err(|e| e.to_string())?;
    let hedger = Hedger::new(HedgePolicy::default()).map_err(|e| e.to_string())?;
    let app = axum::Router::new()
        .route("/api/smart", axum::routing::get(smart))
        .with_state(Arc::new((client, hedger)));
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| e.to_string())?;
    match tokio::time::timeout(max, axum::serve(listener, app)).await {
        Ok(r) => r.map_err(|e| e.to_string()),
        Err(_) => Ok(()),
    }
}

/// Stand-in for the API crate's `/api/smart` handler, to measure what the engine and the
/// pooled client sustain behind an HTTP front.
async fn smart(
    State(st): State<Arc<(WorkClient, Hedger)>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let deadline = match q.get("timeout").map(|t| t.parse::<u64>()) {
        None => None,
        Some(Ok(ms)) if ms > 0 => Some(Duration::from_millis(ms)),
        Some(_) => {
            return (
                StatusCode::BAD_REQUEST,
                axum::Json(serde_json::json!({"error": "timeout must be a positive integer (ms)"})),
            )
                .into_response()
        }
    };
    let (client, hedger) = &*st;
    let r = hedger.run(deadline, |_| client.call()).await;
    match r.outcome {
        HedgeOutcome::Success { value, .. } => {
            axum::Json(serde_json::json!({ "time": value })).into_response()
        }
        HedgeOutcome::DeadlineExceeded => (
            StatusCode::GATEWAY_TIMEOUT,
            axum::Json(serde_json::json!({"error": "timeout"})),
        )
            .into_response(),
        HedgeOutcome::AllFailed => (
            StatusCode::BAD_GATEWAY,
            axum::Json(serde_json::json!({"error": "upstream failed"})),
        )
            .into_response(),
    }
}

async fn engine_overhead(a: &Args) -> Result<(), String> {
    let iters = get(a, "iters", 200_000u32)?.clamp(1, 10_000_000);
    let policy = HedgePolicy::default();
    let t = Instant::now();
    let mut sum = 0u64;
    for i in 0..iters {
        let r: Result<u64, String> = std::hint::black_box(async { Ok(u64::from(i)) }).await;
        sum = sum.wrapping_add(r.unwrap_or(0));
    }
    let direct = t.elapsed();
    let t = Instant::now();
    for i in 0..iters {
        let r = hedge(&policy, Some(Duration::from_secs(2)), |_| async move {
            Ok::<_, String>(u64::from(i))
        })
        .await;
        if let HedgeOutcome::Success { value, .. } = r.outcome {
            sum = sum.wrapping_add(value);
        }
    }
    let hedged = t.elapsed();
    let per = |d: Duration| d.as_nanos() as f64 / f64::from(iters);
    println!(
        "engine overhead: direct {:.0} ns/call, hedge() {:.0} ns/call, added {:.2} µs/call ({iters} iters, checksum {sum})",
        per(direct),
        per(hedged),
        (per(hedged) - per(direct)) / 1000.0
    );
    Ok(())
}
