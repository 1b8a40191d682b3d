//! Volumes and networks of the local backend: Docker volumes and networks labelled
//! `lookout.team=<project_id>`. The UI only ever destroys them (`update_status/volumes/<id>`,
//! `update_status/networks/<id>`); one still in use is a conflict, as Cinder and Neutron
//! answer for an attached volume or a network with ports.

use std::future::Future;

use bollard::errors::Error as BollardError;
use bollard::query_parameters::RemoveVolumeOptions;

use super::devices::DockerDevices;
use crate::error::{CloudError, CloudResult};
use crate::metering::TEAM_LABEL;
use crate::model::StatusChange;

const ENGINE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Docker names: no path separators, bounded (the listener has bounded `id` already).
fn check_name(what: &str, id: &str) -> CloudResult<()> {
    if id.is_empty() || id.len() > 255 || id.contains('/') || id == "." || id == ".." {
        return Err(CloudError::NotFound(format!(
            "no {what} {id:?} in this team"
        )));
    }
    Ok(())
}

/// Runs one engine call in time; a 404 is "not found". On removal the engine answers 409 for
/// a volume in use and 403 for a network with endpoints: both conflicts. A 403 to a read
/// comes from a socket proxy's allow-list, not the engine: unavailable.
async fn engine<T>(
    what: &str,
    id: &str,
    removing: bool,
    call: impl Future<Output = Result<T, BollardError>>,
) -> CloudResult<T> {
    match tokio::time::timeout(ENGINE_TIMEOUT, call).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(BollardError::DockerResponseServerError {
            status_code: 404, ..
        })) => Err(CloudError::NotFound(format!(
            "no {what} {id:?} in this team"
        ))),
        Ok(Err(BollardError::DockerResponseServerError {
            status_code: 403 | 409,
            message,
        })) if removing => Err(CloudError::Conflict(format!(
            "cannot destroy {what} {id}: {message}"
        ))),
        Ok(Err(e)) => Err(CloudError::Unavailable(format!("docker engine: {e}"))),
        Err(_) => Err(CloudError::Unavailable(format!(
            "docker engine did not answer about {what} {id} in time"
        ))),
    }
}

/// `team: Some` must own the object; `None` (the admin) any team, never an unlabelled one.
fn owned(labels: Option<&std::collections::HashMap<String, String>>, team: Option<&str>) -> bool {
    let owner = labels.and_then(|l| l.get(TEAM_LABEL)).map(String::as_str);
    owner.is_some() && (team.is_none() || owner == team)
}

pub(super) async fn destroy_volume(team: Option<&str>, id: &str) -> CloudResult<StatusChange> {
    check_name("volume", id)?;
    let client = DockerDevices::client().await?;
    let v = engine("volume", id, false, client.inspect_volume(id)).await?;
    if !owned(Some(&v.labels), team) {
        return Err(CloudError::NotFound(format!(
            "no volume {id:?} in this team"
        )));
    }
    engine(
        "volume",
        id,
        true,
        client.remove_volume(&v.name, None::<RemoveVolumeOptions>),
    )
    .await?;
    Ok(StatusChange {
        submitted: true,
        request_ids: vec![v.name],
    })
}

pub(super) async fn destroy_network(team: Option<&str>, id: &str) -> CloudResult<StatusChange> {
    check_name("network", id)?;
    let client = DockerDevices::client().await?;
    let n = engine("network", id, false, client.inspect_network(id, None)).await?;
    if !owned(n.labels.as_ref(), team) {
        return Err(CloudError::NotFound(format!(
            "no network {id:?} in this team"
        )));
    }
    let nid = n.id.unwrap_or_else(|| id.to_string());
    engine("network", id, true, client.remove_network(&nid)).await?;
    Ok(StatusChange {
        submitted: true,
        request_ids: vec![nid],
    })
}
