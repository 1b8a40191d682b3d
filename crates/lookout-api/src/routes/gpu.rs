//! GPUs: `GET /api/v1/host/gpu` and the GPU families of `/metrics`, from the latest snapshot.
//! A host without NVIDIA's library or driver answers 200 with `available: false` and the
//! reason; the per-container `gpu` blocks ride in the container routes' `ContainerStats`.

use std::fmt::Write as _;

use axum::extract::State;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use lookout_probe::gpu::convert::usage_by_container;
use lookout_probe::gpu::{ContainerGpu, GpuStats, GpuView};
use lookout_probe::Snapshot;

use crate::error::{ApiError, ErrorBody};
use crate::metrics::{escape_label, family};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(host_gpu))
}

/// One container's GPU use, keyed by the id its processes' cgroups name (present even when
/// the container is not in the Docker list, e.g. a Kubernetes or Podman container).
#[derive(Debug, Serialize, ToSchema)]
pub struct GpuContainerUsage {
    pub container_id: String,
    /// From the Docker list, when the container is there.
    pub container_name: Option<String>,
    pub container_runtime: Option<String>,
    pub gpu: ContainerGpu,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct GpuResponse {
    pub taken_at_ms: i64,
    /// False when GPUs are not monitored (no NVIDIA library or driver, no GPU, or turned off).
    pub available: bool,
    /// Why GPUs are not monitored; absent when they are.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub driver_version: Option<String>,
    pub nvml_version: Option<String>,
    pub cuda_driver_version: Option<String>,
    /// Every GPU with its processes.
    pub gpus: Vec<GpuStats>,
    /// GPU use per container, summed over its processes.
    pub containers: Vec<GpuContainerUsage>,
}

/// Per container: its GPU use, with the name and runtime its processes carry.
pub fn container_usage(view: &GpuView) -> Vec<GpuContainerUsage> {
    usage_by_container(&view.gpus)
        .into_iter()
        .map(|(id, gpu)| {
            let first = view
                .gpus
                .iter()
                .flat_map(|g| &g.processes)
                .find(|p| p.container_id.as_deref() == Some(id.as_str()));
            GpuContainerUsage {
                container_name: first.and_then(|p| p.container_name.clone()),
                container_runtime: first.and_then(|p| p.container_runtime.clone()),
                container_id: id,
                gpu,
            }
        })
        .collect()
}

pub fn response(s: &Snapshot) -> GpuResponse {
    let v = &s.gpu;
    GpuResponse {
        taken_at_ms: s.taken_at_ms,
        available: v.available,
        reason: v.reason.clone(),
        driver_version: v.driver_version.clone(),
        nvml_version: v.nvml_version.clone(),
        cuda_driver_version: v.cuda_driver_version.clone(),
        gpus: v.gpus.clone(),
        containers: container_usage(v),
    }
}

/// NVIDIA GPUs: load, memory, power, clocks, PCIe, ECC, MIG, and each process with its
/// container. 200 with `available: false` and the reason where GPUs are not monitored.
#[utoipa::path(get, path = "/api/v1/host/gpu", tag = "gpu", security(("bearer" = [])),
    responses((status = 200, body = GpuResponse), (status = 401, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn host_gpu(State(state): State<AppState>) -> Result<Json<GpuResponse>, ApiError> {
    let s = state.latest()?;
    Ok(Json(response(&s)))
}

/// Labels dcgm-exporter puts on every GPU series.
fn gpu_labels(g: &GpuStats) -> String {
    format!(
        "gpu=\"{}\",UUID=\"{}\",modelName=\"{}\",pci_bus_id=\"{}\"",
        g.index,
        escape_label(&g.uuid),
        escape_label(&g.name),
        escape_label(&g.pci_bus_id)
    )
}

/// One gauge family over every GPU that has the value.
fn gpu_family(
    out: &mut String,
    gpus: &[(String, &GpuStats)],
    name: &str,
    help: &str,
    value: impl Fn(&GpuStats) -> Option<f64>,
) {
    let values: Vec<(&str, f64)> = gpus
        .iter()
        .filter_map(|(l, g)| value(g).map(|v| (l.as_str(), v)))
        .collect();
    if values.is_empty() {
        return;
    }
    family(out, name, "gauge", help);
    for (labels, v) in values {
        let _ = writeln!(out, "{name}{{{labels}}} {v}");
    }
}

const MIB: f64 = 1024.0 * 1024.0;

/// The GPU families of `/metrics`: dcgm-exporter's names and units where it has the figure
/// (memory in MiB, power in W, energy in mJ; its cumulative fields as gauges so the names
/// stay exactly dcgm-exporter's), `lookout_gpu_*` for per-process and per-container figures.
pub fn encode_metrics(s: &Snapshot, out: &mut String) {
    let v = &s.gpu;
    family(
        out,
        "lookout_gpu_up",
        "gauge",
        "1 when GPUs are monitored through NVML",
    );
    let _ = writeln!(out, "lookout_gpu_up {}", u8::from(v.available));
    if !v.available {
        return;
    }
    let gpus: Vec<(String, &GpuStats)> = v.gpus.iter().map(|g| (gpu_labels(g), g)).collect();
    let f = |x: Option<u32>| x.map(f64::from);
    gpu_family(
        out,
        &gpus,
        "DCGM_FI_DEV_GPU_UTIL",
        "GPU utilization (in %)",
        |g| f(g.utilization_gpu_percent),
    );
    gpu_family(
        out,
        &gpus,
        "DCGM_FI_DEV_MEM_COPY_UTIL",
        "Memory utilization (in %)",
        |g| f(g.utilization_memory_percent),
    );
    let mem = |g: &GpuStats, pick: fn(&lookout_probe::gpu::GpuMemory) -> Option<u64>| {
        g.memory.as_ref().and_then(pick).map(|b| b as f64 / MIB)
    };
    gpu_family(
        out,
        &gpus,
        "DCGM_FI_DEV_FB_TOTAL",
        "Framebuffer memory total (in MiB)",
        |g| mem(g, |m| Some(m.total_bytes)),
    );
    gpu_family(
        out,
        &gpus,
        "DCGM_FI_DEV_FB_USED",
        "Framebuffer memory used (in MiB)",
        |g| mem(g, |m| Some(m.used_bytes)),
    );
    gpu_family(
        out,
        &gpus,
        "DCGM_FI_DEV_FB_FREE",
        "Framebuffer memory free (in MiB)",
        |g| mem(g, |m| Some(m.free_bytes)),
    );
    gpu_family(
        out,
        &gpus,
        "DCGM_FI_DEV_FB_RESERVED",
        "Framebuffer memory reserved (in MiB)",
        |g| mem(g, |m| m.reserved_bytes),
    );
    gpu_family(
        out,
        &gpus,
        "DCGM_FI_DEV_GPU_TEMP",
        "GPU temperature (in C)",
        |g| f(g.temperature_celsius),
    );
    gpu_family(
        out,
        &gpus,
        "DCGM_FI_DEV_POWER_USAGE",
        "Power draw (in W)",
        |g| g.power_draw_watts,
    );
    gpu_family(
        out,
        &gpus,
        "DCGM_FI_DEV_ENFORCED_POWER_LIMIT",
        "Power limit the driver enforces (in W)",
        |g| g.power_limit_watts,
    );
    gpu_family(
        out,
        &gpus,
        "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION",
        "Total energy consumption since the driver was loaded (in mJ; cumulative)",
        |g| g.energy_millijoules.map(|v| v as f64),
    );
    gpu_family(
        out,
        &gpus,
        "DCGM_FI_DEV_SM_CLOCK",
        "SM clock frequency (in MHz)",
        |g| f(g.sm_clock_mhz),
    );
    gpu_family(
        out,
        &gpus,
        "DCGM_FI_DEV_MEM_CLOCK",
        "Memory clock frequency (in MHz)",
        |g| f(g.memory_clock_mhz),
    );
    gpu_family(
        out,
        &gpus,
        "DCGM_FI_PROF_PCIE_RX_BYTES",
        "PCIe bytes received per second",
        |g| g.pcie_rx_bytes_per_sec,
    );
    gpu_family(
        out,
        &gpus,
        "DCGM_FI_PROF_PCIE_TX_BYTES",
        "PCIe bytes sent per second",
        |g| g.pcie_tx_bytes_per_sec,
    );
    gpu_family(
        out,
        &gpus,
        "DCGM_FI_DEV_FAN_SPEED",
        "Fan speed (in %)",
        |g| f(g.fan_speed_percent),
    );
    gpu_family(
        out,
        &gpus,
        "DCGM_FI_DEV_CLOCK_THROTTLE_REASONS",
        "Current clock throttle reasons (NVML bit mask)",
        |g| g.throttle_reasons_mask.map(|m| m as f64),
    );
    for (name, help, pick) in [
        (
            "DCGM_FI_DEV_ECC_SBE_VOL_TOTAL",
            "Single-bit volatile ECC errors (cumulative)",
            (|e: &lookout_probe::gpu::GpuEcc| e.volatile_corrected) as fn(&_) -> Option<u64>,
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
        gpu_family(out, &gpus, name, help, |g| {
            g.ecc.as_ref().and_then(pick).map(|v| v as f64)
        });
    }
    gpu_family(
        out,
        &gpus,
        "DCGM_FI_DEV_MIG_MODE",
        "1 when MIG mode is enabled",
        |g| g.mig.map(|m| f64::from(u8::from(m.enabled))),
    );

    family(
        out,
        "lookout_gpu_process_memory_bytes",
        "gauge",
        "GPU memory a process holds",
    );
    for (labels, g) in &gpus {
        for p in &g.processes {
            if let Some(b) = p.used_memory_bytes {
                let _ = writeln!(
                    out,
                    "lookout_gpu_process_memory_bytes{{{labels},pid=\"{}\",container_id=\"{}\",container=\"{}\"}} {b}",
                    p.pid,
                    escape_label(p.container_id.as_deref().unwrap_or("")),
                    escape_label(p.container_name.as_deref().unwrap_or(""))
                );
            }
        }
    }
    family(
        out,
        "lookout_gpu_process_sm_utilization_percent",
        "gauge",
        "SM share of the GPU a process had over the last tick (NVML process samples)",
    );
    for (labels, g) in &gpus {
        for p in &g.processes {
            if let Some(u) = p.sm_utilization_percent {
                let _ = writeln!(
                    out,
                    "lookout_gpu_process_sm_utilization_percent{{{labels},pid=\"{}\",container_id=\"{}\",container=\"{}\"}} {u}",
                    p.pid,
                    escape_label(p.container_id.as_deref().unwrap_or("")),
                    escape_label(p.container_name.as_deref().unwrap_or(""))
                );
            }
        }
    }
    let usage = container_usage(v);
    family(
        out,
        "lookout_container_gpu_memory_bytes",
        "gauge",
        "GPU memory a container's processes hold, per GPU",
    );
    for c in &usage {
        for d in &c.gpu.devices {
            let _ = writeln!(
                out,
                "lookout_container_gpu_memory_bytes{{id=\"{}\",name=\"{}\",gpu=\"{}\",UUID=\"{}\"}} {}",
                escape_label(&c.container_id),
                escape_label(c.container_name.as_deref().unwrap_or("")),
                d.index,
                escape_label(&d.uuid),
                d.memory_used_bytes
            );
        }
    }
    family(
        out,
        "lookout_container_gpu_sm_utilization_percent",
        "gauge",
        "Summed SM % of a container's processes, per GPU",
    );
    for c in &usage {
        for d in &c.gpu.devices {
            let _ = writeln!(
                out,
                "lookout_container_gpu_sm_utilization_percent{{id=\"{}\",name=\"{}\",gpu=\"{}\",UUID=\"{}\"}} {}",
                escape_label(&c.container_id),
                escape_label(c.container_name.as_deref().unwrap_or("")),
                d.index,
                escape_label(&d.uuid),
                d.sm_utilization_percent
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lookout_probe::gpu::convert::{
        gpu_record, merge_processes, DeviceInfo, RawGpu, RawMemory, RawProcess,
    };
    use lookout_probe::{ContainersView, HostSnapshot};

    fn snapshot(gpu: GpuView) -> Snapshot {
        Snapshot {
            taken_at_ms: 1,
            tick: 1,
            host: HostSnapshot::default(),
            containers: ContainersView::Unavailable {
                reason: "off".into(),
            },
            gpu,
        }
    }

    #[test]
    fn metrics_use_dcgm_names_and_units() {
        let id = "ab".repeat(32);
        let mut procs = merge_processes(
            &[RawProcess {
                pid: 7,
                used_memory: Some(3 << 20),
            }],
            &[],
            None,
        );
        procs[0].container_id = Some(id.clone());
        procs[0].sm_utilization_percent = Some(42);
        let raw = RawGpu {
            utilization: Some((88, 10)),
            memory: Some(RawMemory {
                total: 80 << 30,
                used: 512 << 20,
                free: 79 << 30,
                reserved: None,
            }),
            power_mw: Some(123_400),
            ..RawGpu::default()
        };
        let info = DeviceInfo {
            index: 0,
            uuid: "GPU-x".into(),
            name: "H100 \"SXM\"".into(),
            pci_bus_id: "0:1".into(),
            fans: 0,
        };
        let view = GpuView {
            available: true,
            reason: None,
            driver_version: Some("580".into()),
            nvml_version: None,
            cuda_driver_version: None,
            gpus: vec![gpu_record(&info, &raw, None, procs)],
        };
        let s = snapshot(view);
        let mut out = String::new();
        encode_metrics(&s, &mut out);
        let labels = r#"gpu="0",UUID="GPU-x",modelName="H100 \"SXM\"",pci_bus_id="0:1""#;
        assert!(out.contains("lookout_gpu_up 1\n"), "{out}");
        assert!(
            out.contains(&format!("DCGM_FI_DEV_GPU_UTIL{{{labels}}} 88\n")),
            "{out}"
        );
        assert!(
            out.contains(&format!("DCGM_FI_DEV_FB_USED{{{labels}}} 512\n")),
            "MiB: {out}"
        );
        assert!(
            out.contains(&format!("DCGM_FI_DEV_POWER_USAGE{{{labels}}} 123.4\n")),
            "{out}"
        );
        assert!(
            !out.contains("DCGM_FI_DEV_FB_RESERVED"),
            "absent values: no family"
        );
        assert!(out.contains(&format!(
            "lookout_container_gpu_memory_bytes{{id=\"{id}\",name=\"\",gpu=\"0\",UUID=\"GPU-x\"}} 3145728\n"
        )), "{out}");
        assert!(out.contains(&format!("lookout_gpu_process_sm_utilization_percent{{{labels},pid=\"7\",container_id=\"{id}\",container=\"\"}} 42\n")), "{out}");
        let r = response(&s);
        assert_eq!(r.containers.len(), 1);
        assert_eq!(r.containers[0].gpu.memory_used_bytes, 3 << 20);

        let mut out = String::new();
        encode_metrics(&snapshot(GpuView::unavailable("none")), &mut out);
        assert_eq!(out.lines().last(), Some("lookout_gpu_up 0"));
        let j = serde_json::to_value(response(&snapshot(GpuView::unavailable("none"))))
            .unwrap_or_default();
        assert_eq!(j["available"], false);
        assert_eq!(j["reason"], "none");
    }
}
