//! The process table: every process of the host from `<proc_root>/<pid>/…`, with its CPU %
//! and disk I/O rates between two refreshes and the container it runs in.
//!
//! Cost bound: the table is refreshed every `every_ticks` ticks (the snapshot in between
//! carries the last table, shared, not copied), and at most `max_processes` are read per
//! refresh. What never changes for a process's life — its command line, user and container —
//! is read once per (pid, start time), so a steady refresh reads `stat` of every process and
//! `io` only of those whose `stat` changed (an idle process did no I/O; most processes of a
//! host are idle). Measured in `bench/process_bench.rs` (docs/benchmarks.md).

#![forbid(unsafe_code)]

pub mod parse;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;
use utoipa::ToSchema;

use crate::gpu::cgroup::container_from_cgroup_file;
use crate::host::cpu::USER_HZ;
use crate::host::rate;

/// Longest command line kept, in characters.
pub const MAX_COMMAND_CHARS: usize = 512;

/// One process at the last refresh.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ProcessInfo {
    pub pid: u32,
    pub ppid: u32,
    pub uid: u32,
    /// User name from the host's `/etc/passwd`, else the uid as text.
    pub user: String,
    /// Command name (`comm`, at most 15 bytes).
    pub name: String,
    /// Command line, arguments joined by spaces (at most 512 characters); `[name]` for kernel threads.
    pub command: String,
    /// `running`, `sleeping`, `disk-sleep`, `zombie`, `stopped`, `idle`, … as `ps` names them.
    pub state: String,
    pub threads: u64,
    /// Percent of one core since the previous refresh (a process busy on two cores shows 200); 0 on its first refresh.
    pub cpu_percent: f64,
    /// Resident set size, bytes.
    pub rss_bytes: u64,
    /// Bytes read from storage per second since the previous refresh; null where `/proc/<pid>/io` is not readable.
    pub read_bytes_per_sec: Option<f64>,
    /// Bytes written to storage per second since the previous refresh; null where `/proc/<pid>/io` is not readable.
    pub write_bytes_per_sec: Option<f64>,
    /// Full id of the container the process runs in (from its cgroup), null on the host.
    pub container_id: Option<String>,
}

/// Every process read at one refresh.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct ProcessTable {
    /// When this table was read, milliseconds since the Unix epoch (it may be older than
    /// the snapshot carrying it: the table is refreshed every few ticks).
    pub refreshed_at_ms: i64,
    /// True when the host had more processes than `sampling.max_processes` and the rest were not read.
    pub truncated: bool,
    pub processes: Vec<ProcessInfo>,
}

/// How often and how much.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessLimits {
    /// Refresh the table every this many ticks (≥ 1).
    pub every_ticks: u32,
    /// Read at most this many processes per refresh.
    pub max_processes: usize,
}

impl Default for ProcessLimits {
    fn default() -> Self {
        Self {
            every_ticks: 2,
            max_processes: 10_000,
        }
    }
}

/// What is kept about a process between refreshes.
#[derive(Debug)]
struct Known {
    start_ticks: u64,
    cpu_ticks: u64,
    io: Option<parse::IoCounters>,
    /// When `io` was read: a process whose `stat` did not change since the last refresh did
    /// not run, so its `io` is not read again, and the next rate spans the whole gap.
    io_at: Option<Instant>,
    /// Hash of the last `stat` text.
    stat_hash: u64,
    uid: u32,
    user: Arc<str>,
    command: Arc<str>,
    container_id: Option<Arc<str>>,
    seen: u64,
}

/// Reads the process table; keeps the previous readings for rates.
#[derive(Debug)]
pub struct ProcessProbe {
    proc_root: PathBuf,
    passwd: PathBuf,
    users: HashMap<u32, Arc<str>>,
    users_age: u32,
    limits: ProcessLimits,
    page_size: u64,
    known: HashMap<u32, Known>,
    prev_at: Option<Instant>,
    ticks_left: u32,
    last: Option<Arc<ProcessTable>>,
    generation: u64,
    buf: Vec<u8>,
    path: String,
}

/// Refreshes between two reads of `/etc/passwd` (users are rarely added).
const PASSWD_REFRESHES: u32 = 60;

impl ProcessProbe {
    /// `proc_root` is the host's procfs; user names come from `<root_fs>/etc/passwd`.
    pub fn new(proc_root: &Path, root_fs: &Path, limits: ProcessLimits) -> Self {
        Self {
            proc_root: proc_root.to_path_buf(),
            passwd: root_fs.join("etc/passwd"),
            users: HashMap::new(),
            users_age: 0,
            limits: ProcessLimits {
                every_ticks: limits.every_ticks.max(1),
                max_processes: limits.max_processes.max(1),
            },
            page_size: rustix::param::page_size() as u64,
            known: HashMap::new(),
            prev_at: None,
            ticks_left: 0,
            last: None,
            generation: 0,
            buf: Vec::with_capacity(4096),
            path: String::with_capacity(64),
        }
    }

