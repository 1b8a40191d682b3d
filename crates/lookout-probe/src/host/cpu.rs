//! CPU time accounting from `/proc/stat` and the percentages between two readings.

use crate::CpuPercents;

/// Jiffies spent in each state since boot, as one `cpu`/`cpuN` line of `/proc/stat` lists them.
/// Fields a kernel does not print (older kernels stop after `steal` or even `iowait`) stay 0.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CpuTimes {
    pub user: u64,
    pub nice: u64,
    pub system: u64,
    pub idle: u64,
    pub iowait: u64,
    pub irq: u64,
    pub softirq: u64,
    pub steal: u64,
    /// Already counted inside `user`; kept only so nothing downstream adds it twice by mistake.
    pub guest: u64,
    /// Already counted inside `nice`.
    pub guest_nice: u64,
}

/// Jiffies per second in `/proc/stat`: the kernel's USER_HZ, fixed at 100 on every Linux
/// architecture lookout builds for (node_exporter assumes the same).
pub const USER_HZ: f64 = 100.0;

impl CpuTimes {
    /// Seconds spent in each state since boot, named as node_exporter's `mode` label names
    /// them. guest and guest_nice are left out: the kernel already counts them in user and nice.
    pub fn seconds_by_mode(&self) -> [(&'static str, f64); 8] {
        let s = |j: u64| j as f64 / USER_HZ;
        [
            ("user", s(self.user)),
            ("nice", s(self.nice)),
            ("system", s(self.system)),
            ("idle", s(self.idle)),
            ("iowait", s(self.iowait)),
            ("irq", s(self.irq)),
            ("softirq", s(self.softirq)),
            ("steal", s(self.steal)),
        ]
    }
}

/// The CPU lines of one `/proc/stat` reading.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProcStat {
    /// The aggregate `cpu` line.
    pub total: CpuTimes,
    /// `(N, times)` for every `cpuN` line, in file order. The index is kept because CPUs can be
    /// taken offline, and matching by position would then pair two different CPUs.
    pub cores: Vec<(u32, CpuTimes)>,
}

/// Parses `/proc/stat` into `out`, reusing its allocation. Returns false when there is no usable
/// aggregate `cpu` line, which means the text is not a `/proc/stat` at all. Malformed `cpuN`
/// lines are skipped rather than failing the whole reading.
pub fn parse_stat_into(text: &str, out: &mut ProcStat) -> bool {
    out.cores.clear();
    let mut total = None;
    let mut seen_cpu = false;
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("cpu") else {
            // The cpu lines come first and the interrupt lines after them are long: stop early.
            if seen_cpu {
                break;
            }
            continue;
        };
        seen_cpu = true;
        let mut fields = rest.split_ascii_whitespace();
        if rest.starts_with(|c: char| c.is_ascii_whitespace()) {
            if let Some(times) = parse_times(fields) {
                total.get_or_insert(times);
            }
        } else if let Some(index) = fields.next().and_then(|n| n.parse::<u32>().ok()) {
            if let Some(times) = parse_times(fields) {
                out.cores.push((index, times));
            }
        }
    }
    match total {
        Some(t) => {
            out.total = t;
            true
        }
        None => {
            out.total = CpuTimes::default();
            false
        }
    }
}

/// Convenience wrapper over [`parse_stat_into`] for callers that do not keep a buffer.
pub fn parse_stat(text: &str) -> Option<ProcStat> {
    let mut out = ProcStat::default();
    parse_stat_into(text, &mut out).then_some(out)
}

fn parse_times<'a>(mut fields: impl Iterator<Item = &'a str>) -> Option<CpuTimes> {
    let mut v = [0u64; 10];
    let mut n = 0;
    for slot in v.iter_mut() {
        match fields.next() {
            Some(f) => {
                *slot = f.parse().ok()?;
                n += 1;
            }
            None => break,
        }
    }
    // user, nice, system, idle are present on every kernel lookout could run on.
    if n < 4 {
        return None;
    }
    Some(CpuTimes {
        user: v[0],
        nice: v[1],
        system: v[2],
        idle: v[3],
        iowait: v[4],
        irq: v[5],
        softirq: v[6],
        steal: v[7],
        guest: v[8],
        guest_nice: v[9],
    })
}

