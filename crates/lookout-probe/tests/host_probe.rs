//! HostProbe end to end: against this machine's real /proc, and against a fake proc root built
//! from the captured fixtures, where every figure is known in advance.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use lookout_probe::host::{HostPaths, HostProbe};
use lookout_probe::{CpuPercents, HostSnapshot, ProbeError};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/host");

fn fixture(name: &str) -> String {
    fs::read_to_string(Path::new(FIXTURES).join(name)).unwrap()
}

/// A scratch directory removed on drop (tempfile is not a dependency of this crate).
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let dir =
            std::env::temp_dir().join(format!("lookout-host-{tag}-{}-{nanos}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn write(&self, rel: &str, text: &str) {
        let path = self.0.join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }

    fn mkdir(&self, rel: &str) {
        fs::create_dir_all(self.0.join(rel)).unwrap();
    }

    fn paths(&self) -> HostPaths {
        HostPaths {
            proc_root: self.0.join("proc"),
            sys_root: self.0.join("sys"),
            root_fs: self.0.join("root"),
        }
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn assert_rates_sane(s: &HostSnapshot) {
    let cpu_all = std::iter::once(&s.cpu.total).chain(&s.cpu.per_core);
    for p in cpu_all {
        for v in [
            p.usage, p.user, p.nice, p.system, p.iowait, p.irq, p.softirq, p.steal, p.idle,
        ] {
            assert!(v.is_finite() && (0.0..=100.0).contains(&v), "{p:?}");
        }
    }
    for n in &s.network {
        for r in [
            n.rx_bytes_per_sec,
            n.tx_bytes_per_sec,
            n.rx_packets_per_sec,
            n.tx_packets_per_sec,
        ] {
            assert!(r.is_finite() && r >= 0.0, "{n:?}");
        }
    }
    for d in &s.disks {
        for r in [
            d.reads_per_sec,
            d.writes_per_sec,
            d.read_bytes_per_sec,
            d.written_bytes_per_sec,
        ] {
            assert!(r.is_finite() && r >= 0.0, "{d:?}");
        }
        assert!((0.0..=100.0).contains(&d.busy_percent), "{d:?}");
    }
    for f in &s.filesystems {
        assert!((0.0..=100.0).contains(&f.used_percent), "{f:?}");
        assert!(f.used_bytes <= f.size_bytes, "{f:?}");
    }
    assert!((0.0..=100.0).contains(&s.memory.used_percent));
}

fn all_zero(p: &CpuPercents) -> bool {
    *p == CpuPercents::default()
}

#[test]
fn real_proc_twice() {
    let mut probe = HostProbe::new(HostPaths::default());
    let t0 = Instant::now();
    let first = probe.sample(t0).unwrap();
    assert!(
        all_zero(&first.cpu.total),
        "first reading has nothing to diff against"
    );
    assert!(first
        .network
        .iter()
        .all(|n| n.rx_bytes_per_sec == 0.0 && n.tx_bytes_per_sec == 0.0));
    assert!(first
        .disks
        .iter()
        .all(|d| d.read_bytes_per_sec == 0.0 && d.busy_percent == 0.0));

    // Burn a little CPU so the second reading has jiffies to split.
    let spin_until = Instant::now() + Duration::from_millis(150);
    let mut x = 0u64;
    while Instant::now() < spin_until {
        x = x.wrapping_mul(31).wrapping_add(7);
    }
    std::hint::black_box(x);
    std::thread::sleep(Duration::from_millis(150));
    let t1 = Instant::now();
    let s = probe.sample(t1).unwrap();
    assert_rates_sane(&s);

    // Memory total, read independently.
    let meminfo = fs::read_to_string("/proc/meminfo").unwrap();
    let kb: u64 = meminfo
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(s.memory.total, kb * 1024);
    assert!(s.memory.available <= s.memory.total);
    assert_eq!(s.memory.used, s.memory.total - s.memory.available);

    // Cores = cpuN lines.
    let stat = fs::read_to_string("/proc/stat").unwrap();
    let cores = stat
        .lines()
        .filter(|l| l.starts_with("cpu") && l.as_bytes().get(3).is_some_and(u8::is_ascii_digit))
        .count();
    assert_eq!(s.cpu.cores, cores);
    assert_eq!(s.cpu.per_core.len(), cores);
    let t = &s.cpu.total;
    let sum = t.user + t.nice + t.system + t.iowait + t.irq + t.softirq + t.steal + t.idle;
    assert!((sum - 100.0).abs() < 1e-6, "{t:?}");
    assert!(t.usage > 0.0, "we spun for 150 ms: {t:?}");

    // The root filesystem, as df sees it.
    let df = Command::new("df")
        .args(["-P", "-B1", "/"])
        .output()
        .unwrap();
    assert!(df.status.success());
    let df = String::from_utf8(df.stdout).unwrap();
    let df_size: u64 = df
        .lines()
        .nth(1)
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    assert!(!s.filesystems.is_empty());
    let close = |size: u64| (size as f64 - df_size as f64).abs() <= df_size as f64 * 0.01;
    assert!(
        s.filesystems.iter().any(|f| close(f.size_bytes)),
        "no filesystem within 1% of df's {df_size}: {:?}",
        s.filesystems
    );
    if let Some(root) = s.filesystems.iter().find(|f| f.mount_point == "/") {
        assert!(close(root.size_bytes), "{root:?} vs df {df_size}");
    }
    // No two entries for one mount point, nothing pseudo.
    let mut points: Vec<_> = s.filesystems.iter().map(|f| &f.mount_point).collect();
    points.sort();
    points.dedup();
    assert_eq!(points.len(), s.filesystems.len());
    assert!(s
        .filesystems
        .iter()
        .all(|f| !["proc", "sysfs", "tmpfs", "overlay", "cgroup2"].contains(&f.fs_type.as_str())));

    // Network and disks.
    assert!(s.network.iter().any(|n| n.name == "lo"), "{:?}", s.network);
    for d in &s.disks {
        assert!(Path::new("/sys/block").join(&d.name).exists(), "{d:?}");
        assert!(
            !d.name.starts_with("loop") && !d.name.starts_with("zram"),
            "{d:?}"
        );
    }

    // The small files.
    let hostname = fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_eq!(s.hostname, hostname.trim());
    assert!(s.uptime_secs > 0.0);
    assert!(s.load.one >= 0.0 && s.load.one.is_finite());
}

/// Builds a fake host from the fixtures: proc, a sys/block with the devices the fixture's
/// diskstats names, and a root directory with the mount points that should resolve.
fn fake_host(tag: &str, extra_mounts: &str) -> TempDir {
    let t = TempDir::new(tag);
    for name in ["stat", "meminfo", "loadavg", "uptime", "diskstats"] {
        t.write(&format!("proc/{name}"), &fixture(name));
    }
    t.write("proc/sys/kernel/hostname", &fixture("hostname"));
    t.write("proc/1/mountinfo", &(fixture("mountinfo") + extra_mounts));
    t.write("proc/1/net/dev", &fixture("net_dev"));
    // zram0 and loop0 have sysfs entries too, and must still be skipped by name.
    for dev in ["vda", "zram0", "loop0"] {
        t.mkdir(&format!("sys/block/{dev}"));
    }
    t.mkdir("root");
    t
}

/// Adds `deltas` to the numbers that follow the first `skip` fields on the line whose field
/// `key_at` equals `key`.
fn bump(text: &str, key_at: usize, key: &str, skip: usize, deltas: &[i64]) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let norm = line.replacen(':', ": ", 1);
        let fields: Vec<&str> = norm.split_whitespace().collect();
        if fields.get(key_at).map(|f| f.trim_end_matches(':')) == Some(key) {
            let mut new: Vec<String> = fields.iter().map(|f| f.to_string()).collect();
            for (i, d) in deltas.iter().enumerate() {
                let v: i64 = new[skip + i].parse().unwrap();
                new[skip + i] = (v + d).to_string();
            }
            out.push_str(&new.join(" "));
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    out
}

#[test]
fn fake_proc_root_from_fixtures() {
    let extra = "100 27 254:7 / /data\\040dir rw,relatime - xfs /dev/vdb rw\n\
                 101 27 254:8 / /gone rw,relatime - xfs /dev/vdc rw\n";
    let t = fake_host("fixtures", extra);
    t.mkdir("root/data dir");
    let mut probe = HostProbe::new(t.paths());
    let t0 = Instant::now();
    let s = probe.sample(t0).unwrap();

    assert_eq!(s.hostname, "vm");
    let meminfo = fixture("meminfo");
    let kb = |key: &str| -> u64 {
        let l = meminfo
            .lines()
            .find(|l| l.starts_with(&format!("{key}:")))
            .unwrap();
        l.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() * 1024
    };
    assert_eq!(s.memory.total, kb("MemTotal"));
    assert_eq!(s.memory.available, kb("MemAvailable"));
    assert_eq!(s.memory.free, kb("MemFree"));
    assert_eq!(s.memory.cached, kb("Cached") + kb("SReclaimable"));
    assert_eq!(s.cpu.cores, 2);
    assert!(all_zero(&s.cpu.total) && s.cpu.per_core.iter().all(all_zero));
    let uptime: f64 = fixture("uptime")
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(s.uptime_secs, uptime);
    let load: f64 = fixture("loadavg")
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(s.load.one, load);

    // "/" resolves to <tmp>/root, the bind mount /var/lib/docker is folded into it, the escaped
    // mount point is decoded and found under root_fs, and /gone (no such dir) is skipped.
    let points: Vec<_> = s
        .filesystems
        .iter()
        .map(|f| f.mount_point.as_str())
        .collect();
    assert_eq!(points, vec!["/", "/data dir"]);
    assert_eq!(s.filesystems[0].device, "/dev/vda");
    assert_eq!(s.filesystems[0].fs_type, "ext4");
    assert_eq!(s.filesystems[1].device, "/dev/vdb");
    assert!(s.filesystems[0].size_bytes > 0);

    let names: Vec<_> = s.network.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, vec!["lo", "ifb0", "ifb1", "eth0", "docker0"]);
    let disks: Vec<_> = s.disks.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(disks, vec!["vda"]);
    assert_rates_sane(&s);

    // Second reading with known progress, two seconds later.
    let stat = fixture("stat");
    let stat = bump(&stat, 0, "cpu", 1, &[60, 0, 20, 100, 20]);
    let stat = bump(&stat, 0, "cpu0", 1, &[60, 0, 0, 40]);
    let stat = bump(&stat, 0, "cpu1", 1, &[0, 0, 20, 60, 20]);
    t.write("proc/stat", &stat);
    let net = bump(
        &fixture("net_dev"),
        0,
        "eth0",
        1,
        &[2000, 0, 0, 0, 0, 0, 0, 0, 0, 10],
    );
    // lo's counters went backwards: the interface was recreated.
    let net = bump(&net, 0, "lo", 1, &[-3000]);
    t.write("proc/1/net/dev", &net);
    t.write(
        "proc/diskstats",
        &bump(
            &fixture("diskstats"),
            2,
            "vda",
            3,
            &[200, 0, 1000, 0, 0, 0, 0, 0, 0, 500],
        ),
    );

    let s = probe.sample(t0 + Duration::from_secs(2)).unwrap();
    assert_rates_sane(&s);
    let c = &s.cpu.total;
    assert_eq!(
        (c.user, c.system, c.idle, c.iowait, c.usage),
        (30.0, 10.0, 50.0, 10.0, 40.0)
    );
    assert_eq!(s.cpu.per_core[0].usage, 60.0);
    assert_eq!(s.cpu.per_core[1].usage, 20.0);
    assert_eq!(s.cpu.per_core[1].iowait, 20.0);

    let eth0 = s.network.iter().find(|n| n.name == "eth0").unwrap();
    assert_eq!(eth0.rx_bytes_per_sec, 1000.0);
    assert_eq!(eth0.tx_packets_per_sec, 5.0);
    assert_eq!(eth0.tx_bytes_per_sec, 0.0);
    let lo = s.network.iter().find(|n| n.name == "lo").unwrap();
    assert_eq!(lo.rx_bytes_per_sec, 0.0);

    let vda = &s.disks[0];
    assert_eq!(vda.reads_per_sec, 100.0);
    assert_eq!(vda.read_bytes_per_sec, 500.0 * 512.0);
    assert_eq!(vda.busy_percent, 25.0);

    // The same instant again (or an older one): no time passed, no rates, no NaN.
    let s = probe.sample(t0).unwrap();
    assert_rates_sane(&s);
    assert!(s.network.iter().all(|n| n.rx_bytes_per_sec == 0.0));
    assert!(all_zero(&s.cpu.total));
}

#[test]
fn falls_back_to_self_mountinfo_and_proc_net_dev() {
    let t = TempDir::new("fallback");
    for name in ["stat", "meminfo"] {
        t.write(&format!("proc/{name}"), &fixture(name));
    }
    t.write("proc/self/mountinfo", &fixture("mountinfo"));
    t.write("proc/net/dev", &fixture("net_dev"));
    // An empty /proc/1/mountinfo (as an unprivileged reader may see) also falls back.
    t.write("proc/1/mountinfo", "");
    t.mkdir("root");
    let s = HostProbe::new(t.paths()).sample(Instant::now()).unwrap();
    assert_eq!(s.filesystems.len(), 1);
    assert!(s.network.iter().any(|n| n.name == "lo"));
}

#[test]
fn optional_parts_degrade_to_empty() {
    let t = TempDir::new("minimal");
    t.write("proc/stat", &fixture("stat"));
    t.write("proc/meminfo", &fixture("meminfo"));
    let mut probe = HostProbe::new(t.paths());
    for _ in 0..2 {
        let s = probe.sample(Instant::now()).unwrap();
        assert!(s.filesystems.is_empty() && s.network.is_empty() && s.disks.is_empty());
        assert_eq!(s.hostname, "");
        assert_eq!(s.uptime_secs, 0.0);
        assert_eq!(s.load, Default::default());
        assert_eq!(s.cpu.cores, 2);
    }
    // Garbage in the optional files is the same as their absence.
    t.write("proc/loadavg", "not numbers\n");
    t.write("proc/diskstats", "\0\0garbage\n 8 0\n");
    t.write("proc/1/net/dev", "x:y\n");
    t.write("proc/1/mountinfo", "junk\n");
    let s = probe.sample(Instant::now()).unwrap();
    assert!(s.filesystems.is_empty() && s.network.is_empty() && s.disks.is_empty());
}

#[test]
fn missing_or_garbage_stat_and_meminfo_are_errors() {
    let t = TempDir::new("errors");
    let mut probe = HostProbe::new(t.paths());
    assert!(matches!(
        probe.sample(Instant::now()),
        Err(ProbeError::Read { .. })
    ));

    t.write("proc/stat", "intr 1 2 3\n");
    t.write("proc/meminfo", &fixture("meminfo"));
    assert!(matches!(
        probe.sample(Instant::now()),
        Err(ProbeError::Parse {
            what: "/proc/stat",
            ..
        })
    ));

    t.write("proc/stat", &fixture("stat"));
    fs::remove_file(t.0.join("proc/meminfo")).unwrap();
    assert!(matches!(
        probe.sample(Instant::now()),
        Err(ProbeError::Read { .. })
    ));

    t.write("proc/meminfo", "MemFree: 12 kB\n");
    assert!(matches!(
        probe.sample(Instant::now()),
        Err(ProbeError::Parse {
            what: "/proc/meminfo",
            ..
        })
    ));

    // Once fixed, sampling recovers; the failed calls did not count as previous readings.
    t.write("proc/meminfo", &fixture("meminfo"));
    let s = probe.sample(Instant::now()).unwrap();
    assert!(all_zero(&s.cpu.total));
}

#[test]
fn default_paths() {
    let p = HostPaths::default();
    assert_eq!(p.proc_root, Path::new("/proc"));
    assert_eq!(p.sys_root, Path::new("/sys"));
    assert_eq!(p.root_fs, Path::new("/"));
}
