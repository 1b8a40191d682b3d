//! Block device counters from `/proc/diskstats` and their rates.

use std::borrow::Cow;

use super::rate::{counter_delta, per_second};
use crate::DiskIo;

/// `/proc/diskstats` counts sectors of 512 bytes whatever the device's real sector size.
pub const SECTOR_BYTES: u64 = 512;

/// The diskstats columns lookout reports, for one device.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DiskCounters {
    pub major: u32,
    pub minor: u32,
    pub name: String,
    pub reads_completed: u64,
    pub sectors_read: u64,
    pub writes_completed: u64,
    pub sectors_written: u64,
    /// Milliseconds the device had at least one request in flight.
    pub io_ticks_ms: u64,
}

/// Parses `/proc/diskstats`; lines without the 13 leading columns (up to io_ticks) every kernel since 2.6.25
/// prints are skipped.
pub fn parse_diskstats(text: &str) -> Vec<DiskCounters> {
    text.lines().filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<DiskCounters> {
    let mut f = line.split_ascii_whitespace();
    let major = f.next()?.parse().ok()?;
    let minor = f.next()?.parse().ok()?;
    let name = f.next()?;
    // reads, reads merged, sectors read, ms reading, writes, writes merged, sectors written,
    // ms writing, in flight, io_ticks.
    let mut v = [0u64; 10];
    for slot in v.iter_mut() {
        *slot = f.next()?.parse().ok()?;
    }
    Some(DiskCounters {
        major,
        minor,
        name: name.to_owned(),
        reads_completed: v[0],
        sectors_read: v[2],
        writes_completed: v[4],
        sectors_written: v[6],
        io_ticks_ms: v[9],
    })
}

/// Devices whose I/O is really some other device's (loop files) or memory (ram, zram), so
/// counting them would double-count or mislead. Device-mapper devices (LVM, LUKS) stay: they
/// are often the only place a volume's traffic is visible.
pub fn is_virtual(name: &str) -> bool {
    ["loop", "ram", "zram"].iter().any(|p| {
        name.strip_prefix(p)
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|c| c.is_ascii_digit()))
    })
}

/// The name of the device's directory in `/sys/block`: sysfs cannot hold '/' in a name, so
/// `cciss/c0d0` appears there as `cciss!c0d0`.
pub fn sys_block_name(name: &str) -> Cow<'_, str> {
    if name.contains('/') {
        Cow::Owned(name.replace('/', "!"))
    } else {
        Cow::Borrowed(name)
    }
}

/// The reported figures for one device; rates are 0 without a previous reading of it.
pub fn disk_io(cur: &DiskCounters, prev: Option<&DiskCounters>, elapsed_secs: f64) -> DiskIo {
    let rate =
        |f: fn(&DiskCounters) -> u64| prev.map_or(0.0, |p| per_second(f(p), f(cur), elapsed_secs));
    DiskIo {
        name: cur.name.clone(),
        reads_completed: cur.reads_completed,
        writes_completed: cur.writes_completed,
        read_bytes: cur.sectors_read.saturating_mul(SECTOR_BYTES),
        written_bytes: cur.sectors_written.saturating_mul(SECTOR_BYTES),
        reads_per_sec: rate(|c| c.reads_completed),
        writes_per_sec: rate(|c| c.writes_completed),
        read_bytes_per_sec: rate(|c| c.sectors_read) * SECTOR_BYTES as f64,
        written_bytes_per_sec: rate(|c| c.sectors_written) * SECTOR_BYTES as f64,
        busy_percent: prev.map_or(0.0, |p| {
            busy_percent(p.io_ticks_ms, cur.io_ticks_ms, elapsed_secs)
        }),
    }
}

/// io_ticks advanced by Δ ms over an interval of `elapsed_secs`: the busy share, as
/// `iostat`'s %util. Clamped because the kernel updates io_ticks lazily and one interval can
/// receive slightly more than its length.
pub fn busy_percent(prev_ms: u64, cur_ms: u64, elapsed_secs: f64) -> f64 {
    if !elapsed_secs.is_finite() || elapsed_secs <= 0.0 {
        return 0.0;
    }
    let pct = counter_delta(prev_ms, cur_ms) as f64 * 100.0 / (elapsed_secs * 1000.0);
    if pct.is_finite() {
        pct.clamp(0.0, 100.0)
    } else {
        0.0
    }
}

