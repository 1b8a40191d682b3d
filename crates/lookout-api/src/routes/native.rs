//! The native API, `/api/v1`: host sections and containers from the latest snapshot, and
//! container control. Handlers only read the snapshot; control goes to the engine.

use axum::extract::{Path, State};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use lookout_probe::docker::ContainerAction;
use lookout_probe::{
    ContainerStats, ContainersView, CpuSnapshot, DiskIo, Filesystem, HostSnapshot, LoadAverage,
    MemorySnapshot, NetInterface, Snapshot,
};

use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(host))
        .routes(routes!(host_cpu))
        .routes(routes!(host_memory))
        .routes(routes!(host_storage))
        .routes(routes!(host_network))
        .routes(routes!(containers))
        .routes(routes!(container, remove_container))
        .routes(routes!(container_action))
}

#[derive(Serialize, ToSchema)]
pub struct HostResponse {
    pub taken_at_ms: i64,
    pub host: HostSnapshot,
}

#[derive(Serialize, ToSchema)]
pub struct CpuResponse {
    pub taken_at_ms: i64,
    pub cpu: CpuSnapshot,
    pub load: LoadAverage,
}

#[derive(Serialize, ToSchema)]
pub struct MemoryResponse {
    pub taken_at_ms: i64,
    pub memory: MemorySnapshot,
}

#[derive(Serialize, ToSchema)]
pub struct StorageResponse {
    pub taken_at_ms: i64,
    pub filesystems: Vec<Filesystem>,
    pub disks: Vec<DiskIo>,
}

#[derive(Serialize, ToSchema)]
pub struct NetworkResponse {
    pub taken_at_ms: i64,
    pub interfaces: Vec<NetInterface>,
}

#[derive(Serialize, ToSchema)]
pub struct ContainersResponse {
    pub taken_at_ms: i64,
    pub containers: Vec<ContainerStats>,
}

#[derive(Serialize, ToSchema)]
pub struct ContainerResponse {
    pub taken_at_ms: i64,
    pub container: ContainerStats,
}

#[derive(Serialize, ToSchema)]
pub struct ActionResponse {
    pub id: String,
    pub name: String,
    pub action: String,
    pub done: bool,
}

/// Whole host: CPU, memory, load, filesystems, network, disks.
#[utoipa::path(get, path = "/api/v1/host", tag = "host", security(("bearer" = [])),
    responses((status = 200, body = HostResponse), (status = 401, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn host(State(state): State<AppState>) -> Result<Json<HostResponse>, ApiError> {
    let s = state.latest()?;
    Ok(Json(HostResponse {
        taken_at_ms: s.taken_at_ms,
        host: s.host.clone(),
    }))
}

/// CPU % total and per core, by mode, and the load average.
#[utoipa::path(get, path = "/api/v1/host/cpu", tag = "host", security(("bearer" = [])),
    responses((status = 200, body = CpuResponse), (status = 401, body = ErrorBody)))]
async fn host_cpu(State(state): State<AppState>) -> Result<Json<CpuResponse>, ApiError> {
    let s = state.latest()?;
    Ok(Json(CpuResponse {
        taken_at_ms: s.taken_at_ms,
        cpu: s.host.cpu.clone(),
        load: s.host.load,
    }))
}

/// Memory and swap in bytes.
#[utoipa::path(get, path = "/api/v1/host/memory", tag = "host", security(("bearer" = [])),
    responses((status = 200, body = MemoryResponse), (status = 401, body = ErrorBody)))]
async fn host_memory(State(state): State<AppState>) -> Result<Json<MemoryResponse>, ApiError> {
    let s = state.latest()?;
    Ok(Json(MemoryResponse {
        taken_at_ms: s.taken_at_ms,
        memory: s.host.memory,
    }))
}

/// Real filesystems (size, used, available, %) and disk I/O rates.
#[utoipa::path(get, path = "/api/v1/host/storage", tag = "host", security(("bearer" = [])),
    responses((status = 200, body = StorageResponse), (status = 401, body = ErrorBody)))]
async fn host_storage(State(state): State<AppState>) -> Result<Json<StorageResponse>, ApiError> {
    let s = state.latest()?;
    Ok(Json(StorageResponse {
        taken_at_ms: s.taken_at_ms,
        filesystems: s.host.filesystems.clone(),
        disks: s.host.disks.clone(),
    }))
}

/// Network interfaces: counters and per-second rates.
#[utoipa::path(get, path = "/api/v1/host/network", tag = "host", security(("bearer" = [])),
    responses((status = 200, body = NetworkResponse), (status = 401, body = ErrorBody)))]