/// Share of each state between two readings, in percent.
///
/// Each state's delta is taken on its own and a state whose counter went backwards (hotplug,
/// the per-CPU iowait counter, which is known to go backwards) contributes 0, so every share is
/// within 0..=100 and the states sum to 100 — or everything is 0 when no time passed at all.
/// The total excludes guest and guest_nice because the kernel already counts them in user and
/// nice.
pub fn percents(prev: &CpuTimes, cur: &CpuTimes) -> CpuPercents {
    let d = |a: u64, b: u64| b.saturating_sub(a) as f64;
    let user = d(prev.user, cur.user);
    let nice = d(prev.nice, cur.nice);
    let system = d(prev.system, cur.system);
    let idle = d(prev.idle, cur.idle);
    let iowait = d(prev.iowait, cur.iowait);
    let irq = d(prev.irq, cur.irq);
    let softirq = d(prev.softirq, cur.softirq);
    let steal = d(prev.steal, cur.steal);
    let total = user + nice + system + idle + iowait + irq + softirq + steal;
    if !total.is_finite() || total <= 0.0 {
        return CpuPercents::default();
    }
    let pct = |x: f64| (x * 100.0 / total).clamp(0.0, 100.0);
    let idle = pct(idle);
    let iowait = pct(iowait);
    CpuPercents {
        usage: (100.0 - idle - iowait).clamp(0.0, 100.0),
        user: pct(user),
        nice: pct(nice),
        system: pct(system),
        iowait,
        irq: pct(irq),
        softirq: pct(softirq),
        steal: pct(steal),
        idle,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const REAL: &str = include_str!("../../tests/fixtures/host/stat");

    #[test]
    fn parses_real_stat() {
        let s = parse_stat(REAL).unwrap();
        let expected_cores = REAL
            .lines()
            .filter(|l| l.starts_with("cpu") && !l.starts_with("cpu "))
            .count();
        assert_eq!(s.cores.len(), expected_cores);
        assert!(s
            .cores
            .iter()
            .enumerate()
            .all(|(i, (n, _))| *n as usize == i));
        // The aggregate is the sum of the per-CPU lines, give or take the kernel's rounding of
        // each CPU's nanoseconds to jiffies.
        let n = s.cores.len() as u64;
        let near = |total: u64, f: fn(&CpuTimes) -> u64| {
            let sum: u64 = s.cores.iter().map(|(_, t)| f(t)).sum();
            total.abs_diff(sum) <= n
        };
        assert!(near(s.total.user, |t| t.user));
        assert!(near(s.total.system, |t| t.system));
        assert!(near(s.total.idle, |t| t.idle));
        assert!(s.total.idle > 0);
    }

    #[test]
    fn first_fields() {
        let s =
            parse_stat("cpu  1 2 3 4 5 6 7 8 9 10\ncpu0 1 2 3 4 5 6 7 8 9 10\nintr 1 2\n").unwrap();
        assert_eq!(
            s.total,
            CpuTimes {
                user: 1,
                nice: 2,
                system: 3,
                idle: 4,
                iowait: 5,
                irq: 6,
                softirq: 7,
                steal: 8,
                guest: 9,
                guest_nice: 10
            }
        );
        assert_eq!(s.cores, vec![(0, s.total)]);
    }

    #[test]
    fn old_kernel_with_four_fields() {
        let s = parse_stat("cpu 10 0 5 85\ncpu0 10 0 5 85\n").unwrap();
        assert_eq!(s.total.idle, 85);
        assert_eq!(s.total.steal, 0);
    }

    #[test]
    fn garbage_and_missing() {
        assert!(parse_stat("").is_none());
        assert!(parse_stat("intr 1 2 3\nctxt 5\n").is_none());
        assert!(parse_stat("cpu 1 2\n").is_none());
        assert!(parse_stat("cpu a b c d\n").is_none());
        // A broken per-CPU line is dropped, the rest is kept.
        let s = parse_stat("cpu 1 2 3 4\ncpu0 x 2 3 4\ncpu1 1 2 3 4\ncpuX 1 2 3 4\n").unwrap();
        assert_eq!(s.cores.len(), 1);
        assert_eq!(s.cores[0].0, 1);
    }

    #[test]
    fn hotplugged_cpu_keeps_its_index() {
        let s = parse_stat("cpu 1 2 3 4\ncpu0 1 2 3 4\ncpu2 1 2 3 4\n").unwrap();
        assert_eq!(s.cores.iter().map(|c| c.0).collect::<Vec<_>>(), vec![0, 2]);
    }

    #[test]
    fn buffer_is_reused_and_reset() {
        let mut out = ProcStat::default();
        assert!(parse_stat_into(
            "cpu 1 2 3 4\ncpu0 1 2 3 4\ncpu1 1 2 3 4\n",
            &mut out
        ));
        assert_eq!(out.cores.len(), 2);
        assert!(parse_stat_into("cpu 1 2 3 4\ncpu0 1 2 3 4\n", &mut out));
        assert_eq!(out.cores.len(), 1);
        assert!(!parse_stat_into("nothing", &mut out));
        assert!(out.cores.is_empty());
    }

    #[test]
    fn percents_of_known_delta() {
        let a = CpuTimes::default();
        let b = CpuTimes {
            user: 30,
            nice: 0,
            system: 10,
            idle: 50,
            iowait: 10,
            guest: 20,
            ..a
        };
        let p = percents(&a, &b);
        assert_eq!(p.user, 30.0);
        assert_eq!(p.system, 10.0);
        assert_eq!(p.idle, 50.0);
        assert_eq!(p.iowait, 10.0);
        // guest is inside user: not added to the total, so usage is 40, not 60 out of 120.
        assert_eq!(p.usage, 40.0);
    }

    #[test]
    fn no_time_passed_is_all_zero() {
        let a = CpuTimes {
            user: 5,
            idle: 5,
            ..Default::default()
        };
        assert_eq!(percents(&a, &a), CpuPercents::default());
    }

    #[test]
    fn backwards_counters_do_not_go_negative() {
        let a = CpuTimes {
            user: 1000,
            idle: 1000,
            iowait: 500,
            ..Default::default()
        };
        let b = CpuTimes {
            user: 1100,
            idle: 1100,
            iowait: 400,
            ..Default::default()
        };
        let p = percents(&a, &b);
        assert_eq!(p.iowait, 0.0);
        assert_eq!(p.user, 50.0);
        assert_eq!(p.usage, 50.0);
        // A full reset gives zeros rather than anything negative.
        assert_eq!(percents(&b, &CpuTimes::default()), CpuPercents::default());
    }

    fn times() -> impl Strategy<Value = CpuTimes> {
        proptest::array::uniform10(prop_oneof![0u64..1_000_000, any::<u64>()]).prop_map(|v| {
            CpuTimes {
                user: v[0],
                nice: v[1],
                system: v[2],
                idle: v[3],
                iowait: v[4],
                irq: v[5],
                softirq: v[6],
                steal: v[7],
                guest: v[8],
                guest_nice: v[9],
            }
        })
    }

    proptest! {
        #[test]
        fn percents_are_bounded_and_sum_to_100(a in times(), b in times()) {
            let p = percents(&a, &b);
            let states = [p.user, p.nice, p.system, p.iowait, p.irq, p.softirq, p.steal, p.idle];
            for v in states.iter().chain(std::iter::once(&p.usage)) {
                prop_assert!(v.is_finite() && (0.0..=100.0).contains(v), "{p:?}");
            }
            let sum: f64 = states.iter().sum();
            if p == CpuPercents::default() {
                prop_assert_eq!(sum, 0.0);
            } else {
                prop_assert!((sum - 100.0).abs() < 1e-6, "sum {sum} of {p:?}");
                prop_assert!((p.usage + p.idle + p.iowait - 100.0).abs() < 1e-6);
            }
        }

        #[test]
        fn parser_never_panics(s in "\\PC*") {
            let _ = parse_stat(&s);
        }

        #[test]
        fn parser_never_panics_on_cpu_like_text(s in "(cpu[0-9 ]{0,3}( [0-9a-z-]{0,21}){0,12}\n){0,5}") {
            if let Some(st) = parse_stat(&s) {
                prop_assert!(st.cores.len() <= 5);
            }
        }
    }
}
