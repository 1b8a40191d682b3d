//! lookout's own `process_*` figures, named as every Prometheus client library names them
//! (prometheus-client has no process collector): read from `/proc/self` at scrape time.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;

use lookout_probe::host::cpu::USER_HZ;

use super::encode::{counter, gauge};

#[derive(Debug, Default)]
pub struct ProcessCollector;

/// What `/proc/self` says about this process; a field that cannot be read is left out.
#[derive(Debug, Default, PartialEq)]
pub struct ProcessFigures {
    pub cpu_seconds: Option<f64>,
    pub start_time_seconds: Option<f64>,
    pub resident_memory_bytes: Option<u64>,
    pub virtual_memory_bytes: Option<u64>,
    pub open_fds: Option<u64>,
    pub max_fds: Option<u64>,
}

impl ProcessFigures {
    pub fn read() -> Self {
        let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
        let boot = std::fs::read_to_string("/proc/stat").unwrap_or_default();
        let mut f = Self::parse(&stat, &status, &limits, &boot);
        f.open_fds = std::fs::read_dir("/proc/self/fd")
            .ok()
            .map(|d| d.count() as u64);
        f
    }

    /// The pure part: `/proc/self/stat`, `/proc/self/status`, `/proc/self/limits`, `/proc/stat`.
    pub fn parse(stat: &str, status: &str, limits: &str, proc_stat: &str) -> Self {
        // The command name (field 2) may hold spaces and parentheses: fields are counted from
        // after its last ')'; the first of those is field 3 (state).
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest.split_ascii_whitespace().collect())
            .unwrap_or_default();
        let field = |n: usize| fields.get(n - 3).and_then(|v| v.parse::<u64>().ok());
        let cpu_seconds = match (field(14), field(15)) {
            (Some(u), Some(s)) => Some((u + s) as f64 / USER_HZ),
            _ => None,
        };
        let boot_time = proc_stat
            .lines()
            .find_map(|l| l.strip_prefix("btime "))
            .and_then(|v| v.trim().parse::<u64>().ok());
        let start_time_seconds = match (field(22), boot_time) {
            (Some(ticks), Some(boot)) => Some(boot as f64 + ticks as f64 / USER_HZ),
            _ => None,
        };
        let kib = |key: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
                .map(|k| k * 1024)
        };
        let max_fds = limits
            .lines()
            .find_map(|l| l.strip_prefix("Max open files"))
            .and_then(|v| v.split_ascii_whitespace().next())
            .and_then(|v| v.parse::<u64>().ok());
        Self {
            cpu_seconds,
            start_time_seconds,
            resident_memory_bytes: kib("VmRSS:"),
            virtual_memory_bytes: kib("VmSize:"),
            open_fds: None,
            max_fds,
        }
    }
}

impl Collector for ProcessCollector {
    fn encode(&self, mut e: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let f = ProcessFigures::read();
        if let Some(v) = f.cpu_seconds {
            counter(
                &mut e,
                "process_cpu_seconds",
                "Total user and system CPU time spent in seconds",
                v,
            )?;
        }
        if let Some(v) = f.start_time_seconds {
            gauge(
                &mut e,
                "process_start_time_seconds",
                "Start time of the process since unix epoch in seconds",
                v,
            )?;
        }
        if let Some(v) = f.resident_memory_bytes {
            gauge(
                &mut e,
                "process_resident_memory_bytes",
                "Resident memory size in bytes",
                v,
            )?;
        }
        if let Some(v) = f.virtual_memory_bytes {
            gauge(
                &mut e,
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes",
                v,
            )?;
        }
        if let Some(v) = f.open_fds {
            gauge(
                &mut e,
                "process_open_fds",
                "Number of open file descriptors",
                v,
            )?;
        }
        if let Some(v) = f.max_fds {
            gauge(
                &mut e,
                "process_max_fds",
                "Maximum number of open file descriptors",
                v,
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_self_with_a_tricky_command_name() {
        // Field 14 utime=250, 15 stime=50, 22 starttime=1000, as the kernel prints them.
        let stat = "42 (lo (ok) x) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 4 0 1000 123456 789 18446744073709551615";
        let status = "Name:\tlookout\nVmSize:\t  2048 kB\nVmRSS:\t    1024 kB\n";
        let limits = "Limit                     Soft Limit           Hard Limit           Units\nMax open files            1024                 524288               files\n";
        let f = ProcessFigures::parse(stat, status, limits, "cpu  1 2 3 4\nbtime 1700000000\n");
        assert_eq!(f.cpu_seconds, Some(3.0));
        assert_eq!(f.start_time_seconds, Some(1_700_000_010.0));
        assert_eq!(f.resident_memory_bytes, Some(1024 * 1024));
        assert_eq!(f.virtual_memory_bytes, Some(2048 * 1024));
        assert_eq!(f.max_fds, Some(1024));
    }

    #[test]
    fn garbage_reads_as_nothing() {
        assert_eq!(
            ProcessFigures::parse("", "", "", ""),
            ProcessFigures::default()
        );
    }

    #[test]
    fn reads_this_process() {
        let f = ProcessFigures::read();
        assert!(f.resident_memory_bytes.unwrap_or(0) > 0, "{f:?}");
        assert!(f.open_fds.unwrap_or(0) > 0, "{f:?}");
        assert!(
            f.cpu_seconds.is_some() && f.start_time_seconds.is_some(),
            "{f:?}"
        );
    }
}
