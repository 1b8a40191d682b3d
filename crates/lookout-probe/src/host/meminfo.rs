//! Memory figures from `/proc/meminfo`.

use crate::MemorySnapshot;

/// The `/proc/meminfo` lines lookout uses, in bytes. `None` means the kernel did not print the
/// line (MemAvailable only exists since Linux 3.14) or it could not be read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemInfo {
    pub mem_total: Option<u64>,
    pub mem_free: Option<u64>,
    pub mem_available: Option<u64>,
    pub buffers: Option<u64>,
    pub cached: Option<u64>,
    pub s_reclaimable: Option<u64>,
    pub swap_total: Option<u64>,
    pub swap_free: Option<u64>,
}

/// Parses `/proc/meminfo`. Unknown and malformed lines are ignored, so a kernel that adds or
/// renames lines does not break sampling; only the caller decides which absences are fatal.
pub fn parse_meminfo(text: &str) -> MemInfo {
    let mut m = MemInfo::default();
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let slot = match key.trim() {
            "MemTotal" => &mut m.mem_total,
            "MemFree" => &mut m.mem_free,
            "MemAvailable" => &mut m.mem_available,
            "Buffers" => &mut m.buffers,
            "Cached" => &mut m.cached,
            "SReclaimable" => &mut m.s_reclaimable,
            "SwapTotal" => &mut m.swap_total,
            "SwapFree" => &mut m.swap_free,
            _ => continue,
        };
        if let Some(bytes) = parse_value(value) {
            *slot = Some(bytes);
        }
    }
    m
}

/// `"  24684096 kB"` → bytes. The kernel writes "kB" but means KiB.
fn parse_value(value: &str) -> Option<u64> {
    let mut parts = value.split_ascii_whitespace();
    let n: u64 = parts.next()?.parse().ok()?;
    match parts.next() {
        None => Some(n),
        Some("kB") => Some(n.saturating_mul(1024)),
        Some(_) => None,
    }
}

