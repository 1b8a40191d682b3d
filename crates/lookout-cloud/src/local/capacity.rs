//! `GET /statistics` and `GET /team/limits` on the local backend: the Docker host stands in
//! for Nova's hypervisors, the containers labelled `lookout.team` for servers, and the
//! operator's `[concertim.quotas]` for Nova's and Cinder's quotas.
//!
//! What a container "allocates", as Nova counts a flavour: its CPU limit (`--cpus`, or
//! quota/period) rounded up, and 1 vCPU without one; its memory limit, or without one what it
//! uses now; its writable layer's size as disk. Statistics count running (and paused)
//! containers, as hypervisors do; limits count every container of the team, as Nova's quota
//! usage does, and the team's Docker volumes as Cinder's.

use std::collections::HashMap;

use bollard::query_parameters::{
    ListContainersOptionsBuilder, ListVolumesOptions, StatsOptionsBuilder,
};
use bollard::Docker;
use futures_util::{StreamExt, TryStreamExt};
use serde_json::{json, Value};

use super::devices::DockerDevices;
use super::LocalBackend;
use crate::error::{CloudError, CloudResult};
use crate::metering::TEAM_LABEL;
use crate::model::CloudEnv;

const ENGINE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// Most containers one answer looks at (each costs an inspect).
const MAX_CONTAINERS: usize = 500;
const GIB: f64 = 1024.0 * 1024.0 * 1024.0;
/// Most files and directories one answer walks in a team's volumes.
const MAX_WALK_ENTRIES: usize = 200_000;

/// A team's quotas, as Nova and Cinder name them; -1 is "no limit" (the UI prints it so).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quotas {
    pub cores: i64,
    pub ram_mb: i64,
    pub instances: i64,
    pub volumes: i64,
    pub gigabytes: i64,
}

impl Default for Quotas {
    fn default() -> Self {
        Self {
            cores: -1,
            ram_mb: -1,
            instances: -1,
            volumes: -1,
            gigabytes: -1,
        }
    }
}

/// What one container allocates.
#[derive(Debug, Clone, Copy, Default)]
struct Alloc {
    running: bool,
    vcpus: u64,
    ram_bytes: u64,
    disk_bytes: u64,
}

async fn timed<T>(
    what: &str,
    call: impl std::future::Future<Output = Result<T, bollard::errors::Error>>,
) -> CloudResult<T> {
    match tokio::time::timeout(ENGINE_TIMEOUT, call).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(CloudError::Unavailable(format!(
            "docker engine ({what}): {e}"
        ))),
        Err(_) => Err(CloudError::Unavailable(format!(
            "docker engine did not answer ({what}) in time"
        ))),
    }
}

/// `team: None`: every team's containers (never one outside all teams).
async fn allocations(client: &Docker, team: Option<&str>) -> CloudResult<Vec<Alloc>> {
    let filter = match team {
        Some(t) => format!("{TEAM_LABEL}={t}"),
        None => TEAM_LABEL.to_string(),
    };
    let filters: HashMap<&str, Vec<&str>> = HashMap::from([("label", vec![filter.as_str()])]);
    let options = ListContainersOptionsBuilder::default()
        .all(true)
        .size(true)
        .filters(&filters)
        .build();
    let list = timed("list containers", client.list_containers(Some(options))).await?;
    let one = |c: bollard::models::ContainerSummary| async move {
        let id = c.id.clone()?;
        let state = c.state.map(|s| s.to_string()).unwrap_or_default();
        let running = matches!(state.as_str(), "running" | "paused" | "restarting");
        let info = timed("inspect", client.inspect_container(&id, None))
            .await
            .ok()?;
        let hc = info.host_config.unwrap_or_default();
        let cpus = match (hc.nano_cpus, hc.cpu_quota, hc.cpu_period) {
            (Some(n), _, _) if n > 0 => n as f64 / 1e9,
            (_, Some(q), Some(p)) if q > 0 && p > 0 => q as f64 / p as f64,
            _ => 1.0,
        };
        let ram_bytes = match hc.memory {
            Some(m) if m > 0 => m as u64,
            _ if running => memory_in_use(client, &id).await.unwrap_or(0),
            _ => 0,
        };
        Some(Alloc {
            running,
            vcpus: cpus.ceil().max(1.0) as u64,
            ram_bytes,
            disk_bytes: c.size_rw.unwrap_or(0).max(0) as u64,
        })
    };
    Ok(
        futures_util::stream::iter(list.into_iter().take(MAX_CONTAINERS))
            .map(one)
            .buffer_unordered(8)
            .filter_map(|a| async move { a })
            .collect()
            .await,
    )
}

/// Memory a container without a limit uses now (one stats sample, no waiting for a second).
async fn memory_in_use(client: &Docker, id: &str) -> Option<u64> {
    let options = StatsOptionsBuilder::default()
        .stream(false)
        .one_shot(true)
        .build();
    let mut stats = client.stats(id, Some(options));
    let first = tokio::time::timeout(ENGINE_TIMEOUT, stats.try_next())
        .await
        .ok()?
        .ok()??;
    first.memory_stats?.usage
}

