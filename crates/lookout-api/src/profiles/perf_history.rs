//! The `perf-history` profile: `/cpu`, `/memory`, `/storage` (rows of the window, one a minute
//! by default) and their `_average`s, in the original's field names and units, on top of
//! `lookout-store`. Window and step parsing are the native history routes' (`routes::history`).

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::Json;
use serde::Serialize;
use time::OffsetDateTime;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use lookout_store::{snapshot as keys, SeriesKey, Store, StoreError};

use crate::error::{ApiError, ErrorBody};
use crate::routes::history::{
    asked_step_ms, check_points, held_span, store, window, MAX_POINTS, WEEK_MS,
};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(perf_cpu))
        .routes(routes!(perf_memory))
        .routes(routes!(perf_storage))
        .routes(routes!(perf_cpu_average))
        .routes(routes!(perf_memory_average))
        .routes(routes!(perf_storage_average))
}

/// The original stored one row a minute; its routes list the window at that step by default
/// (`step` in seconds chooses another, down to the 1 s samples).
const PROFILE_STEP_MS: i64 = 60_000;

fn taken_at(ts_ms: i64) -> String {
    OffsetDateTime::from_unix_timestamp(ts_ms.div_euclid(1000))
        .map(|t| {
            format!(
                "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute(),
                t.second()
            )
        })
        .unwrap_or_default()
}

fn key(s: &str) -> Result<SeriesKey, ApiError> {
    SeriesKey::parse(s).map_err(|e| ApiError::Internal(e.to_string()))
}

/// Window and step of a perf-history answer. A step asked for is refused when finer than
/// [`MAX_POINTS`] over the data held; by default one row a minute, downsampled to a coarser
/// step where the data held would give more rows than that (`from=0` over years).
/// Bad input is a 400 whether or not history is available: the query is read before the store.
async fn profile_query<'s>(
    state: &'s AppState,
    key: &SeriesKey,
    q: &HashMap<String, String>,
) -> Result<(&'s Store, i64, i64, i64), ApiError> {
    let (from, to) = window(q, WEEK_MS, lookout_util::clock::now_ms())?;
    let asked = asked_step_ms(q)?;
    let store = store(state)?;
    let span = held_span(store, key, from, to)?;
    let step = match asked {
        Some(step) => check_points(span, step)?,
        None => profile_step(span),
    };
    Ok((store, from, to, step))
}

/// One row a minute, or the smallest coarser "nice" step that fits [`MAX_POINTS`] rows.
fn profile_step(span_ms: i64) -> i64 {
    PROFILE_STEP_MS.max(lookout_store::auto_step(span_ms, MAX_POINTS))
}

/// Empty when the series has never been written (fresh install), not an error.
async fn range_or_empty(
    store: &Store,
    k: &SeriesKey,
    from: i64,
    to: i64,
    step: i64,
) -> Result<Vec<lookout_store::Point>, ApiError> {
    match store.range(k, from, to, Some(step)).await {
        Ok(p) => Ok(p),
        Err(StoreError::NotFound(_)) => Ok(Vec::new()),
        Err(e) => Err(e.into()),
    }
}

#[derive(Serialize, ToSchema)]
pub struct CpuRow {
    /// "YYYY-MM-DD HH:MM:SS", UTC.
    pub taken_at: String,
    /// Busy %, two decimals (a JSON number; the original sent a string).
    pub usage: f64,
}

#[derive(Serialize, ToSchema)]
pub struct SpaceRow {
    /// Available bytes ("free" in the original meant available).
    pub free_space: u64,
    pub taken_at: String,
    pub used_space: u64,
}

/// Host CPU usage over the window (default: the last 7 days, one row a minute).
#[utoipa::path(get, path = "/cpu", tag = "perf-history", security(("bearer" = [])),
    params(("from" = Option<String>, Query, description = "RFC 3339 or epoch seconds; default: now − 7 days; 0 = all time"),
           ("to" = Option<String>, Query, description = "default: now"),
           ("step" = Option<f64>, Query, description = "Seconds per row; default 60, or coarser where the data in the window would give more than 100000 rows")),
    responses((status = 200, body = Vec<CpuRow>), (status = 400, body = ErrorBody)))]
async fn perf_cpu(
    State(state): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Vec<CpuRow>>, ApiError> {
    let cpu = key(keys::CPU_USAGE)?;
    let (store, from, to, step) = profile_query(&state, &cpu, &q).await?;
    let points = range_or_empty(store, &cpu, from, to, step).await?;
    Ok(Json(
        points
            .into_iter()
            .map(|p| CpuRow {
                taken_at: taken_at(p.ts_ms),
                usage: (p.avg * 100.0).round() / 100.0,
            })
            .collect(),
    ))
}

/// Pairs two series' points by timestamp (both were sampled on the same ticks).
async fn space_rows(
    state: &AppState,
    q: &HashMap<String, String>,
    used: &str,
    available: &str,
) -> Result<Vec<SpaceRow>, ApiError> {
    let used = key(used)?;
    let (store, from, to, step) = profile_query(state, &used, q).await?;
    let used = range_or_empty(store, &used, from, to, step).await?;
    let avail: HashMap<i64, f64> = range_or_empty(store, &key(available)?, from, to, step)
        .await?
        .into_iter()
        .map(|p| (p.ts_ms, p.avg))
        .collect();
    Ok(used
        .into_iter()
        .filter_map(|u| {
            avail.get(&u.ts_ms).map(|a| SpaceRow {
                free_space: a.max(0.0).round() as u64,
                taken_at: taken_at(u.ts_ms),
                used_space: u.avg.max(0.0).round() as u64,
            })
        })
        .collect())
}

/// Host memory used and available over the window, in bytes.
#[utoipa::path(get, path = "/memory", tag = "perf-history", security(("bearer" = [])),
    params(("from" = Option<String>, Query, description = "default: now − 7 days; 0 = all time"), ("to" = Option<String>, Query), ("step" = Option<f64>, Query)),
    responses((status = 200, body = Vec<SpaceRow>), (status = 400, body = ErrorBody)))]
