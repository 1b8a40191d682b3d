//! The `smart` profile: `GET /api/smart?timeout=<ms>` hedges the upstream `GET /api/work`
//! (one request, two more after 300 ms, first *success* wins, losers cancelled, answer always
//! inside the caller's timeout); `GET /api/v1/smart` gives the same answer plus how it was
//! reached. The engine is `lookout-hedge`; this module maps HTTP and metrics onto it.

use std::collections::HashMap;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use lookout_hedge::{AttemptOutcome, HedgeError, HedgeOutcome, HedgeReport};

use crate::error::{ApiError, ErrorBody, ErrorDetail};
use crate::state::AppState;

/// How much earlier than the caller's timeout the engine's deadline is set.
const DEADLINE_MARGIN: Duration = Duration::from_millis(3);

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(smart))
        .routes(routes!(smart_explained))
}

/// Parses `timeout` as the original did (integer milliseconds), refusing anything else with a
/// message; a timeout past the server's own request limit is refused too, since it could
/// never be honoured.
fn parse_timeout(
    q: &HashMap<String, String>,
    limit: Duration,
) -> Result<Option<Duration>, ApiError> {
    let Some(raw) = q.get("timeout") else {
        return Ok(None);
    };
    let ms: i64 = raw.trim().parse().map_err(|_| {
        ApiError::BadRequest(format!(
            "timeout must be an integer number of milliseconds, got {raw:?}"
        ))
    })?;
    if ms <= 0 {
        return Err(ApiError::BadRequest(format!(
            "timeout must be positive, got {ms}"
        )));
    }
    let max = limit.as_millis() as i64;
    if ms > max {
        return Err(ApiError::BadRequest(format!(
            "timeout must be at most {max} ms (the server's request limit)"
        )));
    }
    Ok(Some(Duration::from_millis(ms as u64)))
}

#[derive(Serialize, ToSchema)]
pub struct WorkTime {
    /// The upstream's answer.
    pub time: i64,
}

#[derive(Serialize, ToSchema)]
pub struct AttemptView {
    /// 1 is the primary request, 2.. the hedges.
    pub number: usize,
    /// primary | delay | early_failure
    pub reason: &'static str,
    pub started_at_ms: f64,
    pub latency_ms: f64,
    /// won | failed | timed_out | cancelled
    pub outcome: &'static str,
    pub error: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct SmartReport {
    /// The answer, when an attempt succeeded.
    pub time: Option<i64>,
    /// success | deadline_exceeded | all_failed
    pub outcome: &'static str,
    pub winner: Option<usize>,
    pub elapsed_ms: f64,
    pub delay_ms: f64,
    pub attempts_fired: usize,
    pub hedges_fired: usize,
    pub hedges_suppressed: usize,
    pub attempts: Vec<AttemptView>,
    /// Present when no attempt succeeded.
    pub error: Option<ErrorDetail>,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn failure(report: &HedgeReport<i64>) -> Option<ApiError> {
    match &report.outcome {
        HedgeOutcome::Success { .. } => None,
        _ => match report.clone().into_result() {
            Err(HedgeError::DeadlineExceeded { elapsed, attempts }) => {
                Some(ApiError::Timeout(format!(
                    "no successful upstream answer within {} ms ({attempts} attempt(s) fired)",
                    elapsed.as_millis()
                )))
            }
            Err(e) => Some(ApiError::Upstream(e.to_string())),
            Ok(_) => None,
        },
    }
}

async fn run(state: &AppState, q: &HashMap<String, String>) -> Result<HedgeReport<i64>, ApiError> {
    let arrival = lookout_hedge::Instant::now();
    let service = state
        .smart
        .as_ref()
        .ok_or_else(|| ApiError::Unavailable("no [smart] upstream is configured".into()))?;
    // Without a timeout the first success is returned, still inside the server's own limit
    // (minus a margin to answer with JSON rather than be cut off).
    let limit = state.config.request_timeout;
    let timeout =
        parse_timeout(q, limit)?.unwrap_or_else(|| limit.saturating_sub(Duration::from_millis(50)));
    // tokio's timers fire on millisecond ticks and the answer still has to be written: aim a
    // little early so the caller has its answer *within* the timeout, not just after it.
    let aim = timeout.saturating_sub(DEADLINE_MARGIN).max(timeout / 2);
    Ok(service.call(Some(arrival + aim)).await)
}

/// Hedged call to the upstream `/api/work`: `{"time": n}` from the first successful attempt.
#[utoipa::path(get, path = "/api/smart", tag = "smart", security(("bearer" = [])),
    params(("timeout" = Option<i64>, Query, description = "Answer within this many milliseconds (positive integer)")),
    responses((status = 200, body = WorkTime),
              (status = 400, description = "Invalid timeout", body = ErrorBody),
              (status = 502, description = "Every attempt failed", body = ErrorBody),
              (status = 504, description = "No success within the timeout", body = ErrorBody)))]
async fn smart(
    State(state): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let report = match run(&state, &q).await {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    match report.outcome {
        HedgeOutcome::Success { value, .. } => Json(WorkTime { time: value }).into_response(),
        _ => failure(&report)
            .unwrap_or_else(|| ApiError::Internal("hedge finished without an outcome".into()))
            .into_response(),
    }
}

/// The same hedged call, with how it was reached: every attempt, why it was fired, how it ended.
#[utoipa::path(get, path = "/api/v1/smart", tag = "smart", security(("bearer" = [])),
    params(("timeout" = Option<i64>, Query, description = "Answer within this many milliseconds (positive integer)")),
    responses((status = 200, body = SmartReport), (status = 400, body = ErrorBody),
              (status = 502, body = SmartReport), (status = 504, body = SmartReport)))]
async fn smart_explained(
    State(state): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let report = match run(&state, &q).await {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let err = failure(&report);
    let status = err.as_ref().map(ApiError::status).unwrap_or(StatusCode::OK);
    let body = SmartReport {
        time: match report.outcome {
            HedgeOutcome::Success { value, .. } => Some(value),
            _ => None,
        },
        outcome: report.kind().as_str(),
        winner: report.winner(),
        elapsed_ms: ms(report.elapsed),
        delay_ms: ms(report.delay),
        attempts_fired: report.attempts_fired(),
        hedges_fired: report.hedges_fired(),
        hedges_suppressed: report.hedges_suppressed,
        attempts: report
            .attempts
            .iter()
            .map(|a| AttemptView {
                number: a.number,
                reason: a.reason.as_str(),
                started_at_ms: ms(a.started_at),
                latency_ms: ms(a.latency),
                outcome: a.outcome.as_str(),
                error: match &a.outcome {
                    AttemptOutcome::Failed(m) => Some(m.clone()),
                    _ => None,
                },
            })
            .collect(),
        error: err.map(|e| ErrorDetail {
            code: e.code(),
            message: e.to_string(),
        }),
    };
    (status, Json(body)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(v: &str) -> HashMap<String, String> {
        HashMap::from([("timeout".to_string(), v.to_string())])
    }

    #[test]
    fn timeout_parsing() {
        let limit = Duration::from_secs(30);
        assert_eq!(parse_timeout(&HashMap::new(), limit).unwrap(), None);
        assert_eq!(
            parse_timeout(&q("250"), limit).unwrap(),
            Some(Duration::from_millis(250))
        );
        for bad in ["0", "-5", "1.5", "abc", "", "99999999999999999999", "30001"] {
            assert!(
                matches!(parse_timeout(&q(bad), limit), Err(ApiError::BadRequest(_))),
                "{bad}"
            );
        }
    }
}
