//! The `iotconnect` profile: `/data/cpu`, `/data/memory`, `/data/containers/stats`, with the
//! original's field names and units (see docs/compatibility.md for what lookout fixes).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};
use serde_json::json;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use lookout_probe::{ContainerStats, ContainersView, Snapshot};

use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(cpu))
        .routes(routes!(memory))
        .routes(routes!(containers_stats))
}

/// This profile's error shape: clients read `message`.
fn failure(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "message": message.into() }))).into_response()
}

/// The latest snapshot, or this profile's 503 (boxed: a Response is large to carry around).
fn latest(state: &AppState) -> Result<std::sync::Arc<Snapshot>, Box<Response>> {
    state
        .latest()
        .map_err(|e| Box::new(failure(StatusCode::SERVICE_UNAVAILABLE, e.to_string())))
}

#[derive(Serialize, ToSchema)]
pub struct CpuPercent {
    /// Host-wide busy %, one decimal, over the last sampling interval.
    pub cpu_percent: f64,
}

#[derive(Serialize, ToSchema)]
pub struct MemoryFigures {
    /// MemFree in bytes (not MemAvailable), as psutil's `.free`.
    pub free_memory: u64,
    /// (total − free) / total × 100, unrounded, as the original.
    pub memory_usage: f64,
    pub total_memory: u64,
}

/// Host CPU usage in percent.
#[utoipa::path(get, path = "/data/cpu", tag = "iotconnect", security(("bearer" = [])),
    responses((status = 200, body = CpuPercent), (status = 401, description = "`{\"message\": …}`")))]
async fn cpu(State(state): State<AppState>) -> Response {
    match latest(&state) {
        Ok(s) => Json(CpuPercent {
            cpu_percent: (s.host.cpu.total.usage * 10.0).round() / 10.0,
        })
        .into_response(),
        Err(r) => *r,
    }
}

/// Host memory: free, usage %, total.
#[utoipa::path(get, path = "/data/memory", tag = "iotconnect", security(("bearer" = [])),
    responses((status = 200, body = MemoryFigures), (status = 401, description = "`{\"message\": …}`")))]
async fn memory(State(state): State<AppState>) -> Response {
    match latest(&state) {
        Ok(s) => {
            let m = &s.host.memory;
            let usage = if m.total > 0 {
                m.total.saturating_sub(m.free) as f64 / m.total as f64 * 100.0
            } else {
                0.0
            };
            Json(MemoryFigures {
                free_memory: m.free,
                memory_usage: usage,
                total_memory: m.total,
            })
            .into_response()
        }
        Err(r) => *r,
    }
}

/// Serialises the running containers as `{name: raw engine stats document}` without
/// copying the documents into an intermediate JSON tree.
struct RawStatsByName<'a>(&'a [ContainerStats]);

impl Serialize for RawStatsByName<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let running = self.0.iter().filter(|c| c.state == "running");
        let mut map = serializer.serialize_map(None)?;
        for c in running {
            if let Some(doc) = &c.raw_stats {
                map.serialize_entry(&c.name, doc.as_ref())?;
            }
        }
        map.end()
    }
}

/// The Docker Engine's stats document of every running container, keyed by name.
#[utoipa::path(get, path = "/data/containers/stats", tag = "iotconnect", security(("bearer" = [])),
    responses((status = 200, description = "Object keyed by container name; each value is the Engine's raw stats document", body = Object),
              (status = 503, description = "Docker engine unavailable: `{\"message\": …}`")))]
async fn containers_stats(State(state): State<AppState>) -> Response {
    let s = match latest(&state) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    match &s.containers {
        ContainersView::Available { containers } => {
            Json(RawStatsByName(containers)).into_response()
        }
        ContainersView::Unavailable { reason } => failure(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("docker engine unavailable: {reason}"),
        ),
    }
}
