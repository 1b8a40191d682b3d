//! NVIDIA GPUs through NVML, loaded at run time (`libnvidia-ml.so.1` is dlopened by
//! `nvml-wrapper`): no build-time dependency on CUDA or the driver. On a host without the
//! library, the driver or a GPU, [`GpuProbe::init`] fails once with the reason and the
//! sampler reports [`GpuView::unavailable`] every tick without trying again.
//!
//! Every NVML call is a blocking ioctl into the driver: the sampler makes them on a blocking
//! thread. Readings go through the pure functions of [`convert`]; processes are attributed
//! to containers by [`cgroup`] from `/proc/<pid>/cgroup` under the configured proc root.

/// Kept under its old name: the container-id mapping now lives in [`crate::cgroup::path`].
pub use crate::cgroup::path as cgroup;
pub mod convert;
pub mod records;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::Instant;

use nvml_wrapper::enum_wrappers::device::{
    Clock, EccCounter, MemoryError, PcieUtilCounter, TemperatureSensor,
};
use nvml_wrapper::enums::device::{SampleValue, UsedGpuMemory};
use nvml_wrapper::error::NvmlError;
use nvml_wrapper::struct_wrappers::device::ProcessInfo;
use nvml_wrapper::structs::device::FieldId;
use nvml_wrapper::{Device, Nvml};

pub use records::*;

use crate::ContainerStats;
use convert::{DeviceInfo, PciePrev, RawGpu, RawMemory, RawPcie, RawProcess, RawUtilSample};

// NVML field ids (nvml.h), read together in one `nvmlDeviceGetFieldValues` call.
const FI_ECC_SBE_VOL_TOTAL: u32 = 3;
const FI_ECC_DBE_VOL_TOTAL: u32 = 4;
const FI_ECC_SBE_AGG_TOTAL: u32 = 5;
const FI_ECC_DBE_AGG_TOTAL: u32 = 6;
const FI_PCIE_COUNT_TX_BYTES: u32 = 197;
const FI_PCIE_COUNT_RX_BYTES: u32 = 198;
const FI_TOTAL_ENERGY_CONSUMPTION: u32 = 83;

/// How often, in ticks, the readings that cost the driver most are taken. Measured on an
/// H100 with driver 580 (docs/benchmarks.md, GPU section): the energy counter ~3 ms of CPU, process
/// utilization samples ~2 ms, ECC/MIG mode ~0.13 ms each, field values ~0.25 ms; everything
/// else ~1 µs (memory 8 µs, process lists 10–40 µs). In between, the last values are served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GpuCadence {
    /// Per-process SM/memory %: NVML buffers its samples, so each read averages the whole
    /// interval since the previous one; nothing is lost, the figure is just this coarse.
    pub process_utilization_every: u32,
    /// PCIe byte counters (rates over this interval) and the graphics-process list.
    pub pcie_every: u32,
    /// Energy counter, ECC mode and counts, MIG mode.
    pub slow_every: u32,
}

impl Default for GpuCadence {
    fn default() -> Self {
        Self {
            process_utilization_every: 10,
            pcie_every: 5,
            slow_every: 60,
        }
    }
}

impl GpuCadence {
    /// Everything every tick.
    pub const EVERY_TICK: GpuCadence = GpuCadence {
        process_utilization_every: 1,
        pcie_every: 1,
        slow_every: 1,
    };
}

/// Which of the costly readings this tick takes.
#[derive(Debug, Clone, Copy)]
struct Due {
    util: bool,
    pcie: bool,
    slow: bool,
}

/// Why NVML could not be used, in words an operator can act on.
pub fn describe_init_error(e: &NvmlError) -> String {
    match e {
        NvmlError::LibloadingError(inner) => {
            format!(
                "the NVIDIA management library (libnvidia-ml.so.1) could not be loaded: {inner}"
            )
        }
        NvmlError::DriverNotLoaded => "the NVIDIA kernel driver is not loaded".into(),
        NvmlError::NoPermission => "no permission to talk to the NVIDIA driver".into(),
        NvmlError::LibraryNotFound => "the NVIDIA management library was not found".into(),
        other => format!("NVML could not be initialised: {other}"),
    }
}

