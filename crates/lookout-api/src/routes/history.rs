//! History: the native `/api/v1/history`, `/api/v1/history/summary` and `/api/v1/series` on
//! top of `lookout-store` (the `perf-history` profile, `profiles::perf_history`, shares the
//! window and step parsing here). Handlers parse and validate the window, then ask the store.

use std::collections::{BTreeMap, HashMap};

use axum::extract::{Query, State};
use axum::Json;
use serde::Serialize;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use lookout_store::{SeriesKey, Store, StoreError};

use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(history))
        .routes(routes!(history_summary))
        .routes(routes!(series))
}

pub(crate) const HOUR_MS: i64 = 3_600_000;
pub(crate) const WEEK_MS: i64 = 7 * 24 * HOUR_MS;
/// Most points one history answer carries; a finer step over a long window is refused.
pub(crate) const MAX_POINTS: i64 = 100_000;

pub(crate) fn store(state: &AppState) -> Result<&Store, ApiError> {
    state.store.as_ref().ok_or_else(|| {
        ApiError::Unavailable("history is not available (see the server log)".into())
    })
}

/// A time given as RFC 3339 or as (possibly fractional) seconds since the epoch, in ms.
pub fn parse_time(name: &str, raw: &str) -> Result<i64, ApiError> {
    let raw = raw.trim();
    if let Ok(secs) = raw.parse::<f64>() {
        if secs.is_finite() && (0.0..1e11).contains(&secs) {
            return Ok((secs * 1000.0).round() as i64);
        }
        return Err(ApiError::BadRequest(format!(
            "{name} is out of range: {raw}"
        )));
    }
    OffsetDateTime::parse(raw, &Rfc3339)
        .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64)
        .map_err(|_| {
            ApiError::BadRequest(format!(
                "{name} must be RFC 3339 (2026-11-24T10:00:00Z) or seconds since the epoch, got {raw:?}"
            ))
        })
}

/// The `[from, to]` window of a query, with defaults, validated.
pub fn window(
    q: &HashMap<String, String>,
    default_span_ms: i64,
    now_ms: i64,
) -> Result<(i64, i64), ApiError> {
    let to = q
        .get("to")
        .map(|v| parse_time("to", v))
        .transpose()?
        .unwrap_or(now_ms);
    let from = q
        .get("from")
        .map(|v| parse_time("from", v))
        .transpose()?
        .unwrap_or(to - default_span_ms);
    if from > to {
        return Err(ApiError::BadRequest(format!(
            "from ({from} ms) is after to ({to} ms)"
        )));
    }
    Ok((from, to))
}

pub(crate) fn series_key(q: &HashMap<String, String>) -> Result<SeriesKey, ApiError> {
    let raw = q.get("series").ok_or_else(|| {
        ApiError::BadRequest("series is required (see GET /api/v1/series)".into())
    })?;
    SeriesKey::parse(raw).map_err(ApiError::from)
}

/// `step` in seconds (fractions allowed), if given.
pub(crate) fn asked_step_ms(q: &HashMap<String, String>) -> Result<Option<i64>, ApiError> {
    let Some(raw) = q.get("step") else {
        return Ok(None);
    };
    let secs: f64 = raw.trim().parse().map_err(|_| {
        ApiError::BadRequest(format!("step must be a number of seconds, got {raw:?}"))
    })?;
    if !(secs.is_finite() && secs > 0.0) {
        return Err(ApiError::BadRequest("step must be positive".into()));
    }
    Ok(Some((secs * 1000.0).round().max(1.0) as i64))
}

/// Refuses a step that would give more than [`MAX_POINTS`] over `span_ms`.
pub(crate) fn check_points(span_ms: i64, step: i64) -> Result<i64, ApiError> {
    if span_ms / step > MAX_POINTS {
        return Err(ApiError::BadRequest(format!(
            "step too fine: at most {MAX_POINTS} points per answer, use a larger step"
        )));
    }
    Ok(step)
}

/// The part of `[from, to]` where `key` has samples: the point limit is counted there, so
/// `from=0` ("all time") or a fine step over a store holding a minute is not refused for the
/// years before its first sample. Zero width when it has none.
pub(crate) fn held_span(
    store: &Store,
    key: &SeriesKey,
    from: i64,
    to: i64,
) -> Result<i64, ApiError> {
    match store.extent(key) {
        Ok(Some((first, last))) => Ok((to.min(last) - from.max(first)).max(0)),
        Ok(None) | Err(StoreError::NotFound(_)) => Ok(0),
        Err(e) => Err(e.into()),
    }
}

#[derive(Serialize, ToSchema)]
pub struct HistoryPoint {
    pub ts_ms: i64,
    pub count: u64,
    pub min: f64,
    pub avg: f64,
    pub max: f64,
}

#[derive(Serialize, ToSchema)]
pub struct HistoryResponse {
    pub series: String,
    pub from_ms: i64,
    pub to_ms: i64,
    pub step_ms: i64,
    pub points: Vec<HistoryPoint>,
}