async fn perf_memory(
    State(state): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Vec<SpaceRow>>, ApiError> {
    space_rows(&state, &q, keys::MEMORY_USED, keys::MEMORY_AVAILABLE)
        .await
        .map(Json)
}

/// Root filesystem used and available over the window, in bytes.
#[utoipa::path(get, path = "/storage", tag = "perf-history", security(("bearer" = [])),
    params(("from" = Option<String>, Query, description = "default: now − 7 days; 0 = all time"), ("to" = Option<String>, Query), ("step" = Option<f64>, Query)),
    responses((status = 200, body = Vec<SpaceRow>), (status = 400, body = ErrorBody)))]
async fn perf_storage(
    State(state): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Vec<SpaceRow>>, ApiError> {
    space_rows(&state, &q, keys::ROOT_FS_USED, keys::ROOT_FS_AVAILABLE)
        .await
        .map(Json)
}

async fn average(
    state: &AppState,
    q: &HashMap<String, String>,
    series: &str,
) -> Result<f64, ApiError> {
    let (from, to) = window(q, WEEK_MS, lookout_util::clock::now_ms())?;
    let stats = match store(state)?.stats(&key(series)?, from, to).await {
        Ok(s) => s,
        Err(StoreError::NotFound(_)) => return Err(ApiError::NotFound("no samples yet".into())),
        Err(e) => return Err(e.into()),
    };
    // The original answered an empty table with a 500 page; an empty window is a clear 404.
    stats.avg.ok_or_else(|| {
        ApiError::NotFound(format!(
            "no samples between {} and {}",
            taken_at(from),
            taken_at(to)
        ))
    })
}

#[derive(Serialize, ToSchema)]
pub struct CpuAverage {
    pub cpu_avg_usage: f64,
}

/// Average CPU usage % over the window (default: the last 7 days; `from=0` for all time).
#[utoipa::path(get, path = "/cpu_average", tag = "perf-history", security(("bearer" = [])),
    params(("from" = Option<String>, Query), ("to" = Option<String>, Query)),
    responses((status = 200, body = CpuAverage), (status = 404, description = "No samples in the window", body = ErrorBody)))]
async fn perf_cpu_average(
    State(state): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<CpuAverage>, ApiError> {
    let avg = average(&state, &q, keys::CPU_USAGE).await?;
    Ok(Json(CpuAverage {
        cpu_avg_usage: (avg * 1e6).round() / 1e6,
    }))
}

#[derive(Serialize, ToSchema)]
pub struct MemoryAverage {
    pub memory_avg_free_space: f64,
    pub memory_avg_used_space: f64,
}

/// Average memory available ("free") and used, bytes, over the window.
#[utoipa::path(get, path = "/memory_average", tag = "perf-history", security(("bearer" = [])),
    params(("from" = Option<String>, Query), ("to" = Option<String>, Query)),
    responses((status = 200, body = MemoryAverage), (status = 404, body = ErrorBody)))]
async fn perf_memory_average(
    State(state): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<MemoryAverage>, ApiError> {
    Ok(Json(MemoryAverage {
        memory_avg_free_space: (average(&state, &q, keys::MEMORY_AVAILABLE).await? * 1e4).round()
            / 1e4,
        memory_avg_used_space: (average(&state, &q, keys::MEMORY_USED).await? * 1e4).round() / 1e4,
    }))
}

#[derive(Serialize, ToSchema)]
pub struct DiskAverage {
    pub disk_avg_free_space: f64,
    pub disk_avg_used_space: f64,
}

/// Average root filesystem available ("free") and used, bytes, over the window.
#[utoipa::path(get, path = "/storage_average", tag = "perf-history", security(("bearer" = [])),
    params(("from" = Option<String>, Query), ("to" = Option<String>, Query)),
    responses((status = 200, body = DiskAverage), (status = 404, body = ErrorBody)))]
async fn perf_storage_average(
    State(state): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<DiskAverage>, ApiError> {
    Ok(Json(DiskAverage {
        disk_avg_free_space: (average(&state, &q, keys::ROOT_FS_AVAILABLE).await? * 1e4).round()
            / 1e4,
        disk_avg_used_space: (average(&state, &q, keys::ROOT_FS_USED).await? * 1e4).round() / 1e4,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routes::history::HOUR_MS;

    #[test]
    fn perf_rows_downsample_only_beyond_the_limit() {
        assert_eq!(profile_step(0), PROFILE_STEP_MS);
        assert_eq!(profile_step(WEEK_MS), PROFILE_STEP_MS);
        // A year of data: 525,600 minutes, so 10-minute rows (52,560).
        let year = 365 * 24 * HOUR_MS;
        assert_eq!(profile_step(year), 10 * 60_000);
        assert!(year / profile_step(year) <= MAX_POINTS);
        let decades = 40 * year;
        assert!(decades / profile_step(decades) <= MAX_POINTS);
    }

    #[test]
    fn taken_at_matches_the_original_format() {
        assert_eq!(taken_at(1_595_241_364_000), "2020-07-20 10:36:04");
    }
}