/// Per-GPU state carried from one tick to the next.
#[derive(Debug, Default)]
struct DeviceState {
    /// Newest process-utilization sample seen, µs (NVML's clock).
    last_util_us: u64,
    /// PCIe counters at the previous tick.
    pcie: Option<(Instant, u64, u64)>,
    /// Whether the PCIe byte counters answered; `false` falls back to the 20 ms throughput call.
    pcie_counters: Option<bool>,
    /// PCIe rates computed at the last counter read.
    pcie_rates: Option<(Option<f64>, Option<f64>)>,
    /// Energy, ECC and MIG from the last slow read.
    slow: Option<RawGpu>,
    /// Per-pid utilization at the last read of the samples (idle pids at 0).
    util: Option<HashMap<u32, (u32, u32)>>,
    /// Graphics processes were listed at the last look: look every tick while there are.
    graphics_seen: bool,
    /// Reads of the process-utilization samples so far. The first read of a GPU returns
    /// figures that do not reflect the load (seen on an H100, driver 580: 1 % for a process
    /// at 99 %): it only primes NVML, is reported as null, and is read again next tick.
    util_reads: u32,
}

/// NVML, loaded and initialised, with what was learnt about each GPU at start.
pub struct GpuProbe {
    nvml: Nvml,
    devices: Vec<DeviceInfo>,
    state: HashMap<u32, DeviceState>,
    driver_version: Option<String>,
    nvml_version: Option<String>,
    cuda_driver_version: Option<String>,
    /// (gpu index, what) already logged, so a failing call is logged once, not each tick.
    warned: HashSet<(u32, &'static str)>,
    cadence: GpuCadence,
    ticks: u64,
}

impl std::fmt::Debug for GpuProbe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuProbe")
            .field("devices", &self.devices)
            .field("driver_version", &self.driver_version)
            .finish_non_exhaustive()
    }
}

impl GpuProbe {
    /// Loads `libnvidia-ml.so.1` and initialises NVML. The error is the sentence to log.
    pub fn init() -> Result<Self, String> {
        let nvml = Nvml::init().map_err(|e| describe_init_error(&e))?;
        let count = nvml
            .device_count()
            .map_err(|e| format!("NVML could not count GPUs: {e}"))?;
        if count == 0 {
            return Err("NVML found no GPU".into());
        }
        let mut devices = Vec::with_capacity(count as usize);
        for index in 0..count {
            let d = match nvml.device_by_index(index) {
                Ok(d) => d,
                Err(e) => {
                    tracing::warn!(gpu = index, error = %e, "GPU not accessible; it is not monitored");
                    continue;
                }
            };
            devices.push(DeviceInfo {
                index,
                uuid: d.uuid().unwrap_or_default(),
                name: d.name().unwrap_or_default(),
                pci_bus_id: d.pci_info().map(|p| p.bus_id).unwrap_or_default(),
                fans: d.num_fans().unwrap_or(0),
            });
        }
        if devices.is_empty() {
            return Err("no GPU NVML lists is accessible".into());
        }
        let cuda_driver_version = nvml.sys_cuda_driver_version().ok().map(|v| {
            // NVML encodes 12.4 as 12040.
            format!("{}.{}", v / 1000, (v % 1000) / 10)
        });
        Ok(Self {
            driver_version: nvml.sys_driver_version().ok(),
            nvml_version: nvml.sys_nvml_version().ok(),
            cuda_driver_version,
            nvml,
            devices,
            state: HashMap::new(),
            warned: HashSet::new(),
            cadence: GpuCadence::default(),
            ticks: 0,
        })
    }

    pub fn with_cadence(mut self, cadence: GpuCadence) -> Self {
        self.cadence = cadence;
        self
    }

    pub fn devices(&self) -> &[DeviceInfo] {
        &self.devices
    }

