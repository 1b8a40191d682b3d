//! Devices and racks of the local backend: Docker containers labelled
//! `lookout.team=<project_id>`; a rack is the group sharing a `lookout.rack` label or, failing
//! that, a compose project. Power actions go through lookout-probe's [`ContainerControl`],
//! which checks the state first and reports a conflict for an action that does not fit.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bollard::errors::Error as BollardError;
use bollard::query_parameters::ListContainersOptionsBuilder;
use bollard::Docker;
use lookout_probe::docker::{state_conflict, ContainerAction, ContainerControl};

use crate::error::{CloudError, CloudResult};
use crate::metering::{COMPOSE_PROJECT_LABEL, RACK_LABEL, TEAM_LABEL};
use crate::model::{CloudEnv, PowerAction, Role, StatusChange, TargetKind};

const ENGINE_TIMEOUT: Duration = Duration::from_secs(5);

/// The container action a power action means.
pub fn container_action(a: PowerAction) -> ContainerAction {
    match a {
        PowerAction::On => ContainerAction::Start,
        PowerAction::Off => ContainerAction::Stop,
        PowerAction::Suspend => ContainerAction::Pause,
        PowerAction::Resume => ContainerAction::Unpause,
        PowerAction::Destroy => ContainerAction::Remove,
    }
}

/// One container as the local backend sees it.
#[derive(Debug, Clone)]
pub struct Member {
    pub id: String,
    pub name: String,
    pub running: bool,
    pub paused: bool,
}

/// Docker-engine devices.
pub struct DockerDevices {
    control: Arc<dyn ContainerControl>,
}

impl DockerDevices {
    pub fn new(control: Arc<dyn ContainerControl>) -> Self {
        Self { control }
    }

    pub(super) async fn client() -> CloudResult<Docker> {
        let c = Docker::connect_with_defaults()
            .map_err(|e| CloudError::Unavailable(format!("docker engine: {e}")))?;
        match tokio::time::timeout(ENGINE_TIMEOUT, c.negotiate_version()).await {
            Ok(Ok(c)) => Ok(c),
            Ok(Err(e)) => Err(CloudError::Unavailable(format!("docker engine: {e}"))),
            Err(_) => Err(CloudError::Unavailable(
                "docker engine did not answer in time".into(),
            )),
        }
    }

    /// The team's container named by `id` (full id, id prefix or name). Another team's
    /// container, or none, is "not found": a team cannot learn about others' devices.
    /// `team: None` (the admin) finds any team's container, never one outside every team.
    pub async fn device(&self, team: Option<&str>, id: &str) -> CloudResult<Member> {
        let not_found = || CloudError::NotFound(format!("no device {id:?} in this team"));
        if id.is_empty() || id.contains('/') {
            return Err(not_found());
        }
        let client = Self::client().await?;
        let info =
            match tokio::time::timeout(ENGINE_TIMEOUT, client.inspect_container(id, None)).await {
                Ok(Ok(info)) => info,
                Ok(Err(BollardError::DockerResponseServerError {
                    status_code: 404, ..
                })) => return Err(not_found()),
                Ok(Err(e)) => return Err(CloudError::Unavailable(format!("docker engine: {e}"))),
                Err(_) => return Err(CloudError::Unavailable("inspect timed out".into())),
            };
        let labels = info.config.as_ref().and_then(|c| c.labels.as_ref());
        let owner = labels.and_then(|l| l.get(TEAM_LABEL)).map(String::as_str);
        if owner.is_none() || (team.is_some() && owner != team) {
            return Err(not_found());
        }
        let state = info.state.as_ref();
        Ok(Member {
            id: info.id.clone().unwrap_or_else(|| id.to_string()),
            name: info
                .name
                .as_deref()
                .map(|n| n.trim_start_matches('/').to_string())
                .unwrap_or_default(),
            running: state.and_then(|s| s.running).unwrap_or(false),
            paused: state.and_then(|s| s.paused).unwrap_or(false),
        })
    }

