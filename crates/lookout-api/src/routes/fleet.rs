//! The hub's fleet view: `/api/v1/fleet/hosts`, one host's history and a container search
//! across hosts, all read from the PromQL engine of `[fleet] query_url` (lookout-fleet).
//! The engine down answers 503 and the next request tries again: nothing here caches.

use axum::extract::{Path, Query, State};
use axum::Json;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use lookout_fleet::history::{HostHistory, MAX_RANGE_S};
use lookout_fleet::overview::FleetHosts;
use lookout_fleet::search::{ContainerMatches, MAX_LIMIT};
use lookout_fleet::{Fleet, QueryError};

use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(hosts))
        .routes(routes!(host_history))
        .routes(routes!(containers))
}

impl From<QueryError> for ApiError {
    fn from(e: QueryError) -> Self {
        match e {
            QueryError::Down(_) => ApiError::Unavailable(e.to_string()),
            QueryError::Refused(_) => ApiError::Upstream(e.to_string()),
            QueryError::Invalid(m) => ApiError::BadRequest(m),
        }
    }
}

fn fleet(state: &AppState) -> Result<&Fleet, ApiError> {
    state
        .fleet
        .as_ref()
        .ok_or_else(|| ApiError::Unavailable("no fleet view: [fleet] query_url is not set".into()))
}

/// Every host the engine knows: last seen, CPU, memory, fullest filesystem, containers and
/// firing alerts. Hosts that stopped reporting stay, marked `stale`.
#[utoipa::path(get, path = "/api/v1/fleet/hosts", operation_id = "fleet_hosts", tag = "fleet", security(("bearer" = [])),
    responses((status = 200, body = FleetHosts), (status = 401, body = ErrorBody),
              (status = 502, description = "The engine refused the query", body = ErrorBody),
              (status = 503, description = "No fleet view configured, or the engine is down", body = ErrorBody)))]
async fn hosts(State(state): State<AppState>) -> Result<Json<FleetHosts>, ApiError> {
    Ok(Json(fleet(&state)?.overview().await?))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryParams {
    /// Seconds back from now (1..=2678400, default 3600).
    #[param(minimum = 1, maximum = 2678400)]
    pub range_s: Option<u64>,
    /// Seconds between points (default: range / 240; raised to keep ≤ 1000 points).
    #[param(minimum = 1, maximum = 2678400)]
    pub step_s: Option<u64>,
}

/// One host's charts (CPU, memory, fullest filesystem, running containers, network) over a
/// time range, from PromQL `query_range`.
#[utoipa::path(get, path = "/api/v1/fleet/hosts/{host}/history", operation_id = "fleet_host_history", tag = "fleet", security(("bearer" = [])),
    params(("host" = String, Path, description = "The host label's value (1..=256 bytes)"), HistoryParams),
    responses((status = 200, body = HostHistory), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 502, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn host_history(
    State(state): State<AppState>,
    host: Result<Path<String>, axum::extract::rejection::PathRejection>,
    q: Result<Query<HistoryParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<HostHistory>, ApiError> {
    let Path(host) = host?;
    let Query(q) = q?;
    let range_s = q.range_s.unwrap_or(3600);
    if q.step_s.is_some_and(|s| s == 0 || s > MAX_RANGE_S) {
        return Err(ApiError::BadRequest(format!(
            "step_s: must be 1..={MAX_RANGE_S}"
        )));
    }
    let step = q.step_s.or(Some((range_s / 240).max(1)));
    Ok(Json(fleet(&state)?.history(&host, range_s, step).await?))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchParams {
    /// Text in the container's name or image, any case (1..=128 bytes).
    #[param(min_length = 1, max_length = 128)]
    pub q: String,
    /// Most matches (1..=1000, default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
}

/// Containers on every host whose name or image contains `q`, with whether each runs now.
#[utoipa::path(get, path = "/api/v1/fleet/containers", operation_id = "fleet_containers", tag = "fleet", security(("bearer" = [])),
    params(SearchParams),
    responses((status = 200, body = ContainerMatches), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 502, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn containers(
    State(state): State<AppState>,
    q: Result<Query<SearchParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<ContainerMatches>, ApiError> {
    let Query(q) = q?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::BadRequest(format!(
            "limit: must be 1..={MAX_LIMIT}"
        )));
    }
    Ok(Json(fleet(&state)?.search_containers(&q.q, limit).await?))
}
