//! The Docker CLI's `docker stats` formulas as pure functions over Engine stats documents.
//!
//! lookout keeps the previous reading itself (one per container), so it never needs the
//! daemon's two-sample `stream=false` call that costs 1–2 s per container.

use bollard::models::{ContainerBlkioStats, ContainerMemoryStats, ContainerStatsResponse};

/// The counters CPU % is computed from, kept between two documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CpuReading {
    /// Container CPU time, nanoseconds.
    pub total_usage: u64,
    /// Host CPU time, nanoseconds (the Engine's `system_cpu_usage`).
    pub system_usage: u64,
    pub online_cpus: u32,
}

impl CpuReading {
    /// Reads the `cpu_stats` of a document; `None` when the Engine left the counters out
    /// (a stopped container, or a `one-shot` document).
    pub fn from_stats(doc: &ContainerStatsResponse) -> Option<Self> {
        let cpu = doc.cpu_stats.as_ref()?;
        let usage = cpu.cpu_usage.as_ref()?;
        let total_usage = usage.total_usage?;
        let system_usage = cpu.system_cpu_usage?;
        // The CLI falls back to the per-CPU array when online_cpus is missing (old engines).
        let online_cpus = match cpu.online_cpus {
            Some(n) if n > 0 => n,
            _ => usage
                .percpu_usage
                .as_ref()
                .map(|v| v.len() as u32)
                .unwrap_or(0),
        };
        Some(Self {
            total_usage,
            system_usage,
            online_cpus,
        })
    }
}

/// CPU % as `docker stats` prints it: Δcontainer / Δsystem × online CPUs × 100.
/// Ranges over 0..=online_cpus×100. Counters that did not move, or went backwards
/// (container restarted), give 0 rather than a negative or infinite figure.
pub fn cpu_percent(prev: CpuReading, cur: CpuReading) -> f64 {
    let cpu_delta = cur.total_usage.saturating_sub(prev.total_usage);
    let system_delta = cur.system_usage.saturating_sub(prev.system_usage);
    if cpu_delta == 0 || system_delta == 0 {
        return 0.0;
    }
    let cpus = cur.online_cpus.max(1) as f64;
    let pct = cpu_delta as f64 / system_delta as f64 * cpus * 100.0;
    pct.clamp(0.0, cpus * 100.0)
}

/// Memory used as the CLI shows it: usage minus the inactive page cache, which the kernel can
/// drop at any time. cgroup v1 reports it as `total_inactive_file`, v2 as `inactive_file`.
pub fn memory_used(mem: &ContainerMemoryStats) -> Option<u64> {
    let usage = mem.usage?;
    let inactive = mem.stats.as_ref().and_then(|s| {
        s.get("total_inactive_file")
            .or_else(|| s.get("inactive_file"))
            .copied()
    });
    Some(used_memory(usage, inactive))
}

/// usage − inactive page cache, or usage when the cache is unknown or not below it.
pub fn used_memory(usage: u64, inactive: Option<u64>) -> u64 {
    match inactive {
        Some(inactive) if inactive < usage => usage - inactive,
        _ => usage,
    }
}

/// Memory % of the limit (the host's RAM when no limit is set), as the CLI.
pub fn memory_percent(used: u64, limit: u64) -> Option<f64> {
    (limit > 0).then(|| used as f64 / limit as f64 * 100.0)
}

/// Bytes read and written, summed over devices, from `io_service_bytes_recursive`
/// (cgroup v1 spells the ops `Read`/`Write`, v2 `read`/`write`).
pub fn block_io(blkio: &ContainerBlkioStats) -> (u64, u64) {
    let mut read = 0u64;
    let mut write = 0u64;
    for entry in blkio.io_service_bytes_recursive.iter().flatten() {
        let value = entry.value.unwrap_or(0);
        match entry.op.as_deref().map(str::to_ascii_lowercase).as_deref() {
            Some("read") => read = read.saturating_add(value),
            Some("write") => write = write.saturating_add(value),
            _ => {}
        }
    }
    (read, write)
}

/// Network bytes received and sent, summed over the container's interfaces.
pub fn network_io(doc: &ContainerStatsResponse) -> Option<(u64, u64)> {
    let nets = doc.networks.as_ref()?;
    Some(nets.values().fold((0u64, 0u64), |(rx, tx), n| {
        (
            rx.saturating_add(n.rx_bytes.unwrap_or(0)),
            tx.saturating_add(n.tx_bytes.unwrap_or(0)),
        )
    }))
}

/// The figures of one document, given the previous CPU reading of the same container.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Figures {
    pub cpu_percent: Option<f64>,
    pub online_cpus: Option<u32>,
    pub memory_used: Option<u64>,
    pub memory_limit: Option<u64>,
    pub memory_percent: Option<f64>,
    pub net: Option<(u64, u64)>,
    pub block: Option<(u64, u64)>,
    pub pids: Option<u64>,
}

