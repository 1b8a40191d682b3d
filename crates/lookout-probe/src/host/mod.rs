//! Host figures from `/proc`, `/sys` and `statvfs`.
//!
//! Everything is read under configurable roots so that lookout running in a container, with
//! the host's `/proc`, `/sys` and `/` mounted somewhere, reports the host rather than itself.
//! The submodules are pure (text in, plain structs out; two readings in, percentages and rates
//! out) so they can be tested on captured files; [`HostProbe`] does the I/O and keeps the
//! previous reading.

#![forbid(unsafe_code)]

pub mod cpu;
pub mod diskstats;
pub mod loadavg;
pub mod meminfo;
pub mod mountinfo;
pub mod netdev;
pub mod rate;

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::{CpuPercents, CpuSnapshot, DiskIo, Filesystem, HostSnapshot, NetInterface, ProbeError};

use self::cpu::ProcStat;
use self::diskstats::DiskCounters;
use self::mountinfo::MountEntry;
use self::netdev::NetDevCounters;

/// Where the host's pseudo filesystems and root are visible to this process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPaths {
    /// The host's procfs, e.g. `/host/proc` in a container.
    pub proc_root: PathBuf,
    /// The host's sysfs; only `block/` is read, to tell whole disks from partitions.
    pub sys_root: PathBuf,
    /// Where the host's `/` is visible: mount points from the host's mount table are resolved
    /// under it for `statvfs`.
    pub root_fs: PathBuf,
}

impl Default for HostPaths {
    fn default() -> Self {
        Self {
            proc_root: "/proc".into(),
            sys_root: "/sys".into(),
            root_fs: "/".into(),
        }
    }
}

/// Every path read each tick, joined once so a tick allocates no paths.
#[derive(Debug)]
struct Files {
    stat: PathBuf,
    meminfo: PathBuf,
    loadavg: PathBuf,
    uptime: PathBuf,
    hostname: PathBuf,
    /// Init's view first (the host's namespaces even when lookout runs in a container sharing
    /// the host's pid namespace or with its proc mounted), then our own if that is forbidden.
    mountinfo: [PathBuf; 2],
    net_dev: [PathBuf; 2],
    diskstats: PathBuf,
    sys_block: PathBuf,
}

impl Files {
    fn new(paths: &HostPaths) -> Self {
        let p = |rel: &str| paths.proc_root.join(rel);
        Self {
            stat: p("stat"),
            meminfo: p("meminfo"),
            loadavg: p("loadavg"),
            uptime: p("uptime"),
            hostname: p("sys/kernel/hostname"),
            mountinfo: [p("1/mountinfo"), p("self/mountinfo")],
            net_dev: [p("1/net/dev"), p("net/dev")],
            diskstats: p("diskstats"),
            sys_block: paths.sys_root.join("block"),
        }
    }
}

/// The selected mounts of the last mount table read, with their `statvfs` paths. The table is
/// only re-parsed when its text changes, which on a quiet host is never.
#[derive(Debug, Default)]
struct MountCache {
    text: Vec<u8>,
    loaded: bool,
    mounts: Vec<(MountEntry, PathBuf)>,
}

/// How many ticks a whole-disk decision is trusted before `/sys/block` is looked at again, so
/// a device that raced its sysfs entry at hotplug is not misjudged forever.
const DISK_CACHE_TICKS: u32 = 60;

/// Reads the host each tick and keeps the previous counters to compute rates.
#[derive(Debug)]
pub struct HostProbe {
    paths: HostPaths,
    files: Files,
    /// One read buffer for every file, so steady-state reads do not allocate.
    buf: Vec<u8>,
    cpu_cur: ProcStat,
    cpu_prev: ProcStat,
    net_prev: Vec<NetDevCounters>,
    disk_prev: Vec<DiskCounters>,
    prev_at: Option<Instant>,
    mounts: MountCache,
    whole_disk: HashMap<String, bool>,
    disk_cache_age: u32,
}

impl HostProbe {
    pub fn new(paths: HostPaths) -> Self {
        Self {
            files: Files::new(&paths),
            paths,
            buf: Vec::with_capacity(8 * 1024),
            cpu_cur: ProcStat::default(),
            cpu_prev: ProcStat::default(),
            net_prev: Vec::new(),
            disk_prev: Vec::new(),
            prev_at: None,
            mounts: MountCache::default(),
            whole_disk: HashMap::new(),
            disk_cache_age: 0,
        }
    }

