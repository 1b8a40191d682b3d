//! The Docker CLI's `docker stats` formulas as pure functions over two readings, applied to
//! the cgroup files ([`crate::cgroup`]).

/// The counters CPU % is computed from, kept between two documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CpuReading {
    /// Container CPU time, nanoseconds.
    pub total_usage: u64,
    /// Host CPU time, nanoseconds (the Engine's `system_cpu_usage`).
    pub system_usage: u64,
    pub online_cpus: u32,
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

/// One container's figures at a tick, as `docker stats` computes them.
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn cpu_percent_is_the_cli_formula() {
        // 50 ms of container CPU over 200 ms of host CPU time on 2 CPUs: half a core = 50 %.
        let prev = CpuReading {
            total_usage: 1_000_000_000,
            system_usage: 9_000_000_000,
            online_cpus: 2,
        };
        let cur = CpuReading {
            total_usage: 1_050_000_000,
            system_usage: 9_200_000_000,
            online_cpus: 2,
        };
        assert!((cpu_percent(prev, cur) - 50.0).abs() < 1e-9);
    }

    #[test]
    fn memory_is_usage_minus_inactive_file() {
        // Measured on this engine (cgroup v1): 102969344 − 823296 = 97.4 MiB, what `docker
        // stats` printed.
        assert_eq!(
            used_memory(102_969_344, Some(823_296)),
            102_969_344 - 823_296
        );
        assert_eq!(used_memory(1000, Some(5000)), 1000);
        assert_eq!(used_memory(1000, None), 1000);
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
    }
}
