//! Pure parsers, one per cgroup file, for both cgroup versions. None allocates: a tick reads
//! a few of these per container, so each parser walks the text once and keeps only numbers.
//!
//! | figure  | cgroup v1                                    | cgroup v2                  |
//! |---------|----------------------------------------------|----------------------------|
//! | CPU     | `cpuacct.usage` (ns)                         | `cpu.stat` `usage_usec`    |
//! | memory  | `memory.usage_in_bytes`, `memory.stat` `total_inactive_file` | `memory.current`, `memory.stat` `inactive_file` |
//! | limit   | `memory.limit_in_bytes`                      | `memory.max` (`max`)       |
//! | pids    | `pids.current`                               | `pids.current`             |
//! | block   | `blkio.throttle.io_service_bytes_recursive`  | `io.stat` `rbytes`/`wbytes` |

/// A file holding one unsigned number (`cpuacct.usage`, `memory.current`, `pids.current`).
pub fn single_u64(text: &str) -> Option<u64> {
    text.trim().parse().ok()
}

/// A limit file: a number, or `max` (v2's "no limit", read as `u64::MAX`).
pub fn limit(text: &str) -> Option<u64> {
    match text.trim() {
        "max" => Some(u64::MAX),
        t => t.parse().ok(),
    }
}

/// One key of a flat-keyed file (`memory.stat`, `cpu.stat`): lines of `<key> <value>`.
pub fn keyed(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let (k, v) = line.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

/// CPU time in nanoseconds from v2's `cpu.stat` (`usage_usec`, microseconds).
pub fn cpu_stat_usage_ns(text: &str) -> Option<u64> {
    keyed(text, "usage_usec").map(|us| us.saturating_mul(1000))
}

/// The inactive page cache `docker stats` subtracts: `total_inactive_file` on v1 (the whole
/// subtree), `inactive_file` on v2 (already hierarchical there).
pub fn inactive_file(memory_stat: &str, v2: bool) -> Option<u64> {
    keyed(
        memory_stat,
        if v2 {
            "inactive_file"
        } else {
            "total_inactive_file"
        },
    )
}

/// Bytes read and written from v1's `blkio.*io_service_bytes_recursive`: lines of
/// `<major>:<minor> <Op> <bytes>` and a closing `Total <bytes>`, summed over devices.
pub fn blkio_service_bytes(text: &str) -> (u64, u64) {
    let mut read = 0u64;
    let mut write = 0u64;
    for line in text.lines() {
        let mut f = line.split_ascii_whitespace();
        let (Some(_dev), Some(op), Some(value)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        let Ok(value) = value.parse::<u64>() else {
            continue;
        };
        if op.eq_ignore_ascii_case("read") {
            read = read.saturating_add(value);
        } else if op.eq_ignore_ascii_case("write") {
            write = write.saturating_add(value);
        }
    }
    (read, write)
}

/// Bytes read and written from v2's `io.stat`: lines of `<major>:<minor> rbytes=N wbytes=N
/// rios=N …`, summed over devices.
pub fn io_stat_bytes(text: &str) -> (u64, u64) {
    let mut read = 0u64;
    let mut write = 0u64;
    for line in text.lines() {
        for field in line.split_ascii_whitespace().skip(1) {
            let Some((k, v)) = field.split_once('=') else {
                continue;
            };
            let Ok(v) = v.parse::<u64>() else { continue };
            match k {
                "rbytes" => read = read.saturating_add(v),
                "wbytes" => write = write.saturating_add(v),
                _ => {}
            }
        }
    }
    (read, write)
}

/// The first pid of `cgroup.procs` (one pid a line): the process whose network namespace
/// is the container's.
pub fn first_pid(text: &str) -> Option<u32> {
    text.lines().find_map(|l| l.trim().parse().ok())
}

/// Bytes received and sent over every interface of a `/proc/<pid>/net/dev` but `lo`, as
/// `docker stats` counts them (the container's own interfaces only).
pub fn net_dev_bytes(text: &str) -> (u64, u64) {
    let mut rx = 0u64;
    let mut tx = 0u64;
    for line in text.lines() {
        let Some((name, counters)) = line.rsplit_once(':') else {
            continue;
        };
        if name.trim() == "lo" {
            continue;
        }
        let mut f = counters.split_ascii_whitespace();
        let Some(r) = f.next().and_then(|v| v.parse::<u64>().ok()) else {
            continue;
        };
        // rx: bytes packets errs drop fifo frame compressed multicast, then tx bytes.
        let Some(t) = f.nth(7).and_then(|v| v.parse::<u64>().ok()) else {
            continue;
        };
        rx = rx.saturating_add(r);
        tx = tx.saturating_add(t);
    }
    (rx, tx)
}

/// Host CPU time in nanoseconds from the `cpu` line of `/proc/stat`, the Engine's
/// `system_cpu_usage`: the sum of user … softirq, in clock ticks of 1/100 s, and the number
/// of `cpuN` lines (online CPUs).
pub fn system_usage_ns(proc_stat: &str) -> Option<(u64, u32)> {
    let mut total = None;
    let mut cpus = 0u32;
    for line in proc_stat.lines() {
        let Some(rest) = line.strip_prefix("cpu") else {
            if total.is_some() {
                break;
            }
            continue;
        };
        if rest.starts_with(' ') {
            // The Engine sums the first seven fields (user nice system idle iowait irq
            // softirq): steal and guest are left out, and so are they here.
            let ticks: u64 = rest
                .split_ascii_whitespace()
                .take(7)
                .filter_map(|v| v.parse::<u64>().ok())
                .fold(0u64, u64::saturating_add);
            total = Some(ticks.saturating_mul(10_000_000));
        } else if rest.starts_with(|c: char| c.is_ascii_digit()) {
            cpus += 1;
        }
    }
    total.map(|t| (t, cpus))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_reads_max() {
        assert_eq!(limit("max\n"), Some(u64::MAX));
        assert_eq!(limit("104857600\n"), Some(104_857_600));
        assert_eq!(limit("x"), None);
    }

    #[test]
    fn keyed_finds_exact_keys_only() {
        let t = "inactive_file 5\ntotal_inactive_file 7\n";
        assert_eq!(keyed(t, "inactive_file"), Some(5));
        assert_eq!(keyed(t, "total_inactive_file"), Some(7));
        assert_eq!(keyed(t, "file"), None);
    }

    #[test]
    fn system_usage_sums_seven_fields_and_counts_cpus() {
        let t = "cpu  1 2 3 4 5 6 7 8 100 100\ncpu0 1 1 1 1 1 1 1 1 0 0\ncpu1 0 1 1 1 1 1 1 1 0 0\nintr 5\n";
        assert_eq!(system_usage_ns(t), Some((28 * 10_000_000, 2)));
    }
}