/// Points of one series, downsampled to `step` with min/avg/max.
#[utoipa::path(get, path = "/api/v1/history", tag = "history", security(("bearer" = [])),
    params(("series" = String, Query, description = "Series key, e.g. host.cpu.usage or container.cpu_percent{name=\"web\"}"),
           ("from" = Option<String>, Query, description = "RFC 3339 or epoch seconds; default: to − 1 h"),
           ("to" = Option<String>, Query, description = "RFC 3339 or epoch seconds; default: now"),
           ("step" = Option<f64>, Query, description = "Seconds per point; default: about 500 points")),
    responses((status = 200, body = HistoryResponse), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn history(
    State(state): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<HistoryResponse>, ApiError> {
    let key = series_key(&q)?;
    let (from, to) = window(&q, HOUR_MS, lookout_util::clock::now_ms())?;
    // Bad input is a 400 whether or not history is available. By default about 500 points
    // over the window asked for.
    let step = asked_step_ms(&q)?.unwrap_or(((to - from) / 500).max(1000));
    let store = store(&state)?;
    let step = check_points(held_span(store, &key, from, to)?, step)?;
    let points = store.range(&key, from, to, Some(step)).await?;
    Ok(Json(HistoryResponse {
        series: key.to_string(),
        from_ms: from,
        to_ms: to,
        step_ms: step,
        points: points
            .into_iter()
            .map(|p| HistoryPoint {
                ts_ms: p.ts_ms,
                count: p.count,
                min: p.min,
                avg: p.avg,
                max: p.max,
            })
            .collect(),
    }))
}

#[derive(Serialize, ToSchema)]
pub struct SummaryResponse {
    pub series: String,
    pub from_ms: i64,
    pub to_ms: i64,
    pub count: u64,
    pub avg: Option<f64>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub p95: Option<f64>,
    /// False when p95 was estimated from rollups (windows longer than raw retention).
    pub p95_exact: bool,
    pub last: Option<f64>,
}

/// Count, average, min, max, p95 and last value of a series over a window.
#[utoipa::path(get, path = "/api/v1/history/summary", tag = "history", security(("bearer" = [])),
    params(("series" = String, Query, description = "Series key"),
           ("from" = Option<String>, Query, description = "RFC 3339 or epoch seconds; default: to − 1 h"),
           ("to" = Option<String>, Query, description = "RFC 3339 or epoch seconds; default: now")),
    responses((status = 200, body = SummaryResponse), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn history_summary(
    State(state): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<SummaryResponse>, ApiError> {
    let key = series_key(&q)?;
    let (from, to) = window(&q, HOUR_MS, lookout_util::clock::now_ms())?;
    let s = store(&state)?.summary(&key, from, to).await?;
    Ok(Json(SummaryResponse {
        series: key.to_string(),
        from_ms: from,
        to_ms: to,
        count: s.count,
        avg: s.avg,
        min: s.min,
        max: s.max,
        p95: s.p95,
        p95_exact: s.p95_exact,
        last: s.last,
    }))
}

#[derive(Serialize, ToSchema)]
pub struct SeriesEntry {
    /// Use as `series=` in history queries.
    pub key: String,
    pub name: String,
    #[schema(value_type = Object)]
    pub labels: BTreeMap<String, String>,
    pub first_ms: Option<i64>,
    pub last_ms: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct SeriesList {
    pub series: Vec<SeriesEntry>,
}

/// Every stored series (host figures, and every container seen, gone ones included).
#[utoipa::path(get, path = "/api/v1/series", tag = "history", security(("bearer" = [])),
    responses((status = 200, body = SeriesList), (status = 503, body = ErrorBody)))]
async fn series(State(state): State<AppState>) -> Result<Json<SeriesList>, ApiError> {
    let list = store(&state)?.series().await?;
    Ok(Json(SeriesList {
        series: list
            .into_iter()
            .map(|s| SeriesEntry {
                key: s.key,
                name: s.name,
                labels: s.labels,
                first_ms: s.first_ms,
                last_ms: s.last_ms,
            })
            .collect(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn times_parse_as_rfc3339_or_epoch_seconds() {
        assert_eq!(parse_time("t", "0").unwrap(), 0);
        assert_eq!(parse_time("t", "1700000000.5").unwrap(), 1_700_000_000_500);
        assert_eq!(
            parse_time("t", "2023-11-14T22:13:20Z").unwrap(),
            1_700_000_000_000
        );
        assert_eq!(
            parse_time("t", "2023-11-14T23:13:20+01:00").unwrap(),
            1_700_000_000_000
        );
        for bad in ["yesterday", "-5", "1e20", "NaN", "2023-13-01T00:00:00Z"] {
            assert!(parse_time("t", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn windows_default_and_validate() {
        let now = 10 * WEEK_MS;
        assert_eq!(window(&q(&[]), WEEK_MS, now).unwrap(), (9 * WEEK_MS, now));
        assert_eq!(
            window(&q(&[("from", "0")]), WEEK_MS, now).unwrap(),
            (0, now)
        );
        assert!(window(&q(&[("from", "100"), ("to", "50")]), WEEK_MS, now).is_err());
    }

    #[test]
    fn steps_are_bounded() {
        assert_eq!(asked_step_ms(&q(&[])).unwrap(), None);
        assert_eq!(asked_step_ms(&q(&[("step", "60")])).unwrap(), Some(60_000));
        assert_eq!(asked_step_ms(&q(&[("step", "0.0001")])).unwrap(), Some(1));
        assert!(asked_step_ms(&q(&[("step", "0")])).is_err());
        assert!(asked_step_ms(&q(&[("step", "x")])).is_err());
        assert_eq!(check_points(HOUR_MS, 1000).unwrap(), 1000);
        assert!(check_points(400 * WEEK_MS, 1000).is_err());
    }
}
