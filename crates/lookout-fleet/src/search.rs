//! `/api/v1/fleet/containers?q=`: containers whose name or image contains a text, on every
//! host, from the series the engine holds (`/api/v1/series`), with whether each runs now.

use std::collections::BTreeMap;

use serde::Serialize;
use utoipa::ToSchema;

use crate::promql::{literal_regex, QueryError};
use crate::reader::{check_text, now_s, Fleet};

/// Longest search text.
pub const MAX_QUERY_BYTES: usize = 128;
/// Most matches returned.
pub const MAX_LIMIT: usize = 1_000;
/// Containers seen within this window are found.
const SEEN_WINDOW_S: f64 = 3600.0;

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FleetContainer {
    pub host: String,
    pub name: String,
    pub id: String,
    pub image: String,
    /// Running at the latest sample; `null` when the host sent none recently.
    pub running: Option<bool>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ContainerMatches {
    pub containers: Vec<FleetContainer>,
    /// More matched than `limit`.
    pub truncated: bool,
}

impl Fleet {
    pub async fn search_containers(
        &self,
        q: &str,
        limit: usize,
    ) -> Result<ContainerMatches, QueryError> {
        check_text("q", q, MAX_QUERY_BYTES)?;
        if limit == 0 || limit > MAX_LIMIT {
            return Err(QueryError::Invalid(format!(
                "limit: must be 1..={MAX_LIMIT}"
            )));
        }
        let re = format!("(?i).*{}.*", literal_regex(q));
        let now = now_s();
        let l = self.host_label();
        // Name or image: two selectors (PromQL matchers of one selector are all ANDed).
        let by_name = format!("lookout_container_running{{name=~\"{re}\"}}");
        let by_image = format!("lookout_container_running{{image=~\"{re}\"}}");
        let (a, b, now_running) = futures_util::future::join3(
            self.promql.series(&by_name, now - SEEN_WINDOW_S, now),
            self.promql.series(&by_image, now - SEEN_WINDOW_S, now),
            self.promql
                .query(&format!("max by ({l}, id) ({by_name} or {by_image})"), now),
        )
        .await;
        let running: BTreeMap<(String, String), bool> = now_running?
            .into_iter()
            .filter_map(|s| {
                Some((
                    (s.labels.get(l)?.clone(), s.labels.get("id")?.clone()),
                    s.value > 0.0,
                ))
            })
            .collect();
        let mut found: BTreeMap<(String, String), FleetContainer> = BTreeMap::new();
        for labels in a?.into_iter().chain(b?) {
            let (Some(host), Some(id)) = (labels.get(l), labels.get("id")) else {
                continue;
            };
            let key = (host.clone(), id.clone());
            let running = running.get(&key).copied();
            found.entry(key).or_insert_with(|| FleetContainer {
                host: host.clone(),
                name: labels.get("name").cloned().unwrap_or_default(),
                id: id.clone(),
                image: labels.get("image").cloned().unwrap_or_default(),
                running,
            });
        }
        let truncated = found.len() > limit;
        Ok(ContainerMatches {
            containers: found.into_values().take(limit).collect(),
            truncated,
        })
    }
}
