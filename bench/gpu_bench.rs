//! GPU sampling cost on a real GPU: NVML initialisation, one lookout GPU tick (the same
//! `GpuProbe::sample` the sampler runs), each NVML call it makes, and one
//! `nvidia-smi --query-gpu=… --format=csv` call, all in the same run.
//!
//! Build: `cargo build --release -p lookout-probe --example gpu_bench`
//! Run:   `target/release/examples/gpu_bench [ticks]` (prints Markdown; exit 2 without NVML).
//! CPU time is the calling thread's (CLOCK_THREAD_CPUTIME_ID: user + kernel, the ioctls into
//! the driver included); nvidia-smi's is its own user + system time (children's, /proc).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use lookout_probe::gpu::{GpuCadence, GpuProbe};
use nvml_wrapper::enum_wrappers::device::{Clock, PcieUtilCounter, TemperatureSensor};
use nvml_wrapper::Nvml;
use rustix::time::{clock_gettime, ClockId};

fn cpu_ns() -> u64 {
    let t = clock_gettime(ClockId::ThreadCPUTime);
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

/// (wall µs, cpu µs) of `f`.
fn measure<T>(f: impl FnOnce() -> T) -> (f64, f64, T) {
    let (w, c) = (Instant::now(), cpu_ns());
    let r = f();
    let cpu = (cpu_ns() - c) as f64 / 1000.0;
    (w.elapsed().as_secs_f64() * 1e6, cpu, r)
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() {
        return f64::NAN;
    }
    v[((v.len() - 1) as f64 * p).round() as usize]
}

/// Children's user + system time from /proc/self/stat, seconds.
fn children_cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map(|x| x.1).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    // Fields 16 and 17 of the whole line (cutime, cstime) are 13 and 14 after ")".
    let tick = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (tick(13) + tick(14)) / 100.0
}

const SMI_QUERY: &str = "index,uuid,name,pci.bus_id,utilization.gpu,utilization.memory,memory.total,memory.used,memory.free,memory.reserved,temperature.gpu,power.draw,power.limit,clocks.sm,clocks.mem,fan.speed,clocks_event_reasons.active,ecc.errors.corrected.volatile.total,mig.mode.current";

