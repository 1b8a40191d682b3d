//! lookout's container sampling alone, in a release build: the `Sampler` (host, cgroups of
//! every container, engine events; no GPU) ticking once a second for N seconds, as
//! `lookout serve` runs it, without the HTTP server and the history store. Prints this
//! process's CPU (user + system, % of one core), RSS and the containers seen with figures.
//! Usage: `cargo run --release -p lookout-probe --example containers_probe -- 60`
//! (bench/containers.sh starts the 100 containers; docs/benchmarks.md has the results).

use std::time::{Duration, Instant};

use lookout_probe::host::HostPaths;
use lookout_probe::{ContainersView, Sampler};

/// utime + stime of this process, in clock ticks (1/100 s).
fn cpu_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command (which may hold spaces): state is field 3, utime 14, stime 15.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let n = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    n(11) + n(12)
}

fn status(key: &str) -> String {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(key))
        .map(|l| l.split_whitespace().skip(1).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn main() {
    let secs: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(60);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let mut sampler = Sampler::new(HostPaths::default(), true).with_gpu(false);
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        // Warm-up: the first listing and inspects, and two readings for CPU %.
        for _ in 0..5 {
            tick.tick().await;
            sampler.sample().await;
        }
        let (c0, t0) = (cpu_ticks(), Instant::now());
        let mut seen = 0;
        let mut slowest = Duration::ZERO;
        for _ in 0..secs {
            tick.tick().await;
            let s = Instant::now();
            let snap = sampler.sample().await;
            slowest = slowest.max(s.elapsed());
            if let ContainersView::Available { containers } = &snap.containers {
                seen = containers
                    .iter()
                    .filter(|c| c.cpu_percent.is_some())
                    .count();
            }
        }
        let cpu = (cpu_ticks() - c0) as f64 / 100.0 / t0.elapsed().as_secs_f64() * 100.0;
        println!(
            "{secs} ticks, {seen} containers with figures: CPU {cpu:.2} % of one core, \
             slowest tick {slowest:?}, VmRSS {}, RssAnon {}, RssFile {}",
            status("VmRSS:"),
            status("RssAnon:"),
            status("RssFile:")
        );
    });
}
