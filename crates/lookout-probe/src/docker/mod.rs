//! Docker containers through the Engine API (unix socket, `DOCKER_HOST` honoured).
//!
//! One long-lived `stats?stream=true` connection per running container delivers a document
//! about every second; lookout keeps each container's previous CPU reading itself and
//! computes the CLI's figures as documents arrive. A sampler tick then only lists the
//! containers (to keep the set current) and copies the latest figures: no tick waits for the
//! daemon's two-sample `stream=false` call.

pub mod stats;

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bollard::errors::Error as BollardError;
use bollard::models::ContainerSummary;
use bollard::query_parameters::{
    ListContainersOptionsBuilder, RemoveContainerOptionsBuilder, StatsOptionsBuilder,
    StopContainerOptionsBuilder,
};
use bollard::Docker;
use futures_util::StreamExt;
use tokio::task::JoinHandle;

use crate::{ContainerStats, ContainersView, EngineStats, ProbeError};
use stats::{CpuReading, Figures};

/// How long one listing may take before the tick reports the engine unavailable.
const LIST_TIMEOUT: Duration = Duration::from_secs(5);
/// Upper bound for a control action (stop waits up to its grace period first).
const ACTION_TIMEOUT: Duration = Duration::from_secs(40);

/// Connects lazily: a daemon that is down at start, or restarts later, is picked up again
/// on a later tick without restarting lookout.
fn connect() -> Result<Docker, ProbeError> {
    Docker::connect_with_defaults().map_err(engine_error)
}

/// Lowers the client's API version to the daemon's (this engine speaks 1.41; bollard asks
/// for a newer one by default, which an older daemon refuses).
async fn negotiated() -> Result<Docker, ProbeError> {
    let client = connect()?;
    match tokio::time::timeout(LIST_TIMEOUT, client.negotiate_version()).await {
        Ok(Ok(client)) => Ok(client),
        Ok(Err(e)) => Err(docker_error(e)),
        Err(_) => Err(ProbeError::Docker("engine did not answer in time".into())),
    }
}

fn docker_error(e: BollardError) -> ProbeError {
    match e {
        BollardError::DockerResponseServerError {
            status_code: 404,
            message,
        } => ProbeError::NoSuchContainer(message),
        BollardError::DockerResponseServerError {
            status_code: 409,
            message,
        } => ProbeError::Conflict(message),
        other => engine_error(other),
    }
}

/// The engine cannot be used; a connection problem says which socket and why.
fn engine_error(e: BollardError) -> ProbeError {
    ProbeError::Docker(connection_problem(&e).unwrap_or_else(|| e.to_string()))
}

/// Where the engine is looked for: `DOCKER_HOST`, else bollard's default socket.
fn endpoint() -> String {
    std::env::var("DOCKER_HOST")
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "unix:///var/run/docker.sock".into())
}

/// An error that is the engine's socket refusing us, said with the socket's path and what to
/// do; bollard's own text is "Error in the hyper legacy client: client error (Connect)".
fn connection_problem(e: &BollardError) -> Option<String> {
    if let BollardError::SocketNotFoundError(path) = e {
        return Some(no_socket(path));
    }
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    let io = loop {
        let c = cause?;
        if let Some(io) = c.downcast_ref::<std::io::Error>() {
            break io;
        }
        cause = c.source();
    };
    let endpoint = endpoint();
    let socket = endpoint.strip_prefix("unix://").unwrap_or(&endpoint);
    Some(match io.kind() {
        std::io::ErrorKind::PermissionDenied => format!(
            "permission denied on the Docker socket {socket}: run lookout as root or as a user in \
             the socket's group{}, or turn container sampling off with sampling.docker = false",
            socket_group(socket)
        ),
        std::io::ErrorKind::NotFound => no_socket(socket),
        std::io::ErrorKind::ConnectionRefused => {
            format!("the Docker socket {socket} refused the connection: is the engine running?")
        }
        _ => format!("cannot reach the Docker engine at {endpoint}: {io}"),
    })
}

fn no_socket(path: &str) -> String {
    format!(
        "no Docker socket at {path}: is the engine running? (DOCKER_HOST names another endpoint)"
    )
}

/// " (gid N)" of a unix socket, or nothing when it cannot be read.
fn socket_group(path: &str) -> String {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path)
        .map(|m| format!(" (gid {})", m.gid()))
        .unwrap_or_default()
}

/// The latest document of one container and the figures computed from it.
struct Latest {
    doc: Arc<EngineStats>,
    figures: Figures,
}

type LatestMap = Arc<Mutex<HashMap<String, Latest>>>;

/// Samples every container each tick.
pub struct DockerProbe {
    client: Option<Docker>,
    followers: HashMap<String, JoinHandle<()>>,
    latest: LatestMap,
}

impl Default for DockerProbe {
    fn default() -> Self {
        Self::new()
    }
}

impl DockerProbe {
    pub fn new() -> Self {
        Self {
            client: None,
            followers: HashMap::new(),
            latest: Arc::default(),
        }
    }