    /// The roots this probe reads.
    pub fn paths(&self) -> &HostPaths {
        &self.paths
    }

    /// One reading. Rates are computed against the previous successful call (0 on the first).
    ///
    /// Only an unreadable or unrecognisable `/proc/stat` or `/proc/meminfo` is an error: those
    /// mean the proc root is wrong. Any other missing part degrades to an empty list or zero,
    /// because a host without, say, diskstats access still has useful CPU and memory figures.
    /// A failed call leaves the previous reading in place, so the next rates span both ticks.
    pub fn sample(&mut self, now: Instant) -> Result<HostSnapshot, ProbeError> {
        read_file(&self.files.stat, &mut self.buf).map_err(|e| read_error(&self.files.stat, e))?;
        if !cpu::parse_stat_into(&String::from_utf8_lossy(&self.buf), &mut self.cpu_cur) {
            return Err(ProbeError::Parse {
                what: "/proc/stat",
                detail: format!("no aggregate cpu line in {}", self.files.stat.display()),
            });
        }
        read_file(&self.files.meminfo, &mut self.buf)
            .map_err(|e| read_error(&self.files.meminfo, e))?;
        let memory =
            meminfo::snapshot(&meminfo::parse_meminfo(&String::from_utf8_lossy(&self.buf)))
                .ok_or_else(|| ProbeError::Parse {
                    what: "/proc/meminfo",
                    detail: format!("no MemTotal line in {}", self.files.meminfo.display()),
                })?;

        let has_prev = self.prev_at.is_some();
        let elapsed = self.prev_at.map_or(0.0, |p| rate::elapsed_secs(p, now));

        let cpu = self.cpu_snapshot(has_prev);
        let load = read_optional(&self.files.loadavg, &mut self.buf, loadavg::parse_loadavg)
            .unwrap_or_default();
        let uptime_secs =
            read_optional(&self.files.uptime, &mut self.buf, loadavg::parse_uptime).unwrap_or(0.0);
        let hostname = read_optional(&self.files.hostname, &mut self.buf, |t| {
            loadavg::parse_hostname(t).map(str::to_owned)
        })
        .unwrap_or_default();
        let filesystems = self.filesystems();
        let network = self.network(elapsed);
        let disks = self.disks(elapsed);

        std::mem::swap(&mut self.cpu_cur, &mut self.cpu_prev);
        self.prev_at = Some(now);

        Ok(HostSnapshot {
            hostname,
            uptime_secs,
            cpu,
            memory,
            load,
            filesystems,
            network,
            disks,
            // Filled by the sampler from the sensor probe, which has its own cadence.
            sensors: Default::default(),
        })
    }

    fn cpu_snapshot(&self, has_prev: bool) -> CpuSnapshot {
        let cur = &self.cpu_cur;
        let prev = &self.cpu_prev;
        let per = |p: Option<&cpu::CpuTimes>, c: &cpu::CpuTimes| match p {
            Some(p) if has_prev => cpu::percents(p, c),
            _ => CpuPercents::default(),
        };
        let per_core = cur
            .cores
            .iter()
            .enumerate()
            .map(|(i, (index, times))| {
                let p = match prev.cores.get(i) {
                    Some((pi, pt)) if pi == index => Some(pt),
                    _ => prev
                        .cores
                        .iter()
                        .find(|(pi, _)| pi == index)
                        .map(|(_, t)| t),
                };
                per(p, times)
            })
            .collect();
        CpuSnapshot {
            cores: cur.cores.len(),
            total: per(Some(&prev.total), &cur.total),
            per_core,
            core_times: cur.cores.clone(),
        }
    }