async fn host_network(State(state): State<AppState>) -> Result<Json<NetworkResponse>, ApiError> {
    let s = state.latest()?;
    Ok(Json(NetworkResponse {
        taken_at_ms: s.taken_at_ms,
        interfaces: s.host.network.clone(),
    }))
}

fn container_list(s: &Snapshot) -> Result<&[ContainerStats], ApiError> {
    match &s.containers {
        ContainersView::Available { containers } => Ok(containers),
        ContainersView::Unavailable { reason } => Err(ApiError::DockerUnavailable(reason.clone())),
    }
}

/// Finds a container by full id, id prefix (≥ 4 characters) or name.
pub fn find_container<'s>(s: &'s Snapshot, key: &str) -> Result<&'s ContainerStats, ApiError> {
    let list = container_list(s)?;
    list.iter()
        .find(|c| c.name == key.trim_start_matches('/') || c.id == key)
        .or_else(|| {
            let mut by_prefix = list.iter().filter(|c| c.matches(key));
            match (by_prefix.next(), by_prefix.next()) {
                (Some(only), None) => Some(only),
                _ => None,
            }
        })
        .ok_or_else(|| ApiError::NotFound(format!("no container named or with id {key:?}")))
}

/// Every container (all states) with CPU %, memory, network, block I/O and pids.
#[utoipa::path(get, path = "/api/v1/containers", tag = "containers", security(("bearer" = [])),
    responses((status = 200, body = ContainersResponse), (status = 401, body = ErrorBody),
              (status = 503, description = "Docker engine unavailable", body = ErrorBody)))]
async fn containers(State(state): State<AppState>) -> Result<Json<ContainersResponse>, ApiError> {
    let s = state.latest()?;
    Ok(Json(ContainersResponse {
        taken_at_ms: s.taken_at_ms,
        containers: container_list(&s)?.to_vec(),
    }))
}

/// One container by id, id prefix or name.
#[utoipa::path(get, path = "/api/v1/containers/{id}", tag = "containers", security(("bearer" = [])),
    params(("id" = String, Path, description = "Container id, id prefix or name")),
    responses((status = 200, body = ContainerResponse), (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn container(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<ContainerResponse>, ApiError> {
    let s = state.latest()?;
    Ok(Json(ContainerResponse {
        taken_at_ms: s.taken_at_ms,
        container: find_container(&s, &id)?.clone(),
    }))
}

async fn act(
    state: &AppState,
    key: &str,
    action: ContainerAction,
) -> Result<ActionResponse, ApiError> {
    let s = state.latest()?;
    let c = find_container(&s, key)?;
    let (id, name) = (c.id.clone(), c.name.clone());
    drop(s);
    state.control.act(&id, action).await?;
    state.resample.notify_one();
    tracing::info!(container = %name, action = action.as_str(), "container action done");
    Ok(ActionResponse {
        id,
        name,
        action: action.as_str().into(),
        done: true,
    })
}

/// Start, stop, restart, pause or unpause a container (scope `control`).
#[utoipa::path(post, path = "/api/v1/containers/{id}/{action}", tag = "containers", security(("bearer" = [])),
    params(("id" = String, Path, description = "Container id, id prefix or name"),
           ("action" = String, Path, description = "start | stop | restart | pause | unpause")),
    responses((status = 200, body = ActionResponse), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, description = "Not possible in the container's state", body = ErrorBody)))]
async fn container_action(
    State(state): State<AppState>,
    Path((id, action)): Path<(String, String)>,
) -> Result<Json<ActionResponse>, ApiError> {
    let action = match action.as_str() {
        "start" => ContainerAction::Start,
        "stop" => ContainerAction::Stop,
        "restart" => ContainerAction::Restart,
        "pause" => ContainerAction::Pause,
        "unpause" | "resume" => ContainerAction::Unpause,
        other => {
            return Err(ApiError::BadRequest(format!(
            "unknown action {other:?}: use start, stop, restart, pause or unpause (DELETE removes)"
        )))
        }
    };
    act(&state, &id, action).await.map(Json)
}

/// Remove a container, stopping it first if needed (scope `control`).
#[utoipa::path(delete, path = "/api/v1/containers/{id}", tag = "containers", security(("bearer" = [])),
    params(("id" = String, Path, description = "Container id, id prefix or name")),
    responses((status = 200, body = ActionResponse), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn remove_container(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<ActionResponse>, ApiError> {
    act(&state, &id, ContainerAction::Remove).await.map(Json)
}
