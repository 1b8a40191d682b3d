//! NVML readings, in NVML's own units, to the API's records: pure functions, tested without
//! a GPU. NVML reports power in milliwatts, energy in millijoules, PCIe throughput in KB/s
//! (KiB) and cumulative PCIe counters in bytes; the records carry watts, millijoules (a
//! counter, as dcgm-exporter does) and bytes per second.

use std::collections::{BTreeMap, HashMap};

use super::records::{
    ContainerGpu, ContainerGpuDevice, GpuEcc, GpuMemory, GpuMig, GpuProcess, GpuStats,
};

/// What does not change while the driver is loaded, read once at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceInfo {
    pub index: u32,
    pub uuid: String,
    pub name: String,
    pub pci_bus_id: String,
    /// 0 on a passively cooled board.
    pub fans: u32,
}

/// Device memory as NVML's `nvmlMemory_v2_t` (or v1, without `reserved`), bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RawMemory {
    pub total: u64,
    pub used: u64,
    pub free: u64,
    pub reserved: Option<u64>,
}

/// How PCIe traffic was read this tick.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum RawPcie {
    /// Cumulative byte counters (NVML fields 197/198): rates come from two ticks.
    Counters { rx_bytes: u64, tx_bytes: u64 },
    /// `nvmlDeviceGetPcieThroughput`, KB/s over a 20 ms window (older boards and drivers).
    ThroughputKbps { rx: u32, tx: u32 },
    /// Rates already computed (bytes/s) from counters read on an earlier tick.
    Rates { rx: Option<f64>, tx: Option<f64> },
    #[default]
    Unsupported,
}

/// One GPU's readings at one tick, as NVML returned them; `None` where a call was not
/// supported or failed.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RawGpu {
    /// (gpu %, memory-controller %).
    pub utilization: Option<(u32, u32)>,
    pub memory: Option<RawMemory>,
    pub temperature_c: Option<u32>,
    pub power_mw: Option<u32>,
    pub power_limit_mw: Option<u32>,
    pub energy_mj: Option<u64>,
    pub sm_clock_mhz: Option<u32>,
    pub memory_clock_mhz: Option<u32>,
    pub pcie: RawPcie,
    /// One entry per fan that answered, percent.
    pub fan_speeds: Vec<u32>,
    pub throttle_mask: Option<u64>,
    /// (currently enabled, pending).
    pub ecc_mode: Option<(bool, bool)>,
    /// Volatile corrected, volatile uncorrected, aggregate corrected, aggregate uncorrected.
    pub ecc_counts: [Option<u64>; 4],
    /// (current, pending), NVML's 0/1.
    pub mig_mode: Option<(u32, u32)>,
}

/// The previous tick's PCIe counters of a GPU, for rates.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PciePrev {
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    /// Seconds between that reading and this one.
    pub elapsed_secs: f64,
}

/// Bytes per second between two readings of a counter; `None` when the counter went back
/// (driver reload, wrap) or no time passed.
pub fn counter_rate(prev: u64, cur: u64, elapsed_secs: f64) -> Option<f64> {
    if cur < prev || !elapsed_secs.is_finite() || elapsed_secs <= 0.0 {
        return None;
    }
    Some((cur - prev) as f64 / elapsed_secs)
}

/// NVML's KB/s (1 KB = 1024 bytes, as nvidia-smi prints it) to bytes per second.
pub fn kbps_to_bytes_per_sec(kbps: u32) -> f64 {
    f64::from(kbps) * 1024.0
}

pub fn milliwatts_to_watts(mw: u32) -> f64 {
    f64::from(mw) / 1000.0
}

/// NVML's clock-event (throttle) reason bits, with the names the API reports.
pub const THROTTLE_REASONS: [(u64, &str); 10] = [
    (0x1, "gpu_idle"),
    (0x2, "applications_clocks_setting"),
    (0x4, "sw_power_cap"),
    (0x8, "hw_slowdown"),
    (0x10, "sync_boost"),
    (0x20, "sw_thermal_slowdown"),
    (0x40, "hw_thermal_slowdown"),
    (0x80, "hw_power_brake_slowdown"),
    (0x100, "display_clock_setting"),
    (0x200, "user_defined_clocks"),
];