    fn filesystems(&mut self) -> Vec<Filesystem> {
        if !read_first(&self.files.mountinfo, &mut self.buf) {
            self.mounts = MountCache::default();
            return Vec::new();
        }
        if !self.mounts.loaded || self.mounts.text != self.buf {
            let selected = mountinfo::select_real(mountinfo::parse_mountinfo(
                &String::from_utf8_lossy(&self.buf),
            ));
            let root = &self.paths.root_fs;
            self.mounts.mounts = selected
                .into_iter()
                .map(|e| {
                    // join() with an absolute path would discard root_fs.
                    let path = root.join(e.mount_point.trim_start_matches('/'));
                    (e, path)
                })
                .collect();
            // Keep the text to compare next tick; the old text becomes the read buffer.
            std::mem::swap(&mut self.mounts.text, &mut self.buf);
            self.mounts.loaded = true;
        }
        self.mounts
            .mounts
            .iter()
            .filter_map(|(e, path)| {
                let s = match rustix::fs::statvfs(path.as_path()) {
                    Ok(s) => s,
                    Err(err) => {
                        tracing::debug!(path = %path.display(), error = %err, "statvfs failed, filesystem skipped");
                        return None;
                    }
                };
                // Like df without -a: a filesystem with no blocks has nothing to report.
                if s.f_blocks == 0 {
                    return None;
                }
                let u = mountinfo::space_usage(s.f_blocks, s.f_bfree, s.f_bavail, s.f_frsize, s.f_bsize);
                Some(Filesystem {
                    device: e.source.clone(),
                    mount_point: e.mount_point.clone(),
                    fs_type: e.fs_type.clone(),
                    size_bytes: u.size_bytes,
                    used_bytes: u.used_bytes,
                    available_bytes: u.available_bytes,
                    used_percent: u.used_percent,
                })
            })
            .collect()
    }

    fn network(&mut self, elapsed: f64) -> Vec<NetInterface> {
        if !read_first(&self.files.net_dev, &mut self.buf) {
            // Without a reading this tick, the next one has nothing valid to diff against.
            self.net_prev.clear();
            return Vec::new();
        }
        let counters = netdev::parse_net_dev(&String::from_utf8_lossy(&self.buf));
        let out = counters
            .iter()
            .enumerate()
            .map(|(i, c)| {
                netdev::interface(c, netdev::find_prev(&self.net_prev, i, &c.name), elapsed)
            })
            .collect();
        self.net_prev = counters;
        out
    }

    fn disks(&mut self, elapsed: f64) -> Vec<DiskIo> {
        if let Err(e) = read_file(&self.files.diskstats, &mut self.buf) {
            tracing::debug!(path = %self.files.diskstats.display(), error = %e, "diskstats unreadable");
            self.disk_prev.clear();
            return Vec::new();
        }
        self.disk_cache_age += 1;
        if self.disk_cache_age > DISK_CACHE_TICKS {
            self.whole_disk.clear();
            self.disk_cache_age = 0;
        }
        let mut kept = Vec::new();
        let mut out = Vec::new();
        for d in diskstats::parse_diskstats(&String::from_utf8_lossy(&self.buf)) {
            if diskstats::is_virtual(&d.name) || !self.is_whole_disk(&d.name) {
                continue;
            }
            out.push(diskstats::disk_io(
                &d,
                diskstats::find_prev(&self.disk_prev, kept.len(), &d.name),
                elapsed,
            ));
            kept.push(d);
        }
        self.disk_prev = kept;
        out
    }

    /// Partitions are in diskstats too but have no directory of their own in `/sys/block`;
    /// counting them would add each disk's traffic twice.
    fn is_whole_disk(&mut self, name: &str) -> bool {
        if let Some(&whole) = self.whole_disk.get(name) {
            return whole;
        }
        let whole = name != "."
            && name != ".."
            && self
                .files
                .sys_block
                .join(&*diskstats::sys_block_name(name))
                .exists();
        self.whole_disk.insert(name.to_owned(), whole);
        whole
    }
}

/// Reads a whole file into `buf` (cleared first). procfs files report a size of 0, so the
/// length is unknown in advance; reusing `buf` keeps its capacity across ticks.
fn read_file(path: &Path, buf: &mut Vec<u8>) -> io::Result<()> {
    buf.clear();
    File::open(path)?.read_to_end(buf)?;
    Ok(())
}

/// Reads the first of `paths` that can be read and is not empty.
fn read_first(paths: &[PathBuf], buf: &mut Vec<u8>) -> bool {
    for path in paths {
        match read_file(path, buf) {
            Ok(()) if !buf.is_empty() => return true,
            Ok(()) => {}
            Err(e) => tracing::debug!(path = %path.display(), error = %e, "host file unreadable"),
        }
    }
    false
}

/// Reads and parses a file whose absence only costs its own figures.
fn read_optional<T>(
    path: &Path,
    buf: &mut Vec<u8>,
    parse: impl FnOnce(&str) -> Option<T>,
) -> Option<T> {
    match read_file(path, buf) {
        Ok(()) => parse(&String::from_utf8_lossy(buf)),
        Err(e) => {
            tracing::debug!(path = %path.display(), error = %e, "optional host file unreadable");
            None
        }
    }
}

fn read_error(path: &Path, source: io::Error) -> ProbeError {
    ProbeError::Read {
        path: path.display().to_string(),
        source,
    }
}
