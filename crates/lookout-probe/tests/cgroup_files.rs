//! The cgroup file parsers on files captured from a real host (cgroup v1, Docker's cgroupfs
//! layout: `tests/fixtures/cgroup/v1`, and the unified `cpu.stat` of the same container in
//! `v2`), on the kernel's documented v2 formats, and under property tests: no text makes a
//! parser panic, and sums never wrap.

use lookout_probe::cgroup::files::*;
use lookout_probe::docker::stats::used_memory;
use proptest::prelude::*;

macro_rules! fixture {
    ($p:literal) => {
        include_str!(concat!("fixtures/cgroup/", $p))
    };
}

#[test]
fn v1_files_of_an_idle_busybox_container() {
    assert_eq!(single_u64(fixture!("v1/cpuacct.usage")), Some(54_258_665));
    let usage = single_u64(fixture!("v1/memory.usage_in_bytes")).unwrap();
    let inactive = inactive_file(fixture!("v1/memory.stat"), false);
    assert_eq!(inactive, Some(1_507_328));
    // docker stats: usage − total_inactive_file.
    assert_eq!(used_memory(usage, inactive), usage - 1_507_328);
    assert_eq!(
        limit(fixture!("v1/memory.limit_in_bytes")),
        Some(9_223_372_036_854_771_712)
    );
    assert_eq!(single_u64(fixture!("v1/pids.current")), Some(1));
    assert_eq!(
        blkio_service_bytes(fixture!("v1/blkio.throttle.io_service_bytes_recursive")),
        (0, 0)
    );
    assert!(first_pid(fixture!("v1/cgroup.procs")).is_some());
}

#[test]
fn v1_memory_stat_has_both_spellings_and_v1_takes_the_total() {
    let t = fixture!("v1/memory.stat");
    assert_eq!(keyed(t, "inactive_file"), Some(1_507_328));
    assert_eq!(inactive_file(t, false), keyed(t, "total_inactive_file"));
}

#[test]
fn v2_cpu_stat_is_microseconds() {
    assert_eq!(cpu_stat_usage_ns(fixture!("v2/cpu.stat")), Some(54_258_000));
}

#[test]
fn v2_memory_and_io_formats() {
    // Formats as Documentation/admin-guide/cgroup-v2.rst gives them.
    let stat = "anon 4096000\nfile 9000000\nkernel 120000\nshmem 0\nactive_anon 0\ninactive_anon 4096000\nactive_file 5000000\ninactive_file 4000000\n";
    assert_eq!(inactive_file(stat, true), Some(4_000_000));
    assert_eq!(limit("max\n"), Some(u64::MAX));
    let io = "8:16 rbytes=1459200 wbytes=314773504 rios=192 wios=353 dbytes=0 dios=0\n8:0 rbytes=90430464 wbytes=299008000 rios=8950 wios=1252 dbytes=50331648 dios=3021\n";
    assert_eq!(
        io_stat_bytes(io),
        (1_459_200 + 90_430_464, 314_773_504 + 299_008_000)
    );
}

#[test]
fn blkio_sums_devices_and_skips_totals() {
    let t = "8:0 Read 4096\n8:0 Write 8192\n8:0 Sync 0\n8:0 Async 12288\n8:0 Discard 0\n8:0 Total 12288\n8:16 Read 1\n8:16 Write 2\nTotal 12291\n";
    assert_eq!(blkio_service_bytes(t), (4097, 8194));
}

#[test]
fn net_dev_leaves_out_loopback() {
    let t = "Inter-|   Receive                                                |  Transmit\n face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    lo:     500       5    0    0    0     0          0         0      500       5    0    0    0     0       0          0\n  eth0:    1322      15    0    0    0     0          0         0      656       8    0    0    0     0       0          0\n";
    assert_eq!(net_dev_bytes(t), (1322, 656));
}

proptest! {
    #[test]
    fn parsers_never_panic(text in "\\PC{0,400}") {
        let _ = single_u64(&text);
        let _ = limit(&text);
        let _ = keyed(&text, "inactive_file");
        let _ = cpu_stat_usage_ns(&text);
        let _ = blkio_service_bytes(&text);
        let _ = io_stat_bytes(&text);
        let _ = first_pid(&text);
        let _ = net_dev_bytes(&text);
        let _ = system_usage_ns(&text);
    }

    #[test]
    fn io_stat_sums_any_devices_without_wrapping(rows in proptest::collection::vec((any::<u64>(), any::<u64>()), 0..20)) {
        let text: String = rows.iter().enumerate()
            .map(|(i, (r, w))| format!("8:{i} rbytes={r} wbytes={w} rios=1 wios=1\n"))
            .collect();
        let (r, w) = io_stat_bytes(&text);
        let sum = |f: fn(&(u64, u64)) -> u64| rows.iter().map(f).fold(0u64, u64::saturating_add);
        prop_assert_eq!(r, sum(|x| x.0));
        prop_assert_eq!(w, sum(|x| x.1));
    }

    #[test]
    fn blkio_round_trips(rows in proptest::collection::vec((0u64..1 << 40, 0u64..1 << 40), 0..20)) {
        let text: String = rows.iter().enumerate()
            .map(|(i, (r, w))| format!("8:{i} Read {r}\n8:{i} Write {w}\n8:{i} Total {}\n", r + w))
            .collect();
        let expect = rows.iter().fold((0, 0), |a, (r, w)| (a.0 + r, a.1 + w));
        prop_assert_eq!(blkio_service_bytes(&format!("{text}Total 0\n")), expect);
    }

    #[test]
    fn keyed_reads_back_what_was_written(pairs in proptest::collection::btree_map("[a-z_]{1,20}", any::<u64>(), 1..30)) {
        let text: String = pairs.iter().map(|(k, v)| format!("{k} {v}\n")).collect();
        for (k, v) in &pairs {
            prop_assert_eq!(keyed(&text, k), Some(*v));
        }
    }

    #[test]
    fn memory_used_never_exceeds_usage(usage in any::<u64>(), inactive in proptest::option::of(any::<u64>())) {
        prop_assert!(used_memory(usage, inactive) <= usage);
    }
}
