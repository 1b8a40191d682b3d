//! The `docker-stats` profile: `GET /stats` → `[{"name", "cpuUsage", "memoryUsage"}]`,
//! CPU in percent and memory in MiB (the original called it MB), both to two decimals.
//! `?api_key=` is accepted as the original's clients send it (checked by the auth layer,
//! never logged).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use lookout_probe::ContainersView;

use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(stats))
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ContainerUsage {
    pub name: String,
    /// CPU %, as `docker stats` (may exceed 100 on several cores).
    pub cpu_usage: f64,
    /// Memory used in MiB (usage − inactive file cache).
    pub memory_usage: f64,
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

/// CPU and memory of every running container.
#[utoipa::path(get, path = "/stats", tag = "docker-stats", security(("bearer" = []), ("api_key" = [])),
    params(("api_key" = Option<String>, Query, description = "The token, for clients that cannot send a header")),
    responses((status = 200, body = Vec<ContainerUsage>),
              (status = 403, description = "`{\"error\": \"Unauthorized. Invalid API key.\"}`"),
              (status = 503, description = "Docker engine unavailable: `{\"error\": …}`")))]
async fn stats(State(state): State<AppState>) -> Response {
    let s = match state.latest() {
        Ok(s) => s,
        Err(e) => {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "error": e.to_string() })),
            )
                .into_response()
        }
    };
    match &s.containers {
        ContainersView::Available { containers } => {
            let rows: Vec<ContainerUsage> = containers
                .iter()
                .filter(|c| c.state == "running")
                .map(|c| ContainerUsage {
                    name: c.name.clone(),
                    cpu_usage: round2(c.cpu_percent.unwrap_or(0.0)),
                    memory_usage: round2(c.memory_used_bytes.unwrap_or(0) as f64 / 1_048_576.0),
                })
                .collect();
            Json(rows).into_response()
        }
        // The original answered 200 [] here, indistinguishable from "no containers".
        ContainersView::Unavailable { reason } => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "error": format!("docker engine unavailable: {reason}") })),
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn rounding() {
        assert_eq!(super::round2(1117.18432), 1117.18);
        assert_eq!(super::round2(0.005), 0.01);
    }
}