    /// Reads every GPU and its processes; processes are attributed to containers from
    /// `<proc_root>/<pid>/cgroup`. Container names are joined later ([`attribute`]).
    pub fn sample(&mut self, proc_root: &Path) -> GpuView {
        let now = Instant::now();
        let due_at = |every: u32| self.ticks.checked_rem(u64::from(every.max(1))) == Some(0);
        let due = Due {
            util: due_at(self.cadence.process_utilization_every),
            pcie: due_at(self.cadence.pcie_every),
            slow: due_at(self.cadence.slow_every),
        };
        self.ticks += 1;
        let mut gpus = Vec::with_capacity(self.devices.len());
        let mut cgroup_buf = String::new();
        for i in 0..self.devices.len() {
            let info = &self.devices[i];
            let device = match self.nvml.device_by_index(info.index) {
                Ok(d) => d,
                Err(e) => {
                    if self.warned.insert((info.index, "handle")) {
                        tracing::warn!(gpu = info.index, error = %e, "GPU not accessible");
                    }
                    continue;
                }
            };
            let state = self.state.entry(info.index).or_default();
            let mut failures = Vec::new();
            let mut raw = read_device(&device, info, state, due, &mut failures);
            if let RawPcie::Counters { rx_bytes, tx_bytes } = raw.pcie {
                let rates = state.pcie.map(|(at, rx, tx)| {
                    let p = PciePrev {
                        rx_bytes: rx,
                        tx_bytes: tx,
                        elapsed_secs: now.duration_since(at).as_secs_f64(),
                    };
                    (
                        convert::counter_rate(p.rx_bytes, rx_bytes, p.elapsed_secs),
                        convert::counter_rate(p.tx_bytes, tx_bytes, p.elapsed_secs),
                    )
                });
                state.pcie = Some((now, rx_bytes, tx_bytes));
                state.pcie_rates = rates;
            }
            if matches!(raw.pcie, RawPcie::Counters { .. } | RawPcie::Unsupported) {
                raw.pcie = match state.pcie_rates {
                    Some((rx, tx)) => RawPcie::Rates { rx, tx },
                    None => RawPcie::Unsupported,
                };
            }
            let mut processes = read_processes(&device, state, due, &mut failures);
            for p in &mut processes {
                attribute_cgroup(p, proc_root, &mut cgroup_buf);
            }
            let index = info.index;
            gpus.push(convert::gpu_record(info, &raw, None, processes));
            for (what, e) in failures {
                if self.warned.insert((index, what)) {
                    tracing::warn!(gpu = index, reading = what, error = %e, "GPU reading failed; reported as null");
                }
            }
        }
        GpuView {
            available: true,
            reason: None,
            driver_version: self.driver_version.clone(),
            nvml_version: self.nvml_version.clone(),
            cuda_driver_version: self.cuda_driver_version.clone(),
            gpus,
        }
    }
}