    /// Every container of the team's rack `rack` (`team: None`: of any team).
    pub async fn rack(&self, team: Option<&str>, rack: &str) -> CloudResult<Vec<Member>> {
        let client = Self::client().await?;
        let team_filter = match team {
            Some(t) => format!("{TEAM_LABEL}={t}"),
            None => TEAM_LABEL.to_string(),
        };
        let filters: HashMap<&str, Vec<&str>> =
            HashMap::from([("label", vec![team_filter.as_str()])]);
        let options = ListContainersOptionsBuilder::default()
            .all(true)
            .filters(&filters)
            .build();
        let list = match tokio::time::timeout(ENGINE_TIMEOUT, client.list_containers(Some(options)))
            .await
        {
            Ok(Ok(l)) => l,
            Ok(Err(e)) => return Err(CloudError::Unavailable(format!("docker engine: {e}"))),
            Err(_) => {
                return Err(CloudError::Unavailable(
                    "listing containers timed out".into(),
                ))
            }
        };
        let members: Vec<Member> = list
            .into_iter()
            .filter(|c| {
                let labels = c.labels.as_ref();
                let of = labels
                    .and_then(|l| l.get(RACK_LABEL).or_else(|| l.get(COMPOSE_PROJECT_LABEL)))
                    .map(String::as_str);
                // Belt and braces: the engine filtered by team already.
                let owner = labels.and_then(|l| l.get(TEAM_LABEL)).map(String::as_str);
                owner.is_some() && (team.is_none() || owner == team) && of == Some(rack)
            })
            .filter_map(|c| {
                let state = c.state.map(|s| s.to_string()).unwrap_or_default();
                Some(Member {
                    id: c.id?,
                    name: c
                        .names
                        .as_ref()
                        .and_then(|n| n.first())
                        .map(|n| n.trim_start_matches('/').to_string())
                        .unwrap_or_default(),
                    running: matches!(state.as_str(), "running" | "paused" | "restarting"),
                    paused: state == "paused",
                })
            })
            .collect();
        if members.is_empty() {
            return Err(CloudError::NotFound(format!(
                "no rack {rack:?} in this team"
            )));
        }
        Ok(members)
    }

    /// Applies `action` to one of the team's devices.
    pub async fn act_on_device(
        &self,
        team: Option<&str>,
        id: &str,
        action: PowerAction,
    ) -> CloudResult<StatusChange> {
        let device = self.device(team, id).await?;
        let a = container_action(action);
        if let Some(why) = state_conflict(a, device.running, device.paused) {
            return Err(CloudError::Conflict(format!(
                "cannot {} device {}: {why}",
                action_name(action),
                device.name
            )));
        }
        self.control.act(&device.id, a).await?;
        Ok(StatusChange {
            submitted: true,
            request_ids: vec![device.id],
        })
    }

    /// Applies `action` to every member of a rack it fits; a conflict when it fits none.
    pub async fn act_on_rack(
        &self,
        team: Option<&str>,
        rack: &str,
        action: PowerAction,
    ) -> CloudResult<StatusChange> {
        let members = self.rack(team, rack).await?;
        let a = container_action(action);
        let fitting: Vec<&Member> = members
            .iter()
            .filter(|m| state_conflict(a, m.running, m.paused).is_none())
            .collect();
        if fitting.is_empty() {
            return Err(CloudError::Conflict(format!(
                "cannot {} rack {rack}: no device in it is in a state that allows it",
                action_name(action)
            )));
        }
        let results =
            futures_util::future::join_all(fitting.iter().map(|m| self.control.act(&m.id, a)))
                .await;
        let mut done = Vec::new();
        let mut failed = Vec::new();
        for (m, r) in fitting.iter().zip(results) {
            match r {
                Ok(()) => done.push(m.id.clone()),
                Err(e) => failed.push(format!("{}: {e}", m.name)),
            }
        }
        if done.is_empty() {
            return Err(CloudError::from(lookout_probe::ProbeError::Docker(
                failed.join("; "),
            )));
        }
        if !failed.is_empty() {
            tracing::warn!(rack, failed = %failed.join("; "), "rack action partly failed");
        }
        Ok(StatusChange {
            submitted: true,
            request_ids: done,
        })
    }
}

fn action_name(a: PowerAction) -> &'static str {
    match a {
        PowerAction::On => "switch on",
        PowerAction::Off => "switch off",
        PowerAction::Suspend => "suspend",
        PowerAction::Resume => "resume",
        PowerAction::Destroy => "destroy",
    }
}

impl super::LocalBackend {
    /// A power action by a member or admin of the team `cloud_env` is scoped to, or by the
    /// admin principal on any team's device (the UI sends the admin's `cloud_env`, scoped to
    /// the admin's own project, for root users).
    pub(super) async fn do_update_status(
        &self,
        env: &CloudEnv,
        kind: TargetKind,
        id: &str,
        action: PowerAction,
    ) -> CloudResult<StatusChange> {
        let team = if self.is_admin(env).await? {
            None
        } else {
            let user = self.caller(env).await?;
            let (team, roles) = self.scoped_team(env, &user).await?;
            if roles.is_empty() {
                return Err(CloudError::Forbidden(
                    "the user has no role in this team".into(),
                ));
            }
            if !roles
                .iter()
                .any(|r| matches!(r, Role::Admin | Role::Member))
            {
                return Err(CloudError::Forbidden(
                    "watchers cannot change the state of devices".into(),
                ));
            }
            Some(team.id)
        };
        let team = team.as_deref();
        match kind {
            TargetKind::Device => self.devices.act_on_device(team, id, action).await,
            TargetKind::Rack => self.devices.act_on_rack(team, id, action).await,
            TargetKind::Volume => super::storage::destroy_volume(team, id).await,
            TargetKind::Network => super::storage::destroy_network(team, id).await,
        }
    }
}
