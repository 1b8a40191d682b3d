//! The GPU half of a snapshot, as the API serves it. Fields a board does not have (a fan on a
//! passively cooled card, ECC on a consumer card) are `null`, never an error.

use serde::Serialize;
use utoipa::ToSchema;

/// Every GPU at one tick, or why GPUs are not monitored.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct GpuView {
    /// False when NVML could not be loaded or initialised (no NVIDIA driver, no GPU) or GPU
    /// sampling is off; `reason` says why and `gpus` is empty.
    pub available: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// NVIDIA driver version, e.g. "550.54.15".
    pub driver_version: Option<String>,
    pub nvml_version: Option<String>,
    /// CUDA version the driver supports, e.g. "12.4".
    pub cuda_driver_version: Option<String>,
    pub gpus: Vec<GpuStats>,
}

impl GpuView {
    pub fn unavailable(reason: impl Into<String>) -> Self {
        Self {
            available: false,
            reason: Some(reason.into()),
            driver_version: None,
            nvml_version: None,
            cuda_driver_version: None,
            gpus: Vec::new(),
        }
    }
}

impl Default for GpuView {
    fn default() -> Self {
        Self::unavailable("GPU sampling has not run")
    }
}

/// One GPU at one tick.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct GpuStats {
    /// NVML index (not necessarily the CUDA index).
    pub index: u32,
    /// e.g. "GPU-5f3c…".
    pub uuid: String,
    pub name: String,
    /// e.g. "00000000:17:00.0".
    pub pci_bus_id: String,
    /// Share of the last sample period (1/6 s to 1 s, by product) a kernel ran, percent.
    pub utilization_gpu_percent: Option<u32>,
    /// Share of the last sample period device memory was read or written, percent.
    pub utilization_memory_percent: Option<u32>,
    pub memory: Option<GpuMemory>,
    pub temperature_celsius: Option<u32>,
    pub power_draw_watts: Option<f64>,
    /// The power limit the driver enforces now.
    pub power_limit_watts: Option<f64>,
    /// Energy used since the driver was loaded, millijoules (a counter).
    pub energy_millijoules: Option<u64>,
    pub sm_clock_mhz: Option<u32>,
    pub memory_clock_mhz: Option<u32>,
    /// PCIe bytes the GPU received per second since the previous tick.
    pub pcie_rx_bytes_per_sec: Option<f64>,
    /// PCIe bytes the GPU sent per second since the previous tick.
    pub pcie_tx_bytes_per_sec: Option<f64>,
    /// Mean speed of the board's fans, percent of maximum; null where the board has none.
    pub fan_speed_percent: Option<u32>,
    /// Why clocks are held below their maximum (NVML "clocks event reasons"), e.g. "gpu_idle".
    pub throttle_reasons: Option<Vec<String>>,
    /// The same as NVML's bit mask (dcgm-exporter's `DCGM_FI_DEV_CLOCK_THROTTLE_REASONS`).
    pub throttle_reasons_mask: Option<u64>,
    /// Null where the board has no ECC.
    pub ecc: Option<GpuEcc>,
    /// Null where the board has no MIG.
    pub mig: Option<GpuMig>,
    pub processes: Vec<GpuProcess>,
}

/// Device memory in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, ToSchema)]
pub struct GpuMemory {
    pub total_bytes: u64,
    pub used_bytes: u64,
    pub free_bytes: u64,
    /// Set aside by the driver and firmware (null with a driver older than NVML's v2 call).
    pub reserved_bytes: Option<u64>,
    /// used / total × 100.
    pub used_percent: f64,
}

/// ECC mode and error counts.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, ToSchema)]
pub struct GpuEcc {
    pub enabled: bool,
    /// Takes effect at the next reboot.
    pub pending_enabled: bool,
    /// Single-bit (corrected) errors since the driver was loaded; null when ECC is off.
    pub volatile_corrected: Option<u64>,
    /// Double-bit (uncorrected) errors since the driver was loaded.
    pub volatile_uncorrected: Option<u64>,
    /// Corrected errors over the board's lifetime.
    pub aggregate_corrected: Option<u64>,
    pub aggregate_uncorrected: Option<u64>,
}

/// Multi-Instance GPU mode.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, ToSchema)]
pub struct GpuMig {
    pub enabled: bool,
    /// Takes effect at the next GPU reset.
    pub pending_enabled: bool,
}

/// One process using a GPU.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct GpuProcess {
    /// In the host's pid namespace (NVML's view).
    pub pid: u32,
    /// "compute", "graphics" or "compute+graphics".
    pub kind: String,
    /// Device memory the process holds; null where the driver cannot tell (e.g. under MIG without privileges).
    pub used_memory_bytes: Option<u64>,
    /// SM (kernel) share of the GPU this process had over the last tick, percent, from NVML's
    /// process-utilization samples; null when NVML had no sample for it.
    pub sm_utilization_percent: Option<u32>,
    /// Memory-controller share, likewise.
    pub memory_utilization_percent: Option<u32>,
    /// Full id of the container the process runs in, from `/proc/<pid>/cgroup`; null for a
    /// process outside any container. Set even when the container is not in the Docker list.
    pub container_id: Option<String>,
    /// "docker", "containerd", "cri-o", "podman" or "kubernetes" (a kubepods cgroup whose runtime the path does not name).
    pub container_runtime: Option<String>,
    /// Kubernetes pod UID, where the cgroup path names one.
    pub pod_uid: Option<String>,
    /// The container's name from the Docker list, when it is there.
    pub container_name: Option<String>,
    /// The process's cgroup path (the v2 path, or the first v1 path naming a container).
    pub cgroup: Option<String>,
}

/// A container's GPU use at one tick: the sum over its processes.
#[derive(Debug, Clone, PartialEq, Default, Serialize, ToSchema)]
pub struct ContainerGpu {
    /// GPU memory of all its processes on all GPUs.
    pub memory_used_bytes: u64,
    /// Sum of its processes' SM %, over all GPUs (0..gpus × 100).
    pub sm_utilization_percent: f64,
    /// Processes of the container that use a GPU (one per GPU it uses).
    pub processes: u32,
    pub devices: Vec<ContainerGpuDevice>,
}

/// A container's use of one GPU.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ContainerGpuDevice {
    pub index: u32,
    pub uuid: String,
    pub memory_used_bytes: u64,
    pub sm_utilization_percent: f64,
    pub pids: Vec<u32>,
}
