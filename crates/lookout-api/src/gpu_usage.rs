//! GPU use per container, from the latest snapshot's GPU view. Shared by the GPU route and
//! the GPU families of `/metrics` (which must not import each other).

use serde::Serialize;
use utoipa::ToSchema;

use lookout_probe::gpu::convert::usage_by_container;
use lookout_probe::gpu::{ContainerGpu, GpuView};

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
