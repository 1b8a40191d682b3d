//! What an engine knows about its containers (name, image, labels, state), kept current from
//! its event stream: one listing when the connection is made, then one `inspect` per event.
//! No tick lists containers or opens a stats stream; figures come from the cgroups.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};

use bollard::models::{ContainerInspectResponse, EventMessage};
use bollard::query_parameters::{EventsOptionsBuilder, ListContainersOptionsBuilder};
use bollard::Docker;
use futures_util::StreamExt;
use tokio::task::JoinHandle;

use super::{docker_error, negotiated_at, LIST_TIMEOUT};
use crate::ProbeError;

/// How many containers are inspected at once when a connection is made.
const INSPECT_CONCURRENCY: usize = 8;

/// One container as its engine describes it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Meta {
    pub id: String,
    /// Without the leading slash.
    pub name: String,
    pub image: String,
    /// created, running, paused, restarting, removing, exited, dead.
    pub state: String,
    /// Seconds since the epoch.
    pub created: i64,
    pub labels: BTreeMap<String, String>,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub exit_code: Option<i64>,
    /// Times the engine restarted it (its restart policy) since it was created.
    pub restart_count: u64,
}

impl Meta {
    /// From an inspect document; `None` without an id.
    pub fn from_inspect(info: ContainerInspectResponse) -> Option<Self> {
        let id = info.id?;
        let state = info.state.unwrap_or_default();
        let config = info.config.unwrap_or_default();
        let status = state
            .status
            .map(|s| s.to_string())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "unknown".into());
        Some(Self {
            name: info
                .name
                .map(|n| n.trim_start_matches('/').to_string())
                .unwrap_or_else(|| id.chars().take(12).collect()),
            image: config.image.unwrap_or_default(),
            state: status,
            created: info.created.as_deref().and_then(epoch_secs).unwrap_or(0),
            labels: config.labels.unwrap_or_default().into_iter().collect(),
            started_at: state.started_at.as_deref().and_then(epoch_secs),
            finished_at: state.finished_at.as_deref().and_then(epoch_secs),
            exit_code: state.exit_code,
            restart_count: info
                .restart_count
                .and_then(|n| u64::try_from(n).ok())
                .unwrap_or(0),
            id,
        })
    }

    /// The CLI's status line ("Up 3 minutes", "Exited (0) 2 hours ago") at `now`.
    pub fn status(&self, now: i64) -> String {
        let since = |t: Option<i64>| human_duration(now.saturating_sub(t.unwrap_or(now)));
        match self.state.as_str() {
            "running" => format!("Up {}", since(self.started_at)),
            "paused" => format!("Up {} (Paused)", since(self.started_at)),
            "restarting" => format!(
                "Restarting ({}) {} ago",
                self.exit_code.unwrap_or(0),
                since(self.finished_at)
            ),
            "exited" if self.finished_at.is_some() => format!(
                "Exited ({}) {} ago",
                self.exit_code.unwrap_or(0),
                since(self.finished_at)
            ),
            "created" => "Created".into(),
            "removing" => "Removal In Progress".into(),
            "dead" => "Dead".into(),
            other => other.to_string(),
        }
    }
}

/// RFC 3339 to seconds since the epoch; Docker's zero time ("0001-01-01T00:00:00Z") is none.
fn epoch_secs(s: &str) -> Option<i64> {
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()?;
    (t.year() > 1).then(|| t.unix_timestamp())
}

/// go-units' `HumanDuration`, which the Docker CLI prints in status lines.
pub fn human_duration(secs: i64) -> String {
    let s = secs.max(0);
    let (m, h) = (s / 60, s / 3600);
    match () {
        _ if s < 1 => "Less than a second".into(),
        _ if s == 1 => "1 second".into(),
        _ if s < 60 => format!("{s} seconds"),
        _ if m == 1 => "About a minute".into(),
        _ if m < 60 => format!("{m} minutes"),
        _ if h == 1 => "About an hour".into(),
        _ if h < 48 => format!("{h} hours"),
        _ if h < 24 * 7 * 2 => format!("{} days", h / 24),
        _ if h < 24 * 30 * 2 => format!("{} weeks", h / 24 / 7),
        _ if h < 24 * 365 * 2 => format!("{} months", h / 24 / 30),
        _ => format!("{} years", h / 24 / 365),
    }
}

#[derive(Default)]
struct Shared {
    metas: HashMap<String, Meta>,
    /// Why the event stream stopped; the next tick reports it and reconnects.
    broken: Option<String>,
    /// Bumped on every change, so the cgroup reader knows to look for new cgroups.
    generation: u64,
}

fn lock(s: &Mutex<Shared>) -> std::sync::MutexGuard<'_, Shared> {
    s.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One engine's containers, followed through its events.
pub struct EngineWatch {
    /// `None`: Docker's default (`DOCKER_HOST`, else the default socket).
    socket: Option<String>,
    watcher: Option<JoinHandle<()>>,
    shared: Arc<Mutex<Shared>>,
}

impl EngineWatch {
    pub fn new(socket: Option<String>) -> Self {
        Self {
            socket,
            watcher: None,
            shared: Arc::default(),
        }
    }

    /// Changes seen so far (any event, or a reconnection).
    pub fn generation(&self) -> u64 {
        lock(&self.shared).generation
    }

    /// The engine's containers, connecting (list + inspect, then events) when not yet
    /// connected. An engine that cannot be reached, or whose event stream broke, is an
    /// error for this tick and is tried again on the next.
    pub async fn containers(&mut self) -> Result<Vec<Meta>, ProbeError> {
        let finished = self.watcher.as_ref().is_some_and(|w| w.is_finished());
        let broken = lock(&self.shared).broken.take();
        if finished || broken.is_some() {
            self.stop();
            return Err(ProbeError::Docker(
                broken.unwrap_or_else(|| "event stream ended".into()),
            ));
        }
        if self.watcher.is_none() {
            if let Err(e) = self.connect().await {
                self.stop();
                return Err(e);
            }
        }
        Ok(lock(&self.shared).metas.values().cloned().collect())
    }

