//! Series names for every figure of a [`Snapshot`], and the conversion the sampler calls.
//!
//! Host series (labels in braces):
//! - `host.cpu.<state>` for `usage user nice system iowait irq softirq steal idle` (percent),
//!   `host.cpu.core.<state>{core}` per logical CPU;
//! - `host.memory.<field>` for `total available used free buffers cached used_percent swap_total
//!   swap_used swap_free` (bytes, percent);
//! - `host.load.1`, `host.load.5`, `host.load.15`, `host.uptime_secs`;
//! - `host.fs.<field>{mount}` for `size used available used_percent`;
//! - `host.net.<field>{iface}` for the counters and rates of [`lookout_probe::NetInterface`];
//! - `host.disk.<field>{device}` for the counters and rates of [`lookout_probe::DiskIo`].
//!
//! Container series carry `{id, name}` (full id; the name without the slash), one per figure of
//! [`lookout_probe::ContainerStats`] that is present: `container.cpu_percent`,
//! `container.online_cpus`, `container.memory_used_bytes`, `container.memory_limit_bytes`,
//! `container.memory_percent`, `container.net_rx_bytes`, `container.net_tx_bytes`,
//! `container.block_read_bytes`, `container.block_write_bytes`, `container.pids`.
//! A container that goes away keeps its series (and so its history) under the same id and name.
//! Containers using a GPU also get `container.gpu_memory_bytes` and `container.gpu_sm_percent`
//! (summed over their processes and GPUs).
//!
//! GPU series carry `{gpu}` (the index; stable for a board's life, unlike process ids):
//! `gpu.utilization_percent`, `gpu.memory_utilization_percent`, `gpu.memory_used_bytes`,
//! `gpu.memory_total_bytes`, `gpu.temperature_celsius`, `gpu.power_watts`, `gpu.sm_clock_mhz`,
//! `gpu.pcie_rx_bytes_per_sec`, `gpu.pcie_tx_bytes_per_sec`, each only where the board reports it.
//!
//! The `perf-history` profile reads [`CPU_USAGE`], [`MEMORY_USED`], [`MEMORY_AVAILABLE`],
//! [`ROOT_FS_USED`] and [`ROOT_FS_AVAILABLE`] (see [`perf_history_keys`]).

use lookout_probe::{CpuPercents, Snapshot};

use crate::SeriesKey;

/// Host CPU busy percent (100 − idle − iowait).
pub const CPU_USAGE: &str = "host.cpu.usage";
/// Host memory used, bytes (total − available).
pub const MEMORY_USED: &str = "host.memory.used";
/// Host memory available, bytes (what perf-history called "free").
pub const MEMORY_AVAILABLE: &str = "host.memory.available";
/// Filesystem used bytes; label `mount`.
pub const FS_USED: &str = "host.fs.used";
/// Filesystem available bytes (statvfs `f_bavail`); label `mount`.
pub const FS_AVAILABLE: &str = "host.fs.available";
/// `host.fs.used{mount="/"}`.
pub const ROOT_FS_USED: &str = "host.fs.used{mount=\"/\"}";
/// `host.fs.available{mount="/"}`.
pub const ROOT_FS_AVAILABLE: &str = "host.fs.available{mount=\"/\"}";

/// The five series the `perf-history` profile serves, in the order cpu usage, memory used,
/// memory available, root fs used, root fs available.
pub fn perf_history_keys() -> [SeriesKey; 5] {
    [
        SeriesKey::new(CPU_USAGE),
        SeriesKey::new(MEMORY_USED),
        SeriesKey::new(MEMORY_AVAILABLE),
        SeriesKey::new(FS_USED).with("mount", "/"),
        SeriesKey::new(FS_AVAILABLE).with("mount", "/"),
    ]
}

