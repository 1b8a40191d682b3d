//! The plain sample types every other crate reads. A [`Snapshot`] is immutable once built:
//! the sampler builds a new one each tick and swaps it in whole.

use serde::Serialize;
use utoipa::ToSchema;

/// The Docker Engine's stats document, as `GET /containers/{id}/stats` returns it.
pub use bollard::models::ContainerStatsResponse as EngineStats;

/// Everything lookout knows about the machine at one tick.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Snapshot {
    /// When this tick was taken, milliseconds since the Unix epoch.
    pub taken_at_ms: i64,
    /// Monotonic tick counter, starting at 1 for the first sample.
    pub tick: u64,
    pub host: HostSnapshot,
    pub containers: ContainersView,
    /// NVIDIA GPUs and their processes, or why they are not monitored.
    pub gpu: crate::gpu::GpuView,
    /// The process table (refreshed every `sampling.processes_every_ticks` ticks, so it may
    /// be older than this snapshot); `None` when process sampling is off. Served by
    /// `/api/v1/processes`, not with the snapshot.
    #[serde(skip)]
    pub processes: Option<std::sync::Arc<crate::procs::ProcessTable>>,
}

/// Host-wide figures. Rates (per second) are computed between this tick and the previous one
/// and are 0 on the first tick.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct HostSnapshot {
    pub hostname: String,
    pub uptime_secs: f64,
    pub cpu: CpuSnapshot,
    pub memory: MemorySnapshot,
    pub load: LoadAverage,
    pub filesystems: Vec<Filesystem>,
    pub network: Vec<NetInterface>,
    pub disks: Vec<DiskIo>,
    /// Temperatures, fans and voltages (hwmon) and thermal zones; empty lists where the
    /// host exposes none.
    pub sensors: crate::sensors::Sensors,
}

/// Share of time spent in each state since the previous tick, in percent (0..=100).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, ToSchema)]
pub struct CpuPercents {
    /// Busy = 100 − idle − iowait.
    pub usage: f64,
    pub user: f64,
    pub nice: f64,
    pub system: f64,
    pub iowait: f64,
    pub irq: f64,
    pub softirq: f64,
    pub steal: f64,
    pub idle: f64,
}

#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct CpuSnapshot {
    /// Number of logical CPUs seen in `/proc/stat`.
    pub cores: usize,
    pub total: CpuPercents,
    pub per_core: Vec<CpuPercents>,
    /// Time each logical CPU spent in each state since boot, as `/proc/stat` counts it
    /// (`(N, times)` of every `cpuN` line). `/metrics` serves these as counters; the JSON API
    /// keeps the percentages above.
    #[serde(skip)]
    pub core_times: Vec<(u32, crate::host::cpu::CpuTimes)>,
}

/// Memory in bytes, from `/proc/meminfo`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, ToSchema)]
pub struct MemorySnapshot {
    pub total: u64,
    pub available: u64,
    /// total − available, as `free(1)` and most tools show "used" today.
    pub used: u64,
    /// MemFree: memory nobody uses at all (not the same as available).
    pub free: u64,
    pub buffers: u64,
    pub cached: u64,
    /// used / total × 100.
    pub used_percent: f64,
    pub swap_total: u64,
    pub swap_used: u64,
    pub swap_free: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, ToSchema)]
pub struct LoadAverage {
    pub one: f64,
    pub five: f64,
    pub fifteen: f64,
}

/// One mounted real filesystem (pseudo filesystems such as proc, sysfs, tmpfs and overlay are skipped).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Filesystem {
    pub device: String,
    pub mount_point: String,
    pub fs_type: String,
    pub size_bytes: u64,
    pub used_bytes: u64,
    /// Space an unprivileged user can still write (statvfs `f_bavail`), as `df` shows "Avail".
    pub available_bytes: u64,
    /// used / (used + available) × 100, as `df` computes Use%.
    pub used_percent: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct NetInterface {
    pub name: String,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    pub rx_packets: u64,
    pub tx_packets: u64,
    pub rx_errors: u64,
    pub tx_errors: u64,
    pub rx_dropped: u64,
    pub tx_dropped: u64,
    pub rx_bytes_per_sec: f64,
    pub tx_bytes_per_sec: f64,
    pub rx_packets_per_sec: f64,
    pub tx_packets_per_sec: f64,
}