/// `Ok` as `Some`; "not supported" (the board lacks the feature) as `None` silently; any
/// other error as `None`, noted for a single log line.
fn opt<T>(
    r: Result<T, NvmlError>,
    what: &'static str,
    failures: &mut Vec<(&'static str, String)>,
) -> Option<T> {
    match r {
        Ok(v) => Some(v),
        Err(NvmlError::NotSupported) | Err(NvmlError::FunctionNotFound) => None,
        Err(e) => {
            failures.push((what, e.to_string()));
            None
        }
    }
}

fn field_u64(v: &SampleValue) -> Option<u64> {
    match *v {
        SampleValue::U64(v) => Some(v),
        SampleValue::U32(v) => Some(u64::from(v)),
        SampleValue::I64(v) => u64::try_from(v).ok(),
        SampleValue::F64(v) => (v >= 0.0 && v.is_finite()).then_some(v as u64),
    }
}

fn read_device(
    d: &Device<'_>,
    info: &DeviceInfo,
    state: &mut DeviceState,
    due: Due,
    failures: &mut Vec<(&'static str, String)>,
) -> RawGpu {
    let mut raw = RawGpu {
        utilization: opt(d.utilization_rates(), "utilization", failures).map(|u| (u.gpu, u.memory)),
        memory: opt(d.memory_info(), "memory", failures).map(|m| RawMemory {
            total: m.total,
            used: m.used,
            free: m.free,
            reserved: Some(m.reserved),
        }),
        temperature_c: opt(
            d.temperature(TemperatureSensor::Gpu),
            "temperature",
            failures,
        ),
        power_mw: opt(d.power_usage(), "power", failures),
        power_limit_mw: opt(d.enforced_power_limit(), "power_limit", failures),

        sm_clock_mhz: opt(d.clock_info(Clock::SM), "sm_clock", failures),
        memory_clock_mhz: opt(d.clock_info(Clock::Memory), "memory_clock", failures),
        throttle_mask: opt(d.current_throttle_reasons(), "throttle_reasons", failures)
            .map(|r| r.bits()),
        ..RawGpu::default()
    };
    let slow = due.slow || state.slow.is_none();
    if slow {
        raw.ecc_mode = opt(d.is_ecc_enabled(), "ecc_mode", failures)
            .map(|m| (m.currently_enabled, m.pending_enabled));
        raw.mig_mode = opt(d.mig_mode(), "mig_mode", failures).map(|m| (m.current, m.pending));
    } else if let Some(prev) = &state.slow {
        raw.energy_mj = prev.energy_mj;
        raw.ecc_mode = prev.ecc_mode;
        raw.ecc_counts = prev.ecc_counts;
        raw.mig_mode = prev.mig_mode;
    }
    for fan in 0..info.fans {
        if let Some(v) = opt(d.fan_speed(fan), "fan", failures) {
            raw.fan_speeds.push(v);
        }
    }
    // PCIe byte counters, energy and ECC totals in one call, each when due.
    let ecc_on = slow && matches!(raw.ecc_mode, Some((true, _)));
    let pcie_due = due.pcie || state.pcie_counters.is_none();
    let mut ids = Vec::with_capacity(7);
    if pcie_due && state.pcie_counters != Some(false) {
        ids.extend([FI_PCIE_COUNT_RX_BYTES, FI_PCIE_COUNT_TX_BYTES]);
    }
    if slow {
        ids.push(FI_TOTAL_ENERGY_CONSUMPTION);
    }
    if ecc_on {
        ids.extend([
            FI_ECC_SBE_VOL_TOTAL,
            FI_ECC_DBE_VOL_TOTAL,
            FI_ECC_SBE_AGG_TOTAL,
            FI_ECC_DBE_AGG_TOTAL,
        ]);
    }
    let mut values: HashMap<u32, u64> = HashMap::new();
    if !ids.is_empty() {
        let fields: Vec<FieldId> = ids.iter().map(|&i| FieldId(i)).collect();
        if let Some(samples) = opt(d.field_values_for(&fields), "field_values", failures) {
            for (id, s) in ids.iter().zip(samples) {
                if let Some(v) = s
                    .ok()
                    .and_then(|s| s.value.ok())
                    .as_ref()
                    .and_then(field_u64)
                {
                    values.insert(*id, v);
                }
            }
        }
    }
    if pcie_due && state.pcie_counters != Some(false) {
        match (
            values.get(&FI_PCIE_COUNT_RX_BYTES),
            values.get(&FI_PCIE_COUNT_TX_BYTES),
        ) {
            (Some(&rx_bytes), Some(&tx_bytes)) => {
                state.pcie_counters = Some(true);
                raw.pcie = RawPcie::Counters { rx_bytes, tx_bytes };
            }
            _ => state.pcie_counters = Some(false),
        }
    }
    if pcie_due && state.pcie_counters == Some(false) {
        // Older boards or drivers: NVML measures over 20 ms per call (wall time, on this
        // blocking thread; not on any request path).
        let rx = opt(
            d.pcie_throughput(PcieUtilCounter::Receive),
            "pcie_rx",
            failures,
        );
        let tx = opt(
            d.pcie_throughput(PcieUtilCounter::Send),
            "pcie_tx",
            failures,
        );
        if let (Some(rx), Some(tx)) = (rx, tx) {
            raw.pcie = RawPcie::ThroughputKbps { rx, tx };
        }
    }
    if ecc_on {
        let ecc = |id: u32| values.get(&id).copied();
        raw.ecc_counts = [
            ecc(FI_ECC_SBE_VOL_TOTAL),
            ecc(FI_ECC_DBE_VOL_TOTAL),
            ecc(FI_ECC_SBE_AGG_TOTAL),
            ecc(FI_ECC_DBE_AGG_TOTAL),
        ];
        if raw.ecc_counts.iter().all(Option::is_none) {
            // Field values unsupported: the classic calls.
            raw.ecc_counts = [
                opt(
                    d.total_ecc_errors(MemoryError::Corrected, EccCounter::Volatile),
                    "ecc",
                    failures,
                ),
                opt(
                    d.total_ecc_errors(MemoryError::Uncorrected, EccCounter::Volatile),
                    "ecc",
                    failures,
                ),
                opt(
                    d.total_ecc_errors(MemoryError::Corrected, EccCounter::Aggregate),
                    "ecc",
                    failures,
                ),
                opt(
                    d.total_ecc_errors(MemoryError::Uncorrected, EccCounter::Aggregate),
                    "ecc",
                    failures,
                ),
            ];
        }
    }
    if slow {
        raw.energy_mj = values
            .get(&FI_TOTAL_ENERGY_CONSUMPTION)
            .copied()
            .or_else(|| opt(d.total_energy_consumption(), "energy", failures));
        state.slow = Some(raw.clone());
    }
    raw
}

fn raw_processes(list: Vec<ProcessInfo>) -> Vec<RawProcess> {
    list.into_iter()
        .map(|p| RawProcess {
            pid: p.pid,
            used_memory: match p.used_gpu_memory {
                UsedGpuMemory::Used(b) => Some(b),
                UsedGpuMemory::Unavailable => None,
            },
        })
        .collect()
}

fn read_processes(
    d: &Device<'_>,
    state: &mut DeviceState,
    due: Due,
    failures: &mut Vec<(&'static str, String)>,
) -> Vec<GpuProcess> {
    let compute = opt(d.running_compute_processes(), "compute_processes", failures)
        .map(raw_processes)
        .unwrap_or_default();
    let graphics = if due.pcie || state.graphics_seen {
        let g = opt(
            d.running_graphics_processes(),
            "graphics_processes",
            failures,
        )
        .map(raw_processes)
        .unwrap_or_default();
        state.graphics_seen = !g.is_empty();
        g
    } else {
        Vec::new()
    };
    if compute.is_empty() && graphics.is_empty() {
        state.util = None;
        return Vec::new();
    }
    // Read the samples when due, at once for a GPU whose processes were never sampled, and
    // at the next PCIe tick for a process started since the last read.
    let known = state.util.as_ref().is_some_and(|u| {
        compute
            .iter()
            .chain(&graphics)
            .all(|p| u.contains_key(&p.pid))
    });
    if !(due.util || state.util.is_none() || state.util_reads < 2 || (!known && due.pcie)) {
        return convert::merge_processes(&compute, &graphics, state.util.as_ref());
    }
    // NVML's buffer goes back several seconds: a first read (or the first after the GPU was
    // idle of processes) averages only the last second, later reads everything since the
    // previous one.
    let since = if state.util.is_none() {
        let now_us = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_micros() as u64)
            .unwrap_or(0);
        state.last_util_us.max(now_us.saturating_sub(1_000_000))
    } else {
        state.last_util_us
    };
    let samples = match d.process_utilization_stats(since) {
        Ok(s) => Some(
            s.into_iter()
                .map(|s| RawUtilSample {
                    pid: s.pid,
                    timestamp_us: s.timestamp,
                    sm: s.sm_util,
                    mem: s.mem_util,
                })
                .collect::<Vec<_>>(),
        ),
        // No sample newer than `since`: nothing ran a kernel.
        Err(NvmlError::NotFound) => Some(Vec::new()),
        Err(e) => opt(Err(e), "process_utilization", failures),
    };
    let util = samples.map(|s| {
        if let Some(newest) = s.iter().map(|s| s.timestamp_us).max() {
            state.last_util_us = state.last_util_us.max(newest);
        }
        convert::with_idle(
            convert::utilization_by_pid(&s, since),
            compute.iter().chain(&graphics).map(|p| p.pid),
        )
    });
    state.util_reads = state.util_reads.saturating_add(1);
    state.util = if state.util_reads == 1 {
        Some(HashMap::new())
    } else {
        util
    };
    convert::merge_processes(&compute, &graphics, state.util.as_ref())
}

/// Fills the container fields of a process from `<proc_root>/<pid>/cgroup`. A process that
/// has gone, or that lookout cannot read, stays unattributed.
fn attribute_cgroup(p: &mut GpuProcess, proc_root: &Path, buf: &mut String) {
    use std::io::Read;
    buf.clear();
    let path = proc_root.join(p.pid.to_string()).join("cgroup");
    let read = std::fs::File::open(&path).and_then(|mut f| f.read_to_string(buf));
    if read.is_err() {
        return;
    }
    p.cgroup = cgroup::display_path(buf);
    if let Some((c, path)) = cgroup::container_from_cgroup_file(buf) {
        p.container_id = Some(c.id);
        p.container_runtime = Some(c.runtime.as_str().to_string());
        p.pod_uid = c.pod_uid;
        p.cgroup = Some(path);
    }
}

/// Joins GPU processes to the Docker list: each process in a listed container gets the
/// container's name, and each listed container gets its `gpu` block (zeros when it uses no
/// GPU; left `None` when GPUs are not monitored).
pub fn attribute(view: &mut GpuView, containers: &mut [ContainerStats]) {
    if !view.available {
        return;
    }
    let names: HashMap<&str, &str> = containers
        .iter()
        .map(|c| (c.id.as_str(), c.name.as_str()))
        .collect();
    for g in &mut view.gpus {
        for p in &mut g.processes {
            if let Some(id) = &p.container_id {
                p.container_name = names.get(id.as_str()).map(|n| n.to_string());
            }
        }
    }
    let mut usage = convert::usage_by_container(&view.gpus);
    for c in containers.iter_mut() {
        c.gpu = Some(usage.remove(&c.id).unwrap_or_default());
    }
}
