//! Evaluation cost of alert rules per tick (issue 18 target: 1,000 rules over the host and
//! 100 containers in ≤ 1 ms per tick).
//!
//!   cargo run --release -p lookout-alert --example alert_bench [ticks]
//!
//! Two rule mixes over one host (4 filesystems, 2 interfaces, 2 disks) and 100 containers
//! whose CPU moves every tick (so series cross thresholds and change state):
//! - `mixed`: 900 host-figure rules + 100 container rules, each container rule covering all
//!   100 containers (≈ 11,000 series);
//! - `all-containers`: 1,000 container rules each covering all 100 containers (100,000 series),
//!   the worst case.
//!
//! Each mix runs `steady` (figures near their own level: a few state changes a tick) and the
//! mixed one also `churn` (every figure sweeps 0..100: hundreds of changes a tick).
//!
//! Prints, per tick, the evaluating thread's CPU time (mean and p99: what the target is
//! about, and steady when other work shares the cores) and the wall time (mean), and the
//! ratio of the 1 ms target to the mean CPU time.

use std::time::{Duration, Instant};

use rustix::time::{clock_gettime, ClockId};

use lookout_alert::{compile_all, Engine, Figure, Rule, Scope};
use lookout_probe::{
    ContainerStats, ContainersView, DiskIo, Filesystem, HostSnapshot, NetInterface, Snapshot,
};

/// `churn`: every figure sweeps 0..100 (thousands of state changes a tick, a stress case);
/// otherwise each figure sits at its own level with ±2 of noise (a few changes, as in life).
fn snapshot(tick: u64, churn: bool) -> Snapshot {
    let wobble = |i: u64| {
        if churn {
            ((tick * 7 + i * 13) % 100) as f64
        } else {
            ((i * 37) % 100) as f64 + ((tick * 31 + i * 17) % 5) as f64 - 2.0
        }
    };
    let mut host = HostSnapshot {
        hostname: "bench".into(),
        ..Default::default()
    };
    host.cpu.total.usage = wobble(1);
    host.memory.used_percent = wobble(2);
    host.load.one = wobble(3) / 10.0;
    host.filesystems = (0..4)
        .map(|i| Filesystem {
            device: format!("/dev/sd{i}"),
            mount_point: format!("/mnt/{i}"),
            fs_type: "ext4".into(),
            size_bytes: 100,
            used_bytes: 50,
            available_bytes: 50,
            used_percent: wobble(10 + i),
        })
        .collect();
    host.network = (0..2)
        .map(|i| NetInterface {
            name: format!("eth{i}"),
            rx_bytes: 0,
            tx_bytes: 0,
            rx_packets: 0,
            tx_packets: 0,
            rx_errors: 0,
            tx_errors: 0,
            rx_dropped: 0,
            tx_dropped: 0,
            rx_bytes_per_sec: wobble(20 + i) * 1e6,
            tx_bytes_per_sec: wobble(30 + i) * 1e6,
            rx_packets_per_sec: 0.0,
            tx_packets_per_sec: 0.0,
        })
        .collect();
    host.disks = (0..2)
        .map(|i| DiskIo {
            name: format!("sd{i}"),
            reads_completed: 0,
            writes_completed: 0,
            read_bytes: 0,
            written_bytes: 0,
            reads_per_sec: 0.0,
            writes_per_sec: 0.0,
            read_bytes_per_sec: wobble(40 + i) * 1e6,
            written_bytes_per_sec: wobble(50 + i) * 1e6,
            busy_percent: wobble(60 + i),
        })
        .collect();
    let containers = (0..100u64)
        .map(|i| ContainerStats {
            id: format!("{i:064x}"),
            name: format!("svc-{i}"),
            state: "running".into(),
            cpu_percent: Some(wobble(100 + i)),
            memory_used_bytes: Some(wobble(200 + i) as u64 * 1_000_000),
            memory_percent: Some(wobble(300 + i)),
            pids: Some(10),
            labels: [("team".to_string(), format!("t{}", i % 5))].into(),
            ..Default::default()
        })
        .collect();
    Snapshot {
        taken_at_ms: tick as i64 * 1000,
        tick,
        host,
        containers: ContainersView::Available { containers },
        gpu: Default::default(),
        processes: None,
    }
}