/// Finds the previous reading of `name`, trying the same position first (the order is stable).
pub fn find_prev<'a>(
    prev: &'a [DiskCounters],
    index: usize,
    name: &str,
) -> Option<&'a DiskCounters> {
    match prev.get(index) {
        Some(p) if p.name == name => Some(p),
        _ => prev.iter().find(|p| p.name == name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const REAL: &str = include_str!("../../tests/fixtures/host/diskstats");

    #[test]
    fn parses_real_diskstats() {
        let all = parse_diskstats(REAL);
        assert_eq!(all.len(), REAL.lines().count());
        let vda = all.iter().find(|d| d.name == "vda").unwrap();
        let line = REAL
            .lines()
            .find(|l| l.split_whitespace().nth(2) == Some("vda"))
            .unwrap();
        let n: Vec<u64> = line
            .split_whitespace()
            .skip(3)
            .map(|x| x.parse().unwrap())
            .collect();
        assert_eq!((vda.major, vda.minor), (254, 0));
        assert_eq!(vda.reads_completed, n[0]);
        assert_eq!(vda.sectors_read, n[2]);
        assert_eq!(vda.writes_completed, n[4]);
        assert_eq!(vda.sectors_written, n[6]);
        assert_eq!(vda.io_ticks_ms, n[9]);
        let io = disk_io(vda, None, 1.0);
        assert_eq!(io.read_bytes, n[2] * 512);
    }

    #[test]
    fn old_partition_lines_and_garbage_are_skipped() {
        let text = "   8    1 sda1 10 20 30 40\nnot a line\n 8 0 sda 1 2 3 4 5 6 7 8 9 10\n8 0 sdb 1 2 3 4 5 6 7 8 9 x 11\n";
        let all = parse_diskstats(text);
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].io_ticks_ms, 10);
    }

    #[test]
    fn virtual_names() {
        for n in ["loop0", "loop12", "ram0", "zram0"] {
            assert!(is_virtual(n), "{n}");
        }
        for n in [
            "sda", "vda", "nvme0n1", "dm-0", "md0", "loop", "ramdisk", "zramx", "mmcblk0",
        ] {
            assert!(!is_virtual(n), "{n}");
        }
    }

    #[test]
    fn sysfs_names() {
        assert_eq!(sys_block_name("sda"), "sda");
        assert_eq!(sys_block_name("cciss/c0d0"), "cciss!c0d0");
    }

    #[test]
    fn rates_and_busy() {
        let a = DiskCounters {
            name: "sda".into(),
            reads_completed: 100,
            sectors_read: 1000,
            writes_completed: 50,
            sectors_written: 800,
            io_ticks_ms: 1000,
            ..Default::default()
        };
        let b = DiskCounters {
            reads_completed: 300,
            sectors_read: 5000,
            writes_completed: 40,
            sectors_written: 1800,
            io_ticks_ms: 1500,
            ..a.clone()
        };
        let io = disk_io(&b, Some(&a), 2.0);
        assert_eq!(io.reads_per_sec, 100.0);
        assert_eq!(io.read_bytes_per_sec, 2000.0 * 512.0);
        assert_eq!(io.written_bytes_per_sec, 500.0 * 512.0);
        assert_eq!(io.writes_per_sec, 0.0);
        assert_eq!(io.busy_percent, 25.0);
        assert_eq!(busy_percent(0, 5000, 1.0), 100.0);
        assert_eq!(busy_percent(10, 0, 1.0), 0.0);
        assert_eq!(disk_io(&b, None, 2.0).busy_percent, 0.0);
    }

    proptest! {
        #[test]
        fn parser_never_panics(s in "\\PC*") {
            let _ = parse_diskstats(&s);
        }

        #[test]
        fn busy_is_bounded(a: u64, b: u64, secs in proptest::num::f64::ANY) {
            let p = busy_percent(a, b, secs);
            prop_assert!(p.is_finite() && (0.0..=100.0).contains(&p));
        }
    }
}