/// The names of the bits set in `mask`; unknown bits as `bit_<n>`.
pub fn throttle_reason_names(mask: u64) -> Vec<String> {
    let mut out = Vec::new();
    let mut known = 0u64;
    for (bit, name) in THROTTLE_REASONS {
        known |= bit;
        if mask & bit != 0 {
            out.push(name.to_string());
        }
    }
    let unknown = mask & !known;
    for n in 0..64 {
        if unknown & (1u64 << n) != 0 {
            out.push(format!("bit_{n}"));
        }
    }
    out
}

pub fn memory_record(m: RawMemory) -> GpuMemory {
    GpuMemory {
        total_bytes: m.total,
        used_bytes: m.used,
        free_bytes: m.free,
        reserved_bytes: m.reserved,
        used_percent: if m.total == 0 {
            0.0
        } else {
            m.used as f64 / m.total as f64 * 100.0
        },
    }
}

/// One GPU's record from its readings. `prev` is the previous tick's PCIe counters, if any.
pub fn gpu_record(
    info: &DeviceInfo,
    raw: &RawGpu,
    prev: Option<PciePrev>,
    processes: Vec<GpuProcess>,
) -> GpuStats {
    let (pcie_rx, pcie_tx) = match raw.pcie {
        RawPcie::Counters { rx_bytes, tx_bytes } => match prev {
            Some(p) => (
                counter_rate(p.rx_bytes, rx_bytes, p.elapsed_secs),
                counter_rate(p.tx_bytes, tx_bytes, p.elapsed_secs),
            ),
            None => (None, None),
        },
        RawPcie::ThroughputKbps { rx, tx } => (
            Some(kbps_to_bytes_per_sec(rx)),
            Some(kbps_to_bytes_per_sec(tx)),
        ),
        RawPcie::Rates { rx, tx } => (rx, tx),
        RawPcie::Unsupported => (None, None),
    };
    let fan = if raw.fan_speeds.is_empty() {
        None
    } else {
        let sum: u64 = raw.fan_speeds.iter().map(|&v| u64::from(v)).sum();
        Some((sum / raw.fan_speeds.len() as u64) as u32)
    };
    let ecc = raw.ecc_mode.map(|(enabled, pending)| {
        // Counts only mean something while ECC is on.
        let c = |v: Option<u64>| if enabled { v } else { None };
        GpuEcc {
            enabled,
            pending_enabled: pending,
            volatile_corrected: c(raw.ecc_counts[0]),
            volatile_uncorrected: c(raw.ecc_counts[1]),
            aggregate_corrected: c(raw.ecc_counts[2]),
            aggregate_uncorrected: c(raw.ecc_counts[3]),
        }
    });
    GpuStats {
        index: info.index,
        uuid: info.uuid.clone(),
        name: info.name.clone(),
        pci_bus_id: info.pci_bus_id.clone(),
        utilization_gpu_percent: raw.utilization.map(|u| u.0),
        utilization_memory_percent: raw.utilization.map(|u| u.1),
        memory: raw.memory.map(memory_record),
        temperature_celsius: raw.temperature_c,
        power_draw_watts: raw.power_mw.map(milliwatts_to_watts),
        power_limit_watts: raw.power_limit_mw.map(milliwatts_to_watts),
        energy_millijoules: raw.energy_mj,
        sm_clock_mhz: raw.sm_clock_mhz,
        memory_clock_mhz: raw.memory_clock_mhz,
        pcie_rx_bytes_per_sec: pcie_rx,
        pcie_tx_bytes_per_sec: pcie_tx,
        fan_speed_percent: fan,
        throttle_reasons: raw.throttle_mask.map(throttle_reason_names),
        throttle_reasons_mask: raw.throttle_mask,
        ecc,
        mig: raw.mig_mode.map(|(current, pending)| GpuMig {
            enabled: current != 0,
            pending_enabled: pending != 0,
        }),
        processes,
    }
}

/// A process NVML lists on a GPU; `used_memory` is `None` where NVML cannot tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawProcess {
    pub pid: u32,
    pub used_memory: Option<u64>,
}