/// Computes every figure of a document. CPU % needs a previous reading (`None` → no CPU %).
pub fn figures(doc: &ContainerStatsResponse, prev: Option<CpuReading>) -> Figures {
    let cur = CpuReading::from_stats(doc);
    let cpu_percent = match (prev, cur) {
        (Some(prev), Some(cur)) => Some(cpu_percent(prev, cur)),
        _ => None,
    };
    let memory_used = doc.memory_stats.as_ref().and_then(memory_used);
    let memory_limit = doc.memory_stats.as_ref().and_then(|m| m.limit);
    let memory_percent = match (memory_used, memory_limit) {
        (Some(used), Some(limit)) => memory_percent(used, limit),
        _ => None,
    };
    Figures {
        cpu_percent,
        online_cpus: cur.map(|c| c.online_cpus),
        memory_used,
        memory_limit,
        memory_percent,
        net: network_io(doc),
        block: doc.blkio_stats.as_ref().map(block_io),
        pids: doc.pids_stats.as_ref().and_then(|p| p.current),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn fixture() -> ContainerStatsResponse {
        serde_json::from_str(include_str!(
            "../../tests/fixtures/docker/stats-cgroupv1.json"
        ))
        .expect("fixture parses")
    }

    #[test]
    fn cgroup_v1_memory_is_usage_minus_total_inactive_file() {
        let doc = fixture();
        let used = memory_used(doc.memory_stats.as_ref().unwrap()).unwrap();
        // Measured on this engine: 102969344 − 823296 = 97.4 MiB, what `docker stats` printed.
        assert_eq!(used, 102_969_344 - 823_296);
    }

    #[test]
    fn cgroup_v2_memory_uses_inactive_file() {
        let mem: ContainerMemoryStats = serde_json::from_value(serde_json::json!({
            "usage": 50_000_000u64, "limit": 100_000_000u64,
            "stats": {"anon": 40_000_000u64, "file": 9_000_000u64, "inactive_file": 4_000_000u64}
        }))
        .unwrap();
        assert_eq!(memory_used(&mem), Some(46_000_000));
    }

    #[test]
    fn inactive_larger_than_usage_keeps_usage() {
        let mem: ContainerMemoryStats = serde_json::from_value(serde_json::json!({
            "usage": 1000u64, "stats": {"total_inactive_file": 5000u64}
        }))
        .unwrap();
        assert_eq!(memory_used(&mem), Some(1000));
    }

    #[test]
    fn cpu_percent_of_the_fixture_matches_the_engine_precpu_formula() {
        let doc = fixture();
        let cur = CpuReading::from_stats(&doc).unwrap();
        assert_eq!(cur.online_cpus, 2);
        // 50 ms of container CPU over 200 ms of host CPU time on 2 CPUs: half a core = 50 %.
        let prev = CpuReading {
            total_usage: cur.total_usage - 50_000_000,
            system_usage: cur.system_usage - 200_000_000,
            online_cpus: 2,
        };
        assert!((cpu_percent(prev, cur) - 50.0).abs() < 1e-9);
        let quarter = CpuReading {
            total_usage: cur.total_usage - 25_000_000,
            ..prev
        };
        assert!((cpu_percent(quarter, cur) - 25.0).abs() < 1e-9);
    }

    #[test]
    fn cpu_falls_back_to_percpu_len_when_online_cpus_missing() {
        let doc: ContainerStatsResponse = serde_json::from_value(serde_json::json!({
            "cpu_stats": {"cpu_usage": {"total_usage": 10u64, "percpu_usage": [1u64, 2, 3, 4]},
                          "system_cpu_usage": 100u64}
        }))
        .unwrap();
        assert_eq!(CpuReading::from_stats(&doc).unwrap().online_cpus, 4);
    }

    #[test]
    fn block_io_sums_both_spellings_and_devices() {
        let blkio: ContainerBlkioStats = serde_json::from_value(serde_json::json!({
            "io_service_bytes_recursive": [
                {"major": 8, "minor": 0, "op": "Read", "value": 100u64},
                {"major": 8, "minor": 0, "op": "Write", "value": 7u64},
                {"major": 8, "minor": 16, "op": "read", "value": 1u64},
                {"major": 8, "minor": 16, "op": "write", "value": 3u64},
                {"major": 8, "minor": 16, "op": "Total", "value": 111u64}
            ]
        }))
        .unwrap();
        assert_eq!(block_io(&blkio), (101, 10));
    }

    #[test]
    fn figures_without_previous_reading_have_no_cpu() {
        let f = figures(&fixture(), None);
        assert_eq!(f.cpu_percent, None);
        assert_eq!(f.pids, Some(1));
        assert_eq!(f.block, Some((0, 0)));
        assert_eq!(f.memory_limit, Some(25_276_502_016));
    }

    proptest! {
        #[test]
        fn cpu_percent_is_bounded(a in any::<u64>(), b in any::<u64>(), c in any::<u64>(), d in any::<u64>(), cpus in 0u32..512) {
            let p = cpu_percent(
                CpuReading { total_usage: a, system_usage: b, online_cpus: cpus },
                CpuReading { total_usage: c, system_usage: d, online_cpus: cpus },
            );
            prop_assert!(p.is_finite());
            prop_assert!(p >= 0.0);
            prop_assert!(p <= cpus.max(1) as f64 * 100.0);
        }

        #[test]
        fn memory_used_never_exceeds_usage(usage in any::<u64>(), inactive in any::<u64>()) {
            let mem: ContainerMemoryStats = serde_json::from_value(serde_json::json!({
                "usage": usage, "stats": {"total_inactive_file": inactive}
            })).unwrap();
            let used = memory_used(&mem).unwrap();
            prop_assert!(used <= usage);
        }
    }
}