/// One block device from `/proc/diskstats` (partitions and virtual devices such as loop and ram skipped).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct DiskIo {
    pub name: String,
    pub reads_completed: u64,
    pub writes_completed: u64,
    pub read_bytes: u64,
    pub written_bytes: u64,
    pub reads_per_sec: f64,
    pub writes_per_sec: f64,
    pub read_bytes_per_sec: f64,
    pub written_bytes_per_sec: f64,
    /// Share of the interval the device had I/O in flight, percent.
    pub busy_percent: f64,
}

/// The container half of a snapshot: either the list, or why there is none.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum ContainersView {
    /// The Docker engine answered this tick.
    Available { containers: Vec<ContainerStats> },
    /// The engine could not be reached; host figures are still valid.
    Unavailable { reason: String },
}

impl ContainersView {
    pub fn containers(&self) -> Option<&[ContainerStats]> {
        match self {
            ContainersView::Available { containers } => Some(containers),
            ContainersView::Unavailable { .. } => None,
        }
    }
}

/// One container's figures at a tick, computed the way the Docker CLI computes `docker stats`.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct ContainerStats {
    pub id: String,
    /// Name without the leading slash.
    pub name: String,
    pub image: String,
    /// Docker state: created, running, paused, restarting, removing, exited, dead.
    pub state: String,
    /// Docker's human status line, e.g. "Up 3 minutes".
    pub status: String,
    pub created: i64,
    #[schema(value_type = Object)]
    pub labels: std::collections::BTreeMap<String, String>,
    /// CPU % as `docker stats`: Δcontainer / Δsystem × online CPUs × 100 (0..n×100). Null until two readings exist.
    pub cpu_percent: Option<f64>,
    pub online_cpus: Option<u32>,
    /// Memory used as `docker stats`: usage − inactive_file (cgroup v2) or total_inactive_file (v1).
    pub memory_used_bytes: Option<u64>,
    pub memory_limit_bytes: Option<u64>,
    pub memory_percent: Option<f64>,
    pub net_rx_bytes: Option<u64>,
    pub net_tx_bytes: Option<u64>,
    pub block_read_bytes: Option<u64>,
    pub block_write_bytes: Option<u64>,
    pub pids: Option<u64>,
    /// GPU use of the container's processes (summed per GPU and in total); null when GPUs
    /// are not monitored.
    pub gpu: Option<crate::gpu::ContainerGpu>,
    /// The runtime that made it: docker, podman, containerd, cri-o or kubernetes (from its
    /// cgroup path); null when its cgroup has not been found.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runtime: Option<String>,
    /// Times the engine restarted the container (its restart policy) since it was created;
    /// null for a container no engine describes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restart_count: Option<u64>,
    /// Its cgroup, relative to the cgroup mount (e.g. `/docker/<id>`,
    /// `/system.slice/docker-<id>.scope`); null when not running.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cgroup: Option<String>,
    /// The container's figures as an Engine stats document (the fields `docker stats` reads,
    /// built from the cgroup readings of this tick and the previous one; running containers
    /// only): the `iotconnect` profile serves it.
    #[serde(skip)]
    pub raw_stats: Option<std::sync::Arc<EngineStats>>,
}

impl ContainerStats {
    /// CPU time the container used since it started, in seconds (the Engine's
    /// `cpu_stats.cpu_usage.total_usage`, nanoseconds); `None` for a container not running.
    pub fn cpu_usage_seconds(&self) -> Option<f64> {
        let doc = self.raw_stats.as_ref()?;
        let ns = doc.cpu_stats.as_ref()?.cpu_usage.as_ref()?.total_usage?;
        Some(ns as f64 / 1e9)
    }

    /// True when `key` names this container: its full id, an id prefix of at least 4 hex digits, or its name.
    pub fn matches(&self, key: &str) -> bool {
        let key = key.strip_prefix('/').unwrap_or(key);
        self.name == key || self.id == key || (key.len() >= 4 && self.id.starts_with(key))
    }
}