/// One of NVML's process-utilization samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawUtilSample {
    pub pid: u32,
    /// CPU timestamp, µs.
    pub timestamp_us: u64,
    pub sm: u32,
    pub mem: u32,
}

/// Mean SM % and memory % per pid over the samples newer than `since_us`.
pub fn utilization_by_pid(samples: &[RawUtilSample], since_us: u64) -> HashMap<u32, (u32, u32)> {
    let mut acc: HashMap<u32, (u64, u64, u64)> = HashMap::new();
    for s in samples.iter().filter(|s| s.timestamp_us > since_us) {
        let e = acc.entry(s.pid).or_default();
        e.0 += u64::from(s.sm.min(100));
        e.1 += u64::from(s.mem.min(100));
        e.2 += 1;
    }
    acc.into_iter()
        .map(|(pid, (sm, mem, n))| (pid, ((sm / n) as u32, (mem / n) as u32)))
        .collect()
}

/// Adds 0 % for every pid NVML listed when the samples were read but that had no sample (it
/// ran no kernel), so that only pids unknown at that read stay null.
pub fn with_idle(
    mut util: HashMap<u32, (u32, u32)>,
    pids: impl IntoIterator<Item = u32>,
) -> HashMap<u32, (u32, u32)> {
    for pid in pids {
        util.entry(pid).or_insert((0, 0));
    }
    util
}

/// The process records of one GPU: compute and graphics lists merged by pid (a process in
/// both holds one allocation, so the larger figure is kept), with utilization from the
/// samples. A pid absent from `utilization` (not yet seen when the samples were last read,
/// or samples unreadable: `None`) has null utilization; see [`with_idle`].
pub fn merge_processes(
    compute: &[RawProcess],
    graphics: &[RawProcess],
    utilization: Option<&HashMap<u32, (u32, u32)>>,
) -> Vec<GpuProcess> {
    let mut by_pid: BTreeMap<u32, (bool, bool, Option<u64>)> = BTreeMap::new();
    for (list, is_compute) in [(compute, true), (graphics, false)] {
        for p in list {
            let e = by_pid.entry(p.pid).or_insert((false, false, None));
            if is_compute {
                e.0 = true;
            } else {
                e.1 = true;
            }
            e.2 = match (e.2, p.used_memory) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (a, b) => a.or(b),
            };
        }
    }
    by_pid
        .into_iter()
        .map(|(pid, (c, g, mem))| {
            let util = utilization.and_then(|u| u.get(&pid).copied());
            GpuProcess {
                pid,
                kind: match (c, g) {
                    (true, true) => "compute+graphics",
                    (false, true) => "graphics",
                    _ => "compute",
                }
                .to_string(),
                used_memory_bytes: mem,
                sm_utilization_percent: util.map(|u| u.0),
                memory_utilization_percent: util.map(|u| u.1),
                container_id: None,
                container_runtime: None,
                pod_uid: None,
                container_name: None,
                cgroup: None,
            }
        })
        .collect()
}

/// Per container id: its GPU use summed over its processes, per GPU and in total.
pub fn usage_by_container(gpus: &[GpuStats]) -> BTreeMap<String, ContainerGpu> {
    let mut out: BTreeMap<String, ContainerGpu> = BTreeMap::new();
    for g in gpus {
        for p in &g.processes {
            let Some(id) = &p.container_id else { continue };
            let mem = p.used_memory_bytes.unwrap_or(0);
            let sm = f64::from(p.sm_utilization_percent.unwrap_or(0));
            let c = out.entry(id.clone()).or_default();
            c.memory_used_bytes += mem;
            c.sm_utilization_percent += sm;
            c.processes += 1;
            match c.devices.iter_mut().find(|d| d.index == g.index) {
                Some(d) => {
                    d.memory_used_bytes += mem;
                    d.sm_utilization_percent += sm;
                    d.pids.push(p.pid);
                }
                None => c.devices.push(ContainerGpuDevice {
                    index: g.index,
                    uuid: g.uuid.clone(),
                    memory_used_bytes: mem,
                    sm_utilization_percent: sm,
                    pids: vec![p.pid],
                }),
            }
        }
    }
    out
}