fn cpu(
    out: &mut Vec<(SeriesKey, f64)>,
    prefix: &str,
    c: &CpuPercents,
    label: Option<(&str, String)>,
) {
    for (f, v) in [
        ("usage", c.usage),
        ("user", c.user),
        ("nice", c.nice),
        ("system", c.system),
        ("iowait", c.iowait),
        ("irq", c.irq),
        ("softirq", c.softirq),
        ("steal", c.steal),
        ("idle", c.idle),
    ] {
        let mut k = SeriesKey::new(format!("{prefix}{f}"));
        if let Some((l, ref lv)) = label {
            k = k.with(l, lv.clone());
        }
        out.push((k, v));
    }
}

/// Every host figure and every container figure of `s`, as (series, value) points.
pub fn points_from_snapshot(s: &Snapshot) -> Vec<(SeriesKey, f64)> {
    let h = &s.host;
    let mut out = Vec::with_capacity(
        64 + h.cpu.per_core.len() * 9 + s.containers.containers().map_or(0, |c| c.len() * 10),
    );
    cpu(&mut out, "host.cpu.", &h.cpu.total, None);
    for (i, c) in h.cpu.per_core.iter().enumerate() {
        cpu(&mut out, "host.cpu.core.", c, Some(("core", i.to_string())));
    }
    let m = &h.memory;
    for (f, v) in [
        ("total", m.total as f64),
        ("available", m.available as f64),
        ("used", m.used as f64),
        ("free", m.free as f64),
        ("buffers", m.buffers as f64),
        ("cached", m.cached as f64),
        ("used_percent", m.used_percent),
        ("swap_total", m.swap_total as f64),
        ("swap_used", m.swap_used as f64),
        ("swap_free", m.swap_free as f64),
    ] {
        out.push((SeriesKey::new(format!("host.memory.{f}")), v));
    }
    out.push((SeriesKey::new("host.load.1"), h.load.one));
    out.push((SeriesKey::new("host.load.5"), h.load.five));
    out.push((SeriesKey::new("host.load.15"), h.load.fifteen));
    out.push((SeriesKey::new("host.uptime_secs"), h.uptime_secs));
    for fs in &h.filesystems {
        for (f, v) in [
            ("size", fs.size_bytes as f64),
            ("used", fs.used_bytes as f64),
            ("available", fs.available_bytes as f64),
            ("used_percent", fs.used_percent),
        ] {
            out.push((
                SeriesKey::new(format!("host.fs.{f}")).with("mount", fs.mount_point.clone()),
                v,
            ));
        }
    }
    for n in &h.network {
        for (f, v) in [
            ("rx_bytes", n.rx_bytes as f64),
            ("tx_bytes", n.tx_bytes as f64),
            ("rx_packets", n.rx_packets as f64),
            ("tx_packets", n.tx_packets as f64),
            ("rx_errors", n.rx_errors as f64),
            ("tx_errors", n.tx_errors as f64),
            ("rx_dropped", n.rx_dropped as f64),
            ("tx_dropped", n.tx_dropped as f64),
            ("rx_bytes_per_sec", n.rx_bytes_per_sec),
            ("tx_bytes_per_sec", n.tx_bytes_per_sec),
            ("rx_packets_per_sec", n.rx_packets_per_sec),
            ("tx_packets_per_sec", n.tx_packets_per_sec),
        ] {
            out.push((
                SeriesKey::new(format!("host.net.{f}")).with("iface", n.name.clone()),
                v,
            ));
        }
    }
    for d in &h.disks {
        for (f, v) in [
            ("reads_completed", d.reads_completed as f64),
            ("writes_completed", d.writes_completed as f64),
            ("read_bytes", d.read_bytes as f64),
            ("written_bytes", d.written_bytes as f64),
            ("reads_per_sec", d.reads_per_sec),
            ("writes_per_sec", d.writes_per_sec),
            ("read_bytes_per_sec", d.read_bytes_per_sec),
            ("written_bytes_per_sec", d.written_bytes_per_sec),
            ("busy_percent", d.busy_percent),
        ] {
            out.push((
                SeriesKey::new(format!("host.disk.{f}")).with("device", d.name.clone()),
                v,
            ));
        }
    }
    if let Some(cs) = s.containers.containers() {
        for c in cs {
            let key = |f: &str| {
                SeriesKey::new(format!("container.{f}"))
                    .with("id", c.id.clone())
                    .with("name", c.name.clone())
            };
            let figures = [
                ("cpu_percent", c.cpu_percent),
                ("online_cpus", c.online_cpus.map(f64::from)),
                ("memory_used_bytes", c.memory_used_bytes.map(|v| v as f64)),
                ("memory_limit_bytes", c.memory_limit_bytes.map(|v| v as f64)),
                ("memory_percent", c.memory_percent),
                ("net_rx_bytes", c.net_rx_bytes.map(|v| v as f64)),
                ("net_tx_bytes", c.net_tx_bytes.map(|v| v as f64)),
                ("block_read_bytes", c.block_read_bytes.map(|v| v as f64)),
                ("block_write_bytes", c.block_write_bytes.map(|v| v as f64)),
                ("pids", c.pids.map(|v| v as f64)),
                (
                    "gpu_memory_bytes",
                    c.gpu.as_ref().map(|g| g.memory_used_bytes as f64),
                ),
                (
                    "gpu_sm_percent",
                    c.gpu.as_ref().map(|g| g.sm_utilization_percent),
                ),
            ];
            for (f, v) in figures {
                if let Some(v) = v {
                    out.push((key(f), v));
                }
            }
        }
    }
    for g in &s.gpu.gpus {
        let figures = [
            (
                "utilization_percent",
                g.utilization_gpu_percent.map(f64::from),
            ),
            (
                "memory_utilization_percent",
                g.utilization_memory_percent.map(f64::from),
            ),
            (
                "memory_used_bytes",
                g.memory.as_ref().map(|m| m.used_bytes as f64),
            ),
            (
                "memory_total_bytes",
                g.memory.as_ref().map(|m| m.total_bytes as f64),
            ),
            ("temperature_celsius", g.temperature_celsius.map(f64::from)),
            ("power_watts", g.power_draw_watts),
            ("sm_clock_mhz", g.sm_clock_mhz.map(f64::from)),
            ("pcie_rx_bytes_per_sec", g.pcie_rx_bytes_per_sec),
            ("pcie_tx_bytes_per_sec", g.pcie_tx_bytes_per_sec),
        ];
        for (f, v) in figures {
            if let Some(v) = v {
                out.push((
                    SeriesKey::new(format!("gpu.{f}")).with("gpu", g.index.to_string()),
                    v,
                ));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use lookout_probe::gpu::{ContainerGpu, GpuMemory, GpuStats, GpuView};
    use lookout_probe::*;

    #[test]
    fn gpu_figures_become_series_per_gpu_and_per_container() {
        let gpu = GpuStats {
            index: 1,
            uuid: "GPU-1".into(),
            name: "H100".into(),
            pci_bus_id: "00000000:17:00.0".into(),
            utilization_gpu_percent: Some(97),
            utilization_memory_percent: Some(40),
            memory: Some(GpuMemory {
                total_bytes: 80 << 30,
                used_bytes: 7 << 30,
                free_bytes: 73 << 30,
                reserved_bytes: None,
                used_percent: 8.75,
            }),
            temperature_celsius: Some(51),
            power_draw_watts: Some(420.5),
            power_limit_watts: Some(700.0),
            energy_millijoules: Some(1),
            sm_clock_mhz: None,
            memory_clock_mhz: None,
            pcie_rx_bytes_per_sec: None,
            pcie_tx_bytes_per_sec: None,
            fan_speed_percent: None,
            throttle_reasons: None,
            throttle_reasons_mask: None,
            ecc: None,
            mig: None,
            processes: vec![],
        };
        let c = ContainerStats {
            id: "abc".into(),
            name: "train".into(),
            state: "running".into(),
            gpu: Some(ContainerGpu {
                memory_used_bytes: 7 << 30,
                sm_utilization_percent: 99.0,
                processes: 1,
                devices: vec![],
            }),
            ..Default::default()
        };
        let s = Snapshot {
            taken_at_ms: 0,
            tick: 1,
            host: HostSnapshot::default(),
            containers: ContainersView::Available {
                containers: vec![c],
            },
            gpu: GpuView {
                available: true,
                gpus: vec![gpu],
                ..Default::default()
            },
            processes: None,
        };
        let p = points_from_snapshot(&s);
        let get = |k: &str| {
            let k = SeriesKey::parse(k).unwrap();
            p.iter().find(|(x, _)| *x == k).map(|x| x.1)
        };
        assert_eq!(get("gpu.utilization_percent{gpu=\"1\"}"), Some(97.0));
        assert_eq!(
            get("gpu.memory_used_bytes{gpu=\"1\"}"),
            Some((7u64 << 30) as f64)
        );
        assert_eq!(get("gpu.power_watts{gpu=\"1\"}"), Some(420.5));
        // Absent readings are absent series, not zeros.
        assert_eq!(get("gpu.sm_clock_mhz{gpu=\"1\"}"), None);
        assert_eq!(
            get("container.gpu_sm_percent{id=\"abc\",name=\"train\"}"),
            Some(99.0)
        );
        assert_eq!(
            get("container.gpu_memory_bytes{id=\"abc\",name=\"train\"}"),
            Some((7u64 << 30) as f64)
        );
    }

    #[test]
    fn every_figure_becomes_a_series() {
        let mut host = HostSnapshot::default();
        host.cpu.total.usage = 12.5;
        host.cpu.per_core = vec![CpuPercents::default(); 2];
        host.memory.used = 100;
        host.memory.available = 200;
        host.filesystems.push(Filesystem {
            device: "/dev/sda1".into(),
            mount_point: "/".into(),
            fs_type: "ext4".into(),
            size_bytes: 1000,
            used_bytes: 400,
            available_bytes: 500,
            used_percent: 44.4,
        });
        let c = ContainerStats {
            id: "3f2a9bc0".into(),
            name: "web".into(),
            image: "nginx".into(),
            state: "running".into(),
            status: "Up".into(),
            created: 0,
            labels: Default::default(),
            cpu_percent: Some(1.5),
            online_cpus: Some(2),
            memory_used_bytes: Some(10),
            memory_limit_bytes: None,
            memory_percent: None,
            net_rx_bytes: Some(1),
            net_tx_bytes: Some(2),
            block_read_bytes: None,
            block_write_bytes: None,
            pids: Some(3),
            gpu: None,
            runtime: None,
            restart_count: None,
            cgroup: None,
            raw_stats: None,
        };
        let s = Snapshot {
            taken_at_ms: 0,
            tick: 1,
            host,
            containers: ContainersView::Available {
                containers: vec![c],
            },
            gpu: Default::default(),
            processes: None,
        };
        let p = points_from_snapshot(&s);
        let get = |k: &SeriesKey| p.iter().find(|(x, _)| x == k).map(|x| x.1);
        let [cpu, mu, ma, fu, fa] = perf_history_keys();
        assert_eq!(get(&cpu), Some(12.5));
        assert_eq!(get(&mu), Some(100.0));
        assert_eq!(get(&ma), Some(200.0));
        assert_eq!(get(&fu), Some(400.0));
        assert_eq!(get(&fa), Some(500.0));
        assert_eq!(SeriesKey::parse(ROOT_FS_USED).unwrap(), fu);
        assert_eq!(SeriesKey::parse(ROOT_FS_AVAILABLE).unwrap(), fa);
        assert_eq!(
            get(&SeriesKey::new("container.cpu_percent")
                .with("id", "3f2a9bc0")
                .with("name", "web")),
            Some(1.5)
        );
        // 9 total + 18 per-core + 10 memory + 3 load + uptime + 4 fs + 6 container figures present
        assert_eq!(p.len(), 9 + 18 + 10 + 3 + 1 + 4 + 6);
        let mut keys: Vec<_> = p.iter().map(|x| x.0.to_string()).collect();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), p.len(), "series keys are unique");
    }
}
