//! Operational routes: liveness, readiness, Prometheus metrics.

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use lookout_probe::ContainersView;

use crate::metrics::Format;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(metrics))
}

#[derive(Serialize, ToSchema)]
pub struct Health {
    pub status: &'static str,
    pub version: &'static str,
}

/// Liveness: answers while the process serves HTTP. No auth.
#[utoipa::path(get, path = "/healthz", tag = "ops", responses((status = 200, body = Health)))]
async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok",
        version: env!("CARGO_PKG_VERSION"),
    })
}

#[derive(Serialize, ToSchema)]
pub struct Readiness {
    pub ready: bool,
    /// Milliseconds since the latest sample; null before the first.
    pub sample_age_ms: Option<i64>,
    /// "up", or why the Docker engine cannot be reached (host figures are served either way).
    pub docker: String,
    /// "ok", "off", or why history is not being written (live figures are served either way).
    pub store: String,
    /// Samples waiting in memory for the history store.
    pub store_buffered_samples: usize,
    pub uptime_secs: u64,
}

/// Readiness: a recent sample exists. Reports the Docker engine's state too.
#[utoipa::path(get, path = "/readyz", tag = "ops", security(("bearer" = [])),
    responses((status = 200, body = Readiness), (status = 503, body = Readiness)))]
async fn readyz(State(state): State<AppState>) -> Response {
    let snapshot = state.snapshot.borrow().clone();
    let now = lookout_util::clock::now_ms();
    let age = snapshot.as_ref().map(|s| now - s.taken_at_ms);
    let docker = match snapshot.as_ref().map(|s| &s.containers) {
        Some(ContainersView::Available { .. }) => "up".to_string(),
        Some(ContainersView::Unavailable { reason }) => format!("down: {reason}"),
        None => "unknown".to_string(),
    };
    // Stale after a few missed ticks: the sampler is stuck.
    let ready = matches!(age, Some(a) if a < 15_000);
    let (store, store_buffered_samples) = match &state.store {
        None => ("off".to_string(), 0),
        Some(st) => {
            let h = st.health();
            let text = match (h.status, h.reason) {
                (lookout_store::HealthStatus::Ok, _) => "ok".to_string(),
                (status, reason) => {
                    format!("{status:?}: {}", reason.unwrap_or_default()).to_lowercase()
                }
            };
            (text, h.buffered_samples)
        }
    };
    let body = Readiness {
        ready,
        sample_age_ms: age,
        docker,
        store,
        store_buffered_samples,
        uptime_secs: state.started.elapsed().as_secs(),
    };
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

/// Prometheus exposition of host, container, GPU and lookout's own figures: the text format
/// 0.0.4 by default, OpenMetrics 1.0 when `Accept` asks for `application/openmetrics-text`.
#[utoipa::path(get, path = "/metrics", tag = "ops", security(("bearer" = [])),
    params(("Accept" = Option<String>, Header, description = "`application/openmetrics-text` selects OpenMetrics 1.0; anything else gets the text format 0.0.4")),
    responses((status = 200, description = "Metrics in the negotiated exposition format", content(
        (String = "text/plain; version=0.0.4"),
        (String = "application/openmetrics-text; version=1.0.0"),
    ))))]
async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let format = Format::negotiate(accept);
    let snapshot = state.snapshot.borrow().clone();
    let body = state.metrics.render(snapshot, format);
    (
        [
            (header::CONTENT_TYPE, format.content_type()),
            (header::VARY, "Accept"),
        ],
        body,
    )
        .into_response()
}
