//! The `/proc` parsers read files a container or a bind-mounted host root can shape: any
//! bytes never panic (the unit tests cover printable text; here raw bytes, control
//! characters and huge numbers), and what the kernel writes parses back to the values
//! written. Cases: PROPTEST_CASES (default 256).

use lookout_probe::host::{cpu, diskstats, loadavg, meminfo, mountinfo, netdev};
use proptest::prelude::*;

fn any_text() -> impl Strategy<Value = String> {
    prop::collection::vec(any::<u8>(), 0..600)
        .prop_map(|b| String::from_utf8_lossy(&b).into_owned())
}

/// An interface or disk name as the kernel allows it (no whitespace, no colon for netdev).
fn dev_name() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9_.-]{0,14}"
}

proptest! {
    #[test]
    fn raw_bytes_never_panic(text in any_text()) {
        let _ = cpu::parse_stat(&text);
        let _ = diskstats::parse_diskstats(&text);
        let _ = loadavg::parse_loadavg(&text);
        let _ = loadavg::parse_uptime(&text);
        let _ = loadavg::parse_hostname(&text);
        let m = meminfo::parse_meminfo(&text);
        let _ = meminfo::snapshot(&m);
        let _ = mountinfo::select_real(mountinfo::parse_mountinfo(&text));
        let _ = netdev::parse_net_dev(&text);
    }

    #[test]
    fn proc_stat_round_trips(total in prop::array::uniform10(any::<u64>()),
                             cores in prop::collection::vec((0u32..4096, prop::array::uniform10(any::<u64>())), 0..8)) {
        let line = |name: &str, v: &[u64; 10]| {
            format!("{name} {}\n", v.iter().map(u64::to_string).collect::<Vec<_>>().join(" "))
        };
        let mut text = line("cpu ", &total);
        for (i, v) in &cores {
            text += &line(&format!("cpu{i}"), v);
        }
        text += "intr 1 2 3\nctxt 5\n";
        let parsed = cpu::parse_stat(&text).expect("a cpu line");
        let back = |t: &cpu::CpuTimes| [t.user, t.nice, t.system, t.idle, t.iowait, t.irq, t.softirq, t.steal, t.guest, t.guest_nice];
        prop_assert_eq!(back(&parsed.total), total);
        prop_assert_eq!(parsed.cores.len(), cores.len());
        for ((i, t), (ci, cv)) in parsed.cores.iter().zip(&cores) {
            prop_assert_eq!(i, ci);
            prop_assert_eq!(back(t), *cv);
        }
    }

    #[test]
    fn meminfo_round_trips(total in 0u64..1 << 50, free in 0u64..1 << 50, avail in 0u64..1 << 50) {
        let text = format!("MemTotal: {total:>14} kB\nMemFree: {free:>15} kB\nMemAvailable: {avail:>10} kB\nHugePages_Total: 0\n");
        let m = meminfo::parse_meminfo(&text);
        prop_assert_eq!(m.mem_total, Some(total * 1024));
        prop_assert_eq!(m.mem_free, Some(free * 1024));
        prop_assert_eq!(m.mem_available, Some(avail * 1024));
    }

    #[test]
    fn net_dev_round_trips(rows in prop::collection::vec((dev_name(), prop::array::uniform12(any::<u64>())), 0..6)) {
        let mut text = String::from("Inter-|   Receive |  Transmit\n face |bytes packets|bytes packets\n");
        for (name, v) in &rows {
            text += &format!("{name:>6}: {}\n", v.iter().map(u64::to_string).collect::<Vec<_>>().join(" "));
        }
        let parsed = netdev::parse_net_dev(&text);
        prop_assert_eq!(parsed.len(), rows.len());
        for (p, (name, v)) in parsed.iter().zip(&rows) {
            prop_assert_eq!(&p.name, name);
            prop_assert_eq!([p.rx_bytes, p.rx_packets, p.rx_errors, p.rx_dropped], [v[0], v[1], v[2], v[3]]);
            prop_assert_eq!([p.tx_bytes, p.tx_packets, p.tx_errors, p.tx_dropped], [v[8], v[9], v[10], v[11]]);
        }
    }

    #[test]
    fn diskstats_round_trip(rows in prop::collection::vec((any::<u32>(), any::<u32>(), dev_name(), prop::array::uniform11(any::<u64>())), 0..6)) {
        let mut text = String::new();
        for (major, minor, name, v) in &rows {
            text += &format!("{major:>4} {minor:>7} {name} {}\n", v.iter().map(u64::to_string).collect::<Vec<_>>().join(" "));
        }
        let parsed = diskstats::parse_diskstats(&text);
        prop_assert_eq!(parsed.len(), rows.len());
        for (p, (major, minor, name, v)) in parsed.iter().zip(&rows) {
            prop_assert_eq!((p.major, p.minor, &p.name), (*major, *minor, name));
            prop_assert_eq!([p.reads_completed, p.sectors_read, p.writes_completed, p.sectors_written, p.io_ticks_ms], [v[0], v[2], v[4], v[6], v[9]]);
        }
    }

    #[test]
    fn loadavg_round_trips(a in 0.0f64..1e6, b in 0.0f64..1e6, c in 0.0f64..1e6) {
        let l = loadavg::parse_loadavg(&format!("{a} {b} {c} 1/101 7627\n")).expect("loadavg");
        prop_assert_eq!((l.one, l.five, l.fifteen), (a, b, c));
    }

    /// Mount points with the characters the kernel escapes (space, tab, newline, backslash)
    /// come back as they were.
    #[test]
    fn mountinfo_escapes_round_trip(point in "/[a-z \\t\\n\\\\]{0,12}", major in 0u32..1000, minor in 0u32..1000) {
        let escaped: String = point.chars().map(|c| match c {
            ' ' => "\\040".to_string(),
            '\t' => "\\011".to_string(),
            '\n' => "\\012".to_string(),
            '\\' => "\\134".to_string(),
            c => c.to_string(),
        }).collect();
        let text = format!("36 35 {major}:{minor} / {escaped} rw,noatime shared:1 - ext4 /dev/sda1 rw\n");
        let parsed = mountinfo::parse_mountinfo(&text);
        prop_assert_eq!(parsed.len(), 1);
        prop_assert_eq!(&parsed[0].mount_point, &point);
        prop_assert_eq!((parsed[0].major, parsed[0].minor), (major, minor));
        prop_assert_eq!(parsed[0].fs_type.as_str(), "ext4");
    }
}