    /// Lists the containers and returns their latest figures. Never fails: an engine that
    /// cannot be reached gives [`ContainersView::Unavailable`] and is retried next tick.
    pub async fn sample(&mut self) -> ContainersView {
        match self.try_sample().await {
            Ok(containers) => ContainersView::Available { containers },
            Err(e) => {
                // Drop the connection and every stream: they will be rebuilt when the daemon
                // answers again (it may come back as a different process).
                self.client = None;
                self.stop_all();
                ContainersView::Unavailable {
                    reason: e.to_string(),
                }
            }
        }
    }

    async fn try_sample(&mut self) -> Result<Vec<ContainerStats>, ProbeError> {
        let client = match &self.client {
            Some(c) => c.clone(),
            None => {
                let c = negotiated().await?;
                self.client = Some(c.clone());
                c
            }
        };
        let options = ListContainersOptionsBuilder::default().all(true).build();
        let list =
            match tokio::time::timeout(LIST_TIMEOUT, client.list_containers(Some(options))).await {
                Ok(Ok(list)) => list,
                Ok(Err(e)) => return Err(docker_error(e)),
                Err(_) => return Err(ProbeError::Docker("listing containers timed out".into())),
            };
        self.reconcile(&client, &list);
        let latest = self.latest.lock().unwrap_or_else(PoisonError::into_inner);
        let mut out: Vec<ContainerStats> = list
            .into_iter()
            .filter_map(|summary| container_stats(summary, &latest))
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Starts a stats stream for every running (or paused) container that has none, and
    /// stops the streams of containers that are gone or no longer running.
    fn reconcile(&mut self, client: &Docker, list: &[ContainerSummary]) {
        let live: HashMap<&str, ()> = list
            .iter()
            .filter(|c| is_live(c))
            .filter_map(|c| c.id.as_deref().map(|id| (id, ())))
            .collect();
        self.followers.retain(|id, task| {
            let keep = live.contains_key(id.as_str()) && !task.is_finished();
            if !keep {
                task.abort();
            }
            keep
        });
        {
            let mut latest = self.latest.lock().unwrap_or_else(PoisonError::into_inner);
            latest.retain(|id, _| live.contains_key(id.as_str()));
        }
        for id in live.keys() {
            if !self.followers.contains_key(*id) {
                let task =
                    tokio::spawn(follow(client.clone(), id.to_string(), self.latest.clone()));
                self.followers.insert(id.to_string(), task);
            }
        }
    }

    fn stop_all(&mut self) {
        for (_, task) in self.followers.drain() {
            task.abort();
        }
        self.latest
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }
}

impl Drop for DockerProbe {
    fn drop(&mut self) {
        self.stop_all();
    }
}

fn is_live(c: &ContainerSummary) -> bool {
    matches!(
        c.state.map(|s| s.to_string()).as_deref(),
        Some("running") | Some("paused")
    )
}

/// Follows one container's stats stream until it ends (container stopped) or is aborted.
async fn follow(client: Docker, id: String, latest: LatestMap) {
    let options = StatsOptionsBuilder::default().stream(true).build();
    let mut stream = client.stats(&id, Some(options));
    let mut prev: Option<CpuReading> = None;
    while let Some(item) = stream.next().await {
        let doc = match item {
            Ok(doc) => doc,
            Err(e) => {
                tracing::debug!(container = %id, error = %e, "stats stream ended");
                break;
            }
        };
        let figures = stats::figures(&doc, prev);
        // Keep the last good reading across a document without counters (paused container).
        if let Some(cur) = CpuReading::from_stats(&doc) {
            prev = Some(cur);
        }
        latest
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(
                id.clone(),
                Latest {
                    doc: Arc::new(doc),
                    figures,
                },
            );
    }
}

fn container_stats(
    summary: ContainerSummary,
    latest: &HashMap<String, Latest>,
) -> Option<ContainerStats> {
    let id = summary.id?;
    let name = summary
        .names
        .as_ref()
        .and_then(|n| n.first())
        .map(|n| n.trim_start_matches('/').to_string())
        .unwrap_or_else(|| id.chars().take(12).collect());
    let state = summary
        .state
        .map(|s| s.to_string())
        .unwrap_or_else(|| "unknown".into());
    let live = matches!(state.as_str(), "running" | "paused");
    let entry = if live { latest.get(&id) } else { None };
    let f = entry.map(|l| l.figures.clone()).unwrap_or_default();
    Some(ContainerStats {
        name,
        image: summary.image.unwrap_or_default(),
        state,
        status: summary.status.unwrap_or_default(),
        created: summary.created.unwrap_or(0),
        labels: summary
            .labels
            .unwrap_or_default()
            .into_iter()
            .collect::<BTreeMap<_, _>>(),
        // A stopped container uses nothing: report zeros rather than stale figures.
        cpu_percent: if live { f.cpu_percent } else { Some(0.0) },
        online_cpus: f.online_cpus,
        memory_used_bytes: if live { f.memory_used } else { Some(0) },
        memory_limit_bytes: f.memory_limit,
        memory_percent: if live { f.memory_percent } else { Some(0.0) },
        net_rx_bytes: f.net.map(|n| n.0),
        net_tx_bytes: f.net.map(|n| n.1),
        block_read_bytes: f.block.map(|b| b.0),
        block_write_bytes: f.block.map(|b| b.1),
        pids: f.pids,
        gpu: None,
        raw_stats: entry.map(|l| l.doc.clone()),
        id,
    })
}

/// Why `action` does not fit a container that is `running` / `paused`, if it does not.
pub fn state_conflict(
    action: ContainerAction,
    running: bool,
    paused: bool,
) -> Option<&'static str> {
    match action {
        ContainerAction::Start if running => Some("container is already running"),
        ContainerAction::Stop if !running => Some("container is already stopped"),
        ContainerAction::Pause if !running => Some("container is not running"),
        ContainerAction::Pause if paused => Some("container is already paused"),
        ContainerAction::Unpause if !paused => Some("container is not paused"),
        _ => None,
    }
}

