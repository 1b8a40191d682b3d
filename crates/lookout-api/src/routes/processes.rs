//! Processes and sensors: the host's process table (and each container's share of it) and
//! its hwmon / thermal-zone sensors, from the latest snapshot like every other figure.

use std::cmp::Ordering;

use axum::extract::{Path, Query, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use lookout_probe::procs::{ProcessInfo, ProcessTable};
use lookout_probe::sensors::Sensors;
use lookout_probe::Snapshot;

use crate::error::{ApiError, ErrorBody};
use crate::routes::native::find_container;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(processes))
        .routes(routes!(container_processes))
        .routes(routes!(sensors))
}

/// Most rows one answer carries.
pub const MAX_LIMIT: usize = 1000;
const DEFAULT_LIMIT: usize = 50;

/// The order of the table: figures largest first, `pid` and `name` ascending.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProcessSort {
    #[default]
    Cpu,
    Memory,
    Io,
    Threads,
    Pid,
    Name,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ProcessQuery {
    /// Order: `cpu` (default), `memory` (RSS), `io` (read + write rate), `threads` — largest first; `pid`, `name` — ascending.
    pub sort: Option<ProcessSort>,
    /// How many processes, after sorting (1..=1000, default 50).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
}

/// One row of the table: the process and, when it runs in a container, that container's name.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ProcessRow {
    #[serde(flatten)]
    pub process: ProcessInfo,
    /// Name of the container `container_id` names, when the engine lists it.
    pub container_name: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProcessesResponse {
    pub taken_at_ms: i64,
    /// When the table was read (it is refreshed every `sampling.processes_every_ticks` ticks).
    pub refreshed_at_ms: i64,
    /// Processes in the table (host) or in the container, before `limit`.
    pub total: usize,
    /// True when the host had more than `sampling.max_processes` processes.
    pub truncated: bool,
    pub sort: ProcessSort,
    pub processes: Vec<ProcessRow>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SensorsResponse {
    pub taken_at_ms: i64,
    pub sensors: Sensors,
}

fn io_rate(p: &ProcessInfo) -> f64 {
    p.read_bytes_per_sec.unwrap_or(0.0) + p.write_bytes_per_sec.unwrap_or(0.0)
}

/// The comparison `sort` orders by (ties broken by pid, so the order is stable).
pub fn compare(sort: ProcessSort, a: &ProcessInfo, b: &ProcessInfo) -> Ordering {
    let desc = |x: f64, y: f64| y.total_cmp(&x);
    let primary = match sort {
        ProcessSort::Cpu => desc(a.cpu_percent, b.cpu_percent),
        ProcessSort::Memory => b.rss_bytes.cmp(&a.rss_bytes),
        ProcessSort::Io => desc(io_rate(a), io_rate(b)),
        ProcessSort::Threads => b.threads.cmp(&a.threads),
        ProcessSort::Pid => Ordering::Equal,
        ProcessSort::Name => a.name.cmp(&b.name),
    };
    primary.then(a.pid.cmp(&b.pid))
}

/// The top `limit` of `rows` by `sort`, without sorting the whole table.
pub fn top(mut rows: Vec<&ProcessInfo>, sort: ProcessSort, limit: usize) -> Vec<&ProcessInfo> {
    if rows.len() > limit {
        rows.select_nth_unstable_by(limit, |a, b| compare(sort, a, b));
        rows.truncate(limit);
    }
    rows.sort_unstable_by(|a, b| compare(sort, a, b));
    rows
}

fn table(s: &Snapshot) -> Result<&ProcessTable, ApiError> {
    s.processes
        .as_deref()
        .ok_or_else(|| ApiError::Unavailable("process sampling is off (sampling.processes)".into()))
}

fn answer(
    s: &Snapshot,
    q: ProcessQuery,
    container: Option<&str>,
) -> Result<ProcessesResponse, ApiError> {
    let sort = q.sort.unwrap_or_default();
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::BadRequest(format!(
            "limit: must be 1..={MAX_LIMIT}"
        )));
    }
    let t = table(s)?;
    let rows: Vec<&ProcessInfo> = t
        .processes
        .iter()
        .filter(|p| container.is_none_or(|id| p.container_id.as_deref() == Some(id)))
        .collect();
    let total = rows.len();
    let names = s.containers.containers().unwrap_or_default();
    let processes = top(rows, sort, limit)
        .into_iter()
        .map(|p| ProcessRow {
            container_name: p
                .container_id
                .as_deref()
                .and_then(|id| names.iter().find(|c| c.id == id))
                .map(|c| c.name.clone()),
            process: p.clone(),
        })
        .collect();
    Ok(ProcessesResponse {
        taken_at_ms: s.taken_at_ms,
        refreshed_at_ms: t.refreshed_at_ms,
        total,
        truncated: t.truncated,
        sort,
        processes,
    })
}