fn rules(host_rules: usize, container_rules: usize) -> Vec<Rule> {
    let host_figs: Vec<Figure> = Figure::ALL
        .iter()
        .copied()
        .filter(|f| {
            matches!(
                f.scope(),
                Scope::Host | Scope::Filesystem | Scope::Interface | Scope::Disk
            )
        })
        .collect();
    let cont_figs: Vec<Figure> = Figure::ALL
        .iter()
        .copied()
        .filter(|f| f.scope() == Scope::Container)
        .collect();
    let mk = |i: usize, f: Figure, m: Option<serde_json::Value>| {
        let threshold = 30.0 + (i % 60) as f64;
        let mut v = serde_json::json!({
            "name": format!("r{i}"), "figure": f.name(), "op": ">", "threshold": threshold,
            "clear": threshold - 5.0, "for": if i.is_multiple_of(3) { "0s" } else { "5s" },
            "labels": {"severity": "warning"}, "summary": "{{ $value }} on {{ $labels.host }}",
        });
        if i.is_multiple_of(4) {
            v["window"] = serde_json::json!("30s");
        }
        if let Some(m) = m {
            v["match"] = m;
        }
        serde_json::from_value::<Rule>(v).expect("bench rule")
    };
    let mut out = Vec::new();
    for i in 0..host_rules {
        out.push(mk(i, host_figs[i % host_figs.len()], None));
    }
    for j in 0..container_rules {
        let i = host_rules + j;
        out.push(mk(
            i,
            cont_figs[j % cont_figs.len()],
            Some(serde_json::json!({"name": "svc-*"})),
        ));
    }
    out
}

fn thread_cpu() -> Duration {
    let t = clock_gettime(ClockId::ThreadCPUTime);
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

const WARM_UP: u64 = 40;

fn run(label: &str, rules: Vec<Rule>, ticks: u64, churn: bool) {
    let mut engine = Engine::new(compile_all(&rules).expect("valid rules"));
    let snaps: Vec<Snapshot> = (0..WARM_UP + ticks).map(|t| snapshot(t, churn)).collect();
    let (warm, measured) = snaps.split_at(WARM_UP as usize);
    // Warm-up: windows fill, series settle.
    for s in warm {
        engine.evaluate(s);
    }
    let mut cpu = Vec::with_capacity(measured.len());
    let mut wall = 0.0;
    let mut transitions = 0usize;
    for s in measured {
        let (c0, w0) = (thread_cpu(), Instant::now());
        transitions += engine.evaluate(s).len();
        wall += w0.elapsed().as_secs_f64() * 1e3;
        cpu.push((thread_cpu() - c0).as_secs_f64() * 1e3);
    }
    cpu.sort_by(|a, b| a.total_cmp(b));
    let mean = cpu.iter().sum::<f64>() / cpu.len() as f64;
    let p99 = cpu[(cpu.len() * 99 / 100).min(cpu.len() - 1)];
    println!(
        "| {label} | {} | {mean:.3} | {p99:.3} | {:.3} | {:.1}x | {} |",
        rules.len(),
        wall / cpu.len() as f64,
        1.0 / mean,
        transitions / ticks as usize
    );
}

fn main() {
    let ticks: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(300);
    println!(
        "| mix | rules | CPU ms/tick, mean | CPU ms/tick, p99 | wall ms/tick, mean | target 1 ms / CPU mean | transitions/tick |"
    );
    println!("|---|---|---|---|---|---|---|");
    let mixed = "mixed (900 host + 100 container rules x 100 containers)";
    run(&format!("steady, {mixed}"), rules(900, 100), ticks, false);
    let all = "all-containers (1,000 rules x 100 containers)";
    run(&format!("steady, {all}"), rules(0, 1000), ticks, false);
    run(&format!("churn, {mixed}"), rules(900, 100), ticks, true);
}
