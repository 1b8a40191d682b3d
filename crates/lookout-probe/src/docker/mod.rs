//! Container engines with Docker's API (Docker itself, and Podman's compatible socket):
//! connection and error wording, lifecycle from events ([`engine`]), control actions. The
//! figures are read from cgroups ([`crate::cgroup`]); [`stats`] keeps the CLI's formulas.

pub mod engine;
pub mod stats;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use bollard::errors::Error as BollardError;
use bollard::query_parameters::{RemoveContainerOptionsBuilder, StopContainerOptionsBuilder};
use bollard::Docker;

use crate::ProbeError;

/// How long one engine call may take before the tick reports the engine unavailable.
pub(crate) const LIST_TIMEOUT: Duration = Duration::from_secs(5);
/// Upper bound for a control action (stop waits up to its grace period first).
const ACTION_TIMEOUT: Duration = Duration::from_secs(40);
/// Podman's rootful API socket (`podman system service`), looked for beside Docker's;
/// `LOOKOUT_PODMAN_HOST` names another.
pub const PODMAN_SOCKET: &str = "unix:///run/podman/podman.sock";

/// The Podman socket to use, if there is one: `LOOKOUT_PODMAN_HOST`, else the default path
/// when it exists.
pub fn podman_endpoint() -> Option<String> {
    match std::env::var("LOOKOUT_PODMAN_HOST") {
        Ok(v) if !v.is_empty() => Some(v),
        _ => {
            let path = PODMAN_SOCKET.trim_start_matches("unix://");
            std::path::Path::new(path)
                .exists()
                .then(|| PODMAN_SOCKET.to_string())
        }
    }
}

/// Connects lazily: a daemon that is down at start, or restarts later, is picked up again
/// on a later tick without restarting lookout. `socket` `None` is Docker's default.
fn connect(socket: Option<&str>) -> Result<Docker, ProbeError> {
    match socket {
        None => Docker::connect_with_defaults(),
        Some(s) => Docker::connect_with_unix(s, 120, bollard::API_DEFAULT_VERSION),
    }
    .map_err(engine_error)
}

/// Lowers the client's API version to the daemon's (this engine speaks 1.41; bollard asks
/// for a newer one by default, which an older daemon refuses).
pub(crate) async fn negotiated_at(socket: Option<&str>) -> Result<Docker, ProbeError> {
    let client = connect(socket)?;
    match tokio::time::timeout(LIST_TIMEOUT, client.negotiate_version()).await {
        Ok(Ok(client)) => Ok(client),
        Ok(Err(e)) => Err(docker_error(e)),
        Err(_) => Err(ProbeError::Docker("engine did not answer in time".into())),
    }
}

pub(crate) fn docker_error(e: BollardError) -> ProbeError {
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

/// [`ContainerControl`] over the Docker Engine API: Docker's engine first, then Podman's
/// socket (when there is one) for an id Docker does not know.
#[derive(Debug, Default, Clone)]
pub struct DockerControl;

impl ContainerControl for DockerControl {
    fn act<'a>(
        &'a self,
        id: &'a str,
        action: ContainerAction,
    ) -> BoxFuture<'a, Result<(), ProbeError>> {
        Box::pin(async move {
            let docker = act_on(None, id, action).await;
            match (&docker, podman_endpoint()) {
                (Err(ProbeError::NoSuchContainer(_)) | Err(ProbeError::Docker(_)), Some(p)) => {
                    match act_on(Some(&p), id, action).await {
                        // Podman does not know it either: Docker's answer stands.
                        Err(ProbeError::NoSuchContainer(_)) => docker,
                        other => other,
                    }
                }
                _ => docker,
            }
        })
    }
}

/// One action through one engine.
async fn act_on(socket: Option<&str>, id: &str, action: ContainerAction) -> Result<(), ProbeError> {
    {
        {
            let client = negotiated_at(socket).await?;
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
        }
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