    async fn connect(&mut self) -> Result<(), ProbeError> {
        let client = negotiated_at(self.socket.as_deref()).await?;
        // Events are asked for from a second before the listing, so a container created
        // while it runs is not missed (seeing one twice is harmless).
        let since = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs().saturating_sub(1))
            .unwrap_or(0);
        let options = ListContainersOptionsBuilder::default().all(true).build();
        let list = tokio::time::timeout(LIST_TIMEOUT, client.list_containers(Some(options)))
            .await
            .map_err(|_| ProbeError::Docker("listing containers timed out".into()))?
            .map_err(docker_error)?;
        let ids: Vec<String> = list.into_iter().filter_map(|c| c.id).collect();
        let inspected: Vec<Result<Option<Meta>, ProbeError>> =
            futures_util::stream::iter(ids.into_iter().map(|id| {
                let client = client.clone();
                async move { inspect(&client, &id).await }
            }))
            .buffer_unordered(INSPECT_CONCURRENCY)
            .collect()
            .await;
        let mut metas = HashMap::new();
        for m in inspected {
            if let Some(m) = m? {
                metas.insert(m.id.clone(), m);
            }
        }
        {
            let mut s = lock(&self.shared);
            s.metas = metas;
            s.broken = None;
            s.generation += 1;
        }
        self.watcher = Some(tokio::spawn(watch(client, since, self.shared.clone())));
        Ok(())
    }

    fn stop(&mut self) {
        if let Some(w) = self.watcher.take() {
            w.abort();
        }
        let mut s = lock(&self.shared);
        s.metas.clear();
        s.generation += 1;
    }
}

impl Drop for EngineWatch {
    fn drop(&mut self) {
        if let Some(w) = self.watcher.take() {
            w.abort();
        }
    }
}

/// One container's metadata; `Ok(None)` when it is already gone.
async fn inspect(client: &Docker, id: &str) -> Result<Option<Meta>, ProbeError> {
    match tokio::time::timeout(LIST_TIMEOUT, client.inspect_container(id, None)).await {
        Ok(Ok(info)) => Ok(Meta::from_inspect(info)),
        Ok(Err(e)) => match docker_error(e) {
            ProbeError::NoSuchContainer(_) => Ok(None),
            e => Err(e),
        },
        Err(_) => Err(ProbeError::Docker("inspect timed out".into())),
    }
}

/// Whether an event can change what lookout shows (exec, attach, top … cannot).
fn changes_meta(action: &str) -> bool {
    !(action.starts_with("exec_")
        || action.starts_with("health_status")
        || matches!(
            action,
            "attach"
                | "detach"
                | "top"
                | "resize"
                | "commit"
                | "copy"
                | "export"
                | "archive-path"
                | "extract-to-dir"
                | "mount"
                | "unmount"
        ))
}

/// Follows the engine's container events until the stream breaks.
async fn watch(client: Docker, since: u64, shared: Arc<Mutex<Shared>>) {
    let filters = HashMap::from([("type", vec!["container"])]);
    let options = EventsOptionsBuilder::default()
        .since(&since.to_string())
        .filters(&filters)
        .build();
    let mut events = client.events(Some(options));
    let reason = loop {
        match events.next().await {
            Some(Ok(ev)) => apply(&client, ev, &shared).await,
            Some(Err(e)) => break format!("event stream broke: {}", docker_error(e)),
            None => break "event stream ended".to_string(),
        }
    };
    tracing::debug!(reason = %reason, "engine events stopped");
    lock(&shared).broken = Some(reason);
}

async fn apply(client: &Docker, ev: EventMessage, shared: &Mutex<Shared>) {
    let Some(id) = ev.actor.and_then(|a| a.id) else {
        return;
    };
    let action = ev.action.unwrap_or_default();
    if !changes_meta(&action) {
        return;
    }
    let meta = if action == "destroy" {
        Ok(None)
    } else {
        inspect(client, &id).await
    };
    let mut s = lock(shared);
    match meta {
        Ok(Some(m)) => {
            s.metas.insert(id, m);
        }
        Ok(None) => {
            s.metas.remove(&id);
        }
        Err(e) => {
            s.broken = Some(e.to_string());
        }
    }
    s.generation += 1;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_durations_read_like_the_cli() {
        assert_eq!(human_duration(0), "Less than a second");
        assert_eq!(human_duration(5), "5 seconds");
        assert_eq!(human_duration(61), "About a minute");
        assert_eq!(human_duration(180), "3 minutes");
        assert_eq!(human_duration(3700), "About an hour");
        assert_eq!(human_duration(5 * 3600), "5 hours");
        assert_eq!(human_duration(3 * 86400), "3 days");
    }

    #[test]
    fn zero_time_is_none() {
        assert_eq!(epoch_secs("0001-01-01T00:00:00Z"), None);
        assert_eq!(
            epoch_secs("2026-12-01T19:51:00.123456789Z"),
            Some(1_796_154_660)
        );
    }

    #[test]
    fn status_lines() {
        let m = Meta {
            state: "exited".into(),
            finished_at: Some(100),
            exit_code: Some(137),
            ..Meta::default()
        };
        assert_eq!(m.status(100 + 7200), "Exited (137) 2 hours ago");
        let r = Meta {
            state: "running".into(),
            started_at: Some(0),
            ..Meta::default()
        };
        assert_eq!(r.status(30), "Up 30 seconds");
    }
}
