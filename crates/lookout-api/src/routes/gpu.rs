//! GPUs: `GET /api/v1/host/gpu` from the latest snapshot (the GPU families of `/metrics`
//! are in `crate::metrics::gpu`).
//! A host without NVIDIA's library or driver answers 200 with `available: false` and the
//! reason; the per-container `gpu` blocks ride in the container routes' `ContainerStats`.

use axum::extract::State;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use lookout_probe::gpu::GpuStats;
use lookout_probe::Snapshot;

use crate::error::{ApiError, ErrorBody};
use crate::gpu_usage::{container_usage, GpuContainerUsage};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(host_gpu))
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

#[cfg(test)]
mod tests {
    use super::*;
    use lookout_probe::gpu::convert::{
        gpu_record, merge_processes, DeviceInfo, RawGpu, RawProcess,
    };
    use lookout_probe::gpu::GpuView;
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
            processes: None,
        }
    }

    #[test]
    fn response_sums_container_use_and_says_why_not_available() {
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
        let info = DeviceInfo {
            index: 0,
            uuid: "GPU-x".into(),
            name: "H100".into(),
            pci_bus_id: "0:1".into(),
            fans: 0,
        };
        let view = GpuView {
            available: true,
            reason: None,
            driver_version: Some("580".into()),
            nvml_version: None,
            cuda_driver_version: None,
            gpus: vec![gpu_record(&info, &RawGpu::default(), None, procs)],
        };
        let r = response(&snapshot(view));
        assert_eq!(r.containers.len(), 1);
        assert_eq!(r.containers[0].container_id, id);
        assert_eq!(r.containers[0].gpu.memory_used_bytes, 3 << 20);

        let j = serde_json::to_value(response(&snapshot(GpuView::unavailable("none"))))
            .unwrap_or_default();
        assert_eq!(j["available"], false);
        assert_eq!(j["reason"], "none");
    }
}