/// The snapshot as `free(1)` would show it. None when MemTotal is missing, because every other
/// figure is meaningless without it.
pub fn snapshot(m: &MemInfo) -> Option<MemorySnapshot> {
    let total = m.mem_total?;
    let free = m.mem_free.unwrap_or(0);
    let buffers = m.buffers.unwrap_or(0);
    // free(1) counts reclaimable slab as cache: the kernel gives it back under pressure.
    let cached = m
        .cached
        .unwrap_or(0)
        .saturating_add(m.s_reclaimable.unwrap_or(0));
    // Kernels before 3.14 have no MemAvailable; free + buffers + cache is what tools of that era
    // showed, an overestimate but the best the kernel offers there.
    let available = m
        .mem_available
        .unwrap_or_else(|| free.saturating_add(buffers).saturating_add(cached))
        .min(total);
    let used = total - available;
    // Clamped: near u64::MAX the two roundings to f64 can land a hair above 100.
    let used_percent = if total > 0 {
        (used as f64 * 100.0 / total as f64).min(100.0)
    } else {
        0.0
    };
    let swap_total = m.swap_total.unwrap_or(0);
    let swap_free = m.swap_free.unwrap_or(0).min(swap_total);
    Some(MemorySnapshot {
        total,
        available,
        used,
        free: free.min(total),
        buffers,
        cached,
        used_percent,
        swap_total,
        swap_used: swap_total - swap_free,
        swap_free,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const REAL: &str = include_str!("../../tests/fixtures/host/meminfo");

    fn kb_of(text: &str, key: &str) -> u64 {
        let line = text
            .lines()
            .find(|l| l.starts_with(&format!("{key}:")))
            .unwrap();
        line.split_whitespace()
            .nth(1)
            .unwrap()
            .parse::<u64>()
            .unwrap()
            * 1024
    }

    #[test]
    fn parses_real_meminfo() {
        let m = parse_meminfo(REAL);
        assert_eq!(m.mem_total, Some(kb_of(REAL, "MemTotal")));
        assert_eq!(m.mem_available, Some(kb_of(REAL, "MemAvailable")));
        assert_eq!(m.s_reclaimable, Some(kb_of(REAL, "SReclaimable")));
        let s = snapshot(&m).unwrap();
        assert_eq!(s.total, kb_of(REAL, "MemTotal"));
        assert_eq!(s.available, kb_of(REAL, "MemAvailable"));
        assert_eq!(s.used, s.total - s.available);
        assert_eq!(s.free, kb_of(REAL, "MemFree"));
        assert_eq!(
            s.cached,
            kb_of(REAL, "Cached") + kb_of(REAL, "SReclaimable")
        );
        assert_eq!(s.buffers, kb_of(REAL, "Buffers"));
        assert_eq!(s.swap_used, s.swap_total - s.swap_free);
        assert!((s.used_percent - s.used as f64 / s.total as f64 * 100.0).abs() < 1e-9);
    }

    #[test]
    fn computes_known_figures() {
        let text = "MemTotal: 1000 kB\nMemFree: 100 kB\nMemAvailable: 600 kB\nBuffers: 50 kB\n\
                    Cached: 300 kB\nSReclaimable: 20 kB\nSwapTotal: 400 kB\nSwapFree: 100 kB\n";
        let s = snapshot(&parse_meminfo(text)).unwrap();
        assert_eq!(
            s,
            MemorySnapshot {
                total: 1_024_000,
                available: 614_400,
                used: 409_600,
                free: 102_400,
                buffers: 51_200,
                cached: 327_680,
                used_percent: 40.0,
                swap_total: 409_600,
                swap_used: 307_200,
                swap_free: 102_400,
            }
        );
    }

    #[test]
    fn old_kernel_without_memavailable() {
        let text = "MemTotal: 1000 kB\nMemFree: 100 kB\nBuffers: 50 kB\nCached: 300 kB\n";
        let s = snapshot(&parse_meminfo(text)).unwrap();
        assert_eq!(s.available, 450 * 1024);
        assert_eq!(s.used, 550 * 1024);
        assert_eq!(s.used_percent, 55.0);
    }

    #[test]
    fn fallback_available_never_exceeds_total() {
        let text = "MemTotal: 100 kB\nMemFree: 90 kB\nBuffers: 50 kB\nCached: 300 kB\n";
        let s = snapshot(&parse_meminfo(text)).unwrap();
        assert_eq!(s.available, s.total);
        assert_eq!(s.used, 0);
    }

    #[test]
    fn missing_total_and_garbage() {
        assert_eq!(snapshot(&parse_meminfo("")), None);
        assert_eq!(snapshot(&parse_meminfo("MemTotal: lots kB\n")), None);
        assert_eq!(snapshot(&parse_meminfo("MemTotal: 12 MB\n")), None);
        let m = parse_meminfo(
            "garbage\n:\nMemFree 12 kB\nMemTotal:\nMemTotal: 8 kB trailing\nMemTotal: 4 kB\n",
        );
        assert_eq!(m.mem_total, Some(4096));
        assert_eq!(m.mem_free, None);
        // Lines without a unit (HugePages_*) are plain numbers.
        assert_eq!(parse_value(" 7"), Some(7));
    }

    #[test]
    fn zero_total_does_not_divide_by_zero() {
        let s = snapshot(&parse_meminfo(
            "MemTotal: 0 kB\nMemAvailable: 5 kB\nSwapFree: 9 kB\n",
        ))
        .unwrap();
        assert_eq!(s.used_percent, 0.0);
        assert_eq!(s.available, 0);
        assert_eq!(s.swap_used, 0);
    }

    proptest! {
        #[test]
        fn parser_never_panics(s in "\\PC*") {
            if let Some(snap) = snapshot(&parse_meminfo(&s)) {
                prop_assert!(snap.used <= snap.total);
            }
        }

        #[test]
        fn snapshot_is_consistent(total: Option<u64>, free: Option<u64>, avail: Option<u64>, buffers: Option<u64>,
                                  cached: Option<u64>, sr: Option<u64>, st: Option<u64>, sf: Option<u64>) {
            let m = MemInfo { mem_total: total, mem_free: free, mem_available: avail, buffers, cached,
                              s_reclaimable: sr, swap_total: st, swap_free: sf };
            if let Some(s) = snapshot(&m) {
                prop_assert_eq!(s.used + s.available, s.total);
                prop_assert_eq!(s.swap_used + s.swap_free, s.swap_total);
                prop_assert!(s.used_percent.is_finite() && (0.0..=100.0).contains(&s.used_percent));
            } else {
                prop_assert!(total.is_none());
            }
        }
    }
}