/// The team's Docker volumes: their count and the bytes of their data. The engine reports
/// sizes only in `df`, whose shape changed across API versions, so lookout adds up the files
/// under each volume's mount point itself; a volume it cannot read (lookout in a container
/// without the engine's data root) counts as empty.
async fn volume_usage(client: &Docker, team: &str) -> CloudResult<(usize, u64)> {
    let filters = HashMap::from([("label".to_string(), vec![format!("{TEAM_LABEL}={team}")])]);
    let v = timed(
        "list volumes",
        client.list_volumes(Some(ListVolumesOptions {
            filters: Some(filters),
        })),
    )
    .await?;
    let mounts: Vec<String> = v
        .volumes
        .unwrap_or_default()
        .into_iter()
        .map(|v| v.mountpoint)
        .collect();
    let count = mounts.len();
    let bytes = tokio::task::spawn_blocking(move || mounts.iter().map(|m| tree_bytes(m)).sum())
        .await
        .unwrap_or(0);
    Ok((count, bytes))
}

/// Bytes of the regular files under `root`, symlinks not followed, at most
/// [`MAX_WALK_ENTRIES`] entries looked at.
fn tree_bytes(root: &str) -> u64 {
    let mut total = 0u64;
    let mut seen = 0usize;
    let mut stack = vec![std::path::PathBuf::from(root)];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            seen += 1;
            if seen > MAX_WALK_ENTRIES {
                return total;
            }
            let Ok(md) = std::fs::symlink_metadata(e.path()) else {
                continue;
            };
            if md.is_dir() {
                stack.push(e.path());
            } else if md.is_file() {
                total = total.saturating_add(md.len());
            }
        }
    }
    total
}

/// Size of the filesystem holding `path` (the engine's data root), bytes.
fn filesystem_size(path: &str) -> Option<u64> {
    let s = rustix::fs::statvfs(path).ok()?;
    Some(s.f_blocks.saturating_mul(s.f_frsize))
}

fn gb(bytes: u64) -> f64 {
    // Two decimals: the UI rounds up to one.
    (bytes as f64 / GIB * 100.0).round() / 100.0
}

impl LocalBackend {
    /// Sets the quotas `GET /team/limits` reports (default: no limits).
    pub fn with_quotas(mut self, quotas: Quotas) -> Self {
        self.quotas = quotas;
        self
    }

    /// `GET /statistics`: the Docker host's capacity and what running team containers hold.
    pub(super) async fn do_statistics(&self) -> CloudResult<Value> {
        let client = DockerDevices::client().await?;
        let info = timed("info", client.info()).await?;
        let root = info.docker_root_dir.clone().unwrap_or_default();
        // lookout in a container may not see the engine's data root: its own root then.
        let disk = tokio::task::spawn_blocking(move || {
            filesystem_size(&root).or_else(|| filesystem_size("/"))
        })
        .await
        .ok()
        .flatten()
        .unwrap_or(0);
        let running: Vec<Alloc> = allocations(&client, None)
            .await?
            .into_iter()
            .filter(|a| a.running)
            .collect();
        Ok(json!({
            "total_vcpus": info.ncpu.unwrap_or(0).max(0),
            "used_vcpus": running.iter().map(|a| a.vcpus).sum::<u64>(),
            "total_ram": gb(info.mem_total.unwrap_or(0).max(0) as u64),
            "used_ram": gb(running.iter().map(|a| a.ram_bytes).sum()),
            "total_disk_space": gb(disk),
            "used_disk_space": gb(running.iter().map(|a| a.disk_bytes).sum()),
            "running_vms": running.len(),
        }))
    }

    /// `GET /team/limits`: the quotas and use of the team `cloud_env` is scoped to (any
    /// role), or of any team for the admin principal; flat, as Nova's and Cinder's
    /// `limits.absolute` merged (what `limits_presenter.rb` reads).
    pub(super) async fn do_team_limits(&self, env: &CloudEnv) -> CloudResult<Value> {
        let team = if self.is_admin(env).await? {
            let id = env
                .project_id
                .as_deref()
                .ok_or_else(|| CloudError::missing("cloud_env.project_id"))?;
            self.team_by_id(id)
                .await?
                .ok_or_else(|| CloudError::NotFound(format!("no team {id:?}")))?
        } else {
            let user = self.caller(env).await?;
            let (team, roles) = self.scoped_team(env, &user).await?;
            if roles.is_empty() {
                return Err(CloudError::Forbidden(
                    "the user has no role in this team".into(),
                ));
            }
            team
        };
        let client = DockerDevices::client().await?;
        let all = allocations(&client, Some(&team.id)).await?;
        let (volumes, volume_bytes) = volume_usage(&client, &team.id).await?;
        let q = self.quotas;
        Ok(json!({
            "maxTotalCores": q.cores,
            "totalCoresUsed": all.iter().map(|a| a.vcpus).sum::<u64>(),
            "maxTotalRAMSize": q.ram_mb,
            "totalRAMUsed": all.iter().map(|a| a.ram_bytes).sum::<u64>() / (1024 * 1024),
            "maxTotalInstances": q.instances,
            "totalInstancesUsed": all.len(),
            "maxTotalVolumes": q.volumes,
            "totalVolumesUsed": volumes,
            "maxTotalVolumeGigabytes": q.gigabytes,
            "totalGigabytesUsed": volume_bytes.div_ceil(1024 * 1024 * 1024),
        }))
    }
}
