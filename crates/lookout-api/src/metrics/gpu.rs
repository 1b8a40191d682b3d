//! GPU families of `/metrics`: dcgm-exporter's names, labels and units where it has the
//! figure (memory in MiB, power in W, energy in mJ; its cumulative fields stay gauges, as
//! dcgm-exporter's names carry no `_total`), `lookout_gpu_*` / `lookout_container_gpu_*` for
//! per-process and per-container figures (ratios 0–1).

use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeGaugeValue};

use lookout_probe::gpu::{GpuEcc, GpuMemory, GpuStats};
use lookout_probe::Snapshot;

use super::encode::{gauge, gauges, Labels};
use crate::gpu_usage::container_usage;

/// The GPU half of the latest snapshot, written at scrape time.
#[derive(Debug)]
pub struct GpuCollector(pub Arc<Snapshot>);

const MIB: f64 = 1024.0 * 1024.0;

/// Labels dcgm-exporter puts on every GPU series (`modelName` and `UUID` are its spelling).
fn gpu_labels<'a>(g: &'a GpuStats, index: &'a str) -> Labels<'a> {
    vec![
        ("gpu", index),
        ("UUID", g.uuid.as_str()),
        ("modelName", g.name.as_str()),
        ("pci_bus_id", g.pci_bus_id.as_str()),
    ]
}

/// One gauge family over every GPU that has the value.
fn per_gpu<V: EncodeGaugeValue>(
    e: &mut DescriptorEncoder,
    gpus: &[(Labels, &GpuStats)],
    name: &str,
    help: &str,
    value: impl Fn(&GpuStats) -> Option<V>,
) -> Result<(), std::fmt::Error> {
    let rows: Vec<(Labels, V)> = gpus
        .iter()
        .filter_map(|(l, g)| value(g).map(|v| (l.clone(), v)))
        .collect();
    gauges(e, name, help, &rows)
}

fn mib(g: &GpuStats, pick: fn(&GpuMemory) -> Option<u64>) -> Option<f64> {
    g.memory.as_ref().and_then(pick).map(|b| b as f64 / MIB)
}