fn main() {
    let ticks: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(300);

    // Cold NVML initialisation: dlopen + nvmlInit_v2 (first in the process).
    let (init_wall, init_cpu, nvml) = measure(Nvml::init);
    let nvml = match nvml {
        Ok(n) => n,
        Err(e) => {
            println!("NVML not available: {e}");
            std::process::exit(2);
        }
    };
    let (probe_wall, probe_cpu, probe) = measure(GpuProbe::init);
    let mut probe = match probe {
        Ok(p) => p,
        Err(e) => {
            println!("GpuProbe::init failed: {e}");
            std::process::exit(2);
        }
    };
    println!("## GPU sampling cost\n");
    println!(
        "GPUs: {}; driver {}, NVML {}\n",
        probe
            .devices()
            .iter()
            .map(|d| format!("{} ({})", d.name, d.pci_bus_id))
            .collect::<Vec<_>>()
            .join(", "),
        nvml.sys_driver_version().unwrap_or_default(),
        nvml.sys_nvml_version().unwrap_or_default()
    );
    println!("| what | wall | CPU |\n| --- | ---: | ---: |");
    println!(
        "| NVML init, cold (dlopen libnvidia-ml.so.1 + nvmlInit) | {:.1} ms | {:.1} ms |",
        init_wall / 1000.0,
        init_cpu / 1000.0
    );
    println!(
        "| GpuProbe::init (second nvmlInit + per-GPU static info) | {:.1} ms | {:.1} ms |",
        probe_wall / 1000.0,
        probe_cpu / 1000.0
    );

    // Ticks, 20 ms apart so process-utilization windows stay short as at 1 s.
    let proc_root = Path::new("/proc");
    let n_gpus = probe.devices().len();
    for (label, cadence) in [
        ("default cadence", GpuCadence::default()),
        ("everything every tick", GpuCadence::EVERY_TICK),
    ] {
        probe = probe.with_cadence(cadence);
        let _ = probe.sample(proc_root); // PCIe baseline, util buffer: not counted
        let (mut walls, mut cpus) = (Vec::new(), Vec::new());
        let mut procs = 0;
        for _ in 0..ticks {
            std::thread::sleep(Duration::from_millis(20));
            let (w, c, view) = measure(|| probe.sample(proc_root));
            procs = view.gpus.iter().map(|g| g.processes.len()).sum();
            walls.push(w);
            cpus.push(c);
        }
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
        println!(
            "| GPU tick, {label} ({n_gpus} GPU, {procs} GPU processes), {ticks} ticks: **mean** (amortised) | {:.1} µs | **{:.1} µs** |",
            mean(&walls),
            mean(&cpus)
        );
        println!(
            "| GPU tick, {label}: median / p90 / max | {:.1} / {:.1} / {:.1} µs | {:.1} / {:.1} / {:.1} µs |",
            pct(&mut walls.clone(), 0.5),
            pct(&mut walls.clone(), 0.9),
            pct(&mut walls, 1.0),
            pct(&mut cpus.clone(), 0.5),
            pct(&mut cpus.clone(), 0.9),
            pct(&mut cpus, 1.0)
        );
    }

    // nvidia-smi, the same figures as CSV.
    let runs = 10;
    let before = children_cpu_secs();
    let mut smi_walls = Vec::new();
    let mut ok = true;
    for _ in 0..runs {
        let (w, _, out) = measure(|| {
            Command::new("nvidia-smi")
                .args([&format!("--query-gpu={SMI_QUERY}"), "--format=csv"])
                .output()
        });
        ok &= out.map(|o| o.status.success()).unwrap_or(false);
        smi_walls.push(w);
    }
    let smi_cpu = (children_cpu_secs() - before) / runs as f64 * 1e6;
    println!(
        "| one `nvidia-smi --query-gpu=… --format=csv` call{} , median of {runs} | {:.1} ms | {:.1} ms |",
        if ok { "" } else { " (FAILED)" },
        pct(&mut smi_walls, 0.5) / 1000.0,
        smi_cpu / 1000.0
    );

    // Each NVML call of a tick, on GPU 0.
    println!("\n### NVML calls on GPU 0 (median of 100, 10 ms apart)\n\n| call | wall µs | CPU µs |\n| --- | ---: | ---: |");
    let d = match nvml.device_by_index(0) {
        Ok(d) => d,
        Err(e) => {
            println!("device 0: {e}");
            return;
        }
    };
    macro_rules! call {
        ($name:expr, $e:expr) => {{
            let (mut w, mut c) = (Vec::new(), Vec::new());
            let mut ok = true;
            for _ in 0..100 {
                // Spaced as in a tick: back-to-back calls hit the driver's short-lived caches.
                std::thread::sleep(Duration::from_millis(10));
                let (a, b, r) = measure(|| $e);
                ok &= r.is_ok();
                w.push(a);
                c.push(b);
            }
            println!(
                "| {}{} | {:.2} | {:.2} |",
                $name,
                if ok { "" } else { " (error/unsupported)" },
                pct(&mut w, 0.5),
                pct(&mut c, 0.5)
            );
        }};
    }
    call!("device_by_index", nvml.device_by_index(0));
    call!("utilization_rates", d.utilization_rates());
    call!("memory_info (v2)", d.memory_info());
    call!("temperature", d.temperature(TemperatureSensor::Gpu));
    call!("power_usage", d.power_usage());
    call!("enforced_power_limit", d.enforced_power_limit());
    call!("total_energy_consumption", d.total_energy_consumption());
    call!("clock_info(SM)", d.clock_info(Clock::SM));
    call!("clock_info(Memory)", d.clock_info(Clock::Memory));
    call!("current_throttle_reasons", d.current_throttle_reasons());
    call!("is_ecc_enabled", d.is_ecc_enabled());
    call!("mig_mode", d.mig_mode());
    call!(
        "field_values (PCIe rx/tx bytes + 4 ECC totals)",
        d.field_values_for(&[197, 198, 3, 4, 5, 6].map(nvml_wrapper::structs::device::FieldId))
    );
    call!(
        "field_values (PCIe rx/tx bytes only)",
        d.field_values_for(&[197, 198].map(nvml_wrapper::structs::device::FieldId))
    );
    call!(
        "field_values (energy, field 83)",
        d.field_values_for(&[83].map(nvml_wrapper::structs::device::FieldId))
    );
    call!("running_compute_processes", d.running_compute_processes());
    call!("running_graphics_processes", d.running_graphics_processes());
    call!(
        "process_utilization_stats(0)",
        d.process_utilization_stats(None)
    );
    let recent = d
        .process_utilization_stats(None)
        .ok()
        .and_then(|s| s.iter().map(|s| s.timestamp).max())
        .unwrap_or(0);
    call!(
        "process_utilization_stats(newest seen)",
        d.process_utilization_stats(recent)
    );
    // The 20 ms-window fallback, only used where the byte counters are unsupported.
    let (w, c, r) = measure(|| d.pcie_throughput(PcieUtilCounter::Receive));
    println!(
        "| pcie_throughput (fallback, once){} | {:.0} | {:.2} |",
        if r.is_ok() {
            ""
        } else {
            " (error/unsupported)"
        },
        w,
        c
    );
}