    /// The table for this tick: read anew every `every_ticks` ticks, else the last one.
    pub fn tick(&mut self, now: Instant, now_ms: i64) -> Arc<ProcessTable> {
        match &self.last {
            Some(last) if self.ticks_left > 0 => {
                self.ticks_left -= 1;
                last.clone()
            }
            _ => {
                let table = Arc::new(self.refresh(now, now_ms));
                self.ticks_left = self.limits.every_ticks - 1;
                self.last = Some(table.clone());
                table
            }
        }
    }

    /// Reads every process now (the cadence is [`Self::tick`]'s business).
    pub fn refresh(&mut self, now: Instant, now_ms: i64) -> ProcessTable {
        if self.users_age == 0 {
            self.load_users();
        }
        self.users_age = (self.users_age + 1) % PASSWD_REFRESHES;
        self.generation += 1;
        let mut processes = Vec::with_capacity(self.known.len() + 16);
        let mut truncated = false;
        let entries = match std::fs::read_dir(&self.proc_root) {
            Ok(e) => e,
            Err(e) => {
                tracing::debug!(root = %self.proc_root.display(), error = %e, "proc root unreadable");
                return ProcessTable {
                    refreshed_at_ms: now_ms,
                    ..Default::default()
                };
            }
        };
        for entry in entries.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            if processes.len() >= self.limits.max_processes {
                truncated = true;
                break;
            }
            // A process may exit between the listing and the read: it is simply not shown.
            if let Some(p) = self.read_one(pid, now) {
                processes.push(p);
            }
        }
        let generation = self.generation;
        self.known.retain(|_, k| k.seen == generation);
        self.prev_at = Some(now);
        ProcessTable {
            refreshed_at_ms: now_ms,
            truncated,
            processes,
        }
    }

    fn file(&mut self, pid: u32, name: &str) -> &Path {
        self.path.clear();
        let _ = write!(self.path, "{}/{pid}/{name}", self.proc_root.display());
        Path::new(&self.path)
    }

    fn read(&mut self, pid: u32, name: &str) -> bool {
        self.file(pid, name);
        self.buf.clear();
        match File::open(&self.path) {
            Ok(mut f) => f.read_to_end(&mut self.buf).is_ok(),
            Err(_) => false,
        }
    }

    fn read_one(&mut self, pid: u32, now: Instant) -> Option<ProcessInfo> {
        if !self.read(pid, "stat") {
            return None;
        }
        let stat_hash = {
            use std::hash::{Hash, Hasher};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            self.buf.hash(&mut h);
            h.finish()
        };
        let stat = parse::parse_stat(&String::from_utf8_lossy(&self.buf))?;
        let generation = self.generation;
        let fresh = !matches!(self.known.get(&pid), Some(k) if k.start_ticks == stat.start_ticks);
        if fresh {
            let known = self.first_sight(pid, &stat);
            self.known.insert(pid, known);
        }
        let unchanged = !fresh
            && self
                .known
                .get(&pid)
                .is_some_and(|k| k.stat_hash == stat_hash);
        let io = if unchanged {
            None
        } else if self.read(pid, "io") {
            parse::parse_io(&String::from_utf8_lossy(&self.buf))
        } else {
            None
        };
        let elapsed = self.prev_at.map_or(0.0, |p| rate::elapsed_secs(p, now));
        let k = self.known.get_mut(&pid)?;
        let cpu_percent = if fresh {
            0.0
        } else {
            parse::cpu_percent(k.cpu_ticks, stat.cpu_ticks, elapsed, USER_HZ)
        };
        let (read_rate, write_rate) = match (unchanged, k.io, k.io_at, io) {
            // Did not run: no I/O of its own since the last refresh.
            (true, Some(_), _, _) => (Some(0.0), Some(0.0)),
            (true, None, _, _) => (None, None),
            (false, Some(p), Some(at), Some(c)) => {
                let span = rate::elapsed_secs(at, now);
                (
                    Some(rate::per_second(p.read_bytes, c.read_bytes, span)),
                    Some(rate::per_second(p.write_bytes, c.write_bytes, span)),
                )
            }
            (false, _, _, Some(_)) => (Some(0.0), Some(0.0)),
            (false, _, _, None) => (None, None),
        };
        if io.is_some() {
            k.io = io;
            k.io_at = Some(now);
        } else if !unchanged {
            k.io = None;
            k.io_at = None;
        }
        k.cpu_ticks = stat.cpu_ticks;
        k.stat_hash = stat_hash;
        k.seen = generation;
        Some(ProcessInfo {
            pid,
            ppid: stat.ppid,
            uid: k.uid,
            user: k.user.to_string(),
            name: stat.comm,
            command: k.command.to_string(),
            state: parse::state_name(stat.state).to_string(),
            threads: stat.threads,
            cpu_percent,
            rss_bytes: stat.rss_pages.saturating_mul(self.page_size),
            read_bytes_per_sec: read_rate,
            write_bytes_per_sec: write_rate,
            container_id: k.container_id.as_deref().map(str::to_owned),
        })
    }

    /// What stays fixed for a process's life: owner, command line, container.
    fn first_sight(&mut self, pid: u32, stat: &parse::PidStat) -> Known {
        self.file(pid, "");
        let uid = std::fs::metadata(&self.path).map_or(u32::MAX, |m| m.uid());
        let user = self
            .users
            .get(&uid)
            .cloned()
            .unwrap_or_else(|| Arc::from(uid.to_string()));
        let command = if self.read(pid, "cmdline") {
            parse::parse_cmdline(&self.buf, MAX_COMMAND_CHARS)
        } else {
            String::new()
        };
        let command = if command.is_empty() {
            format!("[{}]", stat.comm)
        } else {
            command
        };
        let container_id = if self.read(pid, "cgroup") {
            container_from_cgroup_file(&String::from_utf8_lossy(&self.buf))
                .map(|(c, _)| Arc::from(c.id))
        } else {
            None
        };
        Known {
            start_ticks: stat.start_ticks,
            cpu_ticks: stat.cpu_ticks,
            io: None,
            io_at: None,
            stat_hash: 0,
            uid,
            user,
            command: Arc::from(command),
            container_id,
            seen: 0,
        }
    }

    fn load_users(&mut self) {
        match std::fs::read_to_string(&self.passwd) {
            Ok(text) => {
                self.users = parse::parse_passwd(&text)
                    .into_iter()
                    .map(|(uid, name)| (uid, Arc::from(name)))
                    .collect();
            }
            Err(e) => {
                tracing::debug!(path = %self.passwd.display(), error = %e, "no user names")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process_and_its_cpu() {
        let mut probe =
            ProcessProbe::new(Path::new("/proc"), Path::new("/"), ProcessLimits::default());
        let t0 = Instant::now();
        let first = probe.refresh(t0, 0);
        let me = std::process::id();
        let mine = first.processes.iter().find(|p| p.pid == me).unwrap();
        assert_eq!(mine.cpu_percent, 0.0);
        assert!(mine.rss_bytes > 0);
        assert!(mine.threads >= 1);
        assert!(!mine.command.is_empty());
        // Burn CPU so the second refresh sees it.
        let until = Instant::now() + std::time::Duration::from_millis(300);
        let mut x = 0u64;
        while Instant::now() < until {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
        }
        std::hint::black_box(x);
        // And write to a real disk (page cache dirtied by this process counts as its write_bytes).
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/procs-io-test.bin");
        std::fs::write(&path, vec![7u8; 4 << 20]).unwrap();
        let _ = std::fs::remove_file(&path);
        let second = probe.refresh(Instant::now(), 1);
        let mine = second.processes.iter().find(|p| p.pid == me).unwrap();
        assert!(mine.cpu_percent > 20.0, "cpu {}", mine.cpu_percent);
        if let Some(w) = mine.write_bytes_per_sec {
            assert!(w > 1_000_000.0, "write rate {w}");
        }
        assert!(first.processes.len() > 1);
    }

    #[test]
    fn cadence_and_bound() {
        let limits = ProcessLimits {
            every_ticks: 3,
            max_processes: 1,
        };
        let mut probe = ProcessProbe::new(Path::new("/proc"), Path::new("/"), limits);
        let a = probe.tick(Instant::now(), 1);
        let b = probe.tick(Instant::now(), 2);
        let c = probe.tick(Instant::now(), 3);
        let d = probe.tick(Instant::now(), 4);
        assert!(Arc::ptr_eq(&a, &b) && Arc::ptr_eq(&a, &c));
        assert!(!Arc::ptr_eq(&a, &d));
        assert_eq!(a.processes.len(), 1);
        assert!(a.truncated);
    }

    #[test]
    fn missing_root_gives_an_empty_table() {
        let mut probe = ProcessProbe::new(
            Path::new("/nonexistent-proc"),
            Path::new("/"),
            ProcessLimits::default(),
        );
        assert!(probe.refresh(Instant::now(), 5).processes.is_empty());
    }
}