/// What a caller may do to a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ContainerAction {
    Start,
    Stop,
    Restart,
    Pause,
    Unpause,
    Remove,
}

impl ContainerAction {
    pub fn as_str(self) -> &'static str {
        match self {
            ContainerAction::Start => "start",
            ContainerAction::Stop => "stop",
            ContainerAction::Restart => "restart",
            ContainerAction::Pause => "pause",
            ContainerAction::Unpause => "unpause",
            ContainerAction::Remove => "remove",
        }
    }
}

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Changes a container's state. A trait so the HTTP layer does not know about bollard.
pub trait ContainerControl: Send + Sync {
    fn act<'a>(
        &'a self,
        id: &'a str,
        action: ContainerAction,
    ) -> BoxFuture<'a, Result<(), ProbeError>>;
}

/// [`ContainerControl`] over the Docker Engine API.
#[derive(Debug, Default, Clone)]
pub struct DockerControl;

impl ContainerControl for DockerControl {
    fn act<'a>(
        &'a self,
        id: &'a str,
        action: ContainerAction,
    ) -> BoxFuture<'a, Result<(), ProbeError>> {
        Box::pin(async move {
            let client = negotiated().await?;
            // bollard reports the engine's 304 ("already started/stopped") as success and
            // this engine answers 500 for "not paused", so the state is checked first to give
            // a clear conflict instead.
            if action != ContainerAction::Remove && action != ContainerAction::Restart {
                let info = tokio::time::timeout(LIST_TIMEOUT, client.inspect_container(id, None))
                    .await
                    .map_err(|_| ProbeError::Docker("inspect timed out".into()))?
                    .map_err(docker_error)?;
                let state = info.state.as_ref();
                let running = state.and_then(|s| s.running).unwrap_or(false);
                let paused = state.and_then(|s| s.paused).unwrap_or(false);
                if let Some(why) = state_conflict(action, running, paused) {
                    return Err(ProbeError::Conflict(why.into()));
                }
            }
            let call = async {
                match action {
                    ContainerAction::Start => client.start_container(id, None).await,
                    ContainerAction::Stop => {
                        let o = StopContainerOptionsBuilder::default().t(10).build();
                        client.stop_container(id, Some(o)).await
                    }
                    ContainerAction::Restart => {
                        let o =
                            bollard::query_parameters::RestartContainerOptionsBuilder::default()
                                .t(10)
                                .build();
                        client.restart_container(id, Some(o)).await
                    }
                    ContainerAction::Pause => client.pause_container(id).await,
                    ContainerAction::Unpause => client.unpause_container(id).await,
                    ContainerAction::Remove => {
                        let o = RemoveContainerOptionsBuilder::default().force(true).build();
                        client.remove_container(id, Some(o)).await
                    }
                }
            };
            match tokio::time::timeout(ACTION_TIMEOUT, call).await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(docker_error(e)),
                Err(_) => Err(ProbeError::Docker(format!(
                    "{} did not finish in {}s",
                    action.as_str(),
                    ACTION_TIMEOUT.as_secs()
                ))),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conflicts_follow_the_state() {
        use ContainerAction::*;
        assert!(state_conflict(Start, true, false).is_some());
        assert!(state_conflict(Start, false, false).is_none());
        assert!(state_conflict(Stop, false, false).is_some());
        assert!(state_conflict(Stop, true, true).is_none());
        assert!(state_conflict(Pause, true, true).is_some());
        assert!(state_conflict(Pause, false, false).is_some());
        assert!(state_conflict(Pause, true, false).is_none());
        assert!(state_conflict(Unpause, true, false).is_some());
        assert!(state_conflict(Unpause, true, true).is_none());
        assert!(state_conflict(Remove, false, false).is_none());
        assert!(state_conflict(Restart, false, false).is_none());
    }
}
