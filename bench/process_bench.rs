//! Cost of refreshing the process table (issue 17: 1,000 processes in ≤ 5 ms of CPU),
//! beside psutil reading the same table in the same run.
//!
//! Spawns `BENCH_PROCS` (default 1000) sleeping processes (`sleep 300`, killed and reaped
//! when the bench ends, whatever happens), then times `ProcessProbe::refresh` over
//! `BENCH_ROUNDS` (default 30) refreshes in thread CPU time, and runs
//! `bench/process_psutil.py` under `PSUTIL_PYTHON` (a Python with psutil) for the same
//! rounds over the same processes. Run with:
//!
//! ```sh
//! python3 -m venv target/bench-venv && target/bench-venv/bin/pip install psutil
//! PSUTIL_PYTHON=target/bench-venv/bin/python \
//!   cargo run --release -p lookout-probe --example process_bench
//! ```

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use lookout_probe::procs::{ProcessLimits, ProcessProbe};
use rustix::time::{clock_gettime, ClockId};

fn thread_cpu() -> Duration {
    let t = clock_gettime(ClockId::ThreadCPUTime);
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

/// Kills and reaps every child it holds when dropped (also on panic).
struct Sleepers(Vec<Child>);

impl Drop for Sleepers {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
        }
        for c in &mut self.0 {
            let _ = c.wait();
        }
    }
}

/// This thread's user and system CPU ticks (USER_HZ) from `/proc/thread-self/stat`.
fn thread_ticks() -> (u64, u64) {
    let text = std::fs::read_to_string("/proc/thread-self/stat").unwrap_or_default();
    let f: Vec<&str> = text
        .rsplit_once(')')
        .map(|(_, r)| r.split_ascii_whitespace().collect())
        .unwrap_or_default();
    let at = |i: usize| f.get(i).and_then(|v| v.parse().ok()).unwrap_or(0);
    (at(11), at(12))
}

fn env_usize(name: &str, default: usize, max: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
        .clamp(1, max)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn main() {
    let n = env_usize("BENCH_PROCS", 1000, 5000);
    let rounds = env_usize("BENCH_ROUNDS", 30, 1000);
    let mut sleepers = Sleepers(Vec::with_capacity(n));
    for _ in 0..n {
        match Command::new("sleep")
            .arg("300")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
        {
            Ok(c) => sleepers.0.push(c),
            Err(e) => {
                eprintln!("spawned {} of {n}: {e}", sleepers.0.len());
                break;
            }
        }
    }
    // Let every child exec `sleep` before the table is read.
    std::thread::sleep(Duration::from_millis(500));

    let mut probe = ProcessProbe::new(
        Path::new("/proc"),
        Path::new("/"),
        ProcessLimits {
            every_ticks: 1,
            max_processes: 100_000,
        },
    );
    // The first refresh also reads what stays fixed (command line, user, cgroup): timed apart.
    let c0 = thread_cpu();
    let first = probe.refresh(Instant::now(), 0);
    let first_cpu = (thread_cpu() - c0).as_secs_f64() * 1e3;
    let mut cpu_ms = Vec::with_capacity(rounds);
    let mut rows = 0;
    let (u0, s0) = thread_ticks();
    for i in 0..rounds {
        std::thread::sleep(Duration::from_millis(20));
        let c = thread_cpu();
        let t = probe.refresh(Instant::now(), i as i64);
        cpu_ms.push((thread_cpu() - c).as_secs_f64() * 1e3);
        rows = t.processes.len();
    }
    let (u1, s1) = thread_ticks();
    cpu_ms.sort_by(f64::total_cmp);
    let mean = cpu_ms.iter().sum::<f64>() / cpu_ms.len() as f64;
    println!(
        "lookout  table of {rows} processes ({} spawned): first refresh {first_cpu:.2} ms CPU ({} rows); \
         steady refresh CPU ms: mean {mean:.2}, median {:.2}, p90 {:.2}, max {:.2} over {rounds} rounds",
        sleepers.0.len(),
        first.processes.len(),
        percentile(&cpu_ms, 0.5),
        percentile(&cpu_ms, 0.9),
        percentile(&cpu_ms, 1.0),
    );
    let per = |t: u64| t as f64 * 10.0 / rounds as f64;
    println!(
        "lookout  of which user {:.1} ms, kernel {:.1} ms per refresh (USER_HZ ticks over all rounds)",
        per(u1 - u0),
        per(s1 - s0)
    );

    match std::env::var("PSUTIL_PYTHON") {
        Ok(python) => {
            let script =
                Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bench/process_psutil.py");
            let out = Command::new(python)
                .arg(script)
                .arg(rounds.to_string())
                .stderr(Stdio::inherit())
                .output();
            match out {
                Ok(o) => print!("{}", String::from_utf8_lossy(&o.stdout)),
                Err(e) => println!("psutil   not run: {e}"),
            }
        }
        Err(_) => println!("psutil   not run: set PSUTIL_PYTHON to a Python with psutil"),
    }
    drop(sleepers);
}
