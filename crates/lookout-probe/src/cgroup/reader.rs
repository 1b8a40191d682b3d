//! Finds the containers' cgroups under the host's cgroup mount and reads their figures.
//!
//! The tree is walked only when the set may have changed (an engine event, a running
//! container with no cgroup yet, or every [`RESCAN_TICKS`] ticks for engine-less runtimes);
//! otherwise a tick reads a fixed handful of files per known container.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::files;
use super::path::{container_from_path, ContainerRef};
use crate::docker::stats::{cpu_percent, memory_percent, used_memory, CpuReading, Figures};

/// Containers of runtimes with no engine (Kubernetes without a CRI socket) are found by
/// walking the tree this often, in ticks.
pub const RESCAN_TICKS: u32 = 10;
/// Bounds on one walk: a pathological tree cannot make a tick slow.
const MAX_DEPTH: usize = 8;
const MAX_DIRS: usize = 20_000;

/// Which cgroup version is mounted and where each controller is.
#[derive(Debug, Clone)]
enum Layout {
    V2 {
        root: PathBuf,
    },
    V1 {
        cpuacct: PathBuf,
        memory: PathBuf,
        pids: Option<PathBuf>,
        blkio: Option<PathBuf>,
    },
}

impl Layout {
    /// `None` when no cgroup file system is visible under `root`.
    fn detect(root: &Path) -> Option<Self> {
        if root.join("cgroup.controllers").is_file() {
            return Some(Layout::V2 { root: root.into() });
        }
        let first = |names: &[&str]| {
            names
                .iter()
                .map(|n| root.join(n))
                .find(|p| p.join("cgroup.procs").is_file())
        };
        Some(Layout::V1 {
            cpuacct: first(&["cpuacct", "cpu,cpuacct", "cpuacct,cpu"])?,
            memory: first(&["memory"])?,
            pids: first(&["pids"]),
            blkio: first(&["blkio"]),
        })
    }

    /// The hierarchy walked to find containers (memory is in every container's cgroup).
    fn scan_root(&self) -> &Path {
        match self {
            Layout::V2 { root } => root,
            Layout::V1 { memory, .. } => memory,
        }
    }
}

/// One container's cgroup and its previous CPU reading.
struct Tracked {
    cref: ContainerRef,
    /// Path relative to the hierarchy root, starting with `/`.
    rel: String,
    prev: Option<CpuReading>,
}

/// One container's figures at this tick, read from its cgroup.
#[derive(Debug, Clone)]
pub struct CgroupContainer {
    pub cref: ContainerRef,
    pub cgroup_path: String,
    pub figures: Figures,
    /// The readings the figures came from, for the Engine-shaped document.
    pub cpu: Option<CpuReading>,
    pub precpu: Option<CpuReading>,
    pub memory_usage: Option<u64>,
    pub inactive_file: Option<u64>,
    pub v2: bool,
}

/// Reads every container's cgroup each tick.
pub struct CgroupProbe {
    cgroup_root: PathBuf,
    proc_root: PathBuf,
    layout: Option<Layout>,
    known: HashMap<String, Tracked>,
    since_scan: u32,
    host_memory: Option<u64>,
    buf: String,
}

impl CgroupProbe {
    /// `cgroup_root` is the host's cgroup mount (`<sys_root>/fs/cgroup`), `proc_root` its procfs.
    pub fn new(cgroup_root: PathBuf, proc_root: PathBuf) -> Self {
        Self {
            cgroup_root,
            proc_root,
            layout: None,
            known: HashMap::new(),
            since_scan: u32::MAX,
            host_memory: None,
            buf: String::new(),
        }
    }

    fn read(&mut self, path: &Path) -> Option<&str> {
        self.buf.clear();
        std::fs::File::open(path)
            .and_then(|mut f| f.read_to_string(&mut self.buf))
            .ok()?;
        Some(self.buf.as_str())
    }