/// The host's processes (all containers' included), top `limit` by `sort`.
#[utoipa::path(get, path = "/api/v1/processes", tag = "host", security(("bearer" = [])), params(ProcessQuery),
    responses((status = 200, body = ProcessesResponse), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 503, description = "No sample yet, or process sampling is off", body = ErrorBody)))]
async fn processes(
    State(state): State<AppState>,
    q: Result<Query<ProcessQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<ProcessesResponse>, ApiError> {
    let Query(q) = q?;
    let s = state.latest()?;
    answer(&s, q, None).map(Json)
}

/// One container's processes (by id, id prefix or name), top `limit` by `sort`.
#[utoipa::path(get, path = "/api/v1/containers/{id}/processes", tag = "containers", security(("bearer" = [])),
    params(("id" = String, Path, description = "Container id, id prefix or name"), ProcessQuery),
    responses((status = 200, body = ProcessesResponse), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn container_processes(
    State(state): State<AppState>,
    Path(id): Path<String>,
    q: Result<Query<ProcessQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<ProcessesResponse>, ApiError> {
    let Query(q) = q?;
    let s = state.latest()?;
    let full_id = find_container(&s, &id)?.id.clone();
    answer(&s, q, Some(&full_id)).map(Json)
}

/// Temperatures, fans and voltages (hwmon, with labels and min/max/critical thresholds) and thermal zones.
#[utoipa::path(get, path = "/api/v1/sensors", tag = "host", security(("bearer" = [])),
    responses((status = 200, body = SensorsResponse), (status = 401, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn sensors(State(state): State<AppState>) -> Result<Json<SensorsResponse>, ApiError> {
    let s = state.latest()?;
    Ok(Json(SensorsResponse {
        taken_at_ms: s.taken_at_ms,
        sensors: s.host.sensors.clone(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn p(pid: u32, cpu: f64, rss: u64) -> ProcessInfo {
        ProcessInfo {
            pid,
            ppid: 1,
            uid: 0,
            user: "root".into(),
            name: format!("p{pid}"),
            command: format!("p{pid}"),
            state: "sleeping".into(),
            threads: 1,
            cpu_percent: cpu,
            rss_bytes: rss,
            read_bytes_per_sec: None,
            write_bytes_per_sec: None,
            container_id: None,
        }
    }

    #[test]
    fn top_by_cpu_and_memory() {
        let rows = [p(1, 5.0, 10), p(2, 50.0, 5), p(3, 20.0, 30)];
        let by_cpu: Vec<u32> = top(rows.iter().collect(), ProcessSort::Cpu, 2)
            .iter()
            .map(|p| p.pid)
            .collect();
        assert_eq!(by_cpu, [2, 3]);
        let by_mem: Vec<u32> = top(rows.iter().collect(), ProcessSort::Memory, 3)
            .iter()
            .map(|p| p.pid)
            .collect();
        assert_eq!(by_mem, [3, 1, 2]);
    }

    proptest! {
        #[test]
        fn top_equals_a_full_sort(cpus in proptest::collection::vec(0.0f64..400.0, 0..200), limit in 1usize..50) {
            let rows: Vec<ProcessInfo> = cpus.iter().enumerate().map(|(i, c)| p(i as u32, *c, i as u64)).collect();
            let mut full: Vec<&ProcessInfo> = rows.iter().collect();
            full.sort_by(|a, b| compare(ProcessSort::Cpu, a, b));
            full.truncate(limit);
            let got = top(rows.iter().collect(), ProcessSort::Cpu, limit);
            prop_assert_eq!(got.iter().map(|p| p.pid).collect::<Vec<_>>(), full.iter().map(|p| p.pid).collect::<Vec<_>>());
        }
    }
}