impl Collector for GpuCollector {
    fn encode(&self, mut e: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let v = &self.0.gpu;
        gauge(
            &mut e,
            "lookout_gpu_up",
            "1 when GPUs are monitored through NVML",
            u64::from(v.available),
        )?;
        if !v.available {
            return Ok(());
        }
        let indexes: Vec<String> = v.gpus.iter().map(|g| g.index.to_string()).collect();
        let gpus: Vec<(Labels, &GpuStats)> = v
            .gpus
            .iter()
            .zip(&indexes)
            .map(|(g, i)| (gpu_labels(g, i), g))
            .collect();
        let int = |x: Option<u32>| x.map(u64::from);
        let e = &mut e;
        per_gpu(
            e,
            &gpus,
            "DCGM_FI_DEV_GPU_UTIL",
            "GPU utilization (in %)",
            |g| int(g.utilization_gpu_percent),
        )?;
        per_gpu(
            e,
            &gpus,
            "DCGM_FI_DEV_MEM_COPY_UTIL",
            "Memory utilization (in %)",
            |g| int(g.utilization_memory_percent),
        )?;
        per_gpu(
            e,
            &gpus,
            "DCGM_FI_DEV_FB_TOTAL",
            "Framebuffer memory total (in MiB)",
            |g| mib(g, |m| Some(m.total_bytes)),
        )?;
        per_gpu(
            e,
            &gpus,
            "DCGM_FI_DEV_FB_USED",
            "Framebuffer memory used (in MiB)",
            |g| mib(g, |m| Some(m.used_bytes)),
        )?;
        per_gpu(
            e,
            &gpus,
            "DCGM_FI_DEV_FB_FREE",
            "Framebuffer memory free (in MiB)",
            |g| mib(g, |m| Some(m.free_bytes)),
        )?;
        per_gpu(
            e,
            &gpus,
            "DCGM_FI_DEV_FB_RESERVED",
            "Framebuffer memory reserved (in MiB)",
            |g| mib(g, |m| m.reserved_bytes),
        )?;
        per_gpu(
            e,
            &gpus,
            "DCGM_FI_DEV_GPU_TEMP",
            "GPU temperature (in C)",
            |g| int(g.temperature_celsius),
        )?;
        per_gpu(
            e,
            &gpus,
            "DCGM_FI_DEV_POWER_USAGE",
            "Power draw (in W)",
            |g| g.power_draw_watts,
        )?;
        per_gpu(
            e,
            &gpus,
            "DCGM_FI_DEV_ENFORCED_POWER_LIMIT",
            "Power limit the driver enforces (in W)",
            |g| g.power_limit_watts,
        )?;
        per_gpu(
            e,
            &gpus,
            "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION",
            "Total energy consumption since the driver was loaded (in mJ; cumulative)",
            |g| g.energy_millijoules,
        )?;
        per_gpu(
            e,
            &gpus,
            "DCGM_FI_DEV_SM_CLOCK",
            "SM clock frequency (in MHz)",
            |g| int(g.sm_clock_mhz),
        )?;
        per_gpu(
            e,
            &gpus,
            "DCGM_FI_DEV_MEM_CLOCK",
            "Memory clock frequency (in MHz)",
            |g| int(g.memory_clock_mhz),
        )?;
        per_gpu(
            e,
            &gpus,
            "DCGM_FI_PROF_PCIE_RX_BYTES",
            "PCIe bytes received per second",
            |g| g.pcie_rx_bytes_per_sec,
        )?;
        per_gpu(
            e,
            &gpus,
            "DCGM_FI_PROF_PCIE_TX_BYTES",
            "PCIe bytes sent per second",
            |g| g.pcie_tx_bytes_per_sec,
        )?;
        per_gpu(e, &gpus, "DCGM_FI_DEV_FAN_SPEED", "Fan speed (in %)", |g| {
            int(g.fan_speed_percent)
        })?;
        per_gpu(
            e,
            &gpus,
            "DCGM_FI_DEV_CLOCK_THROTTLE_REASONS",
            "Current clock throttle reasons (NVML bit mask)",
            |g| g.throttle_reasons_mask,
        )?;
        for (name, help, pick) in [
            (
                "DCGM_FI_DEV_ECC_SBE_VOL_TOTAL",
                "Single-bit volatile ECC errors (cumulative)",
                (|e: &GpuEcc| e.volatile_corrected) as fn(&_) -> Option<u64>,
            ),
            (
                "DCGM_FI_DEV_ECC_DBE_VOL_TOTAL",
                "Double-bit volatile ECC errors (cumulative)",
                |e| e.volatile_uncorrected,
            ),
            (
                "DCGM_FI_DEV_ECC_SBE_AGG_TOTAL",
                "Single-bit persistent ECC errors (cumulative)",
                |e| e.aggregate_corrected,
            ),
            (
                "DCGM_FI_DEV_ECC_DBE_AGG_TOTAL",
                "Double-bit persistent ECC errors (cumulative)",
                |e| e.aggregate_uncorrected,
            ),
        ] {
            per_gpu(e, &gpus, name, help, |g| g.ecc.as_ref().and_then(pick))?;
        }
        per_gpu(
            e,
            &gpus,
            "DCGM_FI_DEV_MIG_MODE",
            "1 when MIG mode is enabled",
            |g| g.mig.map(|m| u64::from(m.enabled)),
        )?;

        let pids: Vec<Vec<String>> = v
            .gpus
            .iter()
            .map(|g| g.processes.iter().map(|p| p.pid.to_string()).collect())
            .collect();
        let mut proc_memory: Vec<(Labels, u64)> = Vec::new();
        let mut proc_sm: Vec<(Labels, f64)> = Vec::new();
        for ((labels, g), pids) in gpus.iter().zip(&pids) {
            for (p, pid) in g.processes.iter().zip(pids) {
                let mut l = labels.clone();
                l.push(("pid", pid.as_str()));
                l.push(("container_id", p.container_id.as_deref().unwrap_or("")));
                l.push(("container", p.container_name.as_deref().unwrap_or("")));
                if let Some(b) = p.used_memory_bytes {
                    proc_memory.push((l.clone(), b));
                }
                if let Some(u) = p.sm_utilization_percent {
                    proc_sm.push((l, f64::from(u) / 100.0));
                }
            }
        }
        gauges(
            e,
            "lookout_gpu_process_memory_bytes",
            "GPU memory a process holds",
            &proc_memory,
        )?;
        gauges(
            e,
            "lookout_gpu_process_sm_utilization_ratio",
            "SM share of the GPU a process had over the latest tick, 0 to 1 (NVML process samples)",
            &proc_sm,
        )?;

        let usage = container_usage(v);
        let device_indexes: Vec<Vec<String>> = usage
            .iter()
            .map(|c| c.gpu.devices.iter().map(|d| d.index.to_string()).collect())
            .collect();
        let mut memory: Vec<(Labels, u64)> = Vec::new();
        let mut sm: Vec<(Labels, f64)> = Vec::new();
        for (c, indexes) in usage.iter().zip(&device_indexes) {
            for (d, index) in c.gpu.devices.iter().zip(indexes) {
                let l: Labels = vec![
                    ("id", c.container_id.as_str()),
                    ("name", c.container_name.as_deref().unwrap_or("")),
                    ("gpu", index.as_str()),
                    ("UUID", d.uuid.as_str()),
                ];
                memory.push((l.clone(), d.memory_used_bytes));
                sm.push((l, d.sm_utilization_percent / 100.0));
            }
        }
        gauges(
            e,
            "lookout_container_gpu_memory_bytes",
            "GPU memory a container's processes hold, per GPU",
            &memory,
        )?;
        gauges(
            e,
            "lookout_container_gpu_sm_utilization_ratio",
            "Summed SM share of a container's processes, per GPU, 0 to 1 per GPU",
            &sm,
        )?;
        Ok(())
    }
}