    /// Reads every known container. `rescan` asks for a walk of the tree first (the engine
    /// reported a change, or knows a running container this probe has not found).
    pub fn sample(&mut self, rescan: bool) -> Vec<CgroupContainer> {
        if self.layout.is_none() {
            self.layout = Layout::detect(&self.cgroup_root);
            if self.layout.is_none() {
                return Vec::new();
            }
        }
        if self.host_memory.is_none() {
            let meminfo = self.proc_root.join("meminfo");
            self.host_memory = self
                .read(&meminfo)
                .and_then(meminfo_total)
                .map(|kib| kib.saturating_mul(1024));
        }
        self.since_scan = self.since_scan.saturating_add(1);
        if rescan || self.since_scan >= RESCAN_TICKS {
            self.scan();
        }
        let stat = self.proc_root.join("stat");
        let Some((system, cpus)) = self.read(&stat).and_then(files::system_usage_ns) else {
            return Vec::new();
        };
        let ids: Vec<String> = self.known.keys().cloned().collect();
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            match self.read_one(&id, system, cpus) {
                Some(c) => out.push(c),
                // The cgroup is gone: the container stopped.
                None => {
                    self.known.remove(&id);
                }
            }
        }
        out
    }

    /// Walks the hierarchy for container cgroups, not descending into a container's own.
    fn scan(&mut self) {
        self.since_scan = 0;
        let Some(layout) = &self.layout else { return };
        let root = layout.scan_root().to_path_buf();
        let mut found: HashMap<String, (ContainerRef, String)> = HashMap::new();
        let mut stack = vec![(root.clone(), 0usize)];
        let mut dirs = 0usize;
        while let Some((dir, depth)) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for e in entries.flatten() {
                if !e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                    continue;
                }
                dirs += 1;
                if dirs > MAX_DIRS {
                    break;
                }
                let path = e.path();
                let Ok(rel) = path.strip_prefix(&root) else {
                    continue;
                };
                let rel = format!("/{}", rel.to_string_lossy());
                match container_from_path(&rel) {
                    // The outermost directory naming the container is its cgroup.
                    Some(c) => {
                        found.entry(c.id.clone()).or_insert((c, rel));
                    }
                    None if depth + 1 < MAX_DEPTH => stack.push((path, depth + 1)),
                    None => {}
                }
            }
        }
        self.known.retain(|id, _| found.contains_key(id));
        for (id, (cref, rel)) in found {
            self.known.entry(id).or_insert(Tracked {
                cref,
                rel,
                prev: None,
            });
        }
    }

    fn read_one(&mut self, id: &str, system: u64, cpus: u32) -> Option<CgroupContainer> {
        let layout = self.layout.clone()?;
        let rel = self.known.get(id)?.rel.clone();
        let under = |base: &Path, file: &str| base.join(rel.trim_start_matches('/')).join(file);
        let v2 = matches!(layout, Layout::V2 { .. });
        let (cpu_file, mem, pids, blkio) = match &layout {
            Layout::V2 { root } => (root, root, Some(root), Some(root)),
            Layout::V1 {
                cpuacct,
                memory,
                pids,
                blkio,
            } => (cpuacct, memory, pids.as_ref(), blkio.as_ref()),
        };
        // CPU first: a missing usage file means the cgroup is gone.
        let total = if v2 {
            self.read(&under(cpu_file, "cpu.stat"))
                .and_then(files::cpu_stat_usage_ns)?
        } else {
            self.read(&under(cpu_file, "cpuacct.usage"))
                .and_then(files::single_u64)?
        };
        let cur = CpuReading {
            total_usage: total,
            system_usage: system,
            online_cpus: cpus,
        };
        let usage_file = if v2 {
            "memory.current"
        } else {
            "memory.usage_in_bytes"
        };
        let memory_usage = self
            .read(&under(mem, usage_file))
            .and_then(files::single_u64);
        let inactive_file = self
            .read(&under(mem, "memory.stat"))
            .and_then(|t| files::inactive_file(t, v2));
        let limit_file = if v2 {
            "memory.max"
        } else {
            "memory.limit_in_bytes"
        };
        // No limit (or one above the RAM): the Engine reports the host's memory.
        let memory_limit = self
            .read(&under(mem, limit_file))
            .and_then(files::limit)
            .map(|l| match self.host_memory {
                Some(host) if l > host => host,
                _ => l,
            });
        let pids = pids.and_then(|p| {
            self.read(&under(p, "pids.current"))
                .and_then(files::single_u64)
        });
        let block = blkio.and_then(|b| {
            if v2 {
                self.read(&under(b, "io.stat")).map(files::io_stat_bytes)
            } else {
                // The Engine takes the CFQ/BFQ counters when the kernel keeps them, else the
                // throttle layer's, which every kernel has.
                self.read(&under(b, "blkio.io_service_bytes_recursive"))
                    .filter(|t| !t.trim().is_empty())
                    .map(files::blkio_service_bytes)
                    .or_else(|| {
                        self.read(&under(b, "blkio.throttle.io_service_bytes_recursive"))
                            .map(files::blkio_service_bytes)
                    })
            }
        });
        let net = self.network(&under(mem, "cgroup.procs"));
        let memory_used = memory_usage.map(|u| used_memory(u, inactive_file));
        let tracked = self.known.get_mut(id)?;
        let precpu = tracked.prev.replace(cur);
        let figures = Figures {
            cpu_percent: precpu.map(|p| cpu_percent(p, cur)),
            online_cpus: Some(cpus),
            memory_used,
            memory_limit,
            memory_percent: match (memory_used, memory_limit) {
                (Some(u), Some(l)) => memory_percent(u, l),
                _ => None,
            },
            net,
            block,
            pids,
        };
        Some(CgroupContainer {
            cref: tracked.cref.clone(),
            cgroup_path: tracked.rel.clone(),
            figures,
            cpu: Some(cur),
            precpu,
            memory_usage,
            inactive_file,
            v2,
        })
    }

    /// Network bytes of the container's first process's namespace; `None` when it shares
    /// the host's (`--network host`: `docker stats` shows nothing there either).
    fn network(&mut self, procs: &Path) -> Option<(u64, u64)> {
        let pid = self.read(procs).and_then(files::first_pid)?;
        let ns = |p: &Path| std::fs::read_link(p).ok();
        let own = ns(&self.proc_root.join(pid.to_string()).join("ns/net"));
        let host = ns(&self.proc_root.join("1/ns/net"));
        if own.is_some() && own == host {
            return None;
        }
        let dev = self.proc_root.join(pid.to_string()).join("net/dev");
        self.read(&dev).map(files::net_dev_bytes)
    }
}

/// `MemTotal:   24683176 kB` (kibibytes).
fn meminfo_total(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|rest| rest.split_ascii_whitespace().next())
        .and_then(|v| v.parse().ok())
}
